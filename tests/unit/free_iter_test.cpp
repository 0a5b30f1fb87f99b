// free_iter on short series whose answers are worked out by hand in the comments, a check
// of the fast path against the definition on random series, and the step on tiles of
// different shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "steps/cleaning/free_iter.hpp"
#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"
#include "tessera/dataset.hpp"
#include "tessera/logger.hpp"
#include "tessera/step.hpp"

namespace {

using tessera::steps::FreeIterParams;
namespace dq = tessera::dq;

struct Cleaned {
  std::vector<float> series;
  std::vector<std::uint32_t> dq;
  std::vector<double> counts;
  std::size_t replaced = 0;
};

Cleaned clean(std::vector<float> series, FreeIterParams params, std::vector<float> err = {}) {
  Cleaned r{std::move(series), {}, {}, 0};
  r.dq.assign(r.series.size(), 0);
  r.counts.assign(r.series.size(), 0);
  tessera::steps::FreeIterScratch scratch;
  r.replaced = tessera::steps::free_iter_series(r.series, err, r.dq, params, r.counts, scratch);
  return r;
}

FreeIterParams with(std::string sides, std::string estimator = "kept", double sigma = 3.5) {
  FreeIterParams p;
  p.free_sigma = sigma;
  p.sides = std::move(sides);
  p.estimator = std::move(estimator);
  return p;
}

/// Ten 9s and ten 11s interleaved (median 10, std exactly 1), then `extra` inserted at `at`.
std::vector<float> nines_and_elevens(std::vector<std::pair<std::size_t, float>> extra = {}) {
  std::vector<float> s;
  for (int i = 0; i < 20; ++i) s.push_back(i % 2 ? 11.0f : 9.0f);
  for (auto [at, value] : extra) s.insert(s.begin() + static_cast<long>(at), value);
  return s;
}

TEST(FreeIter, ConstantSeriesStaysAsItIs) {
  // Zero spread: the reference tool divides by it and returns NaN; here nothing changes.
  for (const char* sides : {"positive", "both"}) {
    Cleaned r = clean(std::vector<float>(12, 7.0f), with(sides, "std"));
    EXPECT_EQ(r.replaced, 0u);
    EXPECT_EQ(r.series, std::vector<float>(12, 7.0f));
    EXPECT_EQ(r.dq, std::vector<std::uint32_t>(12, 0u));
  }
  // With a noise floor too.
  Cleaned floored = clean(std::vector<float>(12, 7.0f), with("both"), std::vector<float>(12, 2.0f));
  EXPECT_EQ(floored.series, std::vector<float>(12, 7.0f));
}

TEST(FreeIter, SingleSpikeIsReplacedByTheMedianOfTheRest) {
  // 21 samples: pass 1 over all of them has median 11 (the 11th of 9x10, 11x10, 100) and std
  // 19.19, limit 3.5 x 19.19 = 67.2 < 100 - 11 = 89: the spike goes. Pass 2 over the other
  // twenty: median 10, std exactly 1, nothing beyond 3.5. The spike becomes 10.
  Cleaned r = clean(nines_and_elevens({{7, 100.0f}}), with("positive"));
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_FLOAT_EQ(r.series[7], 10.0f);
  EXPECT_EQ(r.dq[7], dq::temporal_outlier);
  EXPECT_EQ(r.counts[7], 1.0);
  for (std::size_t t = 0; t < r.series.size(); ++t)
    if (t != 7) {
      EXPECT_EQ(r.dq[t], 0u) << t;
      EXPECT_EQ(r.counts[t], 0.0) << t;
    }
  // The same at either end of the series.
  Cleaned first = clean(nines_and_elevens({{0, 100.0f}}), with("positive"));
  EXPECT_FLOAT_EQ(first.series[0], 10.0f);
  Cleaned last = clean(nines_and_elevens({{20, 100.0f}}), with("positive"));
  EXPECT_FLOAT_EQ(last.series[20], 10.0f);
  EXPECT_EQ(last.replaced, 1u);
}

TEST(FreeIter, NegativeSpikeOnlyWithBothSides) {
  // Median of -100, 9x10, 11x10 is 9, std 23.45, limit 82.1 < |-100 - 9| = 109.
  const std::vector<float> s = nines_and_elevens({{4, -100.0f}});
  Cleaned positive = clean(s, with("positive"));
  EXPECT_EQ(positive.replaced, 0u);
  EXPECT_EQ(positive.series, s);
  Cleaned both = clean(s, with("both"));
  EXPECT_EQ(both.replaced, 1u);
  EXPECT_FLOAT_EQ(both.series[4], 10.0f);
}

TEST(FreeIter, NoiseFloorKeepsTheClipOutOfTheNoise) {
  // 9x10, 11x10 and 30: median 11, std 4.37, limit 15.3 < 30 - 11 = 19: clipped without a
  // floor. A predicted noise of 6 per sample puts the limit at 3.5 x 6 = 21 > 19: kept.
  const std::vector<float> s = nines_and_elevens({{13, 30.0f}});
  EXPECT_EQ(clean(s, with("positive")).replaced, 1u);
  std::vector<float> err(s.size(), 6.0f);
  err[2] = 500.0f;  // one inflated err (a cosmic ray in calwf3's ERR) does not move the median
  Cleaned floored = clean(s, with("positive"), err);
  EXPECT_EQ(floored.replaced, 0u);
  EXPECT_EQ(floored.series, s);
  FreeIterParams no_floor = with("positive");
  no_floor.noise_floor = false;  // the step then does not read err; the kernel ignores none given
  EXPECT_EQ(clean(s, no_floor).replaced, 1u);
}

TEST(FreeIter, TemplateStdCountsEarlierOutliersAtTheMedian) {
  // 9x10, 11x10, 14 and 100 at sigma 2.33. Pass 1 (both estimators): median 11, std 18.75,
  // limit 43.7: only 100 goes (89 away). Pass 2:
  //  kept: the 21 others, median 11, std 1.2954, limit 3.018 > 14 - 11 = 3: done, and 100
  //        becomes 11, the median of those 21.
  //  std (the template's): 100 stays in the series at the median 11; 22 values, std 1.2768,
  //        limit 2.975 < 3: 14 goes too. Pass 3: the twenty 9s and 11s, median 10, std 1
  //        (0.953 with the two replaced samples at 10): nothing more; both become 10.
  const std::vector<float> s = nines_and_elevens({{3, 14.0f}, {15, 100.0f}});
  Cleaned kept = clean(s, with("both", "kept", 2.33));
  EXPECT_EQ(kept.replaced, 1u);
  EXPECT_FLOAT_EQ(kept.series[15], 11.0f);
  EXPECT_FLOAT_EQ(kept.series[3], 14.0f);
  Cleaned templ = clean(s, with("both", "std", 2.33));
  EXPECT_EQ(templ.replaced, 2u);
  EXPECT_FLOAT_EQ(templ.series[15], 10.0f);
  EXPECT_FLOAT_EQ(templ.series[3], 10.0f);
}

TEST(FreeIter, IteratesUntilNothingNewIsFound) {
  // 9x10, 11x10, 1000 and 60. Pass 1: median 11, std 206.0, limit 721: only 1000. Pass 2:
  // median 11, std 10.69, limit 37.4 < 49: 60 goes. Pass 3: median 10, std 1: done.
  Cleaned r = clean(nines_and_elevens({{5, 1000.0f}, {12, 60.0f}}), with("positive"));
  EXPECT_EQ(r.replaced, 2u);
  EXPECT_FLOAT_EQ(r.series[5], 10.0f);
  EXPECT_FLOAT_EQ(r.series[12], 10.0f);
}

TEST(FreeIter, NonFiniteSamplesAreReplacedAndFlagged) {
  Cleaned r = clean(nines_and_elevens({{2, NAN}, {9, INFINITY}}), with("positive"));
  EXPECT_EQ(r.replaced, 2u);
  EXPECT_FLOAT_EQ(r.series[2], 10.0f);
  EXPECT_FLOAT_EQ(r.series[9], 10.0f);
  EXPECT_EQ(r.dq[2], dq::temporal_outlier | dq::non_finite);
  EXPECT_EQ(r.dq[9], dq::temporal_outlier | dq::non_finite);
  // Nothing finite: nothing to replace with; the samples are flagged non_finite only.
  Cleaned none = clean({NAN, NAN, NAN}, with("both"));
  EXPECT_EQ(none.replaced, 0u);
  EXPECT_EQ(none.dq[1], dq::non_finite);
}

TEST(Select, CountingHelpersBoundTheMedian) {
  std::vector<float> v = {5, 1, 4, 2, 3};  // median 3
  EXPECT_TRUE(tessera::steps::median_at_least(v, 3.0f));
  EXPECT_FALSE(tessera::steps::median_at_least(v, 3.5f));
  EXPECT_TRUE(tessera::steps::median_at_most(v, 3.0f));
  EXPECT_FALSE(tessera::steps::median_at_most(v, 2.5f));
  EXPECT_EQ(tessera::steps::count_between(v, 1.0f, 4.0f), 2u);  // strictly inside: 2, 3
  EXPECT_TRUE(tessera::steps::median_between(v, 3.0f, 3.0f));
  EXPECT_TRUE(tessera::steps::median_between(v, 2.0f, 4.0f));
  EXPECT_FALSE(tessera::steps::median_between(v, 3.5f, 4.0f));
  EXPECT_FALSE(tessera::steps::median_between(v, 1.0f, 2.5f));
  std::vector<float> even = {1, 2, 3, 10};                     // median 2.5: proven >= 2, not >= 2.5
  EXPECT_TRUE(tessera::steps::median_at_least(even, 2.0f));
  EXPECT_FALSE(tessera::steps::median_at_least(even, 2.5f));
  const auto m = tessera::steps::moments_of(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  EXPECT_FLOAT_EQ(m.mean, 6.0f);
  EXPECT_FLOAT_EQ(m.std, std::sqrt(10.0f));
  EXPECT_EQ(m.max, 11.0f);
  EXPECT_EQ(m.min, 1.0f);
  EXPECT_FALSE(tessera::steps::moments_of(std::vector<float>{1, NAN, 3}).finite);
  EXPECT_FALSE(tessera::steps::moments_of(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, -INFINITY}).finite);
}

/// free_iter straight from its definition, with no fast path, for comparison.
Cleaned reference(std::vector<float> series, const FreeIterParams& p, const std::vector<float>& err) {
  const std::size_t n = series.size();
  Cleaned r{series, std::vector<std::uint32_t>(n, 0), std::vector<double>(n, 0), 0};
  std::vector<int> flag(n, 0);
  std::size_t non_finite = 0;
  for (std::size_t t = 0; t < n; ++t)
    if (!std::isfinite(series[t])) flag[t] = 2, ++non_finite;
  float floor = 0;
  if (p.noise_floor) {
    std::vector<float> e;
    for (float v : err)
      if (std::isfinite(v) && v > 0) e.push_back(v);
    if (!e.empty()) floor = tessera::steps::median_of(e);
  }
  float centre = NAN;
  for (;;) {
    std::vector<float> kept;
    for (std::size_t t = 0; t < n; ++t)
      if (!flag[t]) kept.push_back(series[t]);
    if (kept.empty()) break;
    double mean = 0, var = 0;
    for (float v : kept) mean += v;
    mean /= static_cast<double>(kept.size());
    for (float v : kept) var += (v - mean) * (v - mean);
    var /= static_cast<double>(kept.size());
    std::vector<float> sorted = kept;
    centre = tessera::steps::median_of(sorted);
    double spread = std::sqrt(var);
    if (p.estimator == "std") {
      std::vector<double> all(kept.begin(), kept.end());
      all.resize(n - non_finite, centre);
      double m = 0, v2 = 0;
      for (double v : all) m += v;
      m /= static_cast<double>(all.size());
      for (double v : all) v2 += (v - m) * (v - m);
      spread = std::sqrt(v2 / static_cast<double>(all.size()));
    }
    spread = std::max(spread, static_cast<double>(floor));
    if (!(spread > 0)) break;
    std::size_t found = 0;
    for (std::size_t t = 0; t < n; ++t) {
      if (flag[t]) continue;
      const double d = static_cast<double>(series[t]) - centre;
      if (d > p.free_sigma * spread || (p.sides == "both" && -d > p.free_sigma * spread)) flag[t] = 1, ++found;
    }
    if (found == 0) break;
  }
  for (std::size_t t = 0; t < n; ++t) {
    if (!flag[t]) continue;
    if (flag[t] == 2) r.dq[t] |= dq::non_finite;
    if (std::isnan(centre)) continue;
    r.series[t] = centre;
    r.dq[t] |= dq::temporal_outlier;
    r.counts[t] += 1;
    ++r.replaced;
  }
  return r;
}

TEST(FreeIter, FastPathAgreesWithTheDefinition) {
  // Random series like a visit's: Gaussian or uniform noise at a random level, some with
  // hits (positive and negative), NaN, constant runs; every parameter combination.
  std::mt19937 rng(12345);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> uniform(0, 1);
  std::size_t series_with_hits = 0, total_replaced = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const std::size_t n = 2 + rng() % 90;
    const float level = 20 + 2000 * uniform(rng), noise = std::sqrt(level);
    std::vector<float> s(n), err(n);
    const bool flat = uniform(rng) < 0.5f;
    for (std::size_t t = 0; t < n; ++t) {
      s[t] = level + noise * (flat ? 3.4f * (uniform(rng) - 0.5f) : normal(rng));
      err[t] = noise * (0.8f + 0.4f * uniform(rng));
    }
    bool hit = false;
    if (uniform(rng) < 0.3f)
      for (int k = 0; k < 3; ++k)
        if (uniform(rng) < 0.5f) s[rng() % n] += noise * (uniform(rng) < 0.8f ? 1.0f : -1.0f) * 20 * uniform(rng), hit = true;
    if (uniform(rng) < 0.03f) s[rng() % n] = NAN;
    if (uniform(rng) < 0.03f) std::fill(s.begin(), s.begin() + static_cast<long>(n / 2 + 1), level);
    series_with_hits += hit;
    for (const char* sides : {"positive", "both"})
      for (const char* estimator : {"kept", "std"})
        for (bool floor : {true, false}) {
          FreeIterParams p = with(sides, estimator, 2.0 + 3.0 * uniform(rng));
          p.noise_floor = floor;
          const Cleaned want = reference(s, p, err);
          const Cleaned got = clean(s, p, floor ? err : std::vector<float>{});
          ASSERT_EQ(got.dq, want.dq) << "trial " << trial;
          for (std::size_t t = 0; t < n; ++t)
            ASSERT_TRUE(got.series[t] == want.series[t] || (std::isnan(got.series[t]) && std::isnan(want.series[t])))
                << "trial " << trial << " t " << t;
          ASSERT_EQ(got.counts, want.counts);
          total_replaced += got.replaced;
        }
  }
  EXPECT_GT(series_with_hits, 500u);
  EXPECT_GT(total_replaced, 2000u);  // the comparison exercised the full path too
}

