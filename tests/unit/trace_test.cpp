// The cubic B-spline fitter against values worked out by hand; trace on synthetic curved,
// two-horned (NIRISS/SOSS-like) traces with noise, bad pixels and a cosmic ray whose true
// centre is known; one_over_f_masked on frames whose per-column offsets are known exactly.
// Both steps run on 1, 2 and 3 emulated ranks.
#include "steps/spectra/trace.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "steps/common/bspline.hpp"
#include "steps/common/jwst_dq.hpp"
#include "steps/spectra/one_over_f_masked.hpp"
#include "support/emulated_ranks.hpp"
#include "tessera/errors.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;
namespace bs = tessera::bspline;
namespace jdq = tessera::jwst::dq;

// ---------------------------------------------------------------------------------------------
// B-spline

TEST(BSpline, ClampedBasisAtKnotsByHand) {
  // t = [0,0,0,0, 1,2, 3,3,3,3]: six cubic B-splines on [0, 3]. At x = 1 (interval l = 4) the
  // Cox–de Boor recurrence gives, step by step:
  //   degree 1: N3 = (t5 − x)/(t5 − t4) = 1, N4 = 0
  //   degree 2: N2 = (t5 − x)/(t5 − t3)·N3 = 1/2, N3 = (x − t3)/(t5 − t3)·1 = 1/2
  //   degree 3: B1 = (t5 − x)/(t5 − t2)·1/2 = 1/4
  //             B2 = (x − t2)/(t5 − t2)·1/2 + (t6 − x)/(t6 − t3)·1/2 = 1/4 + 1/3 = 7/12
  //             B3 = (x − t3)/(t6 − t3)·1/2 = 1/6,    B4 = 0   (sum 1).
  const std::vector<double> t = bs::clamped_knots(0.0, 3.0, std::vector<double>{1.0, 2.0});
  ASSERT_EQ(t, (std::vector<double>{0, 0, 0, 0, 1, 2, 3, 3, 3, 3}));
  EXPECT_EQ(bs::coefficient_count(t), 6u);
  EXPECT_EQ(bs::knot_interval(t, 1.0), 4u);
  double b[4];
  bs::basis(t, 4, 1.0, b);
  EXPECT_NEAR(b[0], 1.0 / 4.0, 1e-15);
  EXPECT_NEAR(b[1], 7.0 / 12.0, 1e-15);
  EXPECT_NEAR(b[2], 1.0 / 6.0, 1e-15);
  EXPECT_NEAR(b[3], 0.0, 1e-15);
  // By symmetry at x = 2: B2 = 1/6, B3 = 7/12, B4 = 1/4.
  EXPECT_EQ(bs::knot_interval(t, 2.0), 5u);
  bs::basis(t, 5, 2.0, b);
  EXPECT_NEAR(b[0], 1.0 / 6.0, 1e-15);   // B2
  EXPECT_NEAR(b[1], 7.0 / 12.0, 1e-15);  // B3
  EXPECT_NEAR(b[2], 1.0 / 4.0, 1e-15);   // B4
  EXPECT_NEAR(b[3], 0.0, 1e-15);         // B5
  // Ends: only B0 at x = 0, only B5 at x = 3 (x = xe belongs to the last interval).
  EXPECT_EQ(bs::knot_interval(t, 0.0), 3u);
  bs::basis(t, 3, 0.0, b);
  EXPECT_NEAR(b[0], 1.0, 1e-15);
  EXPECT_EQ(bs::knot_interval(t, 3.0), 5u);
  bs::basis(t, 5, 3.0, b);
  EXPECT_NEAR(b[3], 1.0, 1e-15);
  // s = Σ c_j B_j at x = 1 with c = 0..5: 1·1/4 + 2·7/12 + 3·1/6 = 23/12.
  const std::vector<double> c{0, 1, 2, 3, 4, 5};
  EXPECT_NEAR(bs::evaluate(t, c, 1.0), 23.0 / 12.0, 1e-14);
}

