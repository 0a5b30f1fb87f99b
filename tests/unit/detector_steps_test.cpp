// The elementwise JWST detector1 steps (dq_init, saturation, superbias, linearity, dark_current,
// group_scale, gain_scale) on hand-made ramps and tiny reference files written here, with the
// expected values worked out by hand in the comments; each also on 1, 2 and 3 emulated ranks.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/detector/dark_current.hpp"
#include "steps/detector/dq_init.hpp"
#include "steps/detector/gain_scale.hpp"
#include "steps/detector/group_scale.hpp"
#include "steps/detector/linearity.hpp"
#include "steps/detector/saturation.hpp"
#include "steps/detector/superbias.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "support/emulated_ranks.hpp"
#include "support/ramp_ranks.hpp"
#include "support/temp_dir.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;
namespace dq = tessera::jwst::dq;
using tessera::testing::make_ramp_ranks;
using tessera::testing::RampValue;
using tessera::testing::run_like_engine;
using tessera::testing::TempDir;

constexpr std::uint8_t kSat = dq::group(dq::saturated);
constexpr std::uint8_t kFloor = dq::group(dq::ad_floor | dq::do_not_use);

/// Writes a reference file: `values` in image extension `extname` with FITS axes (NAXIS1 = x
/// first), and, when given, `bits` (ny × nx) in 'DQ'.
std::string write_reference(const TempDir& dir, const std::string& name, const std::vector<float>& values,
                            std::vector<long> axes, const std::vector<std::uint32_t>& bits = {},
                            const std::string& extname = "SCI") {
  const std::string path = (dir.path() / name).string();
  auto f = fits::File::create(path);
  if (!values.empty()) f.append_image_float(extname, values, axes);
  if (!bits.empty()) f.append_image_uint32("DQ", bits, {axes[0], axes[1]});
  f.close();
  return path;
}

/// A cube of all ranks, frames in order (each rank's own frames).
template <class T>
std::vector<T> gather(std::vector<Dataset>& ranks, const std::string& name) {
  std::vector<T> out;
  for (auto& d : ranks) {
    auto slab = d.frames<T>(name);
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
      auto f = slab.frame(t);
      out.insert(out.end(), f.begin(), f.end());
    }
  }
  return out;
}

struct Result {
  std::vector<float> ramp;
  std::vector<std::uint8_t> groupdq;
  std::vector<std::uint32_t> dq;
};

/// Runs step S on `nranks` emulated ranks of ramps `value`; `setup` may change each rank first
/// (group dq, attributes).
template <class S>
Result run_step(const typename S::Params& params, CubeShape shape, int nranks, const RampValue& value,
                const std::function<void(Dataset&)>& setup = {}) {
  auto ranks = make_ramp_ranks(shape, nranks, value);
  if (setup)
    for (auto& d : ranks) setup(d);
  run_like_engine<S>(params, ranks);
  return {gather<float>(ranks, "ramp"), gather<std::uint8_t>(ranks, "groupdq"), gather<std::uint32_t>(ranks, "dq")};
}

/// The same step on 1, 2 and 3 ranks gives identical cubes (bit for bit).
template <class S>
void expect_partition_invariant(const typename S::Params& params, CubeShape shape, const RampValue& value,
                                const std::function<void(Dataset&)>& setup = {}) {
  const Result one = run_step<S>(params, shape, 1, value, setup);
  for (int n : {2, 3}) {
    const Result many = run_step<S>(params, shape, n, value, setup);
    ASSERT_EQ(one.ramp.size(), many.ramp.size());
    for (std::size_t i = 0; i < one.ramp.size(); ++i)
      ASSERT_TRUE(one.ramp[i] == many.ramp[i] || (std::isnan(one.ramp[i]) && std::isnan(many.ramp[i])))
          << S::name << " on " << n << " ranks, sample " << i;
    EXPECT_EQ(one.groupdq, many.groupdq) << S::name << " on " << n << " ranks";
    EXPECT_EQ(one.dq, many.dq) << S::name << " on " << n << " ranks";
  }
}

/// A pseudo-random ramp value in [lo, hi) from the sample's indices (reproducible on any rank).
RampValue noisy(float lo, float hi, unsigned seed = 1) {
  return [=](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    std::uint64_t h = seed * 0x9E3779B97F4A7C15ull ^ (t * 1000003u + g * 10007u + y * 101u + x);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return lo + (hi - lo) * static_cast<float>(h % 100000u) / 100000.0f;
  };
}

std::size_t at(std::size_t t, std::size_t g, std::size_t y, std::size_t x, const CubeShape& s) {
  return ((t * s.ng + g) * s.ny + y) * s.nx + x;
}
std::size_t at_pixel(std::size_t t, std::size_t y, std::size_t x, const CubeShape& s) {
  return (t * s.ny + y) * s.nx + x;
}

// ---------------------------------------------------------------------------------------------
// dq_init

