#pragma once
/// spatial_smooth: replace pixels that deviate from a smooth model of their own frame
/// (ExoTiC-UVIS / HUSTLE-tools stage 1, "spatial smoothing rejection", step 3b).
///
/// The model is a running median along each row (`1D_smooth`), a 2D running median
/// (`2D_smooth`) or a polynomial along each row fitted with iterative rejection (`polyfit`).
/// A pixel whose |data − model| exceeds smth_threshold × its err value is replaced by the
/// model and flagged dq::smooth_outlier; non-finite pixels are always replaced (and also
/// flagged dq::non_finite). Only pixels inside the smth_bounds boxes are corrected; the
/// medians may use neighbours outside a box, so a box's edge is modelled as well as its
/// middle. The model is built from the frame as it came in, then applied, so the result
/// does not depend on the order pixels are visited.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct SpatialSmoothParams {
  std::string smth_type = "1D_smooth";
  std::vector<std::int64_t> smth_kernel = {11};
  double smth_threshold = 5.0;
  std::optional<std::vector<std::vector<double>>> smth_bounds = std::vector<std::vector<double>>{{260, 370, 640, 1100}};
  std::int64_t polyfit_order = 3;

  static Schema<SpatialSmoothParams> schema() {
    return tessera::schema<SpatialSmoothParams>(
        field(&SpatialSmoothParams::smth_type, "smth_type",
              "Model of each frame: '1D_smooth' (running median along rows), '2D_smooth' (2D running median) or "
              "'polyfit' (polynomial along each row of a box, fitted with iterative rejection)",
              Choices{{"1D_smooth", "2D_smooth", "polyfit"}}),
        field(&SpatialSmoothParams::smth_kernel, "smth_kernel",
              "Median window in pixels: [k] for 1D_smooth, [ky, kx] for 2D_smooth, all odd (the template's int or "
              "tuple); not used by polyfit",
              Range::at_least(1)),
        field(&SpatialSmoothParams::smth_threshold, "smth_threshold",
              "Replace a pixel whose |data - model| exceeds this many times its err value", Range::above(0)),
        field(&SpatialSmoothParams::smth_bounds, "smth_bounds",
              "Boxes [r1, r2, c1, c2] (rows [r1, r2), columns [c1, c2), as the reference slices image[r1:r2, c1:c2]; clipped to the frame) whose pixels are "
              "corrected; unset: the whole frame",
              Range::at_least(0)),
        field(&SpatialSmoothParams::polyfit_order, "polyfit_order",
              "Degree of the polynomial fitted along each row by polyfit (ours)", Range::closed(0, 15)));
  }
};

/// Throws ConfigError naming the parameter when smth_kernel does not suit smth_type (count,
/// oddness) or a smth_bounds box is not four whole numbers with r1 < r2 and c1 < c2.
void validate(const SpatialSmoothParams& params);

/// A half-open pixel box: columns [x0, x1), rows [y0, y1).
struct PixelBox {
  std::size_t x0 = 0, x1 = 0, y0 = 0, y1 = 0;
};

/// One run of pixels to correct: row y, columns [x0, x1).
struct RowSegment {
  std::size_t y = 0, x0 = 0, x1 = 0;
};

/// Throws ConfigError naming `parameter` unless every box of `bounds` is four whole numbers
/// [r1, r2, c1, c2] with 0 <= r1 < r2 and 0 <= c1 < c2 (shared with bkg_uniform's bounds).
void validate_boxes(const std::optional<std::vector<std::vector<double>>>& bounds, std::string_view parameter);

/// The boxes of `bounds` ([r1, r2, c1, c2] each) clipped to an ny × nx frame; unset: the
/// whole frame. Throws StepError naming `parameter` for a malformed box or one that lies
/// wholly outside the frame.
std::vector<PixelBox> clip_boxes(const std::optional<std::vector<std::vector<double>>>& bounds, std::size_t ny,
                                 std::size_t nx, std::string_view parameter);

/// The union of `boxes` as disjoint row segments, by row then column.
std::vector<RowSegment> row_segments(const std::vector<PixelBox>& boxes, std::size_t ny);

/// Buffers reused from frame to frame so the per-pixel loops never allocate.
struct SpatialSmoothScratch {
  std::vector<float> window;   ///< sorted running window (1D) or gathered window (2D)
  std::vector<float> model;    ///< model of every segment pixel, segments one after the other
  std::vector<unsigned char> kept;  ///< polyfit: pixels the current fit uses
  std::vector<double> basis;   ///< polyfit: Legendre values of every segment pixel
};

/// Running median of `row` with an odd window of k pixels, for the columns [x0, x1): model[i]
/// = median of the finite values of row[max(0, x−h) .. min(n−1, x+h)], h = k/2, at x = x0 + i.
/// Near the row's ends the window is cut short rather than padded; an even count averages
/// the middle two; no finite value gives NaN. Exact, in O(k) per pixel: the window is kept
/// sorted and updated by one removal and one insertion per step.
void running_median_row(std::span<const float> row, std::size_t x0, std::size_t x1, std::size_t k,
                        std::span<float> model, std::vector<float>& window);

/// 2D running median of an ny × nx frame with an odd ky × kx window (cut short at the
/// frame's edges, finite values only) for row y, columns [x0, x1), into model.
void running_median_2d(std::span<const float> frame, std::size_t ny, std::size_t nx, std::size_t y, std::size_t x0,
                       std::size_t x1, std::size_t ky, std::size_t kx, std::span<float> model,
                       std::vector<float>& window);

/// Least-squares polynomial of degree `order` through row[x0, x1) (unweighted, in a Legendre
/// basis on the segment mapped to [−1, 1]), refitted without the pixels that deviate by more
/// than threshold × err until the set of kept pixels no longer changes (at most 20 fits;
/// a rejected pixel comes back if a later fit agrees with it). Pixels with a non-finite or
/// non-positive err are never rejected. Writes the fitted values to model; NaN if no finite
/// pixel. A segment with fewer kept pixels than order + 1 is fitted with a lower degree.
void polyfit_row(std::span<const float> row, std::span<const float> err, std::size_t x0, std::size_t x1,
                 std::size_t order, double threshold, std::span<float> model, SpatialSmoothScratch& scratch);

/// Cleans one ny × nx frame in place over `segments`: builds the model of every segment
/// pixel from the frame as given, then replaces each pixel with |data − model| >
/// threshold·err (err finite and > 0) or non-finite data by the model (when the model is
/// finite) and sets dq::smooth_outlier (and dq::non_finite for non-finite data). Returns
/// the number of pixels replaced. `params` must have passed validate().
std::size_t smooth_frame(std::span<float> data, std::span<const float> err, std::span<std::uint32_t> dq,
                         std::size_t ny, std::size_t nx, const std::vector<RowSegment>& segments,
                         const SpatialSmoothParams& params, SpatialSmoothScratch& scratch);

struct SpatialSmooth {
  static constexpr std::string_view name = "spatial_smooth";
  static constexpr std::string_view summary =
      "Replace pixels that deviate from a running-median or polynomial model of their frame by more than "
      "smth_threshold x err, inside smth_bounds";
  using Params = SpatialSmoothParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
