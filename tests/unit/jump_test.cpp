// jump on hand-made ramps whose answers follow from the two-point-difference rule by hand:
// read noise rn = 5 DN and gain 2 e/DN give one difference the variance 2·25 + |median|/2 DN²,
// so a ramp of 10 DN per group has σ = sqrt(55) = 7.416 DN per difference.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <ctime>

#include "steps/common/jwst_dq.hpp"
#include "steps/ramps/jump.hpp"
#include "tessera/errors.hpp"
#include "tests/support/emulated_ranks.hpp"
#include "tests/support/ramp_ranks.hpp"

namespace {

using tessera::CubeShape;
using tessera::Dataset;
using tessera::steps::Jump;
using tessera::steps::JumpParams;
namespace dq = tessera::jwst::dq;

constexpr std::uint8_t kJump = dq::group(dq::jump_det);
constexpr std::uint8_t kSat = dq::group(dq::saturated);
constexpr std::uint8_t kDnu = dq::group(dq::do_not_use);
const double kSigma = std::sqrt(55.0);  // slope 10 DN/group, rn 5, gain 2

using DqValue = std::function<std::uint8_t(std::size_t t, std::size_t g, std::size_t y, std::size_t x)>;

JumpParams params(bool neighbours = true) {
  JumpParams p;
  p.gain = "2";
  p.read_noise = "5";
  p.flag_4_neighbors = neighbours;
  return p;
}

std::vector<Dataset> make(CubeShape shape, int nranks, const tessera::testing::RampValue& value,
                          const DqValue& flags = {}) {
  auto ranks = tessera::testing::make_ramp_ranks(shape, nranks, value);
  if (flags)
    for (auto& d : ranks) {
      auto gdq = d.frames<std::uint8_t>("groupdq");
      for (std::size_t t = gdq.t_begin; t < gdq.t_end; ++t)
        for (std::size_t g = 0; g < shape.ng; ++g)
          for (std::size_t y = 0; y < shape.ny; ++y)
            for (std::size_t x = 0; x < shape.nx; ++x) gdq(t, g, y, x) = flags(t, g, y, x);
    }
  return ranks;
}

/// The whole groupdq cube, gathered from the ranks that own each integration.
std::vector<std::uint8_t> groupdq(std::vector<Dataset>& ranks) {
  std::vector<std::uint8_t> all;
  for (auto& d : ranks) {
    auto gdq = d.frames<std::uint8_t>("groupdq");
    for (std::size_t t = gdq.t_begin; t < gdq.t_end; ++t) {
      auto f = gdq.frame(t);
      all.insert(all.end(), f.begin(), f.end());
    }
  }
  return all;
}

struct Outcome {
  CubeShape shape;
  std::vector<std::uint8_t> gdq;
  std::vector<double> jumps;
  std::uint8_t at(std::size_t t, std::size_t g, std::size_t y, std::size_t x) const {
    return gdq[((t * shape.ng + g) * shape.ny + y) * shape.nx + x];
  }
  /// (t, g, y, x) of every sample with JUMP_DET set.
  std::vector<std::array<std::size_t, 4>> flagged() const {
    std::vector<std::array<std::size_t, 4>> out;
    for (std::size_t t = 0; t < shape.nt; ++t)
      for (std::size_t g = 0; g < shape.ng; ++g)
        for (std::size_t y = 0; y < shape.ny; ++y)
          for (std::size_t x = 0; x < shape.nx; ++x)
            if (at(t, g, y, x) & kJump) out.push_back({t, g, y, x});
    return out;
  }
};

Outcome run(const JumpParams& p, CubeShape shape, const tessera::testing::RampValue& value, const DqValue& flags = {},
        int nranks = 1) {
  auto ranks = make(shape, nranks, value, flags);
  tessera::testing::run_like_engine<Jump>(p, ranks);
  return {shape, groupdq(ranks), ranks[0].frame_vector("jumps").values};
}

/// 10 DN per group from a bias of 1000, plus `jump` DN from group `jump_group` on in pixel (jy, jx).
tessera::testing::RampValue ramp_with_jump(double jump, std::size_t jump_group, std::size_t jy = 2,
                                           std::size_t jx = 2, std::size_t jt = 0) {
  return [=](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    double v = 1000.0 + 10.0 * static_cast<double>(g);
    if (t == jt && y == jy && x == jx && g >= jump_group) v += jump;
    return static_cast<float>(v);
  };
}

using Flags = std::vector<std::array<std::size_t, 4>>;

TEST(Jump, CleanRampFlagsNothing) {
  Outcome r = run(params(), {2, 5, 5, 10}, ramp_with_jump(0.0, 0));
  EXPECT_TRUE(r.flagged().empty());
  EXPECT_EQ(r.jumps, (std::vector<double>{0.0, 0.0}));
}

TEST(Jump, FiftySigmaJumpIsFlaggedAtTheGroupAfterIt) {
  // Differences: eight of 10 DN and one of 10 + 50σ at group 6 (the difference of groups 5
  // and 6). The largest is left out of the median (10), so its ratio is exactly 50.
  Outcome alone = run(params(false), {2, 5, 5, 10}, ramp_with_jump(50.0 * kSigma, 6, 2, 2, 1));
  EXPECT_EQ(alone.flagged(), (Flags{{1, 6, 2, 2}}));
  EXPECT_EQ(alone.jumps, (std::vector<double>{0.0, 1.0}));
  // 50σ lies between min_jump_to_flag_neighbors (10) and max (1000): the 4 neighbours, in
  // the same group, are flagged too; not the diagonals, not other groups.
  Outcome with = run(params(true), {2, 5, 5, 10}, ramp_with_jump(50.0 * kSigma, 6, 2, 2, 1));
  EXPECT_EQ(with.flagged(), (Flags{{1, 6, 1, 2}, {1, 6, 2, 1}, {1, 6, 2, 2}, {1, 6, 2, 3}, {1, 6, 3, 2}}));
  EXPECT_EQ(with.jumps, (std::vector<double>{0.0, 1.0})) << "neighbours are not counted as jumps";
}

TEST(Jump, RatioJustAboveOrBelowTheThreshold) {
  // Nine differences, one of them 10 + J: median 10, ratio |J|/σ against 4.
  for (double sign : {1.0, -1.0}) {
    Outcome above = run(params(), {1, 5, 5, 10}, ramp_with_jump(sign * 4.04 * kSigma, 3));
    EXPECT_EQ(above.flagged(), (Flags{{0, 3, 2, 2}})) << "sign " << sign;
    Outcome below = run(params(), {1, 5, 5, 10}, ramp_with_jump(sign * 3.96 * kSigma, 3));
    EXPECT_TRUE(below.flagged().empty()) << "sign " << sign;
  }
  // A lower threshold catches the smaller one.
  JumpParams low = params();
  low.rejection_threshold = 3.9;
  EXPECT_EQ(run(low, {1, 5, 5, 10}, ramp_with_jump(3.96 * kSigma, 3)).flagged(), (Flags{{0, 3, 2, 2}}));
}

TEST(Jump, PoissonNoiseOfTheMedianWidensSigma) {
  // 200 DN per group: σ² = 50 + 200/2 = 150. A jump of 4.1·sqrt(55) = 30.4 DN would pass the
  // read-noise-only test but is 2.48σ here.
  auto steep = [](double jump) {
    return [jump](std::size_t, std::size_t g, std::size_t y, std::size_t x) {
      double v = 1000.0 + 200.0 * static_cast<double>(g);
      if (y == 1 && x == 1 && g >= 4) v += jump;
      return static_cast<float>(v);
    };
  };
  EXPECT_TRUE(run(params(), {1, 3, 3, 10}, steep(4.1 * kSigma)).flagged().empty());
  EXPECT_EQ(run(params(false), {1, 3, 3, 10}, steep(4.1 * std::sqrt(150.0))).flagged(), (Flags{{0, 4, 1, 1}}));
}

TEST(Jump, TwoJumpsInOneRampAreBothFound) {
  auto two = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) {
    double v = 1000.0 + 10.0 * static_cast<double>(g);
    if (y == 0 && x == 0) v += (g >= 3 ? 300.0 : 0.0) + (g >= 7 ? 200.0 : 0.0);
    return static_cast<float>(v);
  };
  Outcome r = run(params(false), {1, 3, 3, 12}, two);
  EXPECT_EQ(r.flagged(), (Flags{{0, 3, 0, 0}, {0, 7, 0, 0}}));
  EXPECT_EQ(r.jumps, (std::vector<double>{2.0}));
}

