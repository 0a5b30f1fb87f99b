// led (Laplacian edge detection, van Dokkum 2001) on hand-made frames whose answers are
// worked out in the comments, and its building blocks against brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "steps/cleaning/led.hpp"
#include "steps/common/dq_bits.hpp"
#include <toml++/toml.h>

#include "tessera/diagnostics.hpp"

namespace {

using tessera::steps::LedParams;
namespace led = tessera::steps::led;

struct Frame {
  std::size_t ny = 0, nx = 0;
  std::vector<float> image, err;
  std::vector<std::uint32_t> dq;
  Frame(std::size_t y, std::size_t x, float level) : ny(y), nx(x), image(y * x, level), dq(y * x, 0) {}
  float& at(std::size_t y, std::size_t x) { return image[y * nx + x]; }
  std::uint32_t dq_at(std::size_t y, std::size_t x) const { return dq[y * nx + x]; }
  std::size_t flagged() const {
    return static_cast<std::size_t>(std::count_if(dq.begin(), dq.end(), [](std::uint32_t d) {
      return (d & tessera::dq::led_outlier) != 0;
    }));
  }
};

tessera::steps::LedFrameResult run_led(Frame& frame, const LedParams& params = {}) {
  tessera::steps::LedScratch scratch;
  return tessera::steps::led_frame(frame.image, frame.err, frame.dq, frame.ny, frame.nx, params, scratch);
}

LedParams with_passes(std::optional<std::int64_t> n, bool fine_structure = true) {
  LedParams p;
  p.led_n = n;
  p.fine_structure = fine_structure;
  return p;
}

// ---- building blocks -------------------------------------------------------------------

float brute_median(const std::vector<float>& image, std::size_t ny, std::size_t nx, std::size_t y, std::size_t x,
                   std::size_t r) {
  std::vector<float> v;
  for (std::size_t yy = 0; yy < ny; ++yy)
    for (std::size_t xx = 0; xx < nx; ++xx)
      if (yy + r >= y && yy <= y + r && xx + r >= x && xx <= x + r) v.push_back(image[yy * nx + xx]);
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

TEST(LedMedian, WindowMedianMatchesBruteForceEverywhereIncludingEdges) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> real(-50.0f, 50.0f);
  std::uniform_int_distribution<int> small(0, 4);  // many ties
  for (int kind = 0; kind < 2; ++kind) {
    const std::size_t ny = 13, nx = 17;
    std::vector<float> image(ny * nx);
    for (float& v : image) v = kind == 0 ? real(rng) : static_cast<float>(small(rng));
    float buffer[49];
    for (std::size_t r : {1u, 2u, 3u})
      for (std::size_t y = 0; y < ny; ++y)
        for (std::size_t x = 0; x < nx; ++x)
          ASSERT_EQ(led::window_median(image.data(), ny, nx, y, x, r, buffer), brute_median(image, ny, nx, y, x, r))
              << "kind " << kind << " radius " << r << " at (" << y << ", " << x << ")";
  }
}

TEST(LedMedian, NineValueNetworkOnEveryOrderOfAPermutation) {
  // The 3x3 fast path on all 9! orders of 0..8 would be slow; every rotation of random
  // shuffles covers the column-sort network's branches well.
  std::mt19937 rng(3);
  std::vector<float> v = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  float buffer[9];
  for (int trial = 0; trial < 5000; ++trial) {
    std::shuffle(v.begin(), v.end(), rng);
    ASSERT_EQ(led::window_median(v.data(), 3, 3, 1, 1, 1, buffer), 4.0f);
  }
}

/// The literal recipe: subsample by f, convolve with [[0,-1,0],[-1,4,-1],[0,-1,0]] (border
/// extended by repetition), clip negatives, average each f x f block.
std::vector<float> literal_laplacian_plus(const std::vector<float>& image, std::size_t ny, std::size_t nx,
                                          std::size_t f) {
  const std::size_t sy = ny * f, sx = nx * f;
  auto sub = [&](long y, long x) {
    y = std::clamp(y, 0L, static_cast<long>(sy) - 1);
    x = std::clamp(x, 0L, static_cast<long>(sx) - 1);
    return static_cast<double>(image[(static_cast<std::size_t>(y) / f) * nx + static_cast<std::size_t>(x) / f]);
  };
  std::vector<double> sum(ny * nx, 0.0);
  for (long y = 0; y < static_cast<long>(sy); ++y)
    for (long x = 0; x < static_cast<long>(sx); ++x) {
      const double lap = 4 * sub(y, x) - sub(y - 1, x) - sub(y + 1, x) - sub(y, x - 1) - sub(y, x + 1);
      sum[(static_cast<std::size_t>(y) / f) * nx + static_cast<std::size_t>(x) / f] += std::max(lap, 0.0);
    }
  std::vector<float> out(ny * nx);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(sum[i] / static_cast<double>(f * f));
  return out;
}

TEST(LedLaplacian, ClosedFormEqualsSubsampleConvolveClipAverage) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0.0f, 100.0f);
  for (auto [ny, nx] : {std::pair<std::size_t, std::size_t>{9, 11}, {1, 6}, {5, 1}, {1, 1}, {2, 2}}) {
    std::vector<float> image(ny * nx);
    for (float& v : image) v = u(rng);
    for (std::size_t f : {2u, 3u, 4u}) {
      std::vector<float> fast(ny * nx);
      led::laplacian_plus(image.data(), ny, nx, f, fast.data());
      const std::vector<float> slow = literal_laplacian_plus(image, ny, nx, f);
      for (std::size_t i = 0; i < fast.size(); ++i)
        ASSERT_NEAR(fast[i], slow[i], 1e-4f * (1.0f + slow[i])) << ny << "x" << nx << " f=" << f << " pixel " << i;
    }
  }
}

