#pragma once
/// group_background: the ExoTiC-MIRI GroupBackgroundSubtractStep, background subtraction of
/// every group image from two column ranges either side of the MIRI LRS trace. See
/// docs/jwst-group-corrections.md.
///
/// Background columns are [bkg_col_left_start, bkg_col_left_end) and
/// [bkg_col_right_start, bkg_col_right_end): end indices are exclusive, as the Python slices
/// and np.arange of ExoTiC-MIRI are (defaults: columns 8..16 and 56..71).
///   constant: the median of all background pixels of the group;
///   row_wise: the median of each row's background pixels;
///   col_wise: in each row, the line through (centre of the left range, its median) and
///             (centre of the right range, its median), evaluated at every column.
/// smoothing_length = L (row_wise, col_wise) replaces each row's estimate by the median over
/// rows y-(L-1)/2 .. y+(L-1)/2 (cut at the edges). Pixels flagged do_not_use and non-finite
/// values are left out of every median.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct GroupBackgroundParams {
  std::string method = "row_wise";
  std::int64_t bkg_col_left_start = 8;
  std::int64_t bkg_col_left_end = 17;
  std::int64_t bkg_col_right_start = 56;
  std::int64_t bkg_col_right_end = 72;
  std::optional<std::int64_t> smoothing_length;

  static Schema<GroupBackgroundParams> schema() {
    return tessera::schema<GroupBackgroundParams>(
        field(&GroupBackgroundParams::method, "method",
              "constant: one median of the whole background region; row_wise: a median per row; col_wise: per row, "
              "linear in column through the medians of the left and right regions",
              Choices{{"constant", "row_wise", "col_wise"}}),
        field(&GroupBackgroundParams::bkg_col_left_start, "bkg_col_left_start",
              "First column of the background region left of the trace", Range::at_least(0)),
        field(&GroupBackgroundParams::bkg_col_left_end, "bkg_col_left_end",
              "End of the left background region (exclusive, like a Python slice)", Range::at_least(0)),
        field(&GroupBackgroundParams::bkg_col_right_start, "bkg_col_right_start",
              "First column of the background region right of the trace", Range::at_least(0)),
        field(&GroupBackgroundParams::bkg_col_right_end, "bkg_col_right_end",
              "End of the right background region (exclusive, like a Python slice)", Range::at_least(0)),
        field(&GroupBackgroundParams::smoothing_length, "smoothing_length",
              "row_wise and col_wise: running median of the per-row estimates over this many rows (window "
              "y-(L-1)/2 .. y+(L-1)/2, cut at the edges); unset: no smoothing",
              Range::at_least(1)));
  }
};

/// Reusable buffers of the per-group kernel.
struct GroupBackgroundScratch {
  std::vector<float> values, left, right, smoothed_left, smoothed_right;
};

/// Subtracts the background from one group image (ny*nx) in place; `dq` is the
/// integration's pixel dq image. The column ranges must have been checked against nx.
void group_background_image(std::span<float> image, std::span<const std::uint32_t> dq, std::size_t ny,
                            std::size_t nx, const GroupBackgroundParams& params, GroupBackgroundScratch& scratch);

struct GroupBackground {
  static constexpr std::string_view name = "group_background";
  static constexpr std::string_view summary =
      "ExoTiC-MIRI group-level background subtraction from column ranges either side of the trace (constant, "
      "row_wise or col_wise)";
  using Params = GroupBackgroundParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