TEST(Jump, SaturatedAndDoNotUseGroupsAreSkipped) {
  // Pixel (1,1): saturated from group 6 on, where its reads jump by 5000 DN: nothing to flag.
  // Pixel (2,2): group 4 is do_not_use and holds garbage; differences 3→4 and 4→5 are gone.
  // Pixel (0,0): do_not_use group 4 and a real 50σ jump at group 5 relative to group 4: the
  //   difference that shows it (4→5) is gone and the others are clean, so nothing is flagged.
  // Pixel (3,3): a 50σ jump at group 8 with a do_not_use group 4 elsewhere is still found.
  auto value = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) {
    double v = 1000.0 + 10.0 * static_cast<double>(g);
    if (y == 1 && x == 1 && g >= 6) v += 5000.0;
    if (y == 2 && x == 2 && g == 4) v = -30000.0;
    if (y == 0 && x == 0 && g >= 5) v += 50.0 * std::sqrt(55.0);
    if (y == 3 && x == 3 && g >= 8) v += 50.0 * std::sqrt(55.0);
    return static_cast<float>(v);
  };
  auto flags = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) -> std::uint8_t {
    if (y == 1 && x == 1 && g >= 6) return kSat;
    if ((y == 2 && x == 2 && g == 4) || (y == 0 && x == 0 && g == 4) || (y == 3 && x == 3 && g == 4)) return kDnu;
    return 0;
  };
  Outcome r = run(params(false), {1, 4, 4, 10}, value, flags);
  EXPECT_EQ(r.flagged(), (Flags{{0, 8, 3, 3}}));
  EXPECT_EQ(r.at(0, 6, 1, 1), kSat) << "existing flags are kept";
  EXPECT_EQ(r.at(0, 4, 2, 2), kDnu);
  // A neighbour that is saturated in the jump's group is not flagged as a jump.
  auto sat_neighbour = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) -> std::uint8_t {
    return (y == 3 && x == 2 && g >= 8) ? kSat : 0;
  };
  Outcome n = run(params(true), {1, 4, 4, 10}, ramp_with_jump(50.0 * kSigma, 8, 3, 3), sat_neighbour);
  EXPECT_EQ(n.flagged(), (Flags{{0, 8, 2, 3}, {0, 8, 3, 3}})) << "corner pixel: 2 neighbours, one saturated";
}