TEST(LedLaplacian, IsTwoDimensional) {
  // A vertical step edge of a column-constant image: a 1D Laplacian of the flattened image
  // would see a jump at the end of each row (where row y meets row y+1); the 2D one sees
  // the edge only along the columns beside the step. Left half 0, right half 100.
  const std::size_t ny = 4, nx = 6, f = 2;
  std::vector<float> image(ny * nx, 0.0f), out(ny * nx);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 3; x < nx; ++x) image[y * nx + x] = 100;
  led::laplacian_plus(image.data(), ny, nx, f, out.data());
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      // Column 3 (the bright side of the step): c - l = 100 on its two left corners, so
      // L+ = 2 * 100 / 4 = 50; everything else, the row ends included, is 0.
      EXPECT_FLOAT_EQ(out[y * nx + x], x == 3 ? 50.0f : 0.0f) << y << "," << x;
    }
}

// ---- detection ---------------------------------------------------------------------------

TEST(Led, SingleHotPixelIsFoundAndReplaced) {
  // Flat 100 e-, one pixel +500. L+ = 2 * 500 = 1000 (a lone spike, any f); N = sqrt(med5 +
  // 3^2) = sqrt(109) = 10.44; S = 1000 / (2 * 10.44) = 47.9 > 10; med5(S) = 0 (the
  // neighbours' Laplacian is negative); med3 there is 100 = med7(med3), so F = 0 and the
  // contrast is unbounded.
  Frame frame(40, 50, 100.0f);
  frame.at(20, 25) += 500.0f;
  const auto r = run_led(frame);
  EXPECT_EQ(r.flagged, 1u);
  EXPECT_EQ(r.passes, 2u);  // the second finds nothing
  EXPECT_EQ(frame.flagged(), 1u);
  EXPECT_EQ(frame.dq_at(20, 25), tessera::dq::led_outlier);
  EXPECT_FLOAT_EQ(frame.at(20, 25), 100.0f);
}

TEST(Led, ThresholdIsInUnitsOfTheNoiseModel) {
  // S = A / N for a lone spike: with N = sqrt(109) = 10.44, A = 9.5 N stays, 10.5 N goes.
  const float noise = std::sqrt(109.0f);
  for (auto [sigmas, expected] : {std::pair{9.5f, 0u}, std::pair{10.5f, 1u}}) {
    Frame frame(30, 30, 100.0f);
    frame.at(15, 15) += sigmas * noise;
    EXPECT_EQ(run_led(frame).flagged, expected) << sigmas;
  }
  // The read noise enters the model: with read_noise 0, N = 10 and 10.2 sigma(10.44) > 10.
  Frame frame(30, 30, 100.0f);
  frame.at(15, 15) += 10.2f * 10.0f;
  LedParams p;
  p.read_noise = 0;
  EXPECT_EQ(run_led(frame, p).flagged, 1u);
}

