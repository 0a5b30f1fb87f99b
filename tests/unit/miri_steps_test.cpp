// ExoTiC-MIRI stage-1 frame steps (drop_groups, custom_gain, custom_linearity) on synthetic
// ramps with answers worked out here: flags where asked, a uniform gain image, and a known
// polynomial non-linearity recovered; each identical on 1, 2 and 3 emulated ranks.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/miri/custom_gain.hpp"
#include "steps/miri/custom_linearity.hpp"
#include "steps/miri/drop_groups.hpp"
#include "support/emulated_ranks.hpp"
#include "support/ramp_ranks.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"

namespace {

using namespace tessera;
namespace dq = tessera::jwst::dq;
using tessera::testing::make_ramp_ranks;
using tessera::testing::run_like_engine;

/// A grouped or ungrouped cube gathered from the emulated ranks' frame slabs, (t, g, y, x) order.
template <class T>
std::vector<T> gather(std::vector<Dataset>& ranks, const std::string& name) {
  const CubeShape s = ranks[0].shape();
  const std::size_t depth = ranks[0].cube(name).depth(s);
  std::vector<T> out(s.nt * depth * s.ny * s.nx);
  for (auto& d : ranks) {
    auto slab = d.frames<T>(name);
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
      auto frame = slab.frame(t);
      std::copy(frame.begin(), frame.end(), out.begin() + static_cast<std::ptrdiff_t>(t * frame.size()));
    }
  }
  return out;
}

// ---------------------------------------------------------------- drop_groups

TEST(DropGroups, ResolvesNegativeIndicesLikePython) {
  EXPECT_EQ(steps::resolve_drop_groups({0, -1, 2, 2, -6}, 6), (std::vector<std::size_t>{0, 2, 5}));
  EXPECT_TRUE(steps::resolve_drop_groups({}, 6).empty());
  try {
    steps::resolve_drop_groups({6}, 6);
    FAIL() << "expected a StepError";
  } catch (const StepError& e) {
    EXPECT_NE(std::string(e.what()).find("drop_groups"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("6 groups"), std::string::npos) << e.what();
  }
  EXPECT_THROW(steps::resolve_drop_groups({-7}, 6), StepError);
}

TEST(DropGroups, FlagsExactlyTheNamedGroupsOfEveryIntegration) {
  const CubeShape shape{5, 3, 4, 6};  // nt, ny, nx, ng
  steps::DropGroupsParams p;
  p.drop_groups = {0, -1, 2};
  for (int n : {1, 2, 3}) {
    auto ranks = make_ramp_ranks(shape, n, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
      return static_cast<float>(t * 1000 + g * 100 + y * 10 + x);
    });
    // A flag already there stays.
    for (auto& d : ranks) {
      auto gdq = d.frames<std::uint8_t>("groupdq");
      for (std::size_t t = gdq.t_begin; t < gdq.t_end; ++t) gdq(t, 3, 1, 2) = dq::group(dq::saturated);
    }
    run_like_engine<steps::DropGroups>(p, ranks);
    const auto gdq = gather<std::uint8_t>(ranks, "groupdq");
    const auto ramp = gather<float>(ranks, "ramp");
    for (std::size_t t = 0; t < shape.nt; ++t)
      for (std::size_t g = 0; g < shape.ng; ++g)
        for (std::size_t y = 0; y < shape.ny; ++y)
          for (std::size_t x = 0; x < shape.nx; ++x) {
            const std::size_t i = ((t * shape.ng + g) * shape.ny + y) * shape.nx + x;
            std::uint8_t want = (g == 0 || g == 2 || g == 5) ? dq::group(dq::do_not_use) : 0;
            if (g == 3 && y == 1 && x == 2) want |= dq::group(dq::saturated);
            ASSERT_EQ(gdq[i], want) << n << " ranks, t " << t << " g " << g << " y " << y << " x " << x;
            ASSERT_EQ(ramp[i], static_cast<float>(t * 1000 + g * 100 + y * 10 + x));
          }
  }
}

TEST(DropGroups, IndexBeyondTheRampIsAnError) {
  auto ranks = make_ramp_ranks({2, 2, 2, 4}, 1, [](auto...) { return 0.0f; });
  steps::DropGroupsParams p;
  p.drop_groups = {4};
  EXPECT_THROW(run_like_engine<steps::DropGroups>(p, ranks), StepError);
}