/// A whole cube (time, y, x) and what the step made of it.
struct Cube {
  tessera::CubeShape shape;
  std::vector<float> data, err;
  std::vector<std::uint32_t> dq;
  std::vector<double> counts;
};

/// Runs the free_iter step on `nranks` datasets in pixel tiles of tile_ny × tile_nx, as the
/// engine would hand them to each rank, and puts the results back together.
Cube run_on_tiles(const Cube& in, const FreeIterParams& params, int nranks, std::size_t tile_ny, std::size_t tile_nx) {
  Cube out = in;
  out.counts.assign(in.shape.nt, 0.0);
  const auto at = [&](std::size_t t, std::size_t y, std::size_t x) { return (t * in.shape.ny + y) * in.shape.nx + x; };
  for (int rank = 0; rank < nranks; ++rank) {
    tessera::Dataset data(in.shape, tessera::Partition::tiles(in.shape, nranks, tile_ny, tile_nx), rank);
    data.add_cube({"data", "electron", ""}, tessera::ElementType::Float32);
    data.add_cube({"err", "electron", ""}, tessera::ElementType::Float32);
    data.add_cube({"dq", "1", ""}, tessera::ElementType::UInt32);
    data.add_frame_vector({"free_iter_outliers", "1", ""}, true);
    auto d = data.tiles<float>("data");
    auto e = data.tiles<float>("err");
    auto q = data.tiles<std::uint32_t>("dq");
    for (std::size_t k = 0; k < d.size(); ++k)
      for (std::size_t y = d[k].tile.y0; y < d[k].tile.y1; ++y)
        for (std::size_t x = d[k].tile.x0; x < d[k].tile.x1; ++x)
          for (std::size_t t = 0; t < in.shape.nt; ++t) {
            d[k].series(y, x)[t] = in.data[at(t, y, x)];
            e[k].series(y, x)[t] = in.err[at(t, y, x)];
            q[k].series(y, x)[t] = in.dq[at(t, y, x)];
          }
    tessera::Logger log(rank, tessera::Verbosity::Quiet);
    tessera::StepContext context(data, log, {});
    tessera::steps::FreeIter::run(params, context);
    for (std::size_t k = 0; k < d.size(); ++k)
      for (std::size_t y = d[k].tile.y0; y < d[k].tile.y1; ++y)
        for (std::size_t x = d[k].tile.x0; x < d[k].tile.x1; ++x)
          for (std::size_t t = 0; t < in.shape.nt; ++t) {
            out.data[at(t, y, x)] = d[k].series(y, x)[t];
            out.dq[at(t, y, x)] = q[k].series(y, x)[t];
          }
    const auto& counts = data.frame_vector("free_iter_outliers").values;
    for (std::size_t t = 0; t < in.shape.nt; ++t) out.counts[t] += counts[t];  // the engine sums over ranks
  }
  return out;
}

