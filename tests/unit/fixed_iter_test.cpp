// fixed_iter on short series whose answers are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "steps/cleaning/fixed_iter.hpp"
#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"

namespace {

using tessera::steps::FixedIterParams;

struct Cleaned {
  std::vector<float> series;
  std::vector<std::uint32_t> dq;
  std::vector<double> counts;
  std::size_t replaced = 0;
};

Cleaned clean(std::vector<float> series, FixedIterParams params) {
  Cleaned r{std::move(series), {}, {}, 0};
  r.dq.assign(r.series.size(), 0);
  r.counts.assign(r.series.size(), 0);
  tessera::steps::FixedIterScratch scratch;
  r.replaced = tessera::steps::fixed_iter_series(r.series, r.dq, params, r.counts, scratch);
  return r;
}

FixedIterParams with(std::vector<double> sigmas, std::string estimator, std::optional<std::int64_t> replacement = {}) {
  FixedIterParams p;
  p.fixed_sigmas = std::move(sigmas);
  p.estimator = std::move(estimator);
  p.replacement = replacement;
  return p;
}

TEST(FixedIter, StdEstimatorMatchesTheTemplate) {
  // Nine 10s and one 100: median 10, mean 19, population std sqrt((9*81 + 81^2)/10) = 27.
  // |100 - 10| = 90 exceeds 3*27 = 81 but not 3.5*27 = 94.5.
  std::vector<float> s(10, 10.0f);
  s[4] = 100.0f;
  Cleaned hit = clean(s, with({3.0}, "std"));
  EXPECT_EQ(hit.replaced, 1u);
  EXPECT_FLOAT_EQ(hit.series[4], 10.0f);
  EXPECT_EQ(hit.dq[4], tessera::dq::temporal_outlier);
  EXPECT_EQ(hit.counts[4], 1.0);
  Cleaned miss = clean(s, with({3.5}, "std"));
  EXPECT_EQ(miss.replaced, 0u);
  EXPECT_FLOAT_EQ(miss.series[4], 100.0f);
}

TEST(FixedIter, StdCanNeverFlagASingleHitAboveItsCeiling) {
  // With the outlier inside the std, a lone hit in N frames reaches at most (N-1)/sqrt(N)
  // sigma: 3 for N = 10 measured from the mean. At 10 sigma nothing is ever flagged.
  std::vector<float> s(10, 0.0f);
  s[0] = 1e6f;
  EXPECT_EQ(clean(s, with({10.0, 10.0}, "std")).replaced, 0u);
  EXPECT_EQ(clean(s, with({10.0, 10.0}, "mad")).replaced, 0u);  // MAD is 0 here: nothing to scale by
  s = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1e6f};
  EXPECT_EQ(clean(s, with({10.0}, "std")).replaced, 0u);
  EXPECT_EQ(clean(s, with({10.0}, "mad")).replaced, 1u);
}

TEST(FixedIter, MadEstimator) {
  // [1,2,3,4,100]: median 3, |deviations| [2,1,0,1,97], MAD 1, spread 1.4826;
  // 5 sigma = 7.413: only 100 goes, replaced by the median 3.
  Cleaned r = clean({1, 2, 3, 4, 100}, with({5.0}, "mad"));
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_EQ(r.series, (std::vector<float>{1, 2, 3, 4, 3}));
}

TEST(FixedIter, ReplacementWindowUsesNeighbours) {
  // Median 6, MAD 3 -> spread 4.4478, 5 sigma = 22.2: t = 6 (100) is the only outlier.
  // Window ±2 = t 4..8 = [5, 6, 100, 8, 9] -> median 8.
  Cleaned r = clean({1, 2, 3, 4, 5, 6, 100, 8, 9, 10, 11}, with({5.0}, "mad", 2));
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_FLOAT_EQ(r.series[6], 8.0f);
}