TEST(Jump, ThreeAndFourGroupRampsUseTheirThresholds) {
  // 3 groups: differences 10 and 10 + J; the centre is the smaller one (10): ratio J/σ vs 6.
  EXPECT_TRUE(run(params(), {1, 3, 3, 3}, ramp_with_jump(5.9 * kSigma, 2, 1, 1)).flagged().empty());
  EXPECT_EQ(run(params(false), {1, 3, 3, 3}, ramp_with_jump(6.1 * kSigma, 2, 1, 1)).flagged(),
            (Flags{{0, 2, 1, 1}}));
  // 4 groups: differences 10, 10, 10 + J; median 10: ratio J/σ vs 5.
  EXPECT_TRUE(run(params(), {1, 3, 3, 4}, ramp_with_jump(4.9 * kSigma, 3, 1, 1)).flagged().empty());
  EXPECT_EQ(run(params(false), {1, 3, 3, 4}, ramp_with_jump(5.1 * kSigma, 1, 1, 1)).flagged(),
            (Flags{{0, 1, 1, 1}}));
  // What counts is the usable groups: 10 groups of which the last 6 are saturated leave 4.
  auto sat_from_4 = [](std::size_t, std::size_t g, std::size_t, std::size_t) -> std::uint8_t {
    return g >= 4 ? kSat : 0;
  };
  EXPECT_TRUE(run(params(), {1, 3, 3, 10}, ramp_with_jump(4.9 * kSigma, 2, 1, 1), sat_from_4).flagged().empty());
  EXPECT_EQ(run(params(false), {1, 3, 3, 10}, ramp_with_jump(5.1 * kSigma, 2, 1, 1), sat_from_4).flagged(),
            (Flags{{0, 2, 1, 1}}));
  // The thresholds are parameters.
  JumpParams p = params(false);
  p.three_group_rejection_threshold = 5.0;
  EXPECT_EQ(run(p, {1, 3, 3, 3}, ramp_with_jump(5.9 * kSigma, 2, 1, 1)).flagged(), (Flags{{0, 2, 1, 1}}));
}

