// bkg_uniform on hand-made histograms and frames whose answers are worked out in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include "steps/background/bkg_uniform.hpp"
#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace {

using namespace tessera;
using steps::BkgUniformParams;
using steps::Histogram;

/// Bin counts of `density` (evaluated at bin centres) over [lo, hi].
Histogram counts_of(double lo, double hi, std::size_t bins, const std::function<double(double)>& density) {
  Histogram h;
  h.lo = lo;
  h.hi = hi;
  h.counts.resize(bins);
  for (std::size_t i = 0; i < bins; ++i) h.counts[i] = density(h.centre(i));
  return h;
}

TEST(BkgUniform, HistogramBinsAndMode) {
  // [0, 10] in 10 bins of 1: 2.2, 2.5, 2.7 fill bin 2 (centre 2.5); 10 falls in the last
  // bin, -1 and 10.5 are outside.
  Histogram h;
  const std::vector<float> values = {2.2f, 2.7f, 2.5f, 7.1f, 7.3f, 5.0f, 10.0f, -1.0f, 10.5f};
  steps::fill_histogram(values, 0, 10, 10, h);
  EXPECT_EQ(h.counts, (std::vector<double>{0, 0, 3, 0, 0, 1, 0, 2, 0, 1}));
  EXPECT_DOUBLE_EQ(steps::histogram_mode(h), 2.5);
  // Equal counts: the first fullest bin, as numpy.argmax.
  steps::fill_histogram(std::vector<float>{7.5f, 1.5f}, 0, 10, 10, h);
  EXPECT_DOUBLE_EQ(steps::histogram_mode(h), 1.5);
}

TEST(BkgUniform, GaussianFitRecoversTheCentreOfExactGaussianCounts) {
  // Exact counts 300 exp(−(x − 3.7)² / (2·2²)) on 1000 bins over [−20, 50]: the fit, started
  // 1.5 away with a wrong width, lands on 3.7 and 2.
  const Histogram h = counts_of(-20, 50, 1000, [](double x) { return 300 * std::exp(-0.5 * (x - 3.7) * (x - 3.7) / 4); });
  for (double window : {1.5, 3.0}) {
    const steps::GaussianFit fit = steps::fit_gaussian(h, 5.2, 3.0, window, false);
    ASSERT_TRUE(fit.ok) << fit.why;
    EXPECT_NEAR(fit.centre, 3.7, 1e-6);
    EXPECT_NEAR(fit.sigma, 2.0, 1e-6);
  }
}

TEST(BkgUniform, SkewedFitReturnsTheGramCharlierMean) {
  // log-density −w²/(2σ²) + c3 (w³ − 3σ² w), w = x − μ: the first skewness term of a
  // Gram–Charlier series about N(μ, σ²), with γ = 6 σ³ c3 = 0.15. Its peak lies at
  // w ≈ −3 c3 σ⁴ = −γσ/2 = −0.3 for σ = 4; its mean is μ = 15.
  const double mu = 15, sigma = 4, c3 = 0.15 / (6 * sigma * sigma * sigma);
  const Histogram h = counts_of(-20, 50, 1000, [&](double x) {
    const double w = x - mu;
    return 200 * std::exp(-0.5 * w * w / (sigma * sigma) + c3 * (w * w * w - 3 * sigma * sigma * w));
  });
  const steps::GaussianFit skewed = steps::fit_gaussian(h, 14, 5, 3.0, true);
  ASSERT_TRUE(skewed.ok) << skewed.why;
  EXPECT_NEAR(skewed.centre, mu, 1e-6);
  EXPECT_NEAR(skewed.sigma, sigma, 1e-6);
  // A symmetric Gaussian over ±a around its centre p fits the cubic's odd part by a line:
  // on [−a, a] the best line through s³ is (3a²/5) s, which moves the vertex from the peak
  // by +0.6 a² σ² c3. At a = 1.5σ the centre lands at μ − 3c3σ⁴ + 1.35c3σ⁴ = μ − 0.165:
  // between the peak and the mean, and still 0.165 low.
  const steps::GaussianFit plain = steps::fit_gaussian(h, 14, 5, 1.5, false);
  ASSERT_TRUE(plain.ok) << plain.why;
  EXPECT_NEAR(plain.centre, mu - 0.165, 0.03);
}