TEST(Led, HotPixelsAtEdgesAndCornersAreFound) {
  // With the border extended by repetition a corner spike has L+ = A (two of its sides face
  // itself) and an edge spike 1.5 A: S = 500 / (2 * 10.44) = 24 and 36, both found.
  Frame frame(20, 30, 100.0f);
  const std::vector<std::pair<std::size_t, std::size_t>> spots = {{0, 0}, {0, 14}, {19, 29}, {7, 0}, {19, 3}, {0, 29}};
  for (auto [y, x] : spots) frame.at(y, x) += 500.0f;
  EXPECT_EQ(run_led(frame).flagged, spots.size());
  for (auto [y, x] : spots) {
    EXPECT_EQ(frame.dq_at(y, x), tessera::dq::led_outlier) << y << "," << x;
    EXPECT_FLOAT_EQ(frame.at(y, x), 100.0f);
  }
}

TEST(Led, SmoothGradientsAreNotFlagged) {
  // A plane has no curvature; the subsampled image adds a small positive L+ at block
  // corners ((c - u) + (c - l) = 3 + 2 for this one), which S - med5(S) removes.
  Frame plane(40, 60, 0.0f);
  for (std::size_t y = 0; y < plane.ny; ++y)
    for (std::size_t x = 0; x < plane.nx; ++x) plane.at(y, x) = 50.0f + 2.0f * x + 3.0f * y;
  EXPECT_EQ(run_led(plane).flagged, 0u);
  // A steep one and a curved one, at a lower threshold too.
  Frame bowl(40, 60, 0.0f);
  for (std::size_t y = 0; y < bowl.ny; ++y)
    for (std::size_t x = 0; x < bowl.nx; ++x) {
      const float dx = static_cast<float>(x) - 30.0f, dy = static_cast<float>(y) - 20.0f;
      bowl.at(y, x) = 2000.0f + 40.0f * static_cast<float>(x) - 0.8f * (dx * dx + dy * dy);
    }
  LedParams low;
  low.led_threshold = 4;
  EXPECT_EQ(run_led(bowl, low).flagged, 0u);
}

/// A spectral trace along x with a Gaussian cross-profile (sigma 1.5 px), slightly tilted,
/// on a flat sky, with Gaussian noise of Poisson size plus 3 e- read noise.
Frame trace_frame(float peak, std::uint32_t seed, bool noisy = true) {
  Frame frame(60, 200, 0.0f);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t y = 0; y < frame.ny; ++y)
    for (std::size_t x = 0; x < frame.nx; ++x) {
      const float yc = 30.0f + 0.02f * static_cast<float>(x);
      const float d = (static_cast<float>(y) - yc) / 1.5f;
      const float model = 20.0f + peak * std::exp(-0.5f * d * d);
      frame.at(y, x) = model + (noisy ? std::sqrt(model + 9.0f) * normal(rng) : 0.0f);
    }
  return frame;
}

TEST(Led, GaussianTraceIsNotFlagged) {
  // At the trace's peak the subsampled Laplacian is about 0.2 P, so S is about
  // 0.2 P / (2 sqrt(P)) = 0.1 sqrt(P): 4.5 at P = 2000, and S - med5(S) removes most of it;
  // the fine-structure test protects the rest.
  for (float peak : {300.0f, 2000.0f, 20000.0f}) {
    Frame clean = trace_frame(peak, 1, false);
    EXPECT_EQ(run_led(clean).flagged, 0u) << "noise-free, peak " << peak;
    for (std::uint32_t seed = 1; seed <= 3; ++seed) {
      Frame frame = trace_frame(peak, seed);
      EXPECT_EQ(run_led(frame).flagged, 0u) << "peak " << peak << " seed " << seed;
      LedParams low;
      low.led_threshold = 5;  // the template's tutorial value
      Frame again = trace_frame(peak, seed);
      EXPECT_EQ(run_led(again, low).flagged, 0u) << "threshold 5, peak " << peak << " seed " << seed;
    }
  }
}