TEST(BSpline, UniformCubicBSplineIsOneSixthTwoThirdsOneSixth) {
  // Interior knots 1..4 on [0, 5]: B3 has the uniform knots 0,1,2,3,4 and is the classic
  // cardinal cubic B-spline: 1/6, 2/3, 1/6 at its inner knots, 1/48 at x = 0.5 ((x³)/6).
  const auto t = bs::clamped_knots(0.0, 5.0, std::vector<double>{1, 2, 3, 4});
  std::vector<double> c(bs::coefficient_count(t), 0.0);
  c[3] = 1.0;
  EXPECT_NEAR(bs::evaluate(t, c, 1.0), 1.0 / 6.0, 1e-15);
  EXPECT_NEAR(bs::evaluate(t, c, 2.0), 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(bs::evaluate(t, c, 3.0), 1.0 / 6.0, 1e-15);
  EXPECT_NEAR(bs::evaluate(t, c, 0.5), 1.0 / 48.0, 1e-15);
  EXPECT_NEAR(bs::evaluate(t, c, 4.0), 0.0, 1e-15);
  // Partition of unity everywhere inside.
  std::fill(c.begin(), c.end(), 1.0);
  for (double x = 0; x <= 5.0; x += 0.37) EXPECT_NEAR(bs::evaluate(t, c, x), 1.0, 1e-14) << x;
}

TEST(BSpline, LeastSquaresReproducesACubicExactly) {
  // A cubic is a spline for any knots: the fit must return it (to rounding) at the data and
  // between them, also with uneven abscissae and weights.
  auto cubic = [](double x) { return 3.0 - 0.5 * x + 0.02 * x * x - 1.5e-4 * x * x * x; };
  std::vector<double> x, y, w;
  for (int i = 0; i <= 120; ++i) {
    x.push_back(i + 0.3 * std::sin(i));
    y.push_back(cubic(x.back()));
    w.push_back(1.0 + 0.5 * (i % 3));
  }
  bs::LeastSquaresFit fit(x, {17.0, 40.0, 41.5, 80.0, 99.0}, w);
  std::vector<double> c(fit.coefficients()), at(x.size());
  fit.fit(y, c);
  fit.values_at_data(c, at);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(at[i], y[i], 1e-10) << i;
  for (double v = x.front(); v <= x.back(); v += 3.3) EXPECT_NEAR(bs::evaluate(fit.knots(), c, v), cubic(v), 1e-10);
}

TEST(BSpline, RecoversKnownCoefficients) {
  // Data sampled from a known spline (no noise) give back its coefficients.
  const std::vector<double> interior{2.5, 5.0, 6.0, 8.5};
  const std::vector<double> truth{1.0, -2.0, 0.5, 3.0, 3.5, -1.0, 2.0, 0.25};
  const auto t = bs::clamped_knots(0.0, 10.0, interior);
  ASSERT_EQ(bs::coefficient_count(t), truth.size());
  std::vector<double> x, y;
  for (int i = 0; i <= 50; ++i) {
    x.push_back(0.2 * i);
    y.push_back(bs::evaluate(t, truth, x.back()));
  }
  bs::LeastSquaresFit fit(x, interior);
  std::vector<double> c(fit.coefficients());
  fit.fit(y, c);
  for (std::size_t j = 0; j < c.size(); ++j) EXPECT_NEAR(c[j], truth[j], 1e-11) << j;
}

TEST(BSpline, ResidualsAreOrthogonalToEveryBasisFunction) {
  // The least-squares condition Bᵀ (y − B c) = 0 on noisy data.
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> x, y;
  for (int i = 0; i < 300; ++i) {
    x.push_back(i);
    y.push_back(std::sin(i / 30.0) * 10 + noise(rng));
  }
  bs::LeastSquaresFit fit(x, {50, 100, 150, 200, 250});
  std::vector<double> c(fit.coefficients()), at(x.size());
  fit.fit(y, c);
  fit.values_at_data(c, at);
  std::vector<double> dot(c.size(), 0.0), scale(c.size(), 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t l = bs::knot_interval(fit.knots(), x[i]);
    double b[4];
    bs::basis(fit.knots(), l, x[i], b);
    for (std::size_t a = 0; a < 4; ++a) {
      dot[l - 3 + a] += b[a] * (y[i] - at[i]);
      scale[l - 3 + a] += b[a] * std::fabs(y[i]);
    }
  }
  for (std::size_t j = 0; j < c.size(); ++j) EXPECT_NEAR(dot[j], 0.0, 1e-12 * scale[j]) << j;
}

TEST(BSpline, MatchesScipySplrep) {
  // scipy 1.10: x = arange(0, 21), y = sqrt(x) + 0.1 sin(3x), t = [5, 10, 15];
  // splev([0.5, 7.25, 12, 19.9], splrep(x, y, t=t)).
  std::vector<double> x, y;
  for (int i = 0; i <= 20; ++i) {
    x.push_back(i);
    y.push_back(std::sqrt(i) + 0.1 * std::sin(3.0 * i));
  }
  bs::LeastSquaresFit fit(x, {5, 10, 15});
  std::vector<double> c(fit.coefficients());
  fit.fit(y, c);
  const double expected[4] = {0.5035526754311617, 2.6659953435796098, 3.4747485745058233, 4.443267031818869};
  const double at[4] = {0.5, 7.25, 12.0, 19.9};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(bs::evaluate(fit.knots(), c, at[i]), expected[i], 1e-12) << at[i];
}

TEST(BSpline, RejectsKnotsTheDataCannotSupport) {
  std::vector<double> x;
  for (int i = 0; i <= 10; ++i) x.push_back(i);
  // Five knots inside one data interval: B4 (support [4.1, 4.5]) has no point of its own.
  EXPECT_THROW(bs::LeastSquaresFit(x, {4.1, 4.2, 4.3, 4.4, 4.5}), std::invalid_argument);
  // Three there still leave every B-spline a point (B1..B5 take x = 1, 2, 3, 5, 6).
  EXPECT_NO_THROW(bs::LeastSquaresFit(x, {4.1, 4.2, 4.3}));
  EXPECT_THROW(bs::LeastSquaresFit(x, {3.0, 2.0}), std::invalid_argument);   // not increasing
  EXPECT_THROW(bs::LeastSquaresFit(x, {0.0, 5.0}), std::invalid_argument);   // on the boundary
  EXPECT_THROW(bs::LeastSquaresFit({1.0, 1.0}, {}), std::invalid_argument);  // empty range
  EXPECT_NO_THROW(bs::LeastSquaresFit(x, {2.0, 4.0, 6.0, 8.0}));
}

// ---------------------------------------------------------------------------------------------
// trace

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// A NIRISS/SOSS-like order: two horns (Gaussians σ = 2.5 px at ±4 px from the centre) whose
/// centre follows a cubic in the dispersion index.
struct Order {
  double centre0, a1, a2, a3;  ///< centre(d) = centre0 + a1 u + a2 u² + a3 u³, u = (d − pivot)/scale
  double pivot, scale;
  double peak;
  std::size_t first, last;  ///< lit dispersion indices
  double centre(double d, double shift) const {
    const double u = (d - pivot) / scale;
    return centre0 + shift + u * (a1 + u * (a2 + u * a3));
  }
  double profile(double s, double d, double shift) const {
    const double c = centre(d, shift);
    const double p = (s - c - 4.0) / 2.5, q = (s - c + 4.0) / 2.5;
    return peak * (std::exp(-0.5 * p * p) + std::exp(-0.5 * q * q));
  }
};

/// Scene in (wave, spatial): value at dispersion index d, spatial index s for integration t.
struct Scene {
  std::size_t n_wave, n_spatial;
  std::vector<Order> orders;
  std::vector<double> shifts;  ///< per integration
  double background = 20, noise = 3;
  bool cosmic = true;
  unsigned seed = 11;
};

/// Frame t of the scene as an ny × nx image (dispersion along x unless `along_y`), with
/// Gaussian noise, a per-column (per-wavelength) offset, a cosmic ray next to order 1 in every
/// integration, a NaN and a do_not_use pixel on the trace.
void draw(const Scene& scene, std::size_t t, bool along_y, std::span<float> data, std::span<std::uint32_t> dq) {
  std::mt19937 rng(scene.seed + 1000u * static_cast<unsigned>(t));
  std::normal_distribution<double> noise(0.0, scene.noise);
  const std::size_t nx = along_y ? scene.n_spatial : scene.n_wave;
  auto at = [&](std::size_t d, std::size_t s) { return along_y ? d * nx + s : s * nx + d; };
  const double shift = scene.shifts.empty() ? 0.0 : scene.shifts[t];
  for (std::size_t d = 0; d < scene.n_wave; ++d) {
    const double offset = 2.0 * std::sin(0.37 * static_cast<double>(d));
    for (std::size_t s = 0; s < scene.n_spatial; ++s) {
      double v = scene.background + offset + noise(rng);
      for (const Order& o : scene.orders)
        if (d >= o.first && d <= o.last) v += o.profile(static_cast<double>(s), static_cast<double>(d), shift);
      data[at(d, s)] = static_cast<float>(v);
      dq[at(d, s)] = 0;
    }
  }
  if (scene.cosmic && !scene.orders.empty()) {
    const Order& o = scene.orders[0];
    const std::size_t d = (o.first + o.last) / 2 + t;
    const auto s = static_cast<std::size_t>(o.centre(static_cast<double>(d), shift) + 9.0);
    data[at(d, s)] += 40.0f * static_cast<float>(o.peak);
    const std::size_t d2 = d + 7;
    const auto s2 = static_cast<std::size_t>(o.centre(static_cast<double>(d2), shift));
    data[at(d2, s2)] = kNaN;
    data[at(d2 + 1, s2 + 2)] = 1e6f;
    dq[at(d2 + 1, s2 + 2)] = jdq::do_not_use;
  }
}

CubeShape shape_of(const Scene& scene, std::size_t nt, bool along_y) {
  return along_y ? CubeShape{nt, scene.n_wave, scene.n_spatial} : CubeShape{nt, scene.n_spatial, scene.n_wave};
}

std::vector<Dataset> ranks_of(const Scene& scene, std::size_t nt, int nranks, bool along_y = false) {
  return tessera::testing::make_ranks(
      shape_of(scene, nt, along_y), nranks,
      [&](std::size_t t, std::span<float> data, std::span<std::uint32_t> dq) { draw(scene, t, along_y, data, dq); });
}

/// Order 1 like SOSS order 1 on a 128 × 700 frame, traced from 690 down to 6.
/// Its centre runs from row 82 (d = 0) down to 63 and up to 69 (d = 699).
Order order1() { return {64.0, -3.0, 1.0, 0.1, 350.0, 100.0, 1000.0, 0, 699}; }
/// A fainter order 2 above it over part of the frame (rows 134 down to 122), for 160-row frames.
Order order2() { return {126.0, -2.0, 0.5, 0.0, 400.0, 100.0, 300.0, 150, 600}; }

Scene one_order_scene() {
  Scene s{700, 128, {order1()}, {}};
  return s;
}

TraceParams one_order_params() {
  TraceParams p;
  p.start = {690};
  p.start_position = {order1().centre(690, 0) + 3.0};  // a guess 3 px off
  p.end = {6};
  return p;
}

/// Equal values, NaN where the other has NaN.
void expect_same(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))
        << what << " " << i << ": " << a[i] << " " << b[i];
}

