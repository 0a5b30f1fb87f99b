// bkg_column on hand-made frames whose answers follow from the definition.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "steps/background/bkg_column.hpp"
#include "steps/common/source_mask.hpp"
#include "tessera/errors.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;

/// A frame whose background is exactly 10 + slope · x down each column, with a bright trace
/// (Gaussian along y, 1000 e- peak, sigma 1.5 px) at row `trace_y` over columns [10, 50],
/// and one hot pixel of +500 e- at (5, 3).
std::vector<float> frame_with_trace(std::size_t ny, std::size_t nx, double trace_y, double slope = 0.5) {
  std::vector<float> f(ny * nx);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      double v = 10.0 + slope * static_cast<double>(x);
      if (x >= 10 && x <= 50) {
        const double d = (static_cast<double>(y) - trace_y) / 1.5;
        v += 1000.0 * std::exp(-0.5 * d * d);
      }
      f[y * nx + x] = static_cast<float>(v);
    }
  f[5 * nx + 3] += 500.0f;
  return f;
}

float column_truth(std::size_t x) { return static_cast<float>(10.0 + 0.5 * static_cast<double>(x)); }

TEST(ClippedEstimate, RejectsTheOutlierThenTakesTheMeanOrTheMedian) {
  // Ten 10s, ten 12s, one 13 and one 1000. Pass 1: median 12, std about 210, so 1000 goes.
  // Pass 2: median 12, std about 1.1, everything within 3.3 of 12 stays: mean 233/21, median 12.
  std::vector<float> values;
  for (int i = 0; i < 10; ++i) values.push_back(10.0f);
  for (int i = 0; i < 10; ++i) values.push_back(12.0f);
  values.push_back(13.0f);
  values.push_back(1000.0f);
  std::vector<float> copy = values;
  EXPECT_FLOAT_EQ(clipped_estimate(values, 3.0, true), 233.0f / 21.0f);
  EXPECT_FLOAT_EQ(clipped_estimate(copy, 3.0, false), 12.0f);
  std::vector<float> empty;
  EXPECT_TRUE(std::isnan(clipped_estimate(empty, 3.0, true)));
}

TEST(SourceMask, MedianOfFiveMatchesSorting) {
  const float v[5] = {4.0f, -1.0f, 7.0f, 7.0f, 0.5f};
  EXPECT_FLOAT_EQ(median_of_five(v[0], v[1], v[2], v[3], v[4]), 4.0f);
  EXPECT_FLOAT_EQ(median_of_five(1, 2, 3, 4, 5), 3.0f);
  EXPECT_FLOAT_EQ(median_of_five(5, 4, 3, 2, 1), 3.0f);
}

TEST(SourceMask, FindsTheTraceButNotAHotPixelAndGrowsTheMask) {
  const std::size_t ny = 60, nx = 64;
  // A flat background: on a noise-free ramp the hot pixel would shift the running median by
  // one ramp step, which counts as significant when the noise is zero.
  const std::vector<float> f = frame_with_trace(ny, nx, 30.0, 0.0);
  SourceMaskOptions options;
  options.grow_y = 4;
  options.grow_x = 2;
  SourceMaskScratch scratch;
  std::vector<std::uint8_t> mask(ny * nx);
  const std::size_t detected = find_sources(f, ny, nx, options, scratch, mask);
  EXPECT_GT(detected, 41u);  // at least one row for each of the 41 trace columns
  // Trace columns [10, 50] grown by 2 columns: [8, 52]; rows within 4 of the detected ones.
  for (std::size_t x = 0; x < nx; ++x) {
    const bool trace_column = x >= 8 && x <= 52;
    EXPECT_EQ(mask[30 * nx + x], trace_column ? 1 : 0) << "x = " << x;
    EXPECT_EQ(mask[5 * nx + x], 0) << "the hot pixel's row, x = " << x;  // the median along x removes it
    EXPECT_EQ(mask[0 * nx + x], 0);
    EXPECT_EQ(mask[59 * nx + x], 0);
  }
}