TEST(FixedIter, ReplacementWindowIsClippedAtTheEnds) {
  // Outlier at t = 0, window ±2 clipped to t 0..2 = [100, 2, 3] -> median 3.
  Cleaned first = clean({100, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, with({5.0}, "mad", 2));
  EXPECT_FLOAT_EQ(first.series[0], 3.0f);
  // Outlier at the last frame: t 8..10 = [9, 10, 100] -> median 10.
  Cleaned last = clean({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100}, with({5.0}, "mad", 2));
  EXPECT_FLOAT_EQ(last.series[10], 10.0f);
}

TEST(FixedIter, SecondPassFindsWhatTheFirstHid) {
  // Eight 10s, 100 and 40: mean 22, std sqrt(7560/10) = 27.50; at 3 sigma (82.5) only 100
  // goes. Then nine 10s and 40: mean 13, std 9, limit 27 < 30: 40 goes too.
  std::vector<float> s(10, 10.0f);
  s[2] = 100;
  s[7] = 40;
  Cleaned one = clean(s, with({3.0}, "std"));
  EXPECT_EQ(one.replaced, 1u);
  EXPECT_FLOAT_EQ(one.series[7], 40.0f);
  Cleaned two = clean(s, with({3.0, 3.0}, "std"));
  EXPECT_EQ(two.replaced, 2u);
  EXPECT_FLOAT_EQ(two.series[7], 10.0f);
  EXPECT_EQ(two.counts[2], 1.0);
  EXPECT_EQ(two.counts[7], 1.0);
}

TEST(FixedIter, ConstantSeriesIsLeftAlone) {
  Cleaned r = clean(std::vector<float>(8, 5.0f), with({1.0, 1.0}, "std"));
  EXPECT_EQ(r.replaced, 0u);
  EXPECT_EQ(r.series, std::vector<float>(8, 5.0f));
}

TEST(FixedIter, NonFiniteSamplesAreReplacedAndFlagged) {
  Cleaned r = clean({1, NAN, 1, 1, INFINITY}, with({10.0}, "mad"));
  EXPECT_EQ(r.series, (std::vector<float>{1, 1, 1, 1, 1}));
  EXPECT_EQ(r.dq[1], tessera::dq::temporal_outlier | tessera::dq::non_finite);
  EXPECT_EQ(r.dq[4], tessera::dq::temporal_outlier | tessera::dq::non_finite);
  EXPECT_EQ(r.dq[0], 0u);
}

TEST(FixedIter, EvenLengthMedianAveragesTheMiddlePair) {
  // [1, 2, 3, 1000]: median 2.5, deviations [1.5, .5, .5, 997.5] -> MAD 1.0, spread 1.4826.
  Cleaned r = clean({1, 2, 3, 1000}, with({5.0}, "mad"));
  EXPECT_FLOAT_EQ(r.series[3], 2.5f);
}

/// fixed_iter straight from its definition (statistics recomputed every pass, no fast
/// path), for comparison.
Cleaned reference(std::vector<float> series, const FixedIterParams& p) {
  const std::size_t n = series.size();
  Cleaned r{series, std::vector<std::uint32_t>(n, 0), std::vector<double>(n, 0), 0};
  for (double sigma : p.fixed_sigmas) {
    std::vector<float> finite;
    for (float v : r.series)
      if (std::isfinite(v)) finite.push_back(v);
    if (finite.empty()) break;
    std::vector<float> sorted = finite;
    const float centre = tessera::steps::median_of(sorted);
    double spread = 0;
    if (p.estimator == "std") {
      double mean = 0, sum2 = 0;
      for (float v : finite) mean += v;
      mean /= static_cast<double>(finite.size());
      for (float v : finite) sum2 += (v - mean) * (v - mean);
      spread = std::sqrt(sum2 / static_cast<double>(finite.size()));
    } else {
      std::vector<float> dev;
      for (float v : finite) dev.push_back(std::fabs(v - centre));
      spread = 1.4826 * tessera::steps::median_of(dev);
    }
    const std::vector<float> start = r.series;
    for (std::size_t t = 0; t < n; ++t) {
      const bool ok = std::isfinite(start[t]);
      if (ok && (spread == 0 || std::fabs(start[t] - centre) <= sigma * spread)) continue;
      float value = centre;
      if (p.replacement) {
        const std::size_t w = static_cast<std::size_t>(*p.replacement);
        std::vector<float> window;
        for (std::size_t k = t >= w ? t - w : 0; k <= std::min(n - 1, t + w); ++k)
          if (std::isfinite(start[k])) window.push_back(start[k]);
        if (!window.empty()) value = tessera::steps::median_of(window);
      }
      if (!(r.dq[t] & tessera::dq::temporal_outlier)) r.counts[t] += 1;
      r.dq[t] |= tessera::dq::temporal_outlier | (ok ? 0u : tessera::dq::non_finite);
      r.series[t] = value;
      ++r.replaced;
    }
  }
  return r;
}

TEST(FixedIter, FastPathAgreesWithTheDefinition) {
  // Random series: Gaussian or uniform noise, some hits, NaN, half-constant series; both
  // estimators, one to three passes, with and without a replacement window.
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> uniform(0, 1);
  std::size_t total_replaced = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const std::size_t n = 2 + rng() % 90;
    const float level = 20 + 2000 * uniform(rng), noise = std::sqrt(level);
    const bool flat = uniform(rng) < 0.5f;
    std::vector<float> s(n);
    for (float& v : s) v = level + noise * (flat ? 3.4f * (uniform(rng) - 0.5f) : normal(rng));
    if (uniform(rng) < 0.3f)
      for (int k = 0; k < 3; ++k)
        if (uniform(rng) < 0.5f) s[rng() % n] += noise * (uniform(rng) < 0.8f ? 1.0f : -1.0f) * 40 * uniform(rng);
    if (uniform(rng) < 0.03f) s[rng() % n] = NAN;
    if (uniform(rng) < 0.03f) std::fill(s.begin(), s.begin() + static_cast<long>(n / 2 + 1), level);
    for (const char* estimator : {"mad", "std"}) {
      std::vector<double> sigmas;
      for (std::size_t k = 0, passes = 1 + rng() % 3; k < passes; ++k) sigmas.push_back(2.0 + 10.0 * uniform(rng));
      std::optional<std::int64_t> window;
      if (uniform(rng) < 0.3f) window = 1 + static_cast<std::int64_t>(rng() % 4);
      const FixedIterParams p = with(sigmas, estimator, window);
      const Cleaned want = reference(s, p);
      const Cleaned got = clean(s, p);
      ASSERT_EQ(got.dq, want.dq) << "trial " << trial;
      ASSERT_EQ(got.series, want.series) << "trial " << trial;
      ASSERT_EQ(got.counts, want.counts) << "trial " << trial;
      total_replaced += got.replaced;
    }
  }
  EXPECT_GT(total_replaced, 2000u);  // the comparison exercised the full path too
}

}  // namespace
