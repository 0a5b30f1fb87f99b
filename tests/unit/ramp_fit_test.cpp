// ramp_fit on hand-made ramps whose slopes and variances are worked out in the comments from
// the least-squares formulas; on many simulated noisy ramps (pull statistics); and on 1, 2 and 3
// emulated ranks (identical outputs).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/ramps/ramp_fit.hpp"
#include "support/emulated_ranks.hpp"
#include "support/ramp_ranks.hpp"
#include "tessera/errors.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;
namespace dq = tessera::jwst::dq;
using tessera::testing::make_ramp_ranks;
using tessera::testing::RampValue;
using tessera::testing::run_like_engine;

constexpr std::uint8_t kJump = dq::group(dq::jump_det);
constexpr std::uint8_t kSat = dq::group(dq::saturated);
constexpr std::uint8_t kDnu = dq::group(dq::do_not_use);
constexpr double kTgroup = 10.0;  // make_ramp_ranks' default: tgroup = tframe = 10 s, nframes 1, groupgap 0

RampFitParams params(std::string weighting = "optimal", std::string variance = "pipeline", double gain = 2.0,
                     double read_noise = 5.0) {
  RampFitParams p;
  p.gain = std::to_string(gain);
  p.read_noise = std::to_string(read_noise);
  p.weighting = std::move(weighting);
  p.variance_model = std::move(variance);
  return p;
}

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

/// Group flags of (t, g, y, x).
using FlagValue = std::function<std::uint8_t(std::size_t t, std::size_t g, std::size_t y, std::size_t x)>;

struct Fitted {
  std::vector<float> data, err, var_poisson, var_rnoise;
  std::vector<std::uint32_t> dq;
  std::vector<double> unusable;
  std::vector<Dataset> ranks;
};

Fitted fit(const RampFitParams& p, CubeShape shape, int nranks, const RampValue& value, const FlagValue& flags = {},
           const std::function<void(Dataset&)>& setup = {}) {
  Fitted r;
  r.ranks = make_ramp_ranks(shape, nranks, value, kTgroup);
  for (auto& d : r.ranks) {
    if (flags) {
      auto gdq = d.frames<std::uint8_t>("groupdq");
      for (std::size_t t = gdq.t_begin; t < gdq.t_end; ++t)
        for (std::size_t g = 0; g < shape.ng; ++g)
          for (std::size_t y = 0; y < shape.ny; ++y)
            for (std::size_t x = 0; x < shape.nx; ++x) gdq(t, g, y, x) = flags(t, g, y, x);
    }
    if (setup) setup(d);
  }
  run_like_engine<RampFit>(p, r.ranks);
  r.data = gather<float>(r.ranks, "data");
  r.err = gather<float>(r.ranks, "err");
  r.var_poisson = gather<float>(r.ranks, "var_poisson");
  r.var_rnoise = gather<float>(r.ranks, "var_rnoise");
  r.dq = gather<std::uint32_t>(r.ranks, "dq");
  r.unusable = r.ranks[0].frame_vector("ramp_fit_unusable").values;
  return r;
}

/// One pixel, one integration: the ramp `reads` with `flags` (zero if empty).
Fitted fit_one(const RampFitParams& p, const std::vector<float>& reads, const std::vector<std::uint8_t>& flags = {}) {
  const CubeShape shape{1, 1, 1, reads.size()};
  return fit(p, shape, 1, [&](std::size_t, std::size_t g, std::size_t, std::size_t) { return reads[g]; },
             [&](std::size_t, std::size_t g, std::size_t, std::size_t) { return flags.empty() ? 0 : flags[g]; });
}

