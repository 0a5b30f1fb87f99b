#pragma once
/// clean_outliers: the ExoTiC-MIRI stage-2 CleanOutliersStep, frame by frame (one frame = one
/// integration). See docs/spectra-cleaning.md for the algorithm, its parameters and how it
/// differs from ExoTiC-MIRI.
///
/// A spatial profile P(w, s) is built following Horne (1986, PASP 98, 609), "An optimal
/// extraction algorithm for CCD spectroscopy": for every spatial position s in
/// [spatial_profile_left_idx, spatial_profile_right_idx) the data normalised by the
/// spectrum, D(w, s) / S(w), are fitted along the dispersion index w with polynomials of
/// poly_order in windows whose heights cycle through window_heights; P is then clipped at
/// zero and normalised to sum 1 over the fitted range on every dispersion line. Pixels that
/// deviate from the model S(w) P(w, s) by more than outlier_threshold standard deviations
/// (err cube, leave-one-out, rejected one per line and refitted until none remain), that
/// carry a JWST dq bit of dq_bits_to_mask, or that are not finite, are replaced by the model
/// and flagged jwst::dq::outlier.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steps/common/spectral_geometry.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct CleanOutliersParams {
  std::vector<std::int64_t> window_heights = {150, 100, 50, 40, 30, 24};
  std::vector<std::int64_t> dq_bits_to_mask = {0};
  std::int64_t poly_order = 4;
  double outlier_threshold = 4.0;
  std::int64_t spatial_profile_left_idx = 26;
  std::int64_t spatial_profile_right_idx = 47;
  bool no_clean = false;
  std::int64_t max_iterations = 10;
  std::int64_t aperture_center = 36;
  std::optional<std::string> trace;
  std::string dispersion_axis = "y";

  static Schema<CleanOutliersParams> schema() {
    using P = CleanOutliersParams;
    return tessera::schema<P>(
        field(&P::window_heights, "window_heights",
              "Heights (pixels along the dispersion) of the windows in which the profile polynomials are fitted, "
              "used in turn from dispersion index 0 until the detector is covered (ExoTiC-MIRI: smaller windows at "
              "larger row index for MIRI)"),
        field(&P::dq_bits_to_mask, "dq_bits_to_mask",
              "JWST dq bit numbers (0 = do_not_use, 11 = hot, ...) whose pixels are replaced by the profile model"),
        field(&P::poly_order, "poly_order", "Order of the profile polynomials", Range::closed(0, 10)),
        field(&P::outlier_threshold, "outlier_threshold",
              "Pixels further than this many standard deviations from the profile model are replaced",
              Range::above(0)),
        field(&P::spatial_profile_left_idx, "spatial_profile_left_idx",
              "First spatial index (column for MIRI) of the fitted profile", Range::at_least(0)),
        field(&P::spatial_profile_right_idx, "spatial_profile_right_idx",
              "End of the fitted profile's spatial range (exclusive, like a Python slice)", Range::at_least(1)),
        field(&P::no_clean, "no_clean",
              "Only replace non-finite pixels by the profile model (no sigma clipping, dq_bits_to_mask ignored)"),
        field(&P::max_iterations, "max_iterations",
              "Most fit-and-reject passes per integration (each rejects at most one pixel per dispersion line)",
              Range::at_least(1)),
        field(&P::aperture_center, "aperture_center",
              "Spatial index of the trace centre for the n_outliers distances (ExoTiC-MIRI: column 36) when no "
              "trace is given",
              Range::at_least(0)),
        field(&P::trace, "trace",
              "Name of a trace image (e.g. trace_order1, from the trace step) giving the centre per integration "
              "and dispersion index for the n_outliers distances; unset: aperture_center"),
        field(&P::dispersion_axis, "dispersion_axis", std::string(spectra::dispersion_doc), Choices{{"x", "y"}}));
  }
};

/// Distances from the trace centre counted in n_outliers (0 .. region_width-1 pixels).
inline constexpr std::size_t outlier_region_width = 5;

/// The per-integration kernel, sized once for a frame shape and parameter set: windows and
/// their polynomial basis are computed in the constructor, scratch is reused by clean(), so
/// cleaning an integration allocates nothing.
class ProfileCleaner {
 public:
  /// Throws StepError (naming the parameter) when the parameters do not fit the frame.
  ProfileCleaner(const CleanOutliersParams& params, std::size_t ny, std::size_t nx);

  struct Window {
    std::size_t start = 0, height = 0;
  };
  const std::vector<Window>& windows() const { return windows_; }

  /// Cleans one integration in place. `profile` (ny*nx) receives P (0 outside the fitted
  /// range); `centre` is the trace centre per dispersion index (absolute spatial index; NaN:
  /// not counted) and `counts` (outlier_region_width) receives the cleaned pixels by
  /// distance. Returns the number of cleaned pixels.
  std::size_t clean(std::span<float> data, std::span<const float> err, std::span<std::uint32_t> dq,
                    std::span<float> profile, std::span<const float> centre, std::span<float> counts);

  /// Fit-and-reject passes the last clean() made.
  std::size_t passes() const { return passes_; }

 private:
  enum : std::uint8_t { usable = 0, bad = 1, rejected = 2 };
  void fit_window(std::size_t wi);
  void update_spectrum(std::size_t w);
  bool test_line(std::size_t w);
  void set_status(std::size_t w, std::size_t s, std::uint8_t value);
  template <class F>
  void for_each_pixel(bool along_y, F&& f) const;

  CleanOutliersParams p_;
  spectra::Dispersion dispersion_;
  std::size_t ny_, nx_, nw_, nr_, left_, K_;
  std::uint32_t dq_mask_ = 0;
  std::vector<Window> windows_;
  std::vector<std::size_t> window_of_;  // per dispersion line
  std::vector<double> phi_;             // nw × K: Legendre basis at each line in its window
  // Region buffers, (line, spatial) with the spatial index contiguous.
  // gain_: 1 / (1 - h), h the pixel's leverage on its own fit (1 for pixels not in the fit).
  std::vector<float> d_, dfit_, sig2_, ivar_, fit_, prof_, gain_;
  std::vector<std::uint8_t> status_;
  // Per line. stale_: the mask changed since the spectrum and weight were computed.
  std::vector<double> spectrum_, spectrum_fit_, omega_, norm_;
  std::vector<std::uint8_t> excluded_, stale_, has_profile_;
  // Per line: the rejection candidate of the last test (z^2, spatial index; nr_ = none).
  std::vector<double> candidate_z2_, column_worst_;
  std::vector<std::size_t> candidate_s_;
  // Per window fit scratch.
  std::vector<double> gram_, chol_, chol_s_, b_, c_, hline_, y_, acc_;
  std::vector<std::uint32_t> masked_in_column_;
  std::vector<std::uint8_t> dirty_;
  std::vector<std::size_t> fitted_;
  std::size_t passes_ = 0;
};

struct CleanOutliers {
  static constexpr std::string_view name = "clean_outliers";
  static constexpr std::string_view summary =
      "ExoTiC-MIRI outlier cleaning against a Horne (1986) spatial profile of windowed polynomials; writes the "
      "profile cube and outlier counts by distance from the trace";
  using Params = CleanOutliersParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