struct Accuracy {
  double trace_max = 0, trace_rms = 0, centroid_rms = 0;
};

Accuracy accuracy(const Dataset& d, const std::string& name, const Order& o, std::size_t first, std::size_t last,
                  const std::vector<double>& shifts) {
  Accuracy a;
  const Image& trace = d.images().at("trace_" + name);
  const Image& centroid = d.images().at("trace_centroid_" + name);
  std::size_t n = 0;
  for (std::size_t t = 0; t < trace.ny; ++t)
    for (std::size_t x = first; x <= last; ++x) {
      const double truth = o.centre(static_cast<double>(x), shifts.empty() ? 0.0 : shifts[t]);
      const double e = trace.values[t * trace.nx + x] - truth;
      const double ec = centroid.values[t * trace.nx + x] - truth;
      a.trace_max = std::max(a.trace_max, std::fabs(e));
      a.trace_rms += e * e;
      a.centroid_rms += ec * ec;
      ++n;
    }
  a.trace_rms = std::sqrt(a.trace_rms / static_cast<double>(n));
  a.centroid_rms = std::sqrt(a.centroid_rms / static_cast<double>(n));
  return a;
}

TEST(Trace, RecoversACurvedTwoHornedTraceWithNoiseAndCosmicRays) {
  const Scene scene = one_order_scene();
  auto ranks = ranks_of(scene, 3, 1);
  const TraceParams p = one_order_params();
  tessera::testing::run_like_engine<Trace>(p, ranks);
  const Accuracy a = accuracy(ranks[0], "order1", order1(), 6, 690, {});
  std::printf("trace (recentred): B-spline max |error| %.4f px, rms %.4f px; centroid rms %.4f px\n", a.trace_max,
              a.trace_rms, a.centroid_rms);
  EXPECT_LT(a.trace_max, 0.02);
  EXPECT_LT(a.centroid_rms, 0.05);
  // NaN outside the traced range.
  const Image& trace = ranks[0].images().at("trace_order1");
  for (std::size_t t = 0; t < 3; ++t) {
    EXPECT_TRUE(std::isnan(trace.values[t * 700 + 5]));
    EXPECT_TRUE(std::isnan(trace.values[t * 700 + 691]));
    EXPECT_FALSE(std::isnan(trace.values[t * 700 + 6]));
    EXPECT_FALSE(std::isnan(trace.values[t * 700 + 690]));
  }
  EXPECT_EQ(trace.dim_y, "time");
  EXPECT_EQ(trace.dim_x, "x");

  // The notebook's window (whole pixels around the previous centroid, one pass) is biased
  // toward that centroid's pixel; report it for the docs.
  TraceParams notebook = p;
  notebook.recentre = false;
  auto again = ranks_of(scene, 3, 1);
  tessera::testing::run_like_engine<Trace>(notebook, again);
  const Accuracy b = accuracy(again[0], "order1", order1(), 6, 690, {});
  std::printf("trace (notebook window): B-spline max |error| %.4f px, rms %.4f px; centroid rms %.4f px\n", b.trace_max,
              b.trace_rms, b.centroid_rms);
  EXPECT_LT(b.trace_max, 0.5);  // it still follows the trace
}

