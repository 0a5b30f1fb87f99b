#pragma once
/// extract_box: aperture (box) extraction of one spectrum per integration, as the JWST TSO
/// notebook's aperture_extraction (section 5.3: fractional edge pixels, an optional
/// background annulus median, errors from the error image, wavelengths by the map's average
/// over the aperture) and ExoTiC-MIRI's Extract1DBoxStep (trace_position constant or
/// gaussian_fits, left/right widths, the PSF sigma per integration). See
/// docs/spectra-extraction.md.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "steps/spectra/aperture.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct ExtractBoxParams {
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
  std::optional<double> background_radius;

  static Schema<ExtractBoxParams> schema() {
    auto fields = spectra::extraction_fields<ExtractBoxParams>();
    fields.push_back(field(&ExtractBoxParams::background_radius, "background_radius",
                           "Subtract, per integration and line, the median of the whole pixels within this distance "
                           "of the centre that the aperture does not touch (the notebook's annulus); unset: none",
                           Range::above(0)));
    return Schema<ExtractBoxParams>(std::move(fields));
  }
};

/// One spatial line's box extraction.
struct BoxLine {
  double flux = NAN;        ///< Σ w_j (D_j - background) over usable pixels; NaN if none
  double variance = NAN;    ///< Σ w_j² err_j² (the notebook's: the background's own error is not added)
  double background = 0;    ///< the annulus median (0 without an annulus; NaN if it had no usable pixel)
  double width2 = NAN;      ///< second-moment variance (aperture.hpp), NaN below flux S/N 5
  std::size_t bad = 0;      ///< touched pixels left out (non-finite data or err, dq_bits_to_skip)
};

/// Extracts one line of n pixels, pixel j at data[j * stride] (err and dq alike; dq may be
/// null). `scratch` holds at least n floats (annulus values).
BoxLine extract_box_line(const float* data, const float* err, const std::uint32_t* dq, std::size_t stride,
                         std::size_t n, double centre, const spectra::ApertureShape& shape,
                         std::optional<double> background_radius, std::uint32_t skip_bits, float* scratch);

struct ExtractBox {
  static constexpr std::string_view name = "extract_box";
  static constexpr std::string_view summary =
      "Box extraction along the trace with fractional edge pixels, optional background annulus, errors and "
      "wavelengths (notebook aperture_extraction; ExoTiC-MIRI Extract1DBoxStep)";
  using Params = ExtractBoxParams;
  /// Frames: extract each integration; Reduce: wavelengths at the time-median centres.
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Reduce}; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