// ---------------------------------------------------------------- custom_gain

TEST(CustomGain, WritesAUniformGainImageOnEveryRank) {
  const CubeShape shape{4, 5, 7, 3};
  for (double value : {3.1, 5.5}) {
    steps::CustomGainParams p;
    if (value != 3.1) p.gain_value = value;
    EXPECT_EQ(steps::CustomGainParams{}.gain_value, 3.1);
    auto ranks = make_ramp_ranks(shape, 3, [](auto...) { return 1.0f; });
    run_like_engine<steps::CustomGain>(p, ranks);
    for (auto& d : ranks) {
      const Image& gain = d.image("gain");
      EXPECT_EQ(gain.ny, 5u);
      EXPECT_EQ(gain.nx, 7u);
      EXPECT_EQ(gain.info.units, "electron/DN");
      ASSERT_EQ(gain.values.size(), 35u);
      for (float v : gain.values) ASSERT_EQ(v, static_cast<float>(value));
    }
  }
}

// ---------------------------------------------------------------- custom_linearity

/// Synthetic MIRI-like ramps: true charge Q = f·(g+1) (DN, bias removed) with a flux f per
/// amplifier (twice as much outside the rows used); the detector reports raw r with
/// r + c2 r² + c3 r³ = Q (the JWST linearity convention, per amplifier). Columns 0..3 are
/// reference pixels (flagged, flat 900 DN); one pixel saturates from group 45 on.
struct Truth {
  static constexpr std::size_t nt = 6, ny = 24, nx = 16, ng = 50;
  static constexpr std::size_t row_begin = 4, row_end = 19;
  static constexpr std::size_t sat_y = 6, sat_x = 9, sat_group = 45;
  double flux[4] = {300, 450, 600, 750};
  double c2[4] = {6e-6, 4e-6, 3e-6, 2e-6};
  double c3[4] = {2e-11, 1e-11, 0, 5e-12};

  double charge(std::size_t t, std::size_t g, std::size_t y, std::size_t x) const {
    const double scale = (y >= row_begin && y <= row_end) ? 1.0 : 2.0;
    return scale * flux[x % 4] * (1.0 + 0.001 * static_cast<double>(t)) * static_cast<double>(g + 1) * 0.5;
  }
  static bool reference(std::size_t x) { return x < 4; }
  static bool saturated(std::size_t g, std::size_t y, std::size_t x) {
    return y == sat_y && x == sat_x && g >= sat_group;
  }
  double raw(std::size_t t, std::size_t g, std::size_t y, std::size_t x) const {
    if (reference(x)) return 900.0;
    if (saturated(g, y, x)) return 65535.0;
    const double q = charge(t, g, y, x);
    const std::size_t a = x % 4;
    double r = q;  // Newton on r + c2 r² + c3 r³ − q = 0
    for (int i = 0; i < 60; ++i)
      r -= (r + c2[a] * r * r + c3[a] * r * r * r - q) / (1 + 2 * c2[a] * r + 3 * c3[a] * r * r);
    return r;
  }
  static CubeShape shape() { return {nt, ny, nx, ng}; }
};

std::vector<Dataset> truth_ranks(const Truth& truth, int n) {
  auto ranks = make_ramp_ranks(Truth::shape(), n, [&](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return static_cast<float>(truth.raw(t, g, y, x));
  });
  for (auto& d : ranks) {
    auto pixel_dq = d.frames<std::uint32_t>("dq");
    auto gdq = d.frames<std::uint8_t>("groupdq");
    for (std::size_t t = pixel_dq.t_begin; t < pixel_dq.t_end; ++t) {
      for (std::size_t y = 0; y < Truth::ny; ++y)
        for (std::size_t x = 0; x < 4; ++x) pixel_dq(t, y, x) = dq::reference_pixel;
      for (std::size_t g = Truth::sat_group; g < Truth::ng; ++g)
        gdq(t, g, Truth::sat_y, Truth::sat_x) = dq::group(dq::saturated);
    }
  }
  return ranks;
}