TEST(DqInit, OrsTheMaskIntoEveryIntegrationKeepingExistingBits) {
  TempDir dir("dq_init");
  const CubeShape shape{3, 2, 3, 2};
  // Mask: pixel (0,1) dead|do_not_use, (1,2) reference_pixel, the rest 0.
  std::vector<std::uint32_t> mask(6, 0);
  mask[1] = dq::dead | dq::do_not_use;
  mask[5] = dq::reference_pixel;
  DqInitParams p;
  p.mask = write_reference(dir, "mask.fits", {}, {3, 2}, mask);
  auto ranks = make_ramp_ranks(shape, 1, noisy(0, 1));
  ranks[0].frames<std::uint32_t>("dq")(1, 0, 1) = dq::jump_det;  // already there: kept
  run_like_engine<DqInit>(p, ranks);
  const auto out = gather<std::uint32_t>(ranks, "dq");
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t i = 0; i < 6; ++i) {
      std::uint32_t expected = mask[i];
      if (t == 1 && i == 1) expected |= dq::jump_det;
      EXPECT_EQ(out[t * 6 + i], expected) << "integration " << t << " pixel " << i;
    }
  // The group dq and ramps are untouched (the JWST step only sets PIXELDQ).
  for (std::uint8_t b : gather<std::uint8_t>(ranks, "groupdq")) EXPECT_EQ(b, 0);
}

TEST(DqInit, ScalarMaskAndPartitionInvariance) {
  DqInitParams p;
  p.mask = "2048";  // hot everywhere
  const Result r = run_step<DqInit>(p, {4, 3, 5, 2}, 2, noisy(0, 1));
  for (std::uint32_t b : r.dq) EXPECT_EQ(b, dq::hot);

  TempDir dir("dq_init_ranks");
  std::vector<std::uint32_t> mask(15);
  for (std::size_t i = 0; i < 15; ++i) mask[i] = static_cast<std::uint32_t>(i * 37u) & (dq::dead | dq::hot | 1u);
  p.mask = write_reference(dir, "mask.fits", {}, {5, 3}, mask);
  expect_partition_invariant<DqInit>(p, {7, 3, 5, 2}, noisy(0, 1));
}

TEST(DqInit, WrongShapedMaskNamesTheParameter) {
  TempDir dir("dq_init_bad");
  DqInitParams p;
  p.mask = write_reference(dir, "mask.fits", {}, {4, 2}, std::vector<std::uint32_t>(8, 1));
  try {
    run_step<DqInit>(p, {2, 3, 5, 2}, 1, noisy(0, 1));
    FAIL() << "a 2x4 mask was accepted for 3x5 data";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mask"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// saturation

/// The JWST saturation flagging written the obvious way, to check the kernel's separable,
/// row-skipping dilation against: per group, direct flags (and persistence), A/D floor, then
/// every saturated bit of the group grown by brute force over its box.
std::vector<std::uint8_t> naive_saturation(const std::vector<float>& ramp, std::vector<std::uint8_t> gdq,
                                           const std::vector<float>& level, CubeShape s, std::size_t n) {
  for (std::size_t t = 0; t < s.nt; ++t)
    for (std::size_t g = 0; g < s.ng; ++g) {
      for (std::size_t y = 0; y < s.ny; ++y)
        for (std::size_t x = 0; x < s.nx; ++x) {
          const float v = ramp[at(t, g, y, x, s)];
          if (v >= level[y * s.nx + x])
            for (std::size_t h = g; h < s.ng; ++h) gdq[at(t, h, y, x, s)] |= kSat;
          if (v <= 0) gdq[at(t, g, y, x, s)] |= kFloor;
        }
      std::vector<std::uint8_t> grown(s.ny * s.nx, 0);
      for (std::size_t y = 0; y < s.ny; ++y)
        for (std::size_t x = 0; x < s.nx; ++x)
          for (long dy = -static_cast<long>(n); dy <= static_cast<long>(n); ++dy)
            for (long dx = -static_cast<long>(n); dx <= static_cast<long>(n); ++dx) {
              const long yy = static_cast<long>(y) + dy, xx = static_cast<long>(x) + dx;
              if (yy < 0 || xx < 0 || yy >= static_cast<long>(s.ny) || xx >= static_cast<long>(s.nx)) continue;
              if (gdq[at(t, g, static_cast<std::size_t>(yy), static_cast<std::size_t>(xx), s)] & kSat)
                grown[y * s.nx + x] = kSat;
            }
      for (std::size_t i = 0; i < s.ny * s.nx; ++i) gdq[at(t, g, i / s.nx, i % s.nx, s)] |= grown[i];
    }
  return gdq;
}

TEST(Saturation, FlagsFromTheFirstGroupAtTheLevelOnwardAndGrowsByOnePixel) {
  TempDir dir("sat");
  const CubeShape shape{1, 6, 6, 5};
  // Level 100 everywhere. Pixel (2,2) ramps 40, 80, 100, 120, 130: it reaches the level (>=) in
  // group 2. Pixel (5,5) (a corner) reads 150 from group 3. Pixel (0,4) reads 0 in group 1: A/D
  // floor there only. Everything else reads 50.
  auto value = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) -> float {
    if (y == 2 && x == 2) return std::vector<float>{40, 80, 100, 120, 130}[g];
    if (y == 5 && x == 5) return g >= 3 ? 150.0f : 60.0f;
    if (y == 0 && x == 4) return g == 1 ? 0.0f : 50.0f;
    return 50.0f;
  };
  SaturationParams p;
  p.saturation = write_reference(dir, "sat.fits", std::vector<float>(36, 100.0f), {6, 6});
  const Result r = run_step<Saturation>(p, shape, 1, value);
  for (std::size_t g = 0; g < 5; ++g)
    for (std::size_t y = 0; y < 6; ++y)
      for (std::size_t x = 0; x < 6; ++x) {
        std::uint8_t expected = 0;
        // 3x3 box around (2,2) from group 2; the box around the corner (5,5) is clipped: 2x2.
        if (g >= 2 && y >= 1 && y <= 3 && x >= 1 && x <= 3) expected |= kSat;
        if (g >= 3 && y >= 4 && x >= 4) expected |= kSat;
        if (g == 1 && y == 0 && x == 4) expected |= kFloor;
        EXPECT_EQ(r.groupdq[at(0, g, y, x, shape)], expected) << "group " << g << " y " << y << " x " << x;
      }
  // The ramps are not changed and the pixel dq gets nothing (the reference has no DQ).
  for (std::size_t g = 0; g < 5; ++g) EXPECT_EQ(r.ramp[at(0, g, 2, 2, shape)], value(0, g, 2, 2));
  for (std::uint32_t b : r.dq) EXPECT_EQ(b, 0u);
}

TEST(Saturation, GrowthWidthFollowsNPixGrowSatAndSaturationPersists) {
  const CubeShape shape{1, 7, 9, 3};
  // One pixel (3,4) at 500 in group 1, back down to 10 in group 2: still saturated there.
  auto value = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) -> float {
    return (y == 3 && x == 4 && g == 1) ? 500.0f : 10.0f;
  };
  for (std::int64_t n : {0, 1, 2, 3}) {
    SaturationParams p;
    p.saturation = "200";
    p.n_pix_grow_sat = n;
    const Result r = run_step<Saturation>(p, shape, 1, value);
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t y = 0; y < 7; ++y)
        for (std::size_t x = 0; x < 9; ++x) {
          const bool in_box = std::abs(static_cast<long>(y) - 3) <= n && std::abs(static_cast<long>(x) - 4) <= n;
          EXPECT_EQ(r.groupdq[at(0, g, y, x, shape)], (g >= 1 && in_box) ? kSat : 0)
              << "n " << n << " group " << g << " y " << y << " x " << x;
        }
  }
}