TEST(BkgUniform, SkewedFitFindsThePoissonSkyMean) {
  // A million pixels of Poisson(15) sky plus N(0, 3²) read noise: mean 15, and a peak
  // κ3 / (2 κ2) = 15 / 48 ≈ 0.31 lower. The skewed fit finds the mean (statistical error
  // ≈ 0.01); a plain Gaussian over ±1.5σ lands between the peak and the mean (as above,
  // ≈ 0.55 of the way from the mean to the peak).
  std::mt19937_64 rng(11);
  std::poisson_distribution<int> sky(15.0);
  std::normal_distribution<double> read(0.0, 3.0);
  std::vector<float> values(1000000);
  for (float& v : values) v = static_cast<float>(sky(rng) + read(rng));
  Histogram h;
  steps::fill_histogram(values, -20, 50, 1000, h);
  const steps::GaussianFit skewed = steps::fit_gaussian(h, 15, 5, 3.0, true);
  const steps::GaussianFit plain = steps::fit_gaussian(h, 15, 5, 1.5, false);
  ASSERT_TRUE(skewed.ok && plain.ok);
  EXPECT_NEAR(skewed.centre, 15.0, 0.04);
  EXPECT_NEAR(plain.centre, 15.0 - 0.55 * 0.31, 0.06);
}

TEST(BkgUniform, FitFailsCleanlyWithoutAPeak) {
  // Five bins: a 3-parameter fit needs at least five bins within the window.
  Histogram h = counts_of(0, 10, 3, [](double) { return 100.0; });
  const steps::GaussianFit fit = steps::fit_gaussian(h, 5, 2, 3.0, false);
  EXPECT_FALSE(fit.ok);
  EXPECT_NE(fit.why.find("bins"), std::string::npos);
  // Rising counts: no maximum inside the histogram.
  h = counts_of(0, 10, 100, [](double x) { return 10 * std::exp(0.3 * x); });
  EXPECT_FALSE(steps::fit_gaussian(h, 5, 2, 3.0, false).ok);
}

struct Frame {
  std::size_t ny = 0, nx = 0;
  std::vector<float> data;
  std::vector<std::uint32_t> dq;
};

steps::FrameBackground estimate(const Frame& f, const BkgUniformParams& p) {
  steps::validate(p);
  const auto region = steps::row_segments(steps::clip_boxes(p.bounds, f.ny, f.nx, "bounds"), f.ny);
  steps::BkgUniformScratch scratch;
  return steps::estimate_uniform_background(f.data, f.dq, f.nx, region, p, scratch);
}

TEST(BkgUniform, MedianOfThePixelsInRange) {
  // One row {1, 2, 3, 100, −50, 7}: in [−20, 50] are {1, 2, 3, 7}: median 2.5. The median
  // of every pixel ("before") is (2 + 3) / 2 = 2.5 as well; with 9 instead of 100 the
  // in-range median becomes 3 (1, 2, 3, 7, 9).
  Frame f{1, 6, {1, 2, 3, 100, -50, 7}, std::vector<std::uint32_t>(6, 0)};
  BkgUniformParams p;
  p.fit = "median";
  p.bounds.reset();
  steps::FrameBackground b = estimate(f, p);
  EXPECT_DOUBLE_EQ(b.value, 2.5);
  EXPECT_DOUBLE_EQ(b.median_before, 2.5);
  EXPECT_EQ(b.pixels, 4u);
  f.data[3] = 9;
  EXPECT_DOUBLE_EQ(estimate(f, p).value, 3.0);
  // Unset limits: the range is the pixels' own [−50, 9], so every pixel counts: median 2.5.
  p.hist_min.reset();
  p.hist_max.reset();
  EXPECT_DOUBLE_EQ(estimate(f, p).value, 2.5);
}

TEST(BkgUniform, ModeOfAFrame) {
  // 20 pixels in [−20, 50] with 70 bins of 1: four pixels in [12, 13) make bin 32 (centre
  // 12.5) the fullest.
  Frame f{2, 10, {12.1f, 12.9f, 12.5f, 12.2f, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19},
          std::vector<std::uint32_t>(20, 0)};
  BkgUniformParams p;
  p.bounds.reset();
  p.hist_bins = 70;
  EXPECT_DOUBLE_EQ(estimate(f, p).value, 12.5);
}

TEST(BkgUniform, BoundsAndDqSelectThePixels) {
  // 4 × 6 frame of 100 except the box [0, 2, 1, 3] (columns 0–1, rows 1–2) = {1, 2, 3, 40};
  // the 40 carries a dq flag. Median of {1, 2, 3} = 2; without exclude_dq (1, 2, 3, 40) → 2.5.
  Frame f{4, 6, std::vector<float>(24, 100.0f), std::vector<std::uint32_t>(24, 0)};
  f.data[1 * 6 + 0] = 1;
  f.data[1 * 6 + 1] = 2;
  f.data[2 * 6 + 0] = 3;
  f.data[2 * 6 + 1] = 40;
  f.dq[2 * 6 + 1] = dq::temporal_outlier;
  BkgUniformParams p;
  p.fit = "median";
  p.bounds = std::vector<std::vector<double>>{{1, 3, 0, 2}};
  EXPECT_DOUBLE_EQ(estimate(f, p).value, 2.0);
  p.exclude_dq = false;
  EXPECT_DOUBLE_EQ(estimate(f, p).value, 2.5);
  // Two overlapping boxes count each pixel once.
  p.bounds = std::vector<std::vector<double>>{{1, 3, 0, 2}, {1, 3, 0, 1}};
  EXPECT_DOUBLE_EQ(estimate(f, p).value, 2.5);
}