steps::CustomLinearityParams truth_params(const std::string& method) {
  steps::CustomLinearityParams p;
  p.row_idx_start_used = Truth::row_begin;
  p.row_idx_end_used = static_cast<std::int64_t>(Truth::row_end) - static_cast<std::int64_t>(Truth::ny);  // -5
  p.method = method;
  return p;
}

TEST(CustomLinearity, DefaultsAreExoticMiris) {
  const steps::CustomLinearityParams p;
  EXPECT_EQ(p.group_idx_start_fit, 10);
  EXPECT_EQ(p.group_idx_end_fit, 40);
  EXPECT_EQ(p.group_idx_start_derive, 10);
  EXPECT_EQ(p.group_idx_end_derive, -1);
  EXPECT_EQ(p.row_idx_start_used, 350);
  EXPECT_EQ(p.row_idx_end_used, 386);
  EXPECT_FALSE(p.draw_corrections);
  EXPECT_EQ(p.method, "exotic");
}

TEST(CustomLinearity, JointFitRecoversTheInjectedPolynomial) {
  const Truth truth;
  auto ranks = truth_ranks(truth, 1);
  run_like_engine<steps::CustomLinearity>(truth_params("joint"), ranks);
  const Image& coeffs = ranks[0].image("custom_linearity_coeffs");
  ASSERT_EQ(coeffs.ny, 4u);
  ASSERT_EQ(coeffs.nx, 4u);
  EXPECT_FALSE(ranks[0].images().count("custom_linearity_sums")) << "scratch image left behind";
  for (std::size_t a = 0; a < 4; ++a) {
    EXPECT_EQ(coeffs.values[a * 4 + 0], 0.0f);
    EXPECT_EQ(coeffs.values[a * 4 + 1], 1.0f);
    EXPECT_NEAR(coeffs.values[a * 4 + 2], truth.c2[a], 2e-3 * truth.c2[a]) << "amplifier " << a;
    EXPECT_NEAR(coeffs.values[a * 4 + 3], truth.c3[a], 2e-13) << "amplifier " << a;
  }
  // Corrected ramps are the true charge, also outside the rows used; reference pixels and
  // saturated groups are left as they were.
  const auto ramp = gather<float>(ranks, "ramp");
  double worst = 0;
  for (std::size_t t = 0; t < Truth::nt; ++t)
    for (std::size_t g = 0; g < Truth::ng; ++g)
      for (std::size_t y = 0; y < Truth::ny; ++y)
        for (std::size_t x = 0; x < Truth::nx; ++x) {
          const float v = ramp[((t * Truth::ng + g) * Truth::ny + y) * Truth::nx + x];
          if (Truth::reference(x) || Truth::saturated(g, y, x)) {
            ASSERT_EQ(v, static_cast<float>(truth.raw(t, g, y, x)));
            continue;
          }
          const double q = truth.charge(t, g, y, x);
          worst = std::max(worst, std::abs(v - q) / q);
        }
  EXPECT_LT(worst, 2e-5) << "largest relative error of the corrected ramps";
  std::printf("joint: largest relative error of corrected ramps %.3g\n", worst);
}

/// ExoTiC-MIRI's two-stage fit, done independently: mean ramp per amplifier in double, a
/// line by the closed-form least-squares formulas, then the 2x2 normal equations for c2, c3.
std::array<std::array<double, 2>, 4> exotic_by_hand(const Truth& truth) {
  std::array<std::array<double, 2>, 4> out{};
  for (std::size_t a = 0; a < 4; ++a) {
    std::vector<double> mean(Truth::ng, 0.0);
    double count = 0;
    for (std::size_t t = 0; t < Truth::nt; ++t)
      for (std::size_t y = Truth::row_begin; y <= Truth::row_end; ++y)
        for (std::size_t x = a; x < Truth::nx; x += 4) {
          if (Truth::reference(x) || (y == Truth::sat_y && x == Truth::sat_x)) continue;
          for (std::size_t g = 0; g < Truth::ng; ++g) mean[g] += static_cast<float>(truth.raw(t, g, y, x));
          count += 1;
        }
    for (double& m : mean) m /= count;
    double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
    for (std::size_t g = 10; g <= 40; ++g) {
      sx += g, sy += mean[g], sxx += double(g * g), sxy += g * mean[g], n += 1;
    }
    const double b = (n * sxy - sx * sy) / (n * sxx - sx * sx), a0 = (sy - b * sx) / n;
    double m11 = 0, m12 = 0, m22 = 0, v1 = 0, v2 = 0;
    for (std::size_t g = 10; g < Truth::ng; ++g) {
      const double r = mean[g], d = a0 + b * g - r, x2 = r * r, x3 = r * r * r;
      m11 += x2 * x2, m12 += x2 * x3, m22 += x3 * x3, v1 += x2 * d, v2 += x3 * d;
    }
    const double det = m11 * m22 - m12 * m12;
    out[a] = {(v1 * m22 - v2 * m12) / det, (m11 * v2 - m12 * v1) / det};
  }
  return out;
}

