// spatial_smooth on small frames whose answers are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "steps/cleaning/spatial_smooth.hpp"
#include "steps/common/dq_bits.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace {

using namespace tessera;
using steps::SpatialSmoothParams;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Frame {
  std::size_t ny = 0, nx = 0;
  std::vector<float> data, err;
  std::vector<std::uint32_t> dq;
  Frame(std::size_t y, std::size_t x, float value, float noise = 1.0f)
      : ny(y), nx(x), data(y * x, value), err(y * x, noise), dq(y * x, 0u) {}
  float& at(std::size_t y, std::size_t x) { return data[y * nx + x]; }
  std::uint32_t flags(std::size_t y, std::size_t x) const { return dq[y * nx + x]; }
};

SpatialSmoothParams params(std::string type, std::vector<std::int64_t> kernel, double threshold = 5.0) {
  SpatialSmoothParams p;
  p.smth_type = std::move(type);
  p.smth_kernel = std::move(kernel);
  p.smth_threshold = threshold;
  p.smth_bounds.reset();  // whole frame
  return p;
}

std::size_t smooth(Frame& f, const SpatialSmoothParams& p) {
  steps::validate(p);
  const auto segments = steps::row_segments(steps::clip_boxes(p.smth_bounds, f.ny, f.nx, "smth_bounds"), f.ny);
  steps::SpatialSmoothScratch scratch;
  return steps::smooth_frame(f.data, f.err, f.dq, f.ny, f.nx, segments, p, scratch);
}

std::vector<float> running_median(const std::vector<float>& row, std::size_t k, std::size_t x0, std::size_t x1) {
  std::vector<float> model(x1 - x0), window;
  steps::running_median_row(row, x0, x1, k, model, window);
  return model;
}

TEST(SpatialSmooth, RunningMedianOfARowByHand) {
  // k = 3, windows cut short at the ends:
  // x0 {5,1} -> 3; x1 {5,1,4} -> 4; x2 {1,4,2} -> 2; x3 {4,2,3} -> 3; x4 {2,3,9} -> 3;
  // x5 {3,9,0} -> 3; x6 {9,0} -> 4.5.
  const std::vector<float> row = {5, 1, 4, 2, 3, 9, 0};
  EXPECT_EQ(running_median(row, 3, 0, 7), (std::vector<float>{3, 4, 2, 3, 3, 3, 4.5f}));
  // A sub-range starts its window from the neighbours outside it.
  EXPECT_EQ(running_median(row, 3, 2, 5), (std::vector<float>{2, 3, 3}));
  // k = 1 is the row itself.
  EXPECT_EQ(running_median(row, 1, 0, 7), row);
}

TEST(SpatialSmooth, RunningMedianSkipsNonFiniteValues) {
  // {1, NaN, 3, 100, 5}, k = 3: x0 {1} -> 1; x1 {1,3} -> 2; x2 {3,100} -> 51.5;
  // x3 {3,100,5} -> 5; x4 {100,5} -> 52.5.
  const std::vector<float> row = {1, kNaN, 3, 100, 5};
  EXPECT_EQ(running_median(row, 3, 0, 5), (std::vector<float>{1, 2, 51.5f, 5, 52.5f}));
  EXPECT_TRUE(std::isnan(running_median({kNaN, kNaN}, 1, 0, 2)[0]));
}

TEST(SpatialSmooth, RunningMedianMatchesABruteForceMedian) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 3.0f);
  std::uniform_int_distribution<int> coin(0, 19);
  for (std::size_t k : {1u, 3u, 5u, 11u, 31u}) {
    std::vector<float> row(257);
    for (float& v : row) v = coin(rng) == 0 ? kNaN : std::round(noise(rng));  // rounding makes ties
    const std::size_t x0 = 3, x1 = 250;
    const std::vector<float> fast = running_median(row, k, x0, x1);
    for (std::size_t x = x0; x < x1; ++x) {
      std::vector<float> w;
      for (std::size_t j = x >= k / 2 ? x - k / 2 : 0; j <= std::min(row.size() - 1, x + k / 2); ++j)
        if (std::isfinite(row[j])) w.push_back(row[j]);
      std::sort(w.begin(), w.end());
      const float want = w.empty() ? kNaN
                         : w.size() % 2 ? w[w.size() / 2]
                                        : 0.5f * (w[w.size() / 2 - 1] + w[w.size() / 2]);
      if (std::isnan(want))
        EXPECT_TRUE(std::isnan(fast[x - x0]));
      else
        EXPECT_EQ(fast[x - x0], want) << "k=" << k << " x=" << x;
    }
  }
}