TEST(Jump, TooFewGroupsAreLeftAlone) {
  JumpParams p = params();
  p.minimum_groups = 5;
  EXPECT_TRUE(run(p, {1, 3, 3, 4}, ramp_with_jump(100.0 * kSigma, 2, 1, 1)).flagged().empty());
  // 10 groups, 8 saturated: 2 usable groups (one difference) cannot be tested.
  auto sat_from_2 = [](std::size_t, std::size_t g, std::size_t, std::size_t) -> std::uint8_t {
    return g >= 2 ? kSat : 0;
  };
  EXPECT_TRUE(run(params(), {1, 3, 3, 10}, ramp_with_jump(100.0 * kSigma, 1, 1, 1), sat_from_2).flagged().empty());
}

TEST(Jump, NeighboursOnlyForJumpsInsideTheirRange) {
  // 5000σ is above max_jump_to_flag_neighbors (1000), 8σ below min (10): the pixel alone.
  EXPECT_EQ(run(params(true), {1, 5, 5, 10}, ramp_with_jump(5000.0 * kSigma, 5)).flagged(), (Flags{{0, 5, 2, 2}}));
  EXPECT_EQ(run(params(true), {1, 5, 5, 10}, ramp_with_jump(8.0 * kSigma, 5)).flagged(), (Flags{{0, 5, 2, 2}}));
  JumpParams wide = params(true);
  wide.max_jump_to_flag_neighbors = 1e4;
  EXPECT_EQ(run(wide, {1, 5, 5, 10}, ramp_with_jump(5000.0 * kSigma, 5)).flagged().size(), 5u);
}

TEST(Jump, AfterJumpFlagging) {
  // tgroup is 10 s: 25 s after a jump of >= 100 DN flags the 2 following groups; the jump of
  // 60 DN (8σ) in the other pixel flags only its own group. Group 6 of the big one is saturated.
  JumpParams p = params(false);
  p.after_jump_flag_dn1 = 100.0;
  p.after_jump_flag_time1 = 25.0;
  auto value = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) {
    double v = 1000.0 + 10.0 * static_cast<double>(g);
    if (y == 0 && x == 0 && g >= 4) v += 400.0;
    if (y == 2 && x == 2 && g >= 4) v += 60.0;
    return static_cast<float>(v);
  };
  auto flags = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) -> std::uint8_t {
    return (y == 0 && x == 0 && g == 6) ? kSat : 0;
  };
  Outcome r = run(p, {1, 3, 3, 10}, value, flags);
  EXPECT_EQ(r.flagged(), (Flags{{0, 4, 0, 0}, {0, 4, 2, 2}, {0, 5, 0, 0}}));
  EXPECT_EQ(r.jumps, (std::vector<double>{2.0}));
  // The second threshold is independent: >= 50 DN flags 1 group (15 s).
  p.after_jump_flag_dn2 = 50.0;
  p.after_jump_flag_time2 = 15.0;
  Outcome both = run(p, {1, 3, 3, 10}, value, flags);
  EXPECT_EQ(both.flagged(), (Flags{{0, 4, 0, 0}, {0, 4, 2, 2}, {0, 5, 0, 0}, {0, 5, 2, 2}}));
}

TEST(Jump, MinAboveMaxNeighbourSizeIsAnError) {
  JumpParams p = params();
  p.min_jump_to_flag_neighbors = 50.0;
  p.max_jump_to_flag_neighbors = 20.0;
  auto ranks = make({1, 3, 3, 5}, 1, ramp_with_jump(0.0, 0));
  try {
    tessera::testing::run_like_engine<Jump>(p, ranks);
    FAIL() << "expected a StepError";
  } catch (const tessera::StepError& e) {
    EXPECT_NE(std::string(e.what()).find("min_jump_to_flag_neighbors"), std::string::npos) << e.what();
  }
}

/// Ramps of independent reads: bias + slope·g + N(0, rn) per read (so a difference has
/// variance 2·rn², the model's), precomputed so any rank count sees the same values.
tessera::testing::RampValue noisy(CubeShape shape, double slope, double rn, unsigned seed) {
  auto values = std::make_shared<std::vector<float>>(shape.nt * shape.ng * shape.ny * shape.nx);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, rn);
  for (std::size_t i = 0; i < values->size(); ++i) {
    const std::size_t g = (i / (shape.ny * shape.nx)) % shape.ng;
    (*values)[i] = static_cast<float>(5000.0 + slope * static_cast<double>(g) + normal(rng));
  }
  return [values, shape](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return (*values)[((t * shape.ng + g) * shape.ny + y) * shape.nx + x];
  };
}