TEST(RampFit, NoiselessLinearRampGivesTheExactSlope) {
  // y = 100 + 25 g DN with reads 10 s apart: 2.5 DN/s for every weighting. A 3 × 4 cube of two
  // integrations, the rate depending on the pixel: 0.5 (x + 1) (y + 1) DN/s.
  const CubeShape shape{2, 3, 4, 12};
  auto value = [](std::size_t, std::size_t g, std::size_t y, std::size_t x) {
    return static_cast<float>(100.0 + 0.5 * double(x + 1) * double(y + 1) * kTgroup * double(g));
  };
  for (const char* w : {"optimal", "unweighted"}) {
    const Fitted r = fit(params(w), shape, 1, value);
    for (std::size_t t = 0; t < 2; ++t)
      for (std::size_t y = 0; y < 3; ++y)
        for (std::size_t x = 0; x < 4; ++x) {
          const std::size_t i = (t * 3 + y) * 4 + x;
          EXPECT_NEAR(r.data[i], 0.5 * double(x + 1) * double(y + 1), 1e-5) << w << " pixel " << i;
          EXPECT_EQ(r.dq[i], 0u);
        }
    EXPECT_EQ(r.unusable, (std::vector<double>{0, 0}));
  }
}

TEST(RampFit, UnweightedIsOrdinaryLeastSquaresWithItsVariances) {
  // y = {0, 3, 2, 7, 9}: x - xbar = {-2,-1,0,1,2}, Sxx = 10, sum (x - xbar) y = -3 + 7 + 18 = 22,
  // slope 2.2 DN/group = 0.22 DN/s.
  // Pipeline read-noise variance 12 rn^2 / ((n^3 - n) tgroup^2) = 12*25/(120*100) = 0.025.
  // Poisson: rate estimate (9 - 0)/(4*10) = 0.225 DN/s; 0.225/(tgroup gain (n-1)) = 0.225/80.
  const RampFitParams p = params("unweighted");
  const Fitted r = fit_one(p, {0, 3, 2, 7, 9});
  EXPECT_NEAR(r.data[0], 0.22, 1e-6);
  EXPECT_NEAR(r.var_rnoise[0], 0.025, 1e-8);
  EXPECT_NEAR(r.var_poisson[0], 0.225 / 80.0, 1e-9);
  EXPECT_NEAR(r.err[0], std::sqrt(0.025 + 0.225 / 80.0), 1e-7);
  EXPECT_EQ(r.dq[0], 0u);

  // Propagated: read noise rn^2 sum c_i^2 with c_i = (x_i - xbar)/(Sxx tgroup) = {-2,-1,0,1,2}/100:
  // 25 * 10/10^4 = 0.025 (the same for OLS). Poisson: the slope is sum_j C_j d_j over the
  // increments d_j (variance rate tgroup / gain each), C_j = sum_{i>=j} c_i = {2,3,3,2}/100:
  // 0.225 * 10/2 * 26/10^4 = 0.002925, which is 6(n^2+1)/(5n(n^2-1)) rate/(gain tgroup).
  const Fitted q = fit_one(params("unweighted", "propagated"), {0, 3, 2, 7, 9});
  EXPECT_NEAR(q.data[0], 0.22, 1e-6);
  EXPECT_NEAR(q.var_rnoise[0], 0.025, 1e-8);
  EXPECT_NEAR(q.var_poisson[0], 0.002925, 1e-9);
  EXPECT_NEAR(q.var_poisson[0], 6.0 * 26 / (5.0 * 5 * 24) * 0.225 / (2 * kTgroup), 1e-9);
}