TEST(Saturation, NanOrNoSatCheckLevelsOnlyAtTheConverterCeilingAndFlagThePixel) {
  TempDir dir("sat_nan");
  const CubeShape shape{2, 1, 4, 2};
  // Pixels: 0 level 100 (saturates at 200); 1 NaN level; 2 level 100 but NO_SAT_CHECK in the
  // reference DQ; 3 level 100 with a HOT bit in the reference DQ. Values 200 everywhere except
  // pixel 1 of integration 1, which reads 65535 (the A/D ceiling) in group 1.
  std::vector<float> level{100, std::nanf(""), 100, 100};
  std::vector<std::uint32_t> bits{0, 0, dq::no_sat_check, dq::hot};
  SaturationParams p;
  p.saturation = write_reference(dir, "sat.fits", level, {4, 1}, bits);
  p.n_pix_grow_sat = 0;
  auto value = [](std::size_t t, std::size_t g, std::size_t, std::size_t x) -> float {
    return (t == 1 && g == 1 && x == 1) ? 65535.0f : 200.0f;
  };
  const Result r = run_step<Saturation>(p, shape, 1, value);
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t g = 0; g < 2; ++g) {
      EXPECT_EQ(r.groupdq[at(t, g, 0, 0, shape)], kSat);
      EXPECT_EQ(r.groupdq[at(t, g, 0, 1, shape)], (t == 1 && g == 1) ? kSat : 0) << t << " " << g;
      EXPECT_EQ(r.groupdq[at(t, g, 0, 2, shape)], 0);
      EXPECT_EQ(r.groupdq[at(t, g, 0, 3, shape)], kSat);
    }
    EXPECT_EQ(r.dq[at_pixel(t, 0, 0, shape)], 0u);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 1, shape)], dq::no_sat_check);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 2, shape)], dq::no_sat_check);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 3, shape)], dq::hot);
  }
}

TEST(Saturation, AdFloorCanBeSwitchedOffAndExistingSaturatedBitsAreGrown) {
  const CubeShape shape{1, 3, 3, 2};
  SaturationParams p;
  p.saturation = "1000";
  p.flag_ad_floor = false;
  // Negative values everywhere (no floor flags asked for); pixel (1,1) of group 0 already has
  // SATURATED from upstream: grown over its 3x3 box in group 0 only (nothing propagates it).
  auto setup = [](Dataset& d) { d.frames<std::uint8_t>("groupdq")(0, 0, 1, 1) = kSat; };
  const Result r = run_step<Saturation>(p, shape, 1, [](auto...) { return -5.0f; }, setup);
  for (std::size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(r.groupdq[i], kSat);
    EXPECT_EQ(r.groupdq[9 + i], 0);
  }
}