TEST(FreeIterStep, TilesOfDifferentShapesGiveTheSameResult) {
  Cube in;
  in.shape = {30, 13, 17};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1);
  const std::size_t n = in.shape.elements();
  in.data.resize(n);
  in.err.assign(n, 10.0f);
  in.dq.assign(n, 0);
  for (float& v : in.data) v = 100.0f + 10.0f * normal(rng);
  for (int k = 0; k < 40; ++k) in.data[rng() % n] += 500.0f;  // hits
  const FreeIterParams params;
  const Cube one = run_on_tiles(in, params, 1, 64, 64);
  double total = 0;
  for (double c : one.counts) total += c;
  EXPECT_GE(total, 38.0);  // the hits (two may share a sample), and at most a few noise samples
  EXPECT_LE(total, 45.0);
  for (auto [nranks, ty, tx] : {std::tuple{2, 4, 5}, std::tuple{3, 7, 3}, std::tuple{3, 1, 17}, std::tuple{2, 13, 1}}) {
    const Cube other = run_on_tiles(in, params, nranks, ty, tx);
    EXPECT_EQ(other.data, one.data) << nranks << " ranks, tiles " << ty << "x" << tx;
    EXPECT_EQ(other.dq, one.dq);
    EXPECT_EQ(other.counts, one.counts);
  }
}

}  // namespace