TEST(Led, SharpStarIsProtectedByTheFineStructureModel) {
  // A star of sigma 0.8 px, peak P = 20000: at its centre L+ = 4 (P - 0.46 P) / 4 = 0.54 P
  // per corner pair, far above 10 sigma; but med3 there is 0.46 P (its four side
  // neighbours) and med7(med3) is the sky, so L+ / (2 F) is about 1.2 < 5: kept. Without
  // the fine-structure model it is taken for a cosmic ray.
  auto star = [] {
    Frame frame(31, 31, 20.0f);
    for (std::size_t y = 0; y < frame.ny; ++y)
      for (std::size_t x = 0; x < frame.nx; ++x) {
        const float dx = static_cast<float>(x) - 15.0f, dy = static_cast<float>(y) - 15.0f;
        frame.at(y, x) += 20000.0f * std::exp(-0.5f * (dx * dx + dy * dy) / 0.64f);
      }
    return frame;
  };
  Frame kept = star();
  EXPECT_EQ(run_led(kept).flagged, 0u);
  Frame eaten = star();
  EXPECT_GT(run_led(eaten, with_passes(1, false)).flagged, 0u);
  EXPECT_EQ(eaten.dq_at(15, 15), tessera::dq::led_outlier);
}

TEST(Led, HotPixelBesideATraceIsFound) {
  // 15 px from the trace's centre the frame is sky: a 200 e- spike is 200 / sqrt(29) = 37 sigma.
  Frame frame = trace_frame(2000.0f, 5);
  frame.at(45, 100) += 200.0f;
  const auto r = run_led(frame);
  EXPECT_EQ(r.flagged, 1u);
  EXPECT_EQ(frame.dq_at(45, 100), tessera::dq::led_outlier);
}

TEST(Led, ContrastIsLaplacianOverFactorTimesFineStructure) {
  // A spike A on the middle row of a 3-row bar of height B = 100 (rows 9-11) on a sky of 100.
  // At the spike med3 = 200 (6 of its 9 pixels are bar) while med7(med3) = 100 (the bar's
  // med3 covers 3 of 7 rows), so F = B; L+ = 2A, and the contrast L+ / (f F) = A / B.
  // N = sqrt(med5 + 9) = sqrt(209) = 14.46, so S = A / N is far above 10 for both spikes.
  auto bar = [](float spike) {
    Frame frame(21, 41, 100.0f);
    for (std::size_t y = 9; y <= 11; ++y)
      for (std::size_t x = 0; x < frame.nx; ++x) frame.at(y, x) += 100.0f;
    frame.at(10, 20) += spike;
    return frame;
  };
  Frame four = bar(400.0f), six = bar(600.0f), four_low = bar(400.0f);
  EXPECT_EQ(run_led(four).flagged, 0u);  // contrast 4 < 5
  EXPECT_EQ(run_led(six).flagged, 1u);   // contrast 6 > 5
  LedParams p;
  p.contrast_factor = 3;
  EXPECT_EQ(run_led(four_low, p).flagged, 1u);
  EXPECT_FLOAT_EQ(four_low.at(10, 20), 200.0f);
}

TEST(Led, ThreeByThreeBlobShrinksOverPasses) {
  // A 3x3 blob of +1000 on 100 (blob rows/cols 10..12). With the fine-structure model:
  // pass 1: the corners (L+ = A, med3 = 100 so F = 0) go; the edges have L+ = A/2 but med3 =
  //         1100, F = 1000, contrast 500 / (2 * 1000) = 0.25 < 5: kept; the centre has L+ = 0.
  // pass 2: a plus remains; its arms now have L+ = 1.5 A and med3 = 100: they go.
  // pass 3: the lone centre goes.  pass 4: nothing left.
  const std::vector<std::size_t> expected_flagged = {4, 8, 9, 9};
  for (std::size_t n = 1; n <= 4; ++n) {
    Frame frame(30, 30, 100.0f);
    for (std::size_t y = 10; y <= 12; ++y)
      for (std::size_t x = 10; x <= 12; ++x) frame.at(y, x) += 1000.0f;
    const auto r = run_led(frame, with_passes(static_cast<std::int64_t>(n)));
    EXPECT_EQ(r.flagged, expected_flagged[n - 1]) << n << " passes";
    if (n >= 3) {
      for (float v : frame.image) ASSERT_FLOAT_EQ(v, 100.0f);
    }
  }
  // led_n unset: until a pass finds nothing (the 4th).
  Frame frame(30, 30, 100.0f);
  for (std::size_t y = 10; y <= 12; ++y)
    for (std::size_t x = 10; x <= 12; ++x) frame.at(y, x) += 1000.0f;
  const auto r = run_led(frame, with_passes(std::nullopt));
  EXPECT_EQ(r.flagged, 9u);
  EXPECT_EQ(r.passes, 4u);
  // max_passes caps the unset case.
  Frame capped(30, 30, 100.0f);
  for (std::size_t y = 10; y <= 12; ++y)
    for (std::size_t x = 10; x <= 12; ++x) capped.at(y, x) += 1000.0f;
  LedParams p = with_passes(std::nullopt);
  p.max_passes = 2;
  EXPECT_EQ(run_led(capped, p).flagged, 8u);
}