TEST(Saturation, MatchesTheBruteForceFlaggingOnNoisyRampsOnAnyRankCount) {
  const CubeShape shape{5, 23, 31, 4};  // 5 integrations of 4 groups of 23 x 31
  // Values 0..900 against levels 850..1050: scattered saturation, some A/D floor at 0.
  std::vector<float> level(23 * 31);
  for (std::size_t i = 0; i < level.size(); ++i) level[i] = 850.0f + static_cast<float>((i * 7919) % 200);
  TempDir dir("sat_noisy");
  for (std::int64_t n : {1, 2}) {
    SaturationParams p;
    p.saturation = write_reference(dir, "sat" + std::to_string(n) + ".fits", level, {31, 23});
    p.n_pix_grow_sat = n;
    auto value = [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
      const float v = noisy(-10, 900, 7)(t, g, y, x);
      return v < 0 ? 0.0f : v;
    };
    const Result r = run_step<Saturation>(p, shape, 1, value);
    auto ranks = make_ramp_ranks(shape, 1, value);
    const auto ramp = gather<float>(ranks, "ramp");
    const auto expected = naive_saturation(ramp, std::vector<std::uint8_t>(ramp.size(), 0), level, shape,
                                           static_cast<std::size_t>(n));
    ASSERT_EQ(r.groupdq.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(r.groupdq[i], expected[i]) << "n_pix_grow_sat " << n << ", integration " << i / (4 * 23 * 31)
                                           << " group " << i / (23 * 31) % 4 << " y " << i / 31 % 23 << " x "
                                           << i % 31;
    std::size_t flagged = 0;
    for (std::uint8_t b : r.groupdq) flagged += (b & kSat) != 0;
    EXPECT_GT(flagged, ramp.size() / 20);  // the test exercises the growth
    EXPECT_LT(flagged, ramp.size() * 9 / 10);
    expect_partition_invariant<Saturation>(p, shape, value);
  }
}

TEST(Saturation, WrongShapedReferenceNamesTheParameter) {
  TempDir dir("sat_bad");
  SaturationParams p;
  p.saturation = write_reference(dir, "sat.fits", std::vector<float>(12, 1.0f), {4, 3});
  try {
    run_step<Saturation>(p, {2, 3, 5, 2}, 1, noisy(0, 1));
    FAIL() << "a 3x4 saturation reference was accepted for 5x2 data";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("saturation"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// superbias

TEST(Superbias, SubtractsTheBiasFromEveryGroupAndLeavesNanPixelsFlagged) {
  TempDir dir("bias");
  const CubeShape shape{2, 2, 2, 2};
  // Bias 10, NaN, 30.5, -4; reference DQ marks pixel 3 UNRELIABLE_BIAS. Ramps 1000·t + 100·g + i.
  std::vector<float> bias{10.0f, std::nanf(""), 30.5f, -4.0f};
  SuperbiasParams p;
  p.superbias = write_reference(dir, "bias.fits", bias, {2, 2}, {0, 0, 0, dq::unreliable_bias});
  auto value = [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return static_cast<float>(1000 * t + 100 * g + 2 * y + x);
  };
  const Result r = run_step<Superbias>(p, shape, 1, value);
  const float subtracted[4] = {10.0f, 0.0f, 30.5f, -4.0f};
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t g = 0; g < 2; ++g)
      for (std::size_t i = 0; i < 4; ++i)
        EXPECT_EQ(r.ramp[at(t, g, i / 2, i % 2, shape)], value(t, g, i / 2, i % 2) - subtracted[i]);
  for (std::size_t t = 0; t < 2; ++t) {
    EXPECT_EQ(r.dq[at_pixel(t, 0, 0, shape)], 0u);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 1, shape)], dq::unreliable_bias);
    EXPECT_EQ(r.dq[at_pixel(t, 1, 0, shape)], 0u);
    EXPECT_EQ(r.dq[at_pixel(t, 1, 1, shape)], dq::unreliable_bias);
  }
  expect_partition_invariant<Superbias>(p, {5, 2, 2, 2}, noisy(0, 100));
}