TEST(Trace, NoiselessTraceHasNoBias) {
  // Without noise the recentred centroids of a symmetric profile sit on its centre; what is
  // left is the B-spline's and the pixel sampling's error.
  Scene scene = one_order_scene();
  scene.noise = 0;
  scene.cosmic = false;
  auto ranks = ranks_of(scene, 1, 1);
  tessera::testing::run_like_engine<Trace>(one_order_params(), ranks);
  const Accuracy a = accuracy(ranks[0], "order1", order1(), 6, 690, {});
  std::printf("noiseless: B-spline max |error| %.5f px; centroid rms %.5f px\n", a.trace_max, a.centroid_rms);
  EXPECT_LT(a.trace_max, 0.003);
}

TEST(Trace, ShiftOfTheTraceBetweenIntegrations) {
  Scene scene = one_order_scene();
  scene.shifts = {0.0, 0.3, 0.0, 0.3, 0.15, -0.1, 0.3};
  auto ranks = ranks_of(scene, scene.shifts.size(), 1);
  tessera::testing::run_like_engine<Trace>(one_order_params(), ranks);
  // Expected: shift − median(shifts) = shift − 0.15.
  const auto& shift = ranks[0].frame_vector("trace_shift_order1").values;
  ASSERT_EQ(shift.size(), scene.shifts.size());
  double worst = 0;
  for (std::size_t t = 0; t < shift.size(); ++t)
    worst = std::max(worst, std::fabs(shift[t] - (scene.shifts[t] - 0.15)));
  std::printf("trace shift: max |error| %.5f px\n", worst);
  EXPECT_LT(worst, 0.01);
  const Accuracy a = accuracy(ranks[0], "order1", order1(), 6, 690, scene.shifts);
  EXPECT_LT(a.trace_max, 0.02);
}