TEST(BkgUniform, GaussianFallsBackToTheMedianWhenTheFitCannotWork) {
  // Three bins cannot hold a Gaussian fit: the median of the in-range pixels is used.
  Frame f{1, 5, {1, 2, 3, 4, 5}, std::vector<std::uint32_t>(5, 0)};
  BkgUniformParams p;
  p.fit = "Gaussian";
  p.bounds.reset();
  p.hist_bins = 3;
  const steps::FrameBackground b = estimate(f, p);
  EXPECT_TRUE(b.fit_failed);
  EXPECT_DOUBLE_EQ(b.value, 3.0);
}

TEST(BkgUniform, MedianAfterIsTheMedianOfTheSubtractedPixels) {
  // Taken from the two middle pixels, it must equal a fresh median of the subtracted values.
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(15.0f, 5.0f);
  for (std::size_t n : {1000u, 1001u}) {
    Frame f{1, n, std::vector<float>(n), std::vector<std::uint32_t>(n, 0)};
    for (float& v : f.data) v = noise(rng);
    BkgUniformParams p;
    p.fit = "Gaussian";
    p.bounds.reset();
    const steps::FrameBackground b = estimate(f, p);
    std::vector<float> after(f.data);
    for (float& v : after) v = steps::subtract_background(v, b.value);
    std::vector<float> before(f.data);
    EXPECT_EQ(b.median_before, steps::median_of(before));
    EXPECT_EQ(steps::median_after(b), steps::median_of(after)) << n;
  }
}

TEST(BkgUniform, NoUsablePixelIsAnError) {
  Frame f{1, 3, {100, 200, 300}, std::vector<std::uint32_t>(3, 0)};
  BkgUniformParams p;
  p.bounds.reset();
  EXPECT_THROW(estimate(f, p), StepError);  // none in [−20, 50]
}

void expect_config_error(const BkgUniformParams& p, const std::string& parameter) {
  try {
    steps::validate(p);
    ADD_FAILURE() << "no error for " << parameter;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(parameter), std::string::npos) << e.what();
  }
}

TEST(BkgUniform, ParameterErrorsNameTheParameter) {
  BkgUniformParams p;
  p.hist_min = 50;
  expect_config_error(p, "hist_min");
  p = {};
  p.bounds = std::vector<std::vector<double>>{{150, 0, 0, 400}};
  expect_config_error(p, "bounds");
  EXPECT_NO_THROW(steps::BkgUniform::io(BkgUniformParams{}));
}

TEST(BkgUniform, StepSubtractsAndRecordsPerFrame) {
  // Two 3 × 4 frames; bounds = row 0 ([0, 1, 0, 4]); median fit. Frame 0 row 0 = {10, 11,
  // 12, 13} → 11.5; frame 1 row 0 = {20, 20, 21, 20} → 20. Every pixel loses the value; the
  // median after is 0.
  const CubeShape shape{2, 3, 4};
  Dataset data(shape, Partition::frames(shape, 1), 0);
  data.add_cube({"data", "electron", ""}, ElementType::Float32, 30.0);
  data.add_cube({"dq", "1", ""}, ElementType::UInt32, 0.0);
  for (const char* name : {"bkg_uniform_value", "bkg_uniform_median_before", "bkg_uniform_median_after"})
    data.add_frame_vector({name, "electron", ""});
  auto cube = data.frames<float>("data");
  const float row0[2][4] = {{10, 11, 12, 13}, {20, 20, 21, 20}};
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t x = 0; x < 4; ++x) cube(t, 0, x) = row0[t][x];
  Logger log(0, Verbosity::Quiet);
  StepContext context(data, log, nullptr);
  BkgUniformParams p;
  p.fit = "median";
  p.bounds = std::vector<std::vector<double>>{{0, 1, 0, 4}};
  steps::BkgUniform::run(p, context);
  EXPECT_EQ(data.frame_vector("bkg_uniform_value").values, (std::vector<double>{11.5, 20}));
  EXPECT_EQ(data.frame_vector("bkg_uniform_median_before").values, (std::vector<double>{11.5, 20}));
  EXPECT_EQ(data.frame_vector("bkg_uniform_median_after").values, (std::vector<double>{0, 0}));
  EXPECT_FLOAT_EQ(cube(0, 0, 0), -1.5f);
  EXPECT_FLOAT_EQ(cube(0, 2, 3), 18.5f);
  EXPECT_FLOAT_EQ(cube(1, 1, 1), 10.0f);
}

}  // namespace