TEST(Superbias, WrongShapedReferenceNamesTheParameter) {
  TempDir dir("bias_bad");
  SuperbiasParams p;
  p.superbias = write_reference(dir, "bias.fits", std::vector<float>(6, 1.0f), {3, 2});
  try {
    run_step<Superbias>(p, {2, 3, 3, 2}, 1, noisy(0, 1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("superbias"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// linearity

TEST(Linearity, AppliesEachPixelsPolynomialToUnsaturatedGroups) {
  TempDir dir("lin");
  const CubeShape shape{2, 1, 5, 3};
  // Coefficients (c0, c1, c2) per pixel x:
  //   0: (1, 2, 0.5)   F -> 1 + 2F + F²/2: F = 2 -> 7, 4 -> 17, 6 -> 31
  //   1: (0, 1, 0.25)  F = 2 -> 3, 4 -> 8, 6 -> 15
  //   2: (NaN, 1, 0)   not corrected, NO_LIN_CORR
  //   3: (5, 0, 1)     c1 = 0: not corrected, NO_LIN_CORR
  //   4: (5, 3, 1) but NO_LIN_CORR in the reference DQ: not corrected, flag kept
  // Ramps F = 2, 4, 6 by group; group 2 of pixel 1 in integration 1 is SATURATED: kept raw.
  std::vector<float> c{1, 0, std::nanf(""), 5, 5,  // c0
                       2, 1, 1, 0, 3,              // c1
                       0.5f, 0.25f, 0, 1, 1};      // c2
  LinearityParams p;
  p.linearity = write_reference(dir, "lin.fits", c, {5, 1, 3}, {0, dq::hot, 0, 0, dq::no_lin_corr}, "COEFFS");
  auto value = [](std::size_t, std::size_t g, std::size_t, std::size_t) { return 2.0f * static_cast<float>(g + 1); };
  auto setup = [](Dataset& d) {
    auto gdq = d.frames<std::uint8_t>("groupdq");
    if (gdq.t_begin <= 1 && 1 < gdq.t_end) gdq(1, 2, 0, 1) = kSat;
  };
  const Result r = run_step<Linearity>(p, shape, 1, value, setup);
  const float expected[3][5] = {{7, 3, 2, 2, 2}, {17, 8, 4, 4, 4}, {31, 15, 6, 6, 6}};
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t x = 0; x < 5; ++x) {
        const float e = (t == 1 && g == 2 && x == 1) ? 6.0f : expected[g][x];
        EXPECT_EQ(r.ramp[at(t, g, 0, x, shape)], e) << "integration " << t << " group " << g << " x " << x;
      }
  for (std::size_t t = 0; t < 2; ++t) {
    EXPECT_EQ(r.dq[at_pixel(t, 0, 0, shape)], 0u);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 1, shape)], dq::hot);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 2, shape)], dq::no_lin_corr);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 3, shape)], dq::no_lin_corr);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 4, shape)], dq::no_lin_corr);
  }
  expect_partition_invariant<Linearity>(p, {7, 1, 5, 3}, noisy(0, 50), setup);
}

TEST(Linearity, ManyCoefficientsAndPixelBlocks) {
  TempDir dir("lin_many");
  // 1300 pixels (more than one 512-pixel block), a 5th-order polynomial c_k = 1/2^k:
  // F = 2 -> sum_k (2/2)^k = 6 for every pixel and group.
  const std::size_t nx = 1300;
  std::vector<float> c;
  for (int k = 0; k < 6; ++k) c.insert(c.end(), nx, std::ldexp(1.0f, -k));
  LinearityParams p;
  p.linearity = write_reference(dir, "lin.fits", c, {static_cast<long>(nx), 1, 6}, {}, "COEFFS");
  const Result r = run_step<Linearity>(p, {2, 1, nx, 2}, 1, [](auto...) { return 2.0f; });
  for (float v : r.ramp) ASSERT_EQ(v, 6.0f);
}

TEST(Linearity, RejectsReferencesOfTheWrongShape) {
  TempDir dir("lin_bad");
  LinearityParams p;
  p.linearity = write_reference(dir, "one.fits", std::vector<float>(4, 1.0f), {4, 1, 1}, {}, "COEFFS");
  try {
    run_step<Linearity>(p, {2, 1, 4, 2}, 1, noisy(0, 1));
    FAIL() << "a single coefficient plane was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linearity"), std::string::npos) << e.what();
  }
  p.linearity = write_reference(dir, "small.fits", std::vector<float>(9, 1.0f), {3, 1, 3}, {}, "COEFFS");
  EXPECT_THROW(run_step<Linearity>(p, {2, 1, 4, 2}, 1, noisy(0, 1)), Error);
}

// ---------------------------------------------------------------------------------------------
// dark_current

TEST(DarkCurrent, SubtractsGroupGsPlaneFromGroupG) {
  TempDir dir("dark");
  const CubeShape shape{3, 1, 2, 3};
  // Dark frames (5 of them, more than the 3 groups): pixel 0 has 0, 1.5, 3, 4.5, 6; pixel 1 has
  // NaN in frame 2 (not subtracted at all, UNRELIABLE_DARK) and 0, 2, -, 6, 8 otherwise.
  std::vector<float> dark{0, 0, 1.5f, 2, 3, std::nanf(""), 4.5f, 6, 6, 8};
  DarkCurrentParams p;
  p.dark = write_reference(dir, "dark.fits", dark, {2, 1, 5}, {dq::hot, 0});
  auto value = [](std::size_t t, std::size_t g, std::size_t, std::size_t x) {
    return static_cast<float>(100 * t + 10 * g + x);
  };
  const Result r = run_step<DarkCurrent>(p, shape, 1, value);
  const float sub[3][2] = {{0, 0}, {1.5f, 2}, {3, 0}};
  for (std::size_t t = 0; t < 3; ++t) {
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t x = 0; x < 2; ++x)
        EXPECT_EQ(r.ramp[at(t, g, 0, x, shape)], value(t, g, 0, x) - (x == 1 ? (g == 2 ? 0.0f : sub[g][1]) : sub[g][0]))
            << t << " " << g << " " << x;
    EXPECT_EQ(r.dq[at_pixel(t, 0, 0, shape)], dq::hot);
    EXPECT_EQ(r.dq[at_pixel(t, 0, 1, shape)], dq::unreliable_dark);
  }
  expect_partition_invariant<DarkCurrent>(p, {8, 1, 2, 3}, noisy(0, 100));
}

