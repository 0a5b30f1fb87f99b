#pragma once
/// background_subtract: the ExoTiC-MIRI stage-2 BackgroundSubtractStep on rate images (one
/// frame = one integration). See docs/spectra-cleaning.md.
///
/// The background is estimated, per integration, from two ranges of spatial index either
/// side of the trace, [bkg_col_left_start, bkg_col_left_end) and [bkg_col_right_start,
/// bkg_col_right_end) (ends exclusive like Python slices; for MIRI LRS, dispersion_axis "y",
/// these are detector columns), and subtracted from `data`:
///   constant: one median of every background pixel of the integration;
///   row_wise: a median per dispersion line (a detector row for MIRI) of its background pixels;
///   col_wise: per dispersion line, a least-squares straight line in spatial index through its
///             background pixels (optionally refitted once without the pixels beyond
///             clip_sigma robust standard deviations), evaluated at every spatial index.
/// smoothing_length = L (odd) replaces the per-line estimates by their running median over
/// L lines (cut at the detector edges). Pixels flagged do_not_use and non-finite values are
/// left out. `err` is not changed (see the docs for why). Image `background` (time, line):
/// the median of the subtracted model along the spatial direction, per dispersion line.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steps/common/spectral_geometry.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct BackgroundSubtractParams {
  std::string method = "row_wise";
  std::int64_t bkg_col_left_start = 8;
  std::int64_t bkg_col_left_end = 17;
  std::int64_t bkg_col_right_start = 56;
  std::int64_t bkg_col_right_end = 72;
  std::optional<std::int64_t> smoothing_length;
  double clip_sigma = 5.0;
  std::string dispersion_axis = "y";

  static Schema<BackgroundSubtractParams> schema() {
    using P = BackgroundSubtractParams;
    return tessera::schema<P>(
        field(&P::method, "method",
              "constant: one median over the whole background region; row_wise: a median per dispersion line (a "
              "row for MIRI); col_wise: per dispersion line, a straight-line fit in spatial index through the "
              "background pixels",
              Choices{{"constant", "row_wise", "col_wise"}}),
        field(&P::bkg_col_left_start, "bkg_col_left_start",
              "First spatial index (column for MIRI) of the background region left of the trace", Range::at_least(0)),
        field(&P::bkg_col_left_end, "bkg_col_left_end",
              "End of the left background region (exclusive, like a Python slice)", Range::at_least(0)),
        field(&P::bkg_col_right_start, "bkg_col_right_start",
              "First spatial index of the background region right of the trace", Range::at_least(0)),
        field(&P::bkg_col_right_end, "bkg_col_right_end",
              "End of the right background region (exclusive, like a Python slice)", Range::at_least(0)),
        field(&P::smoothing_length, "smoothing_length",
              "Odd number of dispersion lines over which the per-line estimates are median-smoothed (window cut at "
              "the detector edges); unset: no smoothing",
              Range::at_least(1)),
        field(&P::clip_sigma, "clip_sigma",
              "col_wise only: refit each line once without the background pixels further than this many robust "
              "standard deviations (1.4826 x MAD of the residuals) from the first fit; 0: plain least squares",
              Range::at_least(0)),
        field(&P::dispersion_axis, "dispersion_axis", std::string(spectra::dispersion_doc), Choices{{"x", "y"}}));
  }
};

/// Per-integration kernel scratch (reused across integrations: no allocation per frame once warm).
struct BackgroundScratch {
  std::vector<float> region, values, first, second, smoothed_first, smoothed_second, first_residuals,
      second_residuals;
  std::vector<double> spatial, xs, intercept, slope;
};

/// Estimates the background of one frame (ny*nx, row-major) and subtracts it in place;
/// `line_background` (length n_wave) receives the per-line median of the model along the
/// spatial direction. Returns the number of dispersion lines that had no usable estimate
/// (nothing was subtracted there). Parameters must have been validated (validate_background).
std::size_t subtract_background(std::span<float> frame, std::span<const std::uint32_t> dq, std::size_t ny,
                                std::size_t nx, const BackgroundSubtractParams& params,
                                std::span<float> line_background, BackgroundScratch& scratch);

/// Throws a StepError naming the parameter when the regions or smoothing length do not fit
/// a frame with `n_spatial` spatial positions.
void validate_background(const BackgroundSubtractParams& params, std::size_t n_spatial);

struct BackgroundSubtract {
  static constexpr std::string_view name = "background_subtract";
  static constexpr std::string_view summary =
      "ExoTiC-MIRI background subtraction from spatial ranges either side of the trace (constant, row_wise or "
      "col_wise), per integration";
  using Params = BackgroundSubtractParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