TEST(Led, BlobWithoutFineStructure) {
  // Pass 1: the whole ring (corners L+ = A, edges A/2, both far above 10 sigma); the centre
  // (L+ = 0) only once it stands alone, in pass 2. A 2x2 blob goes in one pass: each of its
  // pixels has L+ = (2A + A + A + 0) / 4 = A.
  Frame blob(30, 30, 100.0f);
  for (std::size_t y = 10; y <= 12; ++y)
    for (std::size_t x = 10; x <= 12; ++x) blob.at(y, x) += 1000.0f;
  EXPECT_EQ(run_led(blob, with_passes(1, false)).flagged, 8u);
  EXPECT_FLOAT_EQ(blob.at(11, 11), 1100.0f);
  EXPECT_EQ(run_led(blob, with_passes(1, false)).flagged, 1u);
  EXPECT_FLOAT_EQ(blob.at(11, 11), 100.0f);

  Frame square(30, 30, 100.0f);
  for (std::size_t y = 10; y <= 11; ++y)
    for (std::size_t x = 10; x <= 11; ++x) square.at(y, x) += 1000.0f;
  EXPECT_EQ(run_led(square, with_passes(1)).flagged, 4u);
  for (float v : square.image) ASSERT_FLOAT_EQ(v, 100.0f);
}

TEST(Led, ReplacementIgnoresFlaggedNeighbours) {
  // A plane 100 + x + 5y, so that the 25 values of any 5x5 window are its corner value plus
  // 0..24, and a horizontal pair of +1000 at (10,10), (10,11) (both found: L+ = 1.5 A, med3
  // is the plane). Around (10,10) the window is 148 + 0..24 without 160 and 161 (the pair's
  // own plane values): 23 values, median 159. Around (10,11): 149 + 0..24 without 160, 161:
  // median 162. Had the pair been left in the window, the medians would be 162 and 163.
  Frame frame(20, 20, 0.0f);
  for (std::size_t y = 0; y < frame.ny; ++y)
    for (std::size_t x = 0; x < frame.nx; ++x) frame.at(y, x) = 100.0f + static_cast<float>(x + 5 * y);
  frame.at(10, 10) += 1000.0f;
  frame.at(10, 11) += 1000.0f;
  EXPECT_EQ(run_led(frame).flagged, 2u);
  EXPECT_FLOAT_EQ(frame.at(10, 10), 159.0f);
  EXPECT_FLOAT_EQ(frame.at(10, 11), 162.0f);
}

TEST(Led, NonFiniteValuesAreReplaced) {
  Frame frame(20, 20, 100.0f);
  frame.at(5, 5) = std::numeric_limits<float>::quiet_NaN();
  frame.at(0, 19) = std::numeric_limits<float>::infinity();
  frame.at(12, 12) += 400.0f;
  const auto r = run_led(frame);
  EXPECT_EQ(r.non_finite, 2u);
  EXPECT_EQ(r.flagged, 3u);
  EXPECT_EQ(frame.dq_at(5, 5), tessera::dq::led_outlier | tessera::dq::non_finite);
  EXPECT_EQ(frame.dq_at(0, 19), tessera::dq::led_outlier | tessera::dq::non_finite);
  EXPECT_EQ(frame.dq_at(12, 12), tessera::dq::led_outlier);
  for (float v : frame.image) ASSERT_FLOAT_EQ(v, 100.0f);
}