TEST(CustomLinearity, ExoticFitIsExoticMirisTwoStageFit) {
  const Truth truth;
  auto ranks = truth_ranks(truth, 1);
  run_like_engine<steps::CustomLinearity>(truth_params("exotic"), ranks);
  const Image& coeffs = ranks[0].image("custom_linearity_coeffs");
  const auto want = exotic_by_hand(truth);
  for (std::size_t a = 0; a < 4; ++a) {
    EXPECT_NEAR(coeffs.values[a * 4 + 2], want[a][0], 1e-3 * std::abs(want[a][0])) << "amplifier " << a;
    EXPECT_NEAR(coeffs.values[a * 4 + 3], want[a][1], 1e-3 * std::abs(want[a][1])) << "amplifier " << a;
  }
  // The line through groups 10..40 takes their curvature for the truth, and with c0 and c1
  // fixed the polynomial cannot follow it all: the corrected ramps stay slightly curved and
  // their slope biased. Measured here (and quoted in docs/miri-stage1.md) on one pixel of
  // each amplifier: rms distance from a straight line over groups 10..49, and the slope over
  // those groups relative to the true one.
  const auto ramp = gather<float>(ranks, "ramp");
  auto line_rms_and_slope = [](const std::vector<double>& v) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
    for (std::size_t g = 10; g < v.size(); ++g) sx += g, sy += v[g], sxx += double(g * g), sxy += g * v[g], n += 1;
    const double b = (n * sxy - sx * sy) / (n * sxx - sx * sx), a0 = (sy - b * sx) / n;
    double ss = 0;
    for (std::size_t g = 10; g < v.size(); ++g) ss += (v[g] - a0 - b * g) * (v[g] - a0 - b * g);
    return std::pair{std::sqrt(ss / n), b};
  };
  for (std::size_t x = 4; x < 8; ++x) {
    const std::size_t y = 10, t = 0;
    std::vector<double> raw(Truth::ng), corr(Truth::ng);
    for (std::size_t g = 0; g < Truth::ng; ++g) {
      raw[g] = truth.raw(t, g, y, x);
      corr[g] = ramp[((t * Truth::ng + g) * Truth::ny + y) * Truth::nx + x];
    }
    const double true_slope = truth.charge(t, 1, y, x) - truth.charge(t, 0, y, x);
    const auto [raw_rms, raw_slope] = line_rms_and_slope(raw);
    const auto [corr_rms, corr_slope] = line_rms_and_slope(corr);
    std::printf("exotic, amplifier %zu: rms from a line raw %.3g DN, corrected %.3g DN; slope / true raw %.4f, "
                "corrected %.4f\n",
                x % 4, raw_rms, corr_rms, raw_slope / true_slope, corr_slope / true_slope);
    EXPECT_LT(corr_rms, raw_rms) << "amplifier " << x % 4;
    EXPECT_LT(std::abs(corr_slope / true_slope - 1), std::abs(raw_slope / true_slope - 1)) << "amplifier " << x % 4;
  }
}

TEST(CustomLinearity, SameResultOnOneTwoAndThreeRanks) {
  const Truth truth;
  for (const std::string method : {"exotic", "joint"}) {
    std::vector<float> first_ramp, first_coeffs;
    for (int n : {1, 2, 3}) {
      auto ranks = truth_ranks(truth, n);
      run_like_engine<steps::CustomLinearity>(truth_params(method), ranks);
      const auto ramp = gather<float>(ranks, "ramp");
      for (auto& d : ranks) EXPECT_EQ(d.image("custom_linearity_coeffs").values, ranks[0].image("custom_linearity_coeffs").values);
      if (n == 1) {
        first_ramp = ramp;
        first_coeffs = ranks[0].image("custom_linearity_coeffs").values;
      } else {
        EXPECT_EQ(ramp, first_ramp) << method << " on " << n << " ranks";
        EXPECT_EQ(ranks[0].image("custom_linearity_coeffs").values, first_coeffs) << method << " on " << n << " ranks";
      }
    }
  }
}