TEST(RampFit, OneJumpGivesTwoSegmentsCombinedByInverseVariance) {
  // Jump flagged at group 3 of 8: segments groups 0-2 (n = 3) and 3-7 (n = 5), the jump group
  // starting the second. Slopes 2 and 3 DN/group: 0.2 and 0.3 DN/s. Low SNR: optimal weights
  // are uniform here (S = 8 e / sqrt(10^2 + 8) < 5 for the first; 24/sqrt(124) for the second).
  const std::vector<float> reads{0, 2, 4, 100, 103, 106, 109, 112};
  const std::vector<std::uint8_t> flags{0, 0, 0, kJump, 0, 0, 0, 0};
  // rn = 5, gain = 2, tgroup = 10. Rate estimate for Poisson: rises (4 + 12) over (2 + 4)
  // intervals: 16/60 DN/s.
  const double rate_est = 16.0 / 60.0;
  const double vr1 = 12.0 * 25 / ((27 - 3) * 100.0), vr2 = 12.0 * 25 / ((125 - 5) * 100.0);  // 0.125, 0.025
  const double vp1 = rate_est / (10 * 2 * 2.0), vp2 = rate_est / (10 * 2 * 4.0);
  const double w1 = 1 / (vr1 + vp1), w2 = 1 / (vr2 + vp2);
  const double rate = (0.2 * w1 + 0.3 * w2) / (w1 + w2);
  for (const char* w : {"optimal", "unweighted"}) {
    const Fitted r = fit_one(params(w), reads, flags);
    EXPECT_NEAR(r.data[0], rate, 1e-6) << w;
    EXPECT_NEAR(r.var_rnoise[0], 1 / (1 / vr1 + 1 / vr2), 1e-8) << w;  // 1/48
    EXPECT_NEAR(r.var_poisson[0], 1 / (1 / vp1 + 1 / vp2), 1e-9) << w;
    EXPECT_NEAR(r.err[0], std::sqrt(1 / (w1 + w2)), 1e-7) << w;
    EXPECT_EQ(r.dq[0], dq::jump_det) << w;
  }
  // Sanity of the hand numbers: the second (longer, less noisy) segment dominates.
  EXPECT_GT(rate, 0.28);
  EXPECT_LT(rate, 0.3);
}

TEST(RampFit, SaturationAfterKGroupsUsesOnlyTheFirstK) {
  // 2.5 DN/s for 4 groups, then saturated (garbage values that must not be used).
  const std::vector<float> reads{0, 25, 50, 75, 65535, 65535, 65535, 65535};
  const std::vector<std::uint8_t> flags{0, 0, 0, 0, kSat, kSat, kSat, kSat};
  for (const char* w : {"optimal", "unweighted"}) {
    const Fitted r = fit_one(params(w), reads, flags);
    EXPECT_NEAR(r.data[0], 2.5, 1e-6) << w;
    // n = 4: read noise 12*25/(60*100) = 0.05; Poisson 2.5/(10*2*3).
    EXPECT_NEAR(r.var_rnoise[0], 0.05, 1e-8) << w;
    EXPECT_NEAR(r.var_poisson[0], 2.5 / 60.0, 1e-7) << w;
    EXPECT_EQ(r.dq[0], dq::saturated) << w;
  }
}

TEST(RampFit, AllGroupsFlaggedGiveNaNAndDoNotUse) {
  // Pixel 0: every group DO_NOT_USE; pixel 1: saturated from group 0; pixel 2 fine.
  const CubeShape shape{2, 1, 3, 5};
  auto value = [](std::size_t, std::size_t g, std::size_t, std::size_t) { return float(10 * g); };
  auto flags = [](std::size_t, std::size_t, std::size_t, std::size_t x) -> std::uint8_t {
    return x == 0 ? kDnu : x == 1 ? kSat : 0;
  };
  const Fitted r = fit(params(), shape, 1, value, flags);
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t x : {0, 1}) {
      const std::size_t i = t * 3 + x;
      EXPECT_TRUE(std::isnan(r.data[i]));
      EXPECT_TRUE(std::isnan(r.err[i]));
      EXPECT_TRUE(std::isnan(r.var_poisson[i]));
      EXPECT_TRUE(std::isnan(r.var_rnoise[i]));
      EXPECT_TRUE(r.dq[i] & dq::do_not_use);
    }
    EXPECT_EQ(r.dq[t * 3 + 0], dq::do_not_use);
    EXPECT_EQ(r.dq[t * 3 + 1], dq::do_not_use | dq::saturated);
    EXPECT_NEAR(r.data[t * 3 + 2], 1.0, 1e-6);
    EXPECT_EQ(r.dq[t * 3 + 2], 0u);
  }
  EXPECT_EQ(r.unusable, (std::vector<double>{2, 2}));
}