TEST(Jump, FalsePositivesOnGaussianRampsMatchTheThresholdTail) {
  // Pure read noise (gain so large that the Poisson term vanishes). Each difference is
  // N(0, 2rn²); at threshold k the expected fraction flagged is the two-sided tail
  // erfc(k/√2): 2.70e-3 at 3σ, 6.33e-5 at 4σ. The median of 29 differences is itself a
  // little noisy, which widens the tail slightly; the bounds are generous (a wrong σ, e.g.
  // rn² instead of 2rn², would flag 10% at 3σ).
  const CubeShape shape{2, 100, 100, 31};
  const auto value = noisy(shape, 0.0, 5.0, 7);
  const double diffs = static_cast<double>(shape.nt * shape.ny * shape.nx * (shape.ng - 1));
  JumpParams p;
  p.gain = "1e9";
  p.read_noise = "5";
  p.flag_4_neighbors = false;
  for (double k : {3.0, 4.0}) {
    p.rejection_threshold = k;
    Outcome r = run(p, shape, value);
    const double flagged = static_cast<double>(r.flagged().size());
    const double expected = std::erfc(k / std::sqrt(2.0)) * diffs;
    std::printf("threshold %.0f: %.0f flagged of %.0f differences, tail predicts %.1f\n", k, flagged, diffs, expected);
    EXPECT_GT(flagged, 0.6 * expected) << "threshold " << k;
    EXPECT_LT(flagged, 2.0 * expected + 10.0) << "threshold " << k;
    EXPECT_EQ(r.jumps[0] + r.jumps[1], flagged);
  }
}

TEST(Jump, SameFlagsOnOneTwoAndThreeRanks) {
  // Noisy ramps with jumps of many sizes (some with neighbours, some beyond the range), a few
  // saturated tails and do_not_use groups, after-jump flagging on.
  const CubeShape shape{7, 9, 13, 12};
  const auto base = noisy(shape, 25.0, 6.0, 11);
  auto value = [base](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    float v = base(t, g, y, x);
    const std::size_t h = (t * 131 + y * 17 + x * 7) % 23;
    if (h == 0 && g >= 1 + (x + t) % 10) v += 30.0f * static_cast<float>(1 + (y * x) % 50);
    if (h == 5 && g >= 3) v += 20000.0f;
    return v;
  };
  auto flags = [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) -> std::uint8_t {
    const std::size_t h = (t * 31 + y * 5 + x * 3) % 19;
    if (h == 1 && g >= 8) return kSat;
    if (h == 2 && g == 5) return kDnu;
    return 0;
  };
  JumpParams p;
  p.gain = "1.5";
  p.read_noise = "6";
  p.after_jump_flag_dn1 = 500.0;
  p.after_jump_flag_time1 = 20.0;
  Outcome one = run(p, shape, value, flags, 1);
  ASSERT_GT(one.jumps.size(), 0u);
  double total = 0;
  for (double j : one.jumps) total += j;
  EXPECT_GT(total, 30.0) << "the case must exercise the detection";
  for (int n : {2, 3}) {
    Outcome many = run(p, shape, value, flags, n);
    EXPECT_EQ(many.gdq, one.gdq) << n << " ranks";
    EXPECT_EQ(many.jumps, one.jumps) << n << " ranks";
  }
}