TEST(ColumnBackground, MaskedTraceGivesTheExactColumnLevel) {
  const std::size_t ny = 240, nx = 64;
  const std::vector<float> f = frame_with_trace(ny, nx, 120.0);
  BkgColumnParams p;  // mask_trace = true, dist_from_trace = 100, col_sigma = 3, mean
  BkgColumnScratch scratch;
  std::vector<float> background(nx);
  column_background(f, ny, nx, p, scratch, background);
  for (std::size_t x = 0; x < nx; ++x) {
    EXPECT_FLOAT_EQ(background[x], column_truth(x)) << "x = " << x;  // the trace and the hot pixel are gone
    EXPECT_EQ(scratch.source[x], ColumnSource::own);
  }
  // The trace's rows are excluded ±100 rows around it, in the trace's columns only.
  EXPECT_EQ(scratch.excluded_t[30 * ny + 120], 1);
  EXPECT_EQ(scratch.excluded_t[30 * ny + 20], 1);
  EXPECT_EQ(scratch.excluded_t[30 * ny + 5], 0);
  EXPECT_EQ(scratch.excluded_t[30 * ny + 235], 0);
  EXPECT_EQ(scratch.excluded_t[0 * ny + 120], 0);
  EXPECT_EQ(scratch.excluded_t[63 * ny + 120], 0);

  // Without the mask, every row of the trace columns biases the mean upwards (the reference
  // tool's situation): 1000 · 1.5 · √(2π) / 240 ≈ 15.7 e- for the mean of a whole column.
  BkgColumnParams all_rows;
  all_rows.mask_trace = false;
  all_rows.rows.clear();
  for (std::int64_t y = 0; y < static_cast<std::int64_t>(ny); ++y) all_rows.rows.push_back(y);
  all_rows.col_sigma = 100;  // no clipping
  column_background(f, ny, nx, all_rows, scratch, background);
  EXPECT_NEAR(background[30] - column_truth(30), 1000.0 * 1.5 * std::sqrt(2 * M_PI) / 240.0, 0.01);
}

TEST(ColumnBackground, RowsModeUsesOnlyTheChosenRowsAndClipsTheHotPixel) {
  const std::size_t ny = 240, nx = 64;
  std::vector<float> f = frame_with_trace(ny, nx, 120.0);
  f[100 * nx + 7] = 1e6f;  // outside rows 0..9: must not matter
  BkgColumnParams p;
  p.mask_trace = false;  // rows = 0..9; the hot pixel in row 5 of column 3 is 500 e- above
  BkgColumnScratch scratch;
  std::vector<float> background(nx);
  column_background(f, ny, nx, p, scratch, background);
  // Column 3: nine equal values and one 500 above: median b, std 150, limit 450 -> clipped.
  for (std::size_t x = 0; x < nx; ++x) EXPECT_FLOAT_EQ(background[x], column_truth(x)) << "x = " << x;
}

TEST(ColumnBackground, ColumnsWithoutEnoughRowsInterpolateTheirNeighbours) {
  // 150 rows with the trace at 75 and dist_from_trace 100: the trace columns keep no row.
  const std::size_t ny = 150, nx = 64;
  const std::vector<float> f = frame_with_trace(ny, nx, 75.0);
  BkgColumnParams p;
  BkgColumnScratch scratch;
  std::vector<float> background(nx);
  column_background(f, ny, nx, p, scratch, background);
  for (std::size_t x = 0; x < nx; ++x) {
    // Trace columns [10, 50] grown by trace_grow_x = 5 (on this noise-free ramp the trace's
    // faint wings also shift the running median of the next two columns).
    if (x >= 5 && x <= 55) {
      EXPECT_EQ(scratch.source[x], ColumnSource::neighbours) << "x = " << x;
    }
    if (x < 3 || x > 60) {
      EXPECT_EQ(scratch.source[x], ColumnSource::own) << "x = " << x;
    }
    // The truth is linear in x, so interpolating between columns 4 and 56 is exact.
    EXPECT_NEAR(background[x], column_truth(x), 1e-4) << "x = " << x;
  }
}

TEST(ColumnBackground, EveryColumnMaskedFallsBackToRows) {
  // The trace spans every column: nothing is left 100 rows away in a 150-row frame.
  const std::size_t ny = 150, nx = 64;
  std::vector<float> f(ny * nx);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      const double d = (static_cast<double>(y) - 75.0) / 1.5;
      f[y * nx + x] = static_cast<float>(column_truth(x) + 1000.0 * std::exp(-0.5 * d * d));
    }
  BkgColumnParams p;
  BkgColumnScratch scratch;
  std::vector<float> background(nx);
  column_background(f, ny, nx, p, scratch, background);
  for (std::size_t x = 0; x < nx; ++x) {
    EXPECT_EQ(scratch.source[x], ColumnSource::rows);
    EXPECT_FLOAT_EQ(background[x], column_truth(x));
  }
}

TEST(ColumnBackground, RowsOutsideTheFrameAreAnError) {
  const std::size_t ny = 20, nx = 64;
  const std::vector<float> f(ny * nx, 1.0f);
  BkgColumnParams p;
  p.rows = {0, 25};
  BkgColumnScratch scratch;
  std::vector<float> background(nx);
  try {
    column_background(f, ny, nx, p, scratch, background);
    FAIL() << "expected a StepError";
  } catch (const StepError& e) {
    EXPECT_NE(std::string(e.what()).find("rows: row 25 is outside the frame"), std::string::npos) << e.what();
  }
}

}  // namespace