TEST(RampFit, OneUsableGroup) {
  // Saturated from group 1: only group 0 (25 DN after 10 s). Suppressed by default (JWST
  // suppress_one_group = true): NaN and DO_NOT_USE. Otherwise 25/10 = 2.5 DN/s with the
  // pipeline's variances for n set to 2: read noise 12*25/(6*100) = 0.5, Poisson 2.5/(10*2).
  const std::vector<float> reads{25, 65535, 65535, 65535};
  const std::vector<std::uint8_t> flags{0, kSat, kSat, kSat};
  RampFitParams p = params();
  const Fitted suppressed = fit_one(p, reads, flags);
  EXPECT_TRUE(std::isnan(suppressed.data[0]));
  EXPECT_EQ(suppressed.dq[0], dq::saturated | dq::do_not_use);
  p.suppress_one_group = false;
  const Fitted kept = fit_one(p, reads, flags);
  EXPECT_NEAR(kept.data[0], 2.5, 1e-6);
  EXPECT_NEAR(kept.var_rnoise[0], 0.5, 1e-7);
  EXPECT_NEAR(kept.var_poisson[0], 0.125, 1e-7);
  EXPECT_EQ(kept.dq[0], dq::saturated);
  // Only group 2 usable (groups 0, 1, 3 DO_NOT_USE): its read over its time since reset,
  // 3 tframe = 30 s: 75/30 = 2.5 DN/s.
  const Fitted middle = fit_one(p, {0, 0, 75, 0}, {kDnu, kDnu, 0, kDnu});
  EXPECT_NEAR(middle.data[0], 2.5, 1e-6);
  // With nframes = 4 averaged frames per group (tframe = tgroup/4 = 2.5 s), group 0's mean time
  // since reset is 2.5 * (4 + 1)/2 = 6.25 s: 25/6.25 = 4 DN/s.
  const Fitted averaged = fit(p, CubeShape{1, 1, 1, 4},
                              1, [&](std::size_t, std::size_t g, std::size_t, std::size_t) { return reads[g]; },
                              [&](std::size_t, std::size_t g, std::size_t, std::size_t) { return flags[g]; },
                              [](Dataset& d) { d.attributes()["nframes"] = std::int64_t{4}; });
  EXPECT_NEAR(averaged.data[0], 4.0, 1e-6);
  // A single-group segment next to a longer one is ignored: group 0, DO_NOT_USE at 1, then
  // groups 2-5 rising 3 DN/group; group 0's value (1000) must not matter.
  const Fitted ignored = fit_one(params(), {1000, 0, 6, 9, 12, 15}, {0, kDnu, 0, 0, 0, 0});
  EXPECT_NEAR(ignored.data[0], 0.3, 1e-6);
}

TEST(RampFit, OptimalWeightsFollowThePipelinePowerTable) {
  // Five reads, gain 1, read noise 1 DN: S = D / sqrt(1 + D).
  // D = 20000: S = 141 > 100, P = 10; weights (|i - 2|/2)^10 = {1, 2^-10, 0, 2^-10, 1},
  // xbar = 2 by symmetry, slope = sum w (x-2) y / sum w (x-2)^2
  //   = (2*20000 + 2^-10 (15000 - 4000)) / (8 + 2 * 2^-10) DN/group.
  {
    const std::vector<float> reads{0, 4000, 9000, 15000, 20000};
    const double e = std::ldexp(1.0, -10);
    const double slope = (2 * 20000 + e * (15000 - 4000)) / (8 + 2 * e) / kTgroup;
    const Fitted r = fit_one(params("optimal", "pipeline", 1.0, 1.0), reads);
    EXPECT_NEAR(r.data[0], slope, 1e-4);
    // Unweighted would give (−4000 + 15000 + 40000)/10 = 5100 DN/group instead of ~5000.
    const Fitted u = fit_one(params("unweighted", "pipeline", 1.0, 1.0), reads);
    EXPECT_NEAR(u.data[0], 510.0, 1e-4);
    EXPECT_GT(std::fabs(u.data[0] - r.data[0]), 9.0);
  }
  // D = 100 with read noise 10 DN: S = 100/sqrt(100 + 100) = 7.07, P = 0.4:
  // weights {1, q, 0, q, 1} with q = 0.5^0.4.
  {
    const std::vector<float> reads{0, 20, 55, 70, 100};
    const double q = std::pow(0.5, 0.4);
    const double slope = (2 * 100 + q * (70 - 20)) / (8 + 2 * q) / kTgroup;
    const Fitted r = fit_one(params("optimal", "pipeline", 1.0, 10.0), reads);
    EXPECT_NEAR(r.data[0], slope, 1e-6);
  }
  EXPECT_EQ(power_index(5.0), 0);
  EXPECT_EQ(power_index(5.01), 1);
  EXPECT_EQ(power_index(10.0), 1);
  EXPECT_EQ(power_index(20.0), 2);
  EXPECT_EQ(power_index(50.0), 3);
  EXPECT_EQ(power_index(100.0), 4);
  EXPECT_EQ(power_index(100.5), 5);
  EXPECT_EQ(power_of_index(5), 10.0);
  EXPECT_NEAR(segment_snr(100, 1, 10), 100 / std::sqrt(200.0), 1e-12);
  EXPECT_EQ(segment_snr(-50, 1, 1), 0.0);
}

