#pragma once
/// bkg_column: column-by-column background subtraction (ExoTiC-UVIS / HUSTLE-tools stage 1,
/// "do_column"). Each frame's background is taken as constant along each column: estimated
/// from the pixels of `rows` or, with mask_trace, from every pixel at least dist_from_trace
/// rows away from the traces and the 0th order, which are found in the frame itself.
///
/// Columns with fewer than min_rows pixels left by the mask take their value by linear
/// interpolation between the nearest columns that have enough (the nearest one at the
/// edges); if no column has enough, every column uses its `rows` pixels instead.
///
/// The clipped mean is the default estimate: on a Poisson sky the median lies about 1/6 e-
/// (0.1 e- with 3 e- read noise) below the mean, and it is noisier; symmetric 3σ clipping
/// of the skewed sky still costs about −0.03 e- (measured on the simulator at 15 e-).
/// A column value is exact only for the x-dependence of the sky: a gradient along y is left
/// in the frame (see tests/mpi/background_accuracy_test.cpp for figures).
///
/// Differences from the reference tool (hustle_tools bckg_subtract.column_by_column_subtraction):
/// its trace mask is lost when the masked array goes through medfilt2d, so its medians include
/// the traces; here the mask is applied. Its mask follows the brightest pixel of each column;
/// here every significant source pixel (both orders, the 0th order) is masked.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "steps/common/source_mask.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct BkgColumnParams {
  std::vector<std::int64_t> rows = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  bool mask_trace = true;
  std::int64_t dist_from_trace = 100;
  double col_sigma = 3;
  // Ours.
  std::string estimator = "mean";
  double trace_snr = 5;
  std::int64_t trace_grow_x = 5;
  std::int64_t min_rows = 10;

  static Schema<BkgColumnParams> schema() {
    return tessera::schema<BkgColumnParams>(
        field(&BkgColumnParams::rows, "rows",
              "Rows (0-based) whose pixels give each column's background when mask_trace is false; also the "
              "fallback when no column has enough pixels away from the traces",
              Range::at_least(0)),
        field(&BkgColumnParams::mask_trace, "mask_trace",
              "Use every pixel at least dist_from_trace rows from the traces and 0th order (found in each frame) "
              "instead of rows"),
        field(&BkgColumnParams::dist_from_trace, "dist_from_trace",
              "With mask_trace: rows masked on each side of every detected trace or 0th-order pixel",
              Range::at_least(0)),
        field(&BkgColumnParams::col_sigma, "col_sigma",
              "Iterative sigma clip of each column's background pixels at this many standard deviations from "
              "their median",
              Range::above(0)),
        field(&BkgColumnParams::estimator, "estimator",
              "Background of a column from its clipped pixels: 'mean' (less noisy; -0.03 e- from clipping a 15 e- "
              "Poisson sky) "
              "or 'median' (biased low by about 1/6 e- on a Poisson sky)",
              Choices{{"mean", "median"}}),
        field(&BkgColumnParams::trace_snr, "trace_snr",
              "With mask_trace: detection threshold (sigma) for trace and 0th-order pixels, after a 5-pixel "
              "median along rows and a 5-row mean",
              Range::above(0)),
        field(&BkgColumnParams::trace_grow_x, "trace_grow_x",
              "With mask_trace: columns on each side of a detected pixel that also get its mask (covers the "
              "faint ends of the traces)",
              Range::at_least(0)),
        field(&BkgColumnParams::min_rows, "min_rows",
              "With mask_trace: a column with fewer background pixels takes its value from the nearest columns "
              "that have enough (linear interpolation)",
              Range::at_least(1)));
  }
};

/// Where a column's background came from.
enum class ColumnSource : std::uint8_t {
  own = 0,           ///< the column's own background pixels
  neighbours = 1,    ///< interpolated between the nearest columns with enough pixels
  rows = 2,          ///< too few anywhere: the `rows` pixels of the column
};

/// Buffers reused from frame to frame.
struct BkgColumnScratch {
  SourceMaskScratch sources;
  /// After column_background(): the frame, column-major (frame_t[x*ny + y]).
  std::vector<float> frame_t;
  /// After column_background(): 1 where a pixel was NOT a background candidate, column-major
  /// (excluded_t[x*ny + y]), for the columns whose source is `own`.
  std::vector<std::uint8_t> excluded_t;
  /// After column_background(): where each column's value came from.
  std::vector<ColumnSource> source;
  std::vector<float> values;
  std::vector<std::uint8_t> row_selected;
};

/// Sigma-clipped estimate of `values` (reordered): repeat {centre = median, spread =
/// population std of the kept values; keep |v − centre| <= sigma · spread} until the kept
/// set stops changing (at most 20 passes), then return the mean (or median) of the kept
/// values. NaN when empty.
float clipped_estimate(std::span<float> values, double sigma, bool use_mean);

/// The background of each column of one frame (ny × nx, row-major) into background (nx),
/// following the parameters (see the header comment); the frame is not modified.
/// Non-finite pixels are never used. Throws StepError for rows outside the frame.
void column_background(std::span<const float> frame, std::size_t ny, std::size_t nx, const BkgColumnParams& params,
                       BkgColumnScratch& scratch, std::span<float> background);

struct BkgColumn {
  static constexpr std::string_view name = "bkg_column";
  static constexpr std::string_view summary =
      "Subtract a per-column background estimated away from the traces and 0th order (or from chosen rows)";
  using Params = BkgColumnParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