TEST(Trace, TwoOrdersWithASpatialCut) {
  Scene scene{700, 160, {order1(), order2()}, {}};
  auto ranks = ranks_of(scene, 2, 1);
  TraceParams p = one_order_params();
  p.orders = {"order1", "order2"};
  p.start = {690, 595};
  p.start_position = {order1().centre(690, 0) + 1.0, order2().centre(595, 0) - 2.0};
  p.end = {6, 155};
  p.spatial_min = {0, 96};
  p.spatial_max = std::vector<std::int64_t>{160, 160};
  tessera::testing::run_like_engine<Trace>(p, ranks);
  const Accuracy a1 = accuracy(ranks[0], "order1", order1(), 6, 690, {});
  const Accuracy a2 = accuracy(ranks[0], "order2", order2(), 155, 595, {});
  std::printf("two orders: order 1 max |error| %.4f px, order 2 max |error| %.4f px (rms %.4f, centroid rms %.4f)\n",
              a1.trace_max, a2.trace_max, a2.trace_rms, a2.centroid_rms);
  Scene quiet = scene;
  quiet.noise = 0;
  quiet.cosmic = false;
  auto q = ranks_of(quiet, 1, 1);
  tessera::testing::run_like_engine<Trace>(p, q);
  const Accuracy q1 = accuracy(q[0], "order1", order1(), 6, 690, {});
  const Accuracy q2 = accuracy(q[0], "order2", order2(), 155, 595, {});
  std::printf("two orders, noiseless: order 1 max |error| %.5f px, order 2 max |error| %.5f px\n", q1.trace_max,
              q2.trace_max);
  // Order 2 is three times fainter: its centroids scatter three times more (rms 0.05 px) and the
  // B-spline's error with them; without noise both orders come out exact.
  EXPECT_LT(a1.trace_max, 0.03);
  EXPECT_LT(a2.trace_max, 0.06);
  EXPECT_LT(a2.trace_rms, 0.02);
  EXPECT_LT(q1.trace_max, 0.003);
  EXPECT_LT(q2.trace_max, 0.003);
  const Image& t2 = ranks[0].images().at("trace_order2");
  EXPECT_TRUE(std::isnan(t2.values[154]));
  EXPECT_TRUE(std::isnan(t2.values[596]));
  EXPECT_EQ(ranks[0].frame_vector("trace_shift_order2").values.size(), 2u);
}

TEST(Trace, DispersionAlongYGivesTheSameTrace) {
  const Scene scene = one_order_scene();
  auto x_ranks = ranks_of(scene, 2, 1, false);
  auto y_ranks = ranks_of(scene, 2, 1, true);
  TraceParams p = one_order_params();
  tessera::testing::run_like_engine<Trace>(p, x_ranks);
  p.dispersion_axis = "y";
  tessera::testing::run_like_engine<Trace>(p, y_ranks);
  EXPECT_EQ(y_ranks[0].images().at("trace_order1").dim_x, "y");
  for (const char* name : {"trace_order1", "trace_centroid_order1"})
    expect_same(x_ranks[0].images().at(name).values, y_ranks[0].images().at(name).values, name);
}

TEST(Trace, TracesUpwardAsWell) {
  const Scene scene = one_order_scene();
  auto ranks = ranks_of(scene, 1, 1);
  TraceParams p = one_order_params();
  p.start = {6};
  p.end = {690};
  p.start_position = {order1().centre(6, 0)};
  tessera::testing::run_like_engine<Trace>(p, ranks);
  EXPECT_LT(accuracy(ranks[0], "order1", order1(), 6, 690, {}).trace_max, 0.02);
}

TEST(Trace, SameOutputOnOneTwoAndThreeRanks) {
  Scene scene{700, 160, {order1(), order2()}, {0.0, 0.2, -0.1, 0.05, 0.3, 0.0, 0.1}};
  TraceParams p = one_order_params();
  p.orders = {"order1", "order2"};
  p.start = {690, 595};
  p.start_position = {order1().centre(690, 0), order2().centre(595, 0)};
  p.end = {6, 155};
  p.spatial_min = {0, 96};
  std::vector<std::vector<Dataset>> runs;
  for (int n : {1, 2, 3}) {
    runs.push_back(ranks_of(scene, scene.shifts.size(), n));
    tessera::testing::run_like_engine<Trace>(p, runs.back());
  }
  for (const char* name : {"trace_order1", "trace_centroid_order1", "trace_order2", "trace_centroid_order2"}) {
    const auto& one = runs[0][0].images().at(name).values;
    for (std::size_t r = 1; r < runs.size(); ++r)
      for (const auto& d : runs[r]) {
        const auto& other = d.images().at(name).values;
        ASSERT_EQ(one.size(), other.size());
        for (std::size_t i = 0; i < one.size(); ++i)
          ASSERT_TRUE(one[i] == other[i] || (std::isnan(one[i]) && std::isnan(other[i]))) << name << " " << i;
      }
  }
  for (const char* name : {"trace_shift_order1", "trace_shift_order2"})
    for (std::size_t r = 1; r < runs.size(); ++r)
      for (auto& d : runs[r]) EXPECT_EQ(runs[0][0].frame_vector(name).values, d.frame_vector(name).values);
}