TEST(RampFit, CleanFastPathMatchesTheSegmentFit) {
  // A JUMP_DET on group 0 changes no segment, but sends the pixel through the careful
  // per-pixel path; its rate must be bit-identical to the clean pixel's.
  const CubeShape shape{3, 2, 40, 9};
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  std::vector<float> cube(shape.nt * shape.ng * shape.ny * shape.nx);
  for (std::size_t t = 0; t < shape.nt; ++t)
    for (std::size_t y = 0; y < shape.ny; ++y)
      for (std::size_t x = 0; x < shape.nx; ++x) {
        const double rate = std::pow(10.0, 0.1 * double(x) - 1.0);  // 0.1 .. 5e2 DN/s: every exponent
        for (std::size_t g = 0; g < shape.ng; ++g)
          cube[((t * shape.ng + g) * shape.ny + y) * shape.nx + x] =
              static_cast<float>(rate * kTgroup * double(g + 1) + 5.0 * normal(rng));
      }
  auto value = [&](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return cube[((t * shape.ng + g) * shape.ny + (y % 1)) * shape.nx + x];  // rows 0 and 1 equal
  };
  auto flags = [](std::size_t, std::size_t g, std::size_t y, std::size_t) -> std::uint8_t {
    return y == 1 && g == 0 ? kJump : 0;
  };
  for (const char* v : {"pipeline", "propagated"}) {
    const Fitted r = fit(params("optimal", v), shape, 1, value, flags);
    for (std::size_t t = 0; t < shape.nt; ++t)
      for (std::size_t x = 0; x < shape.nx; ++x) {
        const std::size_t a = (t * 2 + 0) * shape.nx + x, b = (t * 2 + 1) * shape.nx + x;
        EXPECT_EQ(r.data[a], r.data[b]) << v << " t " << t << " x " << x;
        EXPECT_EQ(r.err[a], r.err[b]);
        EXPECT_EQ(r.var_poisson[a], r.var_poisson[b]);
        EXPECT_EQ(r.var_rnoise[a], r.var_rnoise[b]);
        EXPECT_EQ(r.dq[a], 0u);
        EXPECT_EQ(r.dq[b], dq::jump_det);
      }
  }
}

/// Pull statistics of `npix` simulated ramps of `ng` groups at `rate` DN/s: Poisson electrons
/// accumulated group by group (gain 2 e/DN) plus Gaussian read noise (10 DN) on every read.
struct Pulls {
  double mean = 0, std = 0;
};