TEST(DarkCurrent, AveragesTheDarksFramesLikeTheReadout) {
  TempDir dir("dark_avg");
  // nframes 2, groupgap 1: group g averages dark frames 3g and 3g+1. Dark frame k = k² for the
  // single pixel: group 0 (0+1)/2 = 0.5, group 1 (9+16)/2 = 12.5, group 2 (36+49)/2 = 42.5.
  // Three groups need (3-1)·3 + 2 = 8 frames.
  std::vector<float> dark;
  for (int k = 0; k < 8; ++k) dark.push_back(static_cast<float>(k * k));
  DarkCurrentParams p;
  p.dark = write_reference(dir, "dark.fits", dark, {1, 1, 8});
  auto setup = [](Dataset& d) {
    d.attributes()["nframes"] = std::int64_t{2};
    d.attributes()["groupgap"] = std::int64_t{1};
  };
  const Result r = run_step<DarkCurrent>(p, {1, 1, 1, 3}, 1, [](auto...) { return 100.0f; }, setup);
  EXPECT_EQ(r.ramp, (std::vector<float>{99.5f, 87.5f, 57.5f}));
  // One frame short: a clear error naming the parameter and the numbers.
  p.dark = write_reference(dir, "short.fits", std::vector<float>(dark.begin(), dark.begin() + 7), {1, 1, 7});
  try {
    run_step<DarkCurrent>(p, {1, 1, 1, 3}, 1, [](auto...) { return 100.0f; }, setup);
    FAIL() << "a dark of 7 frames was accepted for 3 groups of 2 frames with gaps of 1";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("dark"), std::string::npos) << m;
    EXPECT_NE(m.find("need 8"), std::string::npos) << m;
  }
}

TEST(DarkCurrent, RejectsTooFewPlanesAndWrongShapes) {
  TempDir dir("dark_bad");
  DarkCurrentParams p;
  p.dark = write_reference(dir, "dark2.fits", std::vector<float>(4, 1.0f), {2, 1, 2});
  EXPECT_THROW(run_step<DarkCurrent>(p, {1, 1, 2, 3}, 1, noisy(0, 1)), Error);
  p.dark = write_reference(dir, "dark3.fits", std::vector<float>(3, 1.0f), {1, 1, 3});  // 1 column for 2
  EXPECT_THROW(run_step<DarkCurrent>(p, {1, 1, 2, 3}, 1, noisy(0, 1)), Error);
}

// ---------------------------------------------------------------------------------------------
// group_scale

TEST(GroupScale, RescalesByFrmdivsrOverNframesOnlyWhenTheyDiffer) {
  auto value = [](std::size_t t, std::size_t g, std::size_t, std::size_t x) {
    return static_cast<float>(10 * t + g + x);
  };
  const CubeShape shape{3, 1, 2, 2};
  // NFRAMES 5 averaged with a divisor of 8: values too low by 5/8, multiplied by 8/5 = 1.6.
  auto five_by_eight = [](Dataset& d) {
    d.attributes()["nframes"] = std::int64_t{5};
    d.attributes()["frmdivsr"] = std::int64_t{8};
  };
  const Result scaled = run_step<GroupScale>({}, shape, 1, value, five_by_eight);
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t g = 0; g < 2; ++g)
      for (std::size_t x = 0; x < 2; ++x)
        EXPECT_FLOAT_EQ(scaled.ramp[at(t, g, 0, x, shape)], value(t, g, 0, x) * 1.6f);
  expect_partition_invariant<GroupScale>({}, {7, 1, 2, 2}, value, five_by_eight);
  // Equal (a power of 2), or no FRMDIVSR at all: untouched.
  auto equal = [](Dataset& d) { d.attributes()["frmdivsr"] = std::int64_t{1}; };
  for (const auto& setup : {std::function<void(Dataset&)>(equal), std::function<void(Dataset&)>()}) {
    const Result same = run_step<GroupScale>({}, shape, 2, value, setup);
    for (std::size_t t = 0; t < 3; ++t)
      for (std::size_t g = 0; g < 2; ++g)
        for (std::size_t x = 0; x < 2; ++x) EXPECT_EQ(same.ramp[at(t, g, 0, x, shape)], value(t, g, 0, x));
  }
}

TEST(GroupScale, NeedsNframes) {
  auto drop = [](Dataset& d) { d.attributes().erase("nframes"); };
  EXPECT_THROW(run_step<GroupScale>({}, {1, 1, 1, 2}, 1, noisy(0, 1), drop), StepError);
}