TEST(Jump, ScreeningChangesNothing) {
  // The vectorised screening only skips pixels the exact test would leave alone: the flags are
  // the same with it off, on noisy ramps with jumps of every size (many near the threshold),
  // steep and negative slopes, saturated tails, do_not_use groups, NaN samples, a pixel with
  // zero read noise and one with no gain, for short and long ramps.
  for (std::size_t ng : {3, 4, 5, 6, 9, 20, 45}) {
    const std::size_t ny = 40, nx = 70, plane = ny * nx;  // 70: one full block of 64 and a partial one
    std::mt19937_64 rng(ng);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<float> ramp(ng * plane);
    std::vector<std::uint8_t> flags(ng * plane, 0);
    std::vector<float> rvar(plane), inv_gain(plane);
    for (std::size_t p = 0; p < plane; ++p) {
      const float rn = 3.0f + 10.0f * uniform(rng);
      rvar[p] = 2.0f * rn * rn;
      inv_gain[p] = 1.0f / (0.5f + 3.0f * uniform(rng));
      const float slope = p % 7 == 0 ? -20.0f : 200.0f * uniform(rng);
      const float u = uniform(rng);
      const std::size_t jump_group = 1 + p % (ng - 1);
      const float jump = u < 0.3f ? rn * 1.41421356f * (3.0f + 3.0f * uniform(rng)) * (u < 0.05f ? -1.0f : 1.0f)
                                  : u < 0.4f ? 1000.0f * uniform(rng) : 0.0f;
      for (std::size_t g = 0; g < ng; ++g) {
        float v = 2000.0f + slope * static_cast<float>(g) + rn * normal(rng);
        if (g >= jump_group) v += jump;
        ramp[g * plane + p] = v;
      }
      if (p % 11 == 0) flags[(ng - 1) * plane + p] = kSat;
      if (p % 13 == 0) flags[(p % ng) * plane + p] = kDnu;
      if (p % 97 == 0) ramp[(p % ng) * plane + p] = std::numeric_limits<float>::quiet_NaN();
    }
    rvar[5] = 0.0f;
    inv_gain[6] = std::numeric_limits<float>::quiet_NaN();
    for (bool neighbours : {false, true}) {
      tessera::steps::JumpSettings on;
      on.flag_neighbors = neighbours;
      on.after_groups[0] = 2;
      on.after_dn[0] = 300.0f;
      tessera::steps::JumpSettings off = on;
      off.screen = false;
      tessera::steps::JumpScratch scratch;
      std::vector<std::uint8_t> with = flags, without = flags;
      const std::size_t n_with = tessera::steps::detect_jumps(ramp, with, ng, ny, nx, rvar, inv_gain, on, scratch);
      const std::size_t n_without =
          tessera::steps::detect_jumps(ramp, without, ng, ny, nx, rvar, inv_gain, off, scratch);
      EXPECT_EQ(n_with, n_without) << ng << " groups";
      EXPECT_EQ(with, without) << ng << " groups";
      EXPECT_GT(n_with, plane / 10) << ng << " groups: the case must have jumps";
    }
  }
}

TEST(Jump, DISABLED_Throughput) {
  // Not a timed test: run with --gtest_also_run_disabled_tests to print the speed of the
  // kernel on 10 integrations × 45 groups × 512 × 512 of noisy ramps with a few saturated pixels
  // and cosmic rays.
  // JUMP_BENCH_SHAPE="nt,ng,ny,nx" measures another shape.
  std::size_t nt = 10, ng = 45, ny = 512, nx = 512;
  if (const char* shape = std::getenv("JUMP_BENCH_SHAPE")) {
    ASSERT_EQ(std::sscanf(shape, "%zu,%zu,%zu,%zu", &nt, &ng, &ny, &nx), 4) << "JUMP_BENCH_SHAPE=nt,ng,ny,nx";
  }
  const std::size_t plane = ny * nx;
  std::vector<float> ramp(ng * plane);
  std::vector<std::uint8_t> gdq(ng * plane, 0);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 8.0f);
  std::vector<float> rvar(plane, 2.0f * 8.0f * 8.0f), inv_gain(plane, 1.0f / 3.0f);
  tessera::steps::JumpSettings s;
  tessera::steps::JumpScratch scratch;
  // Thread CPU time as well as wall time: the machine is shared, and CPU time is what the
  // kernel itself costs.
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  double seconds = 0, cpu = 0;
  std::size_t found = 0;
  for (std::size_t t = 0; t < nt; ++t) {
    // 3% of the pixels saturate half way up; 0.5% get a cosmic ray of 200 DN at a random group.
    std::fill(gdq.begin(), gdq.end(), std::uint8_t{0});
    for (std::size_t p = 0; p < plane; ++p) {
      const std::uint32_t h = static_cast<std::uint32_t>(rng());
      const std::size_t hit = h % 200 == 0 ? 1 + (h >> 8) % (ng - 1) : ng;
      for (std::size_t g = 0; g < ng; ++g)
        ramp[g * plane + p] = 1000.0f + 30.0f * static_cast<float>(g) + normal(rng) + (g >= hit ? 200.0f : 0.0f);
      if ((h >> 20) % 100 < 3)
        for (std::size_t g = ng / 2; g < ng; ++g) gdq[g * plane + p] = kSat;
    }
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_now();
    found += tessera::steps::detect_jumps(ramp, gdq, ng, ny, nx, rvar, inv_gain, s, scratch);
    cpu += cpu_now() - cpu_start;
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double samples = static_cast<double>(nt * ng * plane);
  std::printf("jump kernel: %.0f M group samples, wall %.3f s = %.1f M samples/s, CPU %.3f s = %.1f M samples/s "
              "(%zu jumps)\n",
              samples / 1e6, seconds, samples / seconds / 1e6, cpu, samples / cpu / 1e6, found);
}

}  // namespace