Pulls pulls(const RampFitParams& p, double rate, std::size_t ng, std::uint64_t seed) {
  const CubeShape shape{1, 128, 128, ng};
  const double gain = 2.0, rn = 10.0;
  std::vector<float> cube(ng * shape.ny * shape.nx);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::poisson_distribution<long> electrons(rate * gain * kTgroup);
  for (std::size_t i = 0; i < shape.ny * shape.nx; ++i) {
    double collected = 0;
    for (std::size_t g = 0; g < ng; ++g) {
      collected += static_cast<double>(electrons(rng));
      cube[g * shape.ny * shape.nx + i] = static_cast<float>(collected / gain + rn * normal(rng));
    }
  }
  RampFitParams q = p;
  q.gain = std::to_string(gain);
  q.read_noise = std::to_string(rn);
  const Fitted r = fit(q, shape, 1, [&](std::size_t, std::size_t g, std::size_t y, std::size_t x) {
    return cube[(g * shape.ny + y) * shape.nx + x];
  });
  double s = 0, s2 = 0;
  const double n = static_cast<double>(r.data.size());
  for (std::size_t i = 0; i < r.data.size(); ++i) {
    const double z = (r.data[i] - rate) / r.err[i];
    s += z;
    s2 += z * z;
  }
  Pulls out;
  out.mean = s / n;
  out.std = std::sqrt(s2 / n - out.mean * out.mean);
  return out;
}

TEST(RampFit, PullsOfNoisyRampsHaveUnitWidth) {
  // 16384 ramps of 10 groups per case: the standard error of the mean pull is 0.008 and of its
  // width 0.0055. Rates cover the three regimes of the weights: 0.1 DN/s (S ~ 0.9, P = 0,
  // read-noise dominated), 10 DN/s (S ~ 38, P = 3) and 1000 DN/s (S ~ 420, P = 10, Poisson
  // dominated). Gain 2, read noise 10 DN, tgroup 10 s.
  //
  // Mean: the fits are unbiased, but the error grows with the integration's own rate estimate
  // (Poisson term), which is correlated with the fit, so fits above the truth get larger errors:
  // at 0.1 DN/s the expected mean pull is about -0.5 * (dvar_P/drate)/var * cov = -0.02 to
  // -0.03 (measured over six seeds: -0.008 to -0.024). Bound: |mean| < 0.05.
  //
  // 'propagated' variances are the exact variances of the fit used: |width - 1| < 0.03.
  // 'pipeline' variances: for unweighted fits the read-noise term 12 rn^2/((n^3-n) tg^2) is
  // exact, but the Poisson term r/(tg g (n-1)) understates the OLS Poisson variance
  // 6(n^2+1)/(5n(n^2-1)) r/(g tg) by a factor 1.1018 (n = 10), so the width is
  // sqrt((var_R + 1.1018 var_P)/(var_R + var_P)): 1.002, 1.041 and 1.050 at the three rates.
  // For optimal weights the pipeline's formulas are nearly right at both ends (0.995-1.003
  // measured) and understate the error in between (1.028-1.037 at 10 DN/s): bound [0.97, 1.08].
  struct Case {
    const char* weighting;
    double rate;
  };
  const double n = 10, tg = kTgroup, gain = 2, rn = 10;
  const double ols_poisson = 6 * (n * n + 1) / (5 * n * (n * n - 1)) * (n - 1);  // 1.1018
  for (const Case c : {Case{"optimal", 0.1}, Case{"optimal", 10.0}, Case{"optimal", 1000.0},
                       Case{"unweighted", 0.1}, Case{"unweighted", 10.0}, Case{"unweighted", 1000.0}}) {
    const Pulls exact = pulls(params(c.weighting, "propagated"), c.rate, 10, 11);
    const Pulls pipe = pulls(params(c.weighting, "pipeline"), c.rate, 10, 11);
    std::printf("pulls %-10s rate %7.1f DN/s: propagated mean %+.4f width %.4f | pipeline mean %+.4f width %.4f\n",
                c.weighting, c.rate, exact.mean, exact.std, pipe.mean, pipe.std);
    EXPECT_LT(std::fabs(exact.mean), 0.05) << c.weighting << " " << c.rate;
    EXPECT_NEAR(exact.std, 1.0, 0.03) << c.weighting << " " << c.rate;
    EXPECT_LT(std::fabs(pipe.mean), 0.05) << c.weighting << " " << c.rate;
    if (std::string(c.weighting) == "unweighted") {
      const double var_r = 12 * rn * rn / ((n * n * n - n) * tg * tg);
      const double var_p = c.rate / (tg * gain * (n - 1));
      EXPECT_NEAR(pipe.std, std::sqrt((var_r + ols_poisson * var_p) / (var_r + var_p)), 0.03) << c.rate;
    } else {
      EXPECT_GT(pipe.std, 0.97) << c.rate;
      EXPECT_LT(pipe.std, 1.08) << c.rate;
    }
  }
}