TEST(CustomLinearity, DrawsItsPlotWhenAsked) {
  const Truth truth;
  auto ranks = truth_ranks(truth, 2);
  auto p = truth_params("exotic");
  p.draw_corrections = true;
  tessera::testing::TempDir dir("custom_linearity");
  run_like_engine<steps::CustomLinearity>(p, ranks, dir.path(), 1);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "custom_linearity.png"));
}

TEST(CustomLinearity, RangesOutsideTheDataNameTheParameter) {
  const Truth truth;
  auto expect_error = [&](steps::CustomLinearityParams p, const std::string& param) {
    auto ranks = truth_ranks(truth, 1);
    try {
      run_like_engine<steps::CustomLinearity>(p, ranks);
      ADD_FAILURE() << "expected a StepError naming " << param;
    } catch (const StepError& e) {
      EXPECT_NE(std::string(e.what()).find(param), std::string::npos) << e.what();
    }
  };
  expect_error(steps::CustomLinearityParams{}, "row_idx_start_used");  // 350 rows into a 24-row test detector
  auto p = truth_params("exotic");
  p.group_idx_end_fit = 50;
  expect_error(p, "group_idx_end_fit");
  p = truth_params("exotic");
  p.group_idx_start_derive = 48;
  p.group_idx_end_derive = 48;
  expect_error(p, "group_idx_start_derive");
  p = truth_params("exotic");
  p.row_idx_start_used = 0;
  p.row_idx_end_used = 0;
  p.group_idx_start_fit = 0;
  // Row 0 has science pixels in every amplifier except 0, whose only columns (0, 4, 8, 12)
  // include reference pixel 0; flag the rest of amplifier 0 do_not_use to leave it empty.
  auto ranks = truth_ranks(truth, 1);
  for (auto& d : ranks) {
    auto pixel_dq = d.frames<std::uint32_t>("dq");
    for (std::size_t t = pixel_dq.t_begin; t < pixel_dq.t_end; ++t)
      for (std::size_t x = 0; x < Truth::nx; x += 4) pixel_dq(t, 0, x) |= dq::do_not_use;
  }
  try {
    run_like_engine<steps::CustomLinearity>(p, ranks);
    ADD_FAILURE() << "expected a StepError for an empty amplifier";
  } catch (const StepError& e) {
    EXPECT_NE(std::string(e.what()).find("amplifier 0 has no usable pixel"), std::string::npos) << e.what();
  }
}

// Throughput on one core (not run by default): MIRI-LRS-like 40 integrations x 40 groups x
// 416 x 72. Run with --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'.
TEST(MiriSteps, DISABLED_Throughput) {
  const CubeShape shape{40, 416, 72, 40};
  const double samples = static_cast<double>(shape.nt * shape.ng * shape.ny * shape.nx);
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return static_cast<float>((g + 1) * (100 + (x * 7 + y) % 50) + t);
  });
  auto time_it = [&](const char* label, auto&& f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-18s %.3f s, %.0f M samples/s\n", label, seconds, samples / seconds / 1e6);
  };
  steps::DropGroupsParams drop;
  drop.drop_groups = {0, 1, -1};
  time_it("drop_groups", [&] { run_like_engine<steps::DropGroups>(drop, ranks); });
  steps::CustomLinearityParams linearity;
  linearity.group_idx_end_fit = 35;  // the default 40 needs at least 41 groups
  time_it("custom_linearity", [&] { run_like_engine<steps::CustomLinearity>(linearity, ranks); });
  std::vector<float> copy(ranks[0].cube("ramp").values.index() == 0 ? std::get<0>(ranks[0].cube("ramp").values).size() : 0);
  time_it("memcpy (ramp)", [&] {
    const auto& v = std::get<std::vector<float>>(ranks[0].cube("ramp").values);
    std::copy(v.begin(), v.end(), copy.begin());
  });
}

}  // namespace