// ---------------------------------------------------------------------------------------------
// gain_scale

/// Ranks holding rates as ramp_fit leaves them: data, err (DN/s), var_poisson, var_rnoise
/// (DN2/s2) and dq, data = 1 + x + 10 t, err = 0.5, var_poisson = 2, var_rnoise = 3.
std::vector<Dataset> rate_ranks(CubeShape shape, int nranks, bool variances = true) {
  std::vector<Dataset> ranks;
  for (int r = 0; r < nranks; ++r) {
    Dataset d(shape, Partition::frames(shape, nranks), r);
    d.add_cube({"data", "DN/s", "rate"}, ElementType::Float32);
    d.add_cube({"err", "DN/s", "error"}, ElementType::Float32, 0.5);
    d.add_cube({"dq", "1", "dq"}, ElementType::UInt32);
    if (variances) {
      d.add_cube({"var_poisson", "DN2/s2", "vp"}, ElementType::Float32, 2.0);
      d.add_cube({"var_rnoise", "DN2/s2", "vr"}, ElementType::Float32, 3.0);
    }
    auto data = d.frames<float>("data");
    for (std::size_t t = data.t_begin; t < data.t_end; ++t)
      for (std::size_t y = 0; y < shape.ny; ++y)
        for (std::size_t x = 0; x < shape.nx; ++x) data(t, y, x) = static_cast<float>(1 + x + 10 * t);
    ranks.push_back(std::move(d));
  }
  return ranks;
}

TEST(GainScale, ScalesRatesErrorsAndVariancesToElectrons) {
  TempDir dir("gain");
  const CubeShape shape{4, 1, 4};
  // Gain 2, 1.5, 0 (unusable), NaN (unusable).
  GainScaleParams p;
  p.gain = write_reference(dir, "gain.fits", {2.0f, 1.5f, 0.0f, std::nanf("")}, {4, 1});
  for (int n : {1, 2, 3}) {
    auto ranks = rate_ranks(shape, n);
    run_like_engine<GainScale>(p, ranks);
    const auto data = gather<float>(ranks, "data"), err = gather<float>(ranks, "err");
    const auto vp = gather<float>(ranks, "var_poisson"), vr = gather<float>(ranks, "var_rnoise");
    const auto flags = gather<std::uint32_t>(ranks, "dq");
    for (std::size_t t = 0; t < 4; ++t) {
      for (std::size_t x = 0; x < 2; ++x) {
        const float g = x == 0 ? 2.0f : 1.5f;
        const std::size_t i = t * 4 + x;
        EXPECT_EQ(data[i], static_cast<float>(1 + x + 10 * t) * g);
        EXPECT_EQ(err[i], 0.5f * g);
        EXPECT_EQ(vp[i], 2.0f * g * g);
        EXPECT_EQ(vr[i], 3.0f * g * g);
        EXPECT_EQ(flags[i], 0u);
      }
      for (std::size_t x = 2; x < 4; ++x) {
        const std::size_t i = t * 4 + x;
        EXPECT_TRUE(std::isnan(data[i]) && std::isnan(err[i]) && std::isnan(vp[i]) && std::isnan(vr[i]));
        EXPECT_EQ(flags[i], dq::no_gain_value | dq::do_not_use);
      }
    }
    for (auto& d : ranks) {
      EXPECT_EQ(d.cube("data").info.units, "electron/s");
      EXPECT_EQ(d.cube("err").info.units, "electron/s");
      EXPECT_EQ(d.cube("var_poisson").info.units, "electron2/s2");
    }
    // A second run would scale twice: refused.
    EXPECT_THROW(run_like_engine<GainScale>(p, ranks), StepError);
  }
}