TEST(RampFit, SameOutputOnOneTwoThreeRanks) {
  // Noisy ramps with jumps, saturation, DO_NOT_USE groups, a NaN read and a bad pixel dq.
  const CubeShape shape{7, 9, 11, 6};
  auto value = [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) -> float {
    const double h = std::sin(double(t * 131 + g * 17 + y * 7 + x * 3));
    if (t == 3 && g == 2 && y == 4 && x == 4) return std::numeric_limits<float>::quiet_NaN();
    return static_cast<float>(double(x * y + 1) * 3.0 * double(g) + 20.0 * h + (g >= 3 && (x + t) % 5 == 0 ? 500 : 0));
  };
  auto flags = [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) -> std::uint8_t {
    if (g == 3 && (x + t) % 5 == 0) return kJump;
    if (y == 8 && g >= (x + t) % 6) return kSat;
    if (y == 7 && g == (t % 6)) return kDnu;
    return 0;
  };
  auto setup = [](Dataset& d) {
    auto q = d.frames<std::uint32_t>("dq");
    for (std::size_t t = q.t_begin; t < q.t_end; ++t) q(t, 0, 0) = dq::do_not_use | dq::dead;
  };
  for (const char* w : {"optimal", "unweighted"}) {
    const Fitted one = fit(params(w), shape, 1, value, flags, setup);
    for (int n : {2, 3}) {
      const Fitted many = fit(params(w), shape, n, value, flags, setup);
      auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
        return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
      };
      EXPECT_TRUE(same(one.data, many.data)) << w << " " << n;
      EXPECT_TRUE(same(one.err, many.err)) << w << " " << n;
      EXPECT_TRUE(same(one.var_poisson, many.var_poisson)) << w << " " << n;
      EXPECT_TRUE(same(one.var_rnoise, many.var_rnoise)) << w << " " << n;
      EXPECT_EQ(one.dq, many.dq) << w << " " << n;
      EXPECT_EQ(one.unusable, many.unusable) << w << " " << n;
    }
    // Something of everything happened.
    std::size_t nan = 0, jumps = 0, sat = 0;
    for (std::size_t i = 0; i < one.data.size(); ++i) {
      nan += std::isnan(one.data[i]);
      jumps += (one.dq[i] & dq::jump_det) != 0;
      sat += (one.dq[i] & dq::saturated) != 0;
    }
    EXPECT_GT(nan, 7u);  // the dead pixel in every integration, plus saturated-early ones
    EXPECT_GT(jumps, 0u);
    EXPECT_GT(sat, 0u);
    EXPECT_TRUE(one.dq[0] & dq::dead);
  }
}

TEST(RampFit, RampsAreDroppedUnlessKept) {
  const CubeShape shape{2, 2, 2, 3};
  auto value = [](std::size_t, std::size_t g, std::size_t, std::size_t) { return float(g); };
  RampFitParams p = params();
  Fitted r = fit(p, shape, 2, value);
  for (auto& d : r.ranks) {
    EXPECT_FALSE(d.has_cube("ramp"));
    EXPECT_FALSE(d.has_cube("groupdq"));
    EXPECT_TRUE(d.has_cube("data"));
    EXPECT_TRUE(d.has_cube("var_rnoise"));
  }
  const StepIO io = RampFit::io(p);
  EXPECT_EQ(io.removes, (std::vector<std::string>{"ramp", "groupdq"}));
  p.keep_ramps = true;
  Fitted k = fit(p, shape, 2, value);
  for (auto& d : k.ranks) {
    EXPECT_TRUE(d.has_cube("ramp"));
    EXPECT_TRUE(d.has_cube("groupdq"));
  }
  EXPECT_TRUE(RampFit::io(p).removes.empty());
}