TEST(Led, ErrNoiseModelAfterBackgroundSubtraction) {
  // A background-subtracted frame (0 e-) whose err says 10.44 e- per pixel. The image model
  // sees N = read noise = 3 and takes a 94 e- (9 sigma) spike for 31 sigma; the err model
  // uses the err cube's 5x5 median and keeps it.
  Frame image_model(20, 20, 0.0f), err_model(20, 20, 0.0f);
  image_model.at(9, 9) += 94.0f;
  err_model.at(9, 9) += 94.0f;
  err_model.err.assign(400, std::sqrt(109.0f));
  err_model.err[9 * 20 + 9] = std::sqrt(109.0f + 94.0f);  // its own shot noise is ignored by the median
  EXPECT_EQ(run_led(image_model).flagged, 1u);
  LedParams p;
  p.noise_model = "err";
  EXPECT_EQ(run_led(err_model, p).flagged, 0u);
  err_model.at(9, 9) += 30.0f;  // 124 e- = 11.9 sigma
  EXPECT_EQ(run_led(err_model, p).flagged, 1u);
}

TEST(Led, TinyFrames) {
  // 1 x 7 with a spike in the middle: L+ = A (up and down are itself), N from the 1x5 window
  // (100): S = 500 / (2 * 10.44) = 24.
  Frame row(1, 7, 100.0f);
  row.at(0, 3) += 500.0f;
  EXPECT_EQ(run_led(row).flagged, 1u);
  EXPECT_FLOAT_EQ(row.at(0, 3), 100.0f);
  for (auto [ny, nx] : {std::pair<std::size_t, std::size_t>{1, 1}, {2, 2}, {3, 1}, {4, 4}}) {
    Frame frame(ny, nx, 100.0f);
    EXPECT_EQ(run_led(frame).flagged, 0u) << ny << "x" << nx;
  }
}

TEST(Led, ScratchIsReusedAcrossFramesOfDifferentContent) {
  // The same result whether a frame is cleaned with fresh or with used buffers.
  tessera::steps::LedScratch scratch;
  Frame first(30, 40, 100.0f);
  first.at(3, 3) += 900.0f;
  first.at(20, 30) += 900.0f;
  tessera::steps::led_frame(first.image, first.err, first.dq, 30, 40, LedParams{}, scratch);
  Frame second = trace_frame(2000.0f, 9);
  second.at(50, 50) += 300.0f;
  Frame second_copy = second;
  const auto used = tessera::steps::led_frame(second.image, second.err, second.dq, 60, 200, LedParams{}, scratch);
  const auto fresh = run_led(second_copy);
  EXPECT_EQ(used.flagged, fresh.flagged);
  EXPECT_EQ(second.image, second_copy.image);
  EXPECT_EQ(second.dq, second_copy.dq);
}

TEST(Led, ParametersAreValidatedByName) {
  auto bind = [](const std::string& text) {
    const toml::table table = toml::parse(text, std::string_view("wf.toml"));
    tessera::Diagnostics diagnostics;
    const LedParams p = LedParams::schema().bind(table, {}, diagnostics, "step 'led': ");
    return std::pair{p, diagnostics.str()};
  };
  const auto [defaults, none] = bind("");
  EXPECT_EQ(none, "");
  EXPECT_EQ(defaults.led_threshold, 10.0);
  EXPECT_EQ(defaults.led_factor, 2);
  EXPECT_EQ(defaults.led_n, std::optional<std::int64_t>(2));
  EXPECT_TRUE(defaults.fine_structure);
  EXPECT_EQ(defaults.contrast_factor, 5.0);
  const auto [unset, fine] = bind("led_n = 'none'\nfine_structure = false\n");
  EXPECT_EQ(fine, "");
  EXPECT_FALSE(unset.led_n.has_value());
  for (const std::string bad : {"led_factor = 1", "led_threshold = 0", "led_n = 0", "noise_model = 'x'",
                                "contrast_factor = -1"}) {
    const std::string message = bind(bad + "\n").second;
    EXPECT_NE(message.find("wf.toml:1:"), std::string::npos) << message;
    EXPECT_NE(message.find("step 'led': " + bad.substr(0, bad.find(' '))), std::string::npos) << message;
  }
}

}  // namespace