TEST(SpatialSmooth, SpikeInAFlatRowIsReplaced) {
  // Flat 10 with err 1; the 11-pixel median is 10 everywhere, so only the spike (|100-10| =
  // 90 > 5) is replaced, by 10.
  Frame f(1, 21, 10.0f);
  f.at(0, 10) = 100.0f;
  EXPECT_EQ(smooth(f, params("1D_smooth", {11})), 1u);
  EXPECT_EQ(f.data, std::vector<float>(21, 10.0f));
  EXPECT_EQ(f.flags(0, 10), dq::smooth_outlier);
  EXPECT_EQ(f.flags(0, 9), 0u);
}

TEST(SpatialSmooth, SmoothRampIsUntouched) {
  // v = 0.5 x: a centred window's median is the centre value. At x = 0 the window [0, 5]
  // gives (1.0 + 1.5) / 2 = 1.25, off by 1.25 < 5 × err: nothing is replaced.
  Frame f(1, 21, 0.0f);
  for (std::size_t x = 0; x < 21; ++x) f.at(0, x) = 0.5f * static_cast<float>(x);
  const std::vector<float> before = f.data;
  EXPECT_FLOAT_EQ(running_median(before, 11, 0, 1)[0], 1.25f);
  EXPECT_EQ(running_median(before, 11, 5, 16), std::vector<float>(before.begin() + 5, before.begin() + 16));
  EXPECT_EQ(smooth(f, params("1D_smooth", {11})), 0u);
  EXPECT_EQ(f.data, before);
  EXPECT_EQ(f.dq, std::vector<std::uint32_t>(21, 0u));
}

TEST(SpatialSmooth, ThresholdIsInUnitsOfErr) {
  // Deviation 30 from a flat 10: replaced at err 5 (30 > 25), kept at err 7 (30 < 35).
  Frame a(1, 15, 10.0f, 5.0f), b(1, 15, 10.0f, 7.0f);
  a.at(0, 7) = b.at(0, 7) = 40.0f;
  EXPECT_EQ(smooth(a, params("1D_smooth", {5})), 1u);
  EXPECT_EQ(smooth(b, params("1D_smooth", {5})), 0u);
}

TEST(SpatialSmooth, OnlyPixelsInsideTheBoxesAreCorrected) {
  // 6 rows × 20 columns of 10, spikes at (y 1, x 3) and (y 4, x 15). The box [0, 3, 0, 10]
  // is rows 0..2, columns 0..9: only the first spike is inside.
  Frame f(6, 20, 10.0f);
  f.at(1, 3) = 500.0f;
  f.at(4, 15) = 500.0f;
  SpatialSmoothParams p = params("1D_smooth", {5});
  p.smth_bounds = std::vector<std::vector<double>>{{0, 3, 0, 10}};
  EXPECT_EQ(smooth(f, p), 1u);
  EXPECT_EQ(f.at(1, 3), 10.0f);
  EXPECT_EQ(f.at(4, 15), 500.0f);
  EXPECT_EQ(f.flags(4, 15), 0u);
  // Boxes reaching past the frame are clipped; overlapping boxes count a pixel once.
  p.smth_bounds = std::vector<std::vector<double>>{{3, 100, 12, 100}, {4, 5, 14, 17}};
  EXPECT_EQ(smooth(f, p), 1u);
  EXPECT_EQ(f.at(4, 15), 10.0f);
}

TEST(SpatialSmooth, RowSegmentsMergeOverlappingBoxes) {
  const auto segments = steps::row_segments({{0, 4, 0, 2}, {3, 7, 1, 3}, {9, 10, 1, 2}}, 4);
  ASSERT_EQ(segments.size(), 4u);  // row 3 is in no box (y1 is exclusive)
  auto is = [](const steps::RowSegment& s, std::size_t y, std::size_t x0, std::size_t x1) {
    return s.y == y && s.x0 == x0 && s.x1 == x1;
  };
  EXPECT_TRUE(is(segments[0], 0, 0, 4));
  EXPECT_TRUE(is(segments[1], 1, 0, 7));
  EXPECT_TRUE(is(segments[2], 1, 9, 10));
  EXPECT_TRUE(is(segments[3], 2, 3, 7));
}