template <class E>
void expect_error(const TraceParams& p, const std::string& needle, const Scene* scene = nullptr) {
  try {
    if (scene) {
      auto ranks = ranks_of(*scene, 1, 1);
      tessera::testing::run_like_engine<Trace>(p, ranks);
    } else {
      Trace::io(p);
    }
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Trace, KnotsAreTheNotebooks) {
  // numpy: np.arange(4, 2043, (2043 - 4) / 11.)[1:] = 189.3636.., 374.7272.., ..., 1857.6363..
  TraceParams p;
  const auto orders = trace_orders(p);
  FrameTracer tracer(p, orders[0], 256, 2048);
  const auto& t = tracer.spline().knots();
  ASSERT_EQ(t.size(), 10u + 8u);
  for (int j = 1; j <= 10; ++j) EXPECT_NEAR(t[3 + j], 4.0 + j * (2039.0 / 11.0), 1e-9) << j;
  EXPECT_NEAR(t[4], 189.36363636363637, 1e-9);
  EXPECT_NEAR(t[13], 1857.6363636363637, 1e-9);
  EXPECT_EQ(t[0], 4.0);
  EXPECT_EQ(t[17], 2043.0);
  EXPECT_EQ(tracer.middle(), 4u + 2040u / 2u);  // the notebook's x[int(len(x)/2)]
}

TEST(Trace, BadParametersGiveClearErrors) {
  TraceParams p = one_order_params();
  p.orders = {"order1", "order2"};
  expect_error<ConfigError>(p, "start: expected one entry per order (2 orders: order1, order2), got 1");
  p.start = {690, 500};
  expect_error<ConfigError>(p, "start_position");
  p.start_position = {64, 100};
  expect_error<ConfigError>(p, "end");
  p.end = {6, 100};
  expect_error<ConfigError>(p, "spatial_min");
  p.spatial_min = {0, 84};
  p.spatial_max = std::vector<std::int64_t>{84};
  expect_error<ConfigError>(p, "spatial_max");
  p.spatial_max = std::vector<std::int64_t>{84, 80};
  expect_error<ConfigError>(p, "spatial_max: 80");
  p.spatial_max.reset();
  p.start_position = {64, 50};
  expect_error<ConfigError>(p, "start_position: 50");
  p.start_position = {64, 100};
  p.orders = {"order1", "order1"};
  expect_error<ConfigError>(p, "given twice");
  p.orders = {"order 1", "order2"};
  expect_error<ConfigError>(p, "not a valid name");

  TraceParams q = one_order_params();
  q.end = {680};
  q.nknots = 30;  // 11 lines cannot hold 29 interior knots
  expect_error<ConfigError>(q, "nknots");
  q.end = {690};
  expect_error<ConfigError>(q, "nothing to trace");

  // Checked against the frame when the step runs.
  const Scene scene = one_order_scene();
  TraceParams r = one_order_params();
  r.start = {700};
  expect_error<StepError>(r, "start: 700", &scene);
  r = one_order_params();
  r.start = {600};
  r.end = {800};
  expect_error<StepError>(r, "end: 800", &scene);
  r = one_order_params();
  r.spatial_max = std::vector<std::int64_t>{200};
  expect_error<StepError>(r, "spatial_max: 200", &scene);
  r = one_order_params();
  r.dispersion_axis = "y";  // 128 rows along the dispersion now
  expect_error<StepError>(r, "start: 690", &scene);
}

TEST(Trace, DISABLED_MeasuredSpeed) {
  // Not a timed test: prints integrations per second on one core for 256 × 2048 frames with
  // two orders (order 1 over 2043..4, order 2 over 1838..700 above row 70), like the notebook.
  Order o1{80.0, -10.0, 5.0, 1.0, 1024.0, 1024.0, 1000.0, 0, 2047};
  Order o2{200.0, -8.0, 3.0, 0.0, 1200.0, 600.0, 300.0, 700, 1838};
  Scene scene{2048, 256, {o1, o2}, {}};
  const std::size_t nt = 8;
  auto ranks = ranks_of(scene, nt, 1);
  TraceParams p;
  p.orders = {"order1", "order2"};
  p.start = {2043, 1838};
  p.start_position = {o1.centre(2043, 0), o2.centre(1838, 0)};
  p.end = {4, 700};
  p.spatial_min = {0, 130};
  tessera::testing::run_like_engine<Trace>(p, ranks);
  // The kernel alone, frame after frame, timed in processor time (the machine may be shared;
  // wall time would count the others), best of three passes; the frame's transposition counts.
  const auto orders = trace_orders(p);
  std::vector<FrameTracer> tracers;
  for (const auto& o : orders) tracers.emplace_back(p, o, 256, 2048);
  FrameLines lines;
  std::vector<float> centroid(2048), trace(2048);
  auto data = ranks[0].frames<float>("data");
  auto dq = ranks[0].frames<std::uint32_t>("dq");
  double best = 1e30;
  for (int pass = 0; pass < 3; ++pass) {
    const std::clock_t t0 = std::clock();
    for (std::size_t t = 0; t < nt; ++t) {
      lines.load(data.frame(t), dq.frame(t), 256, 2048, spectra::Dispersion::x);
      for (auto& tracer : tracers) tracer.trace(lines, centroid, trace);
    }
    best = std::min(best, static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC);
  }
  std::printf(
      "trace speed: 256 x 2048, 2 orders (3179 lines): %.2f ms per integration, %.1f integrations/s on one "
      "core (CPU time)\n",
      1e3 * best / static_cast<double>(nt), static_cast<double>(nt) / best);

  // one_over_f_masked on the same frames with the traces just measured.
  OneOverFMaskedParams mp;
  mp.orders = {"order1", "order2"};
  const std::clock_t t1 = std::clock();
  tessera::testing::run_like_engine<OneOverFMasked>(mp, ranks);
  const double mask_seconds = static_cast<double>(std::clock() - t1) / CLOCKS_PER_SEC;
  std::printf("one_over_f_masked speed: 256 x 2048, 2 orders: %.2f ms per integration (CPU time)\n",
              1e3 * mask_seconds / static_cast<double>(nt));
  EXPECT_LT(accuracy(ranks[0], "order1", o1, 4, 2043, {}).trace_max, 0.02);
  EXPECT_LT(accuracy(ranks[0], "order2", o2, 700, 1838, {}).trace_max, 0.06);
}

// ---------------------------------------------------------------------------------------------
// one_over_f_masked

/// ny × nx frames (dispersion along x): per-column offset o(t, x) = 0.25·((3x + 5t) mod 17) − 2;
/// order 1 lit (value 100 + y) on rows [c1 − 5, c1 + 5) where c1 = int(trace), order 2 likewise
/// around its own trace where it has one; elsewhere o plus a pattern −1, 0, +1 by row whose
/// median is 0 as long as the unmasked rows hold the three values evenly. Top 8 rows are
/// reference pixels holding 1e4; one do_not_use pixel holds −1e4, one pixel is NaN.
struct MaskScene {
  std::size_t ny = 48, nx = 30, nt = 5;
  double trace1(std::size_t t, std::size_t x) const { return 12.7 + 0.1 * static_cast<double>(x) + 0.05 * t; }
  double trace2(std::size_t t, std::size_t x) const {
    return x >= 10 && x < 25 ? 30.2 + 0.05 * static_cast<double>(x) - 0.02 * t : std::nan("");
  }
  float offset(std::size_t t, std::size_t x) const { return 0.25f * static_cast<float>((3 * x + 5 * t) % 17) - 2.0f; }
  bool lit(double centre, std::size_t y) const {
    if (std::isnan(centre)) return false;
    const auto row = static_cast<long>(centre);
    return static_cast<long>(y) >= row - 5 && static_cast<long>(y) < row + 5;
  }
  /// Signal without the offset.
  float clean(std::size_t t, std::size_t y, std::size_t x) const {
    if (y >= ny - 8) return 1e4f;
    if (lit(trace1(t, x), y) || lit(trace2(t, x), y)) return 100.0f + static_cast<float>(y);
    return static_cast<float>(static_cast<int>(y % 3) - 1);
  }
};

std::vector<Dataset> mask_ranks(const MaskScene& m, int nranks) {
  auto ranks = tessera::testing::make_ranks({m.nt, m.ny, m.nx}, nranks,
                                            [&](std::size_t t, std::span<float> data, std::span<std::uint32_t> dq) {
                                              for (std::size_t y = 0; y < m.ny; ++y)
                                                for (std::size_t x = 0; x < m.nx; ++x) {
                                                  data[y * m.nx + x] = m.clean(t, y, x) + m.offset(t, x);
                                                  dq[y * m.nx + x] = y >= m.ny - 8 ? jdq::reference_pixel : 0u;
                                                }
                                              data[2 * m.nx + 3] = -1e4f;
                                              dq[2 * m.nx + 3] = jdq::do_not_use;
                                              data[35 * m.nx + 4] = kNaN;
                                            });
  for (auto& d : ranks) {
    for (int k : {1, 2}) {
      Image image{{"trace_order" + std::to_string(k), "pixel", "trace"}, "time", "x", m.nt, m.nx, {}};
      for (std::size_t t = 0; t < m.nt; ++t)
        for (std::size_t x = 0; x < m.nx; ++x)
          image.values.push_back(static_cast<float>(k == 1 ? m.trace1(t, x) : m.trace2(t, x)));
      d.images()[image.info.name] = image;
    }
  }
  return ranks;
}

OneOverFMaskedParams mask_params() {
  OneOverFMaskedParams p;
  p.orders = {"order1", "order2"};
  p.mask_aperture = 5;
  return p;
}

TEST(OneOverFMasked, RemovesPerColumnOffsetsExactly) {
  const MaskScene m;
  auto ranks = mask_ranks(m, 1);
  tessera::testing::run_like_engine<OneOverFMasked>(mask_params(), ranks);
  auto data = ranks[0].frames<float>("data");
  const Image& level = ranks[0].image("one_over_f_masked_level");
  EXPECT_EQ(level.info.units, "electron");
  ASSERT_EQ(level.ny, m.nt);
  ASSERT_EQ(level.nx, m.nx);
  for (std::size_t t = 0; t < m.nt; ++t)
    for (std::size_t x = 0; x < m.nx; ++x) {
      // Unmasked rows: 0..39 minus the ten of each order (and the flagged ones) hold the −1, 0, +1
      // pattern evenly enough that the median is exactly 0: the level is the offset.
      EXPECT_EQ(level.values[t * m.nx + x], m.offset(t, x)) << t << " " << x;
      for (std::size_t y = 0; y < m.ny; ++y) {
        if ((y == 2 && x == 3) || (y == 35 && x == 4)) continue;
        ASSERT_EQ(data(t, y, x), m.clean(t, y, x)) << t << " " << y << " " << x;
      }
    }
  EXPECT_TRUE(std::isnan(data(0, 35, 4)));
  EXPECT_EQ(data(0, 2, 3), -1e4f - m.offset(0, 3));  // flagged pixels are corrected too
}

TEST(OneOverFMasked, MasksUseTheTraceRowLikeTheNotebook) {
  // Without the order-2 mask its lit pixels (>= 100) enter the medians and pull them up.
  const MaskScene m;
  auto ranks = mask_ranks(m, 1);
  OneOverFMaskedParams p = mask_params();
  p.orders = {"order1"};
  tessera::testing::run_like_engine<OneOverFMasked>(p, ranks);
  const Image& level = ranks[0].image("one_over_f_masked_level");
  EXPECT_EQ(level.values[5], m.offset(0, 5));  // no order 2 at x = 5
  EXPECT_GT(level.values[15], m.offset(0, 15));
  // Reference pixels counted in. At x = 15, t = 0 the traces are at 14.2 and 30.95: rows 9..18
  // and 25..34 are masked, leaving 0..8, 19..24 and 35..39, whose pattern (y mod 3) − 1 holds
  // seven −1, six 0 and seven +1: median 0. With the eight 1e4 reference rows on top (28
  // values), the 14th and 15th smallest are both +1: the level is the offset + 1.
  auto again = mask_ranks(m, 1);
  p = mask_params();
  p.skip_reference_pixels = false;
  tessera::testing::run_like_engine<OneOverFMasked>(p, again);
  EXPECT_EQ(again[0].image("one_over_f_masked_level").values[15], m.offset(0, 15) + 1.0f);
}

TEST(OneOverFMasked, LinesWithTooFewPixelsAreLeftAlone) {
  const MaskScene m;
  auto ranks = mask_ranks(m, 1);
  // Flag all but 8 unmasked rows of column 7 in integration 1.
  auto dq = ranks[0].frames<std::uint32_t>("dq");
  auto data = ranks[0].frames<float>("data");
  std::size_t kept = 0;
  for (std::size_t y = 0; y < m.ny - 8; ++y)
    if (!m.lit(m.trace1(1, 7), y)) {
      if (kept < 8)
        ++kept;
      else
        dq(1, y, 7) = jdq::do_not_use;
    }
  const float before = data(1, 30, 7);
  tessera::testing::run_like_engine<OneOverFMasked>(mask_params(), ranks);
  EXPECT_TRUE(std::isnan(ranks[0].image("one_over_f_masked_level").values[1 * m.nx + 7]));
  EXPECT_EQ(data(1, 30, 7), before);
  EXPECT_EQ(ranks[0].image("one_over_f_masked_level").values[1 * m.nx + 8], m.offset(1, 8));
}

TEST(OneOverFMasked, SameOutputOnOneTwoAndThreeRanks) {
  const MaskScene m;
  std::vector<std::vector<Dataset>> runs;
  for (int n : {1, 2, 3}) {
    runs.push_back(mask_ranks(m, n));
    tessera::testing::run_like_engine<OneOverFMasked>(mask_params(), runs.back());
  }
  auto gather = [&](std::vector<Dataset>& ranks) {
    std::vector<float> all(m.nt * m.ny * m.nx);
    for (auto& d : ranks) {
      auto data = d.frames<float>("data");
      for (std::size_t t = data.t_begin; t < data.t_end; ++t)
        std::copy(data.frame(t).begin(), data.frame(t).end(),
                  all.begin() + static_cast<std::ptrdiff_t>(t * m.ny * m.nx));
    }
    return all;
  };
  const auto one = gather(runs[0]);
  for (std::size_t r = 1; r < runs.size(); ++r) {
    const auto other = gather(runs[r]);
    for (std::size_t i = 0; i < one.size(); ++i)
      ASSERT_TRUE(one[i] == other[i] || (std::isnan(one[i]) && std::isnan(other[i]))) << i;
    for (const auto& d : runs[r]) {
      const auto& a = runs[0][0].images().at("one_over_f_masked_level").values;
      const auto& b = d.images().at("one_over_f_masked_level").values;
      for (std::size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])));
    }
  }
}

TEST(OneOverFMasked, BadParametersGiveClearErrors) {
  OneOverFMaskedParams p;
  p.orders = {};
  EXPECT_THROW(OneOverFMasked::io(p), ConfigError);
  p.orders = {"order1", "order1"};
  EXPECT_THROW(OneOverFMasked::io(p), ConfigError);
  // A trace image of the wrong width (traced along the other axis).
  const MaskScene m;
  auto ranks = mask_ranks(m, 1);
  OneOverFMaskedParams q = mask_params();
  q.dispersion_axis = "y";
  try {
    tessera::testing::run_like_engine<OneOverFMasked>(q, ranks);
    ADD_FAILURE() << "no error";
  } catch (const StepError& e) {
    EXPECT_NE(std::string(e.what()).find("trace_order1"), std::string::npos) << e.what();
  }
}

}  // namespace
