#pragma once
/// extract_optimal: optimal extraction (Horne 1986, PASP 98, 609) of one spectrum per
/// integration, as ExoTiC-MIRI's Extract1DOptimalStep: the flux weighted by a spatial
/// profile P and the pixel variances V, f = Σ P D / V / Σ P² / V, with V revised from the
/// model f P rather than from the noisy pixel values and cosmic rays rejected one at a time.
/// The profile is the clean_outliers profile cube or, by default, the per-pixel time median
/// of the data (a TSO's trace barely moves), found in a first phase over pixel time series
/// together with each pixel's noise model. See docs/spectra-extraction.md.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steps/spectra/aperture.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct ExtractOptimalParams {
  std::string dispersion_axis = "x";
  std::string suffix;
  std::string trace_position = "trace";
  std::string trace = "order1";
  double aperture_center = 36;
  std::optional<double> aperture_radius;
  std::int64_t aperture_left_width = 4;
  std::int64_t aperture_right_width = 4;
  std::string wavelength_map;
  std::vector<std::int64_t> dq_bits_to_skip;
  std::int64_t fit_half_width = 6;
  std::int64_t fit_smoothing = 10;
  std::string profile = "median_image";
  bool median_spatial_profile = false;
  double outlier_threshold = 5.0;
  std::optional<std::string> read_noise;

  static Schema<ExtractOptimalParams> schema() {
    auto fields = spectra::extraction_fields<ExtractOptimalParams>();
    fields.push_back(field(&ExtractOptimalParams::profile, "profile",
                           "Spatial profile P: 'median_image' (per-pixel time median of data, clipped at 0 and "
                           "normalised over the aperture of each line) or 'cube' (the profile cube of clean_outliers)",
                           Choices{{"median_image", "cube"}}));
    fields.push_back(field(&ExtractOptimalParams::median_spatial_profile, "median_spatial_profile",
                           "profile = 'cube': use the per-pixel time median of the profile cube (ExoTiC-MIRI)"));
    fields.push_back(field(&ExtractOptimalParams::outlier_threshold, "outlier_threshold",
                           "Reject, one at a time, pixels deviating from f P by more than this many sigma (Horne 1986)",
                           Range::above(0)));
    fields.push_back(field(&ExtractOptimalParams::read_noise, "read_noise",
                           "Read noise sigma per pixel in data units (number, FITS file or @image), used when there is "
                           "no var_rnoise cube; unset: the time median of err^2 - var_poisson"));
    return Schema<ExtractOptimalParams>(std::move(fields));
  }
};

/// A pixel's variance model, V = floor + factor · max(f P, 0), from its time series (the
/// Pixels phase): factor = median of var_poisson / data over samples with data > 3 err
/// (when at least half are), floor = read variance + the Poisson variance of what the
/// data no longer hold (sky removed upstream). See docs/spectra-extraction.md for the
/// fall-backs without var_poisson / var_rnoise.
struct PixelNoise {
  float floor = NAN, factor = 0;
};
/// Series of one pixel (nt samples each); var_poisson, var_rnoise and dq may be empty.
/// `read_noise` (data units) replaces var_rnoise when that is empty. `scratch` holds nt floats.
PixelNoise pixel_noise(std::span<const float> data, std::span<const float> err, std::span<const float> var_poisson,
                       std::span<const float> var_rnoise, std::span<const std::uint32_t> dq, std::uint32_t skip_bits,
                       std::optional<float> read_noise, std::span<float> scratch);

/// One line's optimal extraction over n aperture pixels: data D, profile P (>= 0, any
/// normalisation: it is normalised to sum 1 over all n), variance model (floor, factor) and
/// `usable` (0: left out; rejected pixels are set to 0). Horne's loop: f from the
/// profile-weighted sum of usable pixels; then V = floor + factor·max(fP, 0), f = Σ P D/V /
/// Σ P²/V, and the worst pixel beyond `threshold` sigma is rejected, until nothing is
/// rejected and V has been revised at least twice. var(f) = Σ P / Σ P²/V over usable pixels
/// (Horne's; 1 / Σ P²/V when none is left out).
struct OptimalLine {
  double flux = NAN, variance = NAN;
  std::size_t rejected = 0;
};
OptimalLine extract_optimal_line(std::span<const double> data, std::span<double> profile,
                                 std::span<const double> floor, std::span<const double> factor,
                                 std::span<std::uint8_t> usable, double threshold);

struct ExtractOptimal {
  static constexpr std::string_view name = "extract_optimal";
  static constexpr std::string_view summary =
      "Horne (1986) optimal extraction with a median-image or clean_outliers profile, a per-pixel noise model and "
      "cosmic-ray rejection (ExoTiC-MIRI Extract1DOptimalStep)";
  using Params = ExtractOptimalParams;
  /// Pixels: median profile and noise model per pixel; Frames: extraction; Reduce: wavelengths.
  static std::vector<Access> access(const Params&) { return {Access::Pixels, Access::Frames, Access::Reduce}; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