TEST(RampFit, BadGainAndMissingTimingAreReported) {
  // Gain 0: no rate, NO_GAIN_VALUE and DO_NOT_USE.
  const Fitted r = fit_one(params("optimal", "pipeline", 0.0, 5.0), {0, 1, 2});
  EXPECT_TRUE(std::isnan(r.data[0]));
  EXPECT_EQ(r.dq[0], dq::no_gain_value | dq::do_not_use);
  // No tgroup attribute: a StepError naming it.
  const CubeShape shape{1, 1, 1, 3};
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t, std::size_t g, std::size_t, std::size_t) { return float(g); });
  ranks[0].attributes().erase("tgroup");
  try {
    run_like_engine<RampFit>(params(), ranks);
    FAIL() << "expected a StepError";
  } catch (const StepError& e) {
    EXPECT_NE(std::string(e.what()).find("tgroup"), std::string::npos) << e.what();
  }
}

// Throughput figure for the report (not a timed test): ./ramp_fit_test --gtest_also_run_disabled_tests
// --gtest_filter='*DISABLED_Throughput*'.
TEST(RampFit, DISABLED_Throughput) {
  const CubeShape shape{10, 512, 512, 45};
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    const double noise = double((t * 7 + g * 13 + x * 3 + y) % 11);
    return static_cast<float>(1000.0 + double((x + y) % 50) * double(g + 1) + noise);
  });
  {
    auto gdq = ranks[0].frames<std::uint8_t>("groupdq");
    for (std::size_t t = 0; t < shape.nt; ++t)  // 0.5% of pixels with a jump, 0.5% saturating
      for (std::size_t p = 0; p < shape.ny * shape.nx; p += 100) {
        gdq.group(t, 20)[p] = kJump;
        for (std::size_t g = 30; g < shape.ng; ++g) gdq.group(t, g)[p + 50] = kSat;
      }
  }
  for (const char* w : {"optimal", "unweighted"}) {
    auto copy = ranks;
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    run_like_engine<RampFit>(params(w), copy);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    const double samples = double(shape.nt * shape.ng * shape.ny * shape.nx);
    std::printf("ramp_fit %s: %.3f s wall, %.3f s CPU: %.1f M group-samples/s per CPU second\n", w, s, cpu,
                samples / cpu / 1e6);
  }
}

}  // namespace

namespace {

// A rate taken out of the ramps before the fit (e.g. the sky one_over_f removes) still counts
// in the Poisson variance: with sky_rate naming a per-integration, per-column image of 0.5 DN/s,
// the ramp above is fitted the same but its Poisson variance is (0.225 + 0.5)/80.
TEST(RampFit, SkyRateAddsTheRemovedSignalToThePoissonVariance) {
  RampFitParams p = params("unweighted");
  p.sky_rate = "removed";
  const CubeShape shape{1, 1, 1, 5};
  const std::vector<float> reads = {0, 3, 2, 7, 9};
  const Fitted r = fit(p, shape, 1, [&](std::size_t, std::size_t g, std::size_t, std::size_t) { return reads[g]; }, {},
                       [](Dataset& d) {
                         Image image;
                         image.info = {"removed", "DN/s", "rate removed before the fit"};
                         image.ny = 1;
                         image.nx = 1;
                         image.values = {0.5f};
                         d.images()["removed"] = image;
                       });
  EXPECT_NEAR(r.data[0], 0.22, 1e-6);
  EXPECT_NEAR(r.var_rnoise[0], 0.025, 1e-8);
  EXPECT_NEAR(r.var_poisson[0], 0.725 / 80.0, 1e-9);
  EXPECT_NEAR(r.err[0], std::sqrt(0.025 + 0.725 / 80.0), 1e-7);
  // The image must have one row per integration and one value per column.
  p.sky_rate = "wrong";
  EXPECT_THROW(fit(p, shape, 1, [&](std::size_t, std::size_t g, std::size_t, std::size_t) { return reads[g]; }, {},
                   [](Dataset& d) {
                     Image image;
                     image.ny = 2;
                     image.nx = 1;
                     image.values = {0.5f, 0.5f};
                     d.images()["wrong"] = image;
                   }),
               tessera::StepError);
}

}  // namespace