TEST(SpatialSmooth, TwoDimensionalMedianOnAPlane) {
  // v = 1 + 2y + 3x: a symmetric window's median on a plane is the centre value; at the
  // corner (0, 0) the cut window {1, 4, 3, 6} gives 3.5, off by 2.5 < 5. The spike at
  // (3, 3) (16 + 50) is in its own window {11,13,14,15,17,18,19,21,66}: replaced by the
  // median 17. Its neighbours' windows hold it but their medians do not move (e.g. (2, 3):
  // {9,11,12,13,14,15,17,19,66} -> 14 = its value).
  Frame f(7, 7, 0.0f);
  for (std::size_t y = 0; y < 7; ++y)
    for (std::size_t x = 0; x < 7; ++x) f.at(y, x) = static_cast<float>(1 + 2 * y + 3 * x);
  std::vector<float> want = f.data;
  want[3 * 7 + 3] = 17.0f;
  f.at(3, 3) += 50.0f;
  EXPECT_EQ(smooth(f, params("2D_smooth", {3, 3})), 1u);
  EXPECT_EQ(f.data, want);
  EXPECT_EQ(f.flags(3, 3), dq::smooth_outlier);
}

TEST(SpatialSmooth, TwoDimensionalKernelIsRowsThenColumns) {
  // A vertical streak in rows 3..5: a [1, 5] kernel (1 row × 5 columns) sees it as a spike
  // in each row and replaces it; a [5, 1] kernel (5 rows × 1 column) sees at least 3 of 5
  // values high on the streak and at most 2 of 5 beside it, and changes nothing.
  Frame a(9, 9, 10.0f);
  for (std::size_t y = 3; y < 6; ++y) a.at(y, 4) = 90.0f;
  Frame b = a;
  EXPECT_EQ(smooth(a, params("2D_smooth", {1, 5})), 3u);
  EXPECT_EQ(smooth(b, params("2D_smooth", {5, 1})), 0u);
}

TEST(SpatialSmooth, PolyfitRecoversAPolynomialWithOneOutlier) {
  // v = 7 + 0.3 x − 0.05 (x−20)² + 0.001 (x−20)³ over 41 columns, +40 at x = 13. The first
  // fit is pulled by about 40 × 4/41 ≈ 4 near it (still < 5 elsewhere), the outlier's own
  // residual is ≈ 36 > 5: rejected; the refit is exact, so it is replaced by the
  // polynomial's value and nothing else moves.
  Frame f(1, 41, 0.0f);
  auto poly = [](double x) { return 7 + 0.3 * x - 0.05 * (x - 20) * (x - 20) + 0.001 * std::pow(x - 20, 3); };
  for (std::size_t x = 0; x < 41; ++x) f.at(0, x) = static_cast<float>(poly(static_cast<double>(x)));
  const std::vector<float> clean = f.data;
  f.at(0, 13) += 40.0f;
  SpatialSmoothParams p = params("polyfit", {});
  p.polyfit_order = 3;
  EXPECT_EQ(smooth(f, p), 1u);
  for (std::size_t x = 0; x < 41; ++x) EXPECT_NEAR(f.at(0, x), clean[x], 1e-4) << x;
  EXPECT_EQ(f.flags(0, 13), dq::smooth_outlier);
}

TEST(SpatialSmooth, PolyfitOfTooLowAnOrderFlagsTheShape) {
  // A parabola 0.2 (x−10)² fitted by a straight line leaves residuals up to ~13: the ends
  // and the middle exceed 5 × err and are replaced, unlike with order 2.
  Frame line(1, 21, 0.0f), parabola(1, 21, 0.0f);
  for (std::size_t x = 0; x < 21; ++x)
    line.at(0, x) = parabola.at(0, x) = static_cast<float>(0.2 * (static_cast<double>(x) - 10) * (static_cast<double>(x) - 10));
  SpatialSmoothParams p = params("polyfit", {});
  p.polyfit_order = 2;
  EXPECT_EQ(smooth(parabola, p), 0u);
  p.polyfit_order = 1;
  EXPECT_GT(smooth(line, p), 0u);
}

TEST(SpatialSmooth, NonFiniteValuesAreReplacedAndFlagged) {
  Frame f(1, 9, 4.0f);
  f.at(0, 2) = kNaN;
  f.at(0, 6) = std::numeric_limits<float>::infinity();
  EXPECT_EQ(smooth(f, params("1D_smooth", {3})), 2u);
  EXPECT_EQ(f.at(0, 2), 4.0f);
  EXPECT_EQ(f.at(0, 6), 4.0f);
  EXPECT_EQ(f.flags(0, 2), dq::smooth_outlier | dq::non_finite);
}