TEST(GainScale, ScalarGainWithoutVariancesAndBadShapes) {
  GainScaleParams p;
  p.gain = "1.25";
  p.scale_variances = false;
  for (const auto& r : GainScale::io(p).reads) EXPECT_NE(r.name, "var_poisson");
  auto ranks = rate_ranks({2, 1, 3}, 1, false);
  run_like_engine<GainScale>(p, ranks);
  const auto data = gather<float>(ranks, "data");
  EXPECT_EQ(data, (std::vector<float>{1.25f, 2.5f, 3.75f, 13.75f, 15.0f, 16.25f}));

  TempDir dir("gain_bad");
  p.gain = write_reference(dir, "gain.fits", {1, 2}, {2, 1});
  auto wrong = rate_ranks({2, 1, 3}, 1, false);
  try {
    run_like_engine<GainScale>(p, wrong);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gain"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Declared outputs

template <class S>
void expect_grouped_writes(const typename S::Params& params) {
  for (const DataOut& w : S::io(params).writes) {
    const bool ramp_like = w.info.name == "ramp" || w.info.name == "groupdq";
    EXPECT_EQ(w.grouped, ramp_like) << S::name << " writes " << w.info.name;
    EXPECT_FALSE(w.integer) << S::name << " writes " << w.info.name;
  }
}

TEST(DetectorSteps, RampAndGroupDqWritesAreGroupedAndReferenceImagesAreRead) {
  DqInitParams dq_init;
  dq_init.mask = "@mask";
  expect_grouped_writes<DqInit>(dq_init);
  SaturationParams saturation;
  saturation.saturation = "1e4";
  expect_grouped_writes<Saturation>(saturation);
  expect_grouped_writes<Superbias>({});
  expect_grouped_writes<Linearity>({});
  expect_grouped_writes<DarkCurrent>({});
  expect_grouped_writes<GroupScale>({});
  expect_grouped_writes<GainScale>({});
  bool reads_mask = false;
  for (const auto& r : DqInit::io(dq_init).reads) reads_mask |= r.kind == DataKind::Image && r.name == "mask";
  EXPECT_TRUE(reads_mask);
  for (const auto& r : Saturation::io(saturation).reads) EXPECT_NE(r.kind, DataKind::Image);
}

// ---------------------------------------------------------------------------------------------
// Throughput of the kernels (not a timed test: run with --gtest_also_run_disabled_tests).

TEST(DetectorThroughput, DISABLED_Kernels) {
  // NIRISS-SOSS-like integrations: 256 × 2048 pixels, 6 groups, 8 integrations (25 M samples).
  // Every figure is ramp samples (integrations × groups × pixels) per second of the step's
  // work, pixel-dq updates included, so that steps compare as parts of the chain.
  const std::size_t ny = 256, nx = 2048, ng = 6, nint = 8, npix = ny * nx, per = ng * npix;
  std::vector<float> ramp(nint * per), plane(npix, 10.0f), coeffs(4 * npix), dark(ng * npix, 0.5f);
  std::vector<std::uint8_t> gdq(nint * per, 0);
  std::vector<std::uint32_t> pdq(nint * npix, 0), mask(npix, 4);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(1000.0f, 60000.0f);
  for (float& v : ramp) v = u(rng);
  std::vector<float> level(npix, 59000.0f);  // about 2% of the samples saturate, scattered everywhere
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t i = 0; i < npix; ++i) coeffs[k * npix + i] = k == 1 ? 1.0f : 1e-6f;
  auto time = [&](const char* what, const std::function<void(std::size_t)>& body) {
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t t = 0; t < nint; ++t) body(t);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-16s %8.1f M samples/s\n", what, static_cast<double>(nint * per) / s / 1e6);
  };
  time("dq_init", [&](std::size_t t) { or_mask_into({pdq.data() + t * npix, npix}, mask); });
  SaturationScratch scratch;
  time("saturation, 2%", [&](std::size_t t) {
    flag_saturation_integration({ramp.data() + t * per, per}, {gdq.data() + t * per, per}, level, ng, ny, nx, 1,
                                true, scratch);
    or_mask_into({pdq.data() + t * npix, npix}, mask);
  });
  std::vector<float> high(npix, 1e9f);
  std::fill(gdq.begin(), gdq.end(), 0);
  time("saturation, 0%", [&](std::size_t t) {
    flag_saturation_integration({ramp.data() + t * per, per}, {gdq.data() + t * per, per}, high, ng, ny, nx, 1,
                                true, scratch);
    or_mask_into({pdq.data() + t * npix, npix}, mask);
  });
  time("superbias", [&](std::size_t t) {
    subtract_from_groups({ramp.data() + t * per, per}, plane, ng);
    or_mask_into({pdq.data() + t * npix, npix}, mask);
  });
  time("linearity", [&](std::size_t t) {
    linearize_integration({ramp.data() + t * per, per}, {gdq.data() + t * per, per}, coeffs, 4, ng, npix);
    or_mask_into({pdq.data() + t * npix, npix}, mask);
  });
  time("dark_current", [&](std::size_t t) {
    subtract_dark_integration({ramp.data() + t * per, per}, dark, ng, npix);
    or_mask_into({pdq.data() + t * npix, npix}, mask);
  });
  time("group_scale", [&](std::size_t t) { scale_values({ramp.data() + t * per, per}, 1.6f); });
  // gain_scale works on rates (one image per integration): count its pixels as samples.
  std::vector<float> rate(nint * npix, 3.0f), err(nint * npix, 1.0f), vp(nint * npix, 1.0f), vr(nint * npix, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t t = 0; t < nint; ++t)
    scale_by_gain({rate.data() + t * npix, npix}, {err.data() + t * npix, npix}, {vp.data() + t * npix, npix},
                  {vr.data() + t * npix, npix}, plane);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-14s %8.1f M pixels/s (4 cubes each)\n", "gain_scale", static_cast<double>(nint * npix) / s / 1e6);
  // A memory copy of the same ramps, for scale.
  std::vector<float> copy(ramp.size());
  const auto c0 = std::chrono::steady_clock::now();
  std::copy(ramp.begin(), ramp.end(), copy.begin());
  const double cs = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
  std::printf("%-14s %8.1f M samples/s\n", "memcpy", static_cast<double>(ramp.size()) / cs / 1e6);
}

}  // namespace
