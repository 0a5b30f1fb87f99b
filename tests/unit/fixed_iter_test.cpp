// fixed_iter on short series whose answers are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>

#include "steps/cleaning/fixed_iter.hpp"
#include "steps/common/dq_bits.hpp"

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

}  // namespace