TEST(SpatialSmooth, PixelsWithoutAUsableErrAreOnlyReplacedWhenNonFinite) {
  Frame f(1, 9, 4.0f);
  f.at(0, 4) = 400.0f;
  f.err[4] = 0.0f;
  EXPECT_EQ(smooth(f, params("1D_smooth", {3})), 0u);
}

void expect_config_error(const SpatialSmoothParams& p, const std::string& parameter) {
  try {
    steps::validate(p);
    ADD_FAILURE() << "no error for " << parameter;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(parameter), std::string::npos) << e.what();
  }
}

TEST(SpatialSmooth, ParameterErrorsNameTheParameter) {
  expect_config_error(params("1D_smooth", {10}), "smth_kernel");
  expect_config_error(params("1D_smooth", {5, 5}), "smth_kernel");
  expect_config_error(params("2D_smooth", {11}), "smth_kernel");
  expect_config_error(params("2D_smooth", {3, 4}), "smth_kernel");
  EXPECT_NO_THROW(steps::validate(params("polyfit", {})));  // polyfit uses no kernel
  SpatialSmoothParams p = params("1D_smooth", {11});
  p.smth_bounds = std::vector<std::vector<double>>{{10, 5, 0, 4}};
  expect_config_error(p, "smth_bounds");
  p.smth_bounds = std::vector<std::vector<double>>{{0, 5, 4, 4}};
  expect_config_error(p, "smth_bounds");
  p.smth_bounds = std::vector<std::vector<double>>{{0, 5, 1}};
  expect_config_error(p, "smth_bounds");
  p.smth_bounds = std::vector<std::vector<double>>{{0, 5.5, 1, 3}};
  expect_config_error(p, "smth_bounds");
  EXPECT_NO_THROW(steps::SpatialSmooth::io(SpatialSmoothParams{}));  // the defaults are valid
  // The template's default box fits a 600 × 2100 frame rows first (rows 260..369, columns
  // 640..1099); a box wholly outside the frame is an error when the frame's size is known.
  const auto boxes = steps::clip_boxes(std::vector<std::vector<double>>{{260, 370, 640, 1100}}, 600, 2100, "smth_bounds");
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(boxes[0].y0, 260u);
  EXPECT_EQ(boxes[0].x1, 1100u);
  EXPECT_THROW(steps::clip_boxes(std::vector<std::vector<double>>{{640, 1100, 260, 370}}, 600, 2100, "smth_bounds"),
               StepError);
}

TEST(SpatialSmooth, StepCountsReplacedPixelsPerFrame) {
  // Two 5 × 12 frames of 10 with err 1: frame 0 has two spikes, frame 1 one, plus one
  // outside the box [0, 4, 0, 12] (rows 0..3).
  const CubeShape shape{2, 5, 12};
  Dataset data(shape, Partition::frames(shape, 1), 0);
  data.add_cube({"data", "electron", ""}, ElementType::Float32, 10.0);
  data.add_cube({"err", "electron", ""}, ElementType::Float32, 1.0);
  data.add_cube({"dq", "1", ""}, ElementType::UInt32, 0.0);
  data.add_frame_vector({"spatial_smooth_outliers", "1", ""}, true);
  auto cube = data.frames<float>("data");
  cube(0, 1, 2) = 80;
  cube(0, 3, 9) = -60;
  cube(1, 2, 6) = 70;
  cube(1, 4, 6) = 70;
  Logger log(0, Verbosity::Quiet);
  StepContext context(data, log, nullptr);
  SpatialSmoothParams p;
  p.smth_kernel = {5};
  p.smth_bounds = std::vector<std::vector<double>>{{0, 4, 0, 12}};
  steps::SpatialSmooth::run(p, context);
  EXPECT_EQ(data.frame_vector("spatial_smooth_outliers").values, (std::vector<double>{2, 1}));
  EXPECT_EQ(cube(0, 1, 2), 10.0f);
  EXPECT_EQ(cube(0, 3, 9), 10.0f);
  EXPECT_EQ(cube(1, 2, 6), 10.0f);
  EXPECT_EQ(cube(1, 4, 6), 70.0f);
  EXPECT_EQ(data.frames<std::uint32_t>("dq")(1, 2, 6), dq::smooth_outlier);
}

}  // namespace
