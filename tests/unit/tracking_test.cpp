// locate, track_0th and track_stars on hand-made images whose answers are known exactly:
// Gaussians at sub-pixel positions, on a constant background, clipped like a saturated 0th
// order, next to a trace-like stripe; the steps run on 1 and 3 emulated ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include "steps/tracking/locate.hpp"
#include "steps/tracking/track_0th.hpp"
#include "steps/tracking/track_stars.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"
#include "support/emulated_ranks.hpp"
#include "tessera/runner.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;

/// An ny × nx image with dq, built up from pieces.
struct Scene {
  std::size_t ny, nx;
  std::vector<float> values;
  std::vector<std::uint32_t> dq;
  Scene(std::size_t ny_, std::size_t nx_, float level) : ny(ny_), nx(nx_), values(ny_ * nx_, level), dq(ny_ * nx_, 0) {}

  /// peak·exp(−r²/2σ²) sampled at pixel centres.
  void gaussian(double xc, double yc, double peak, double sigma) {
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t x = 0; x < nx; ++x) {
        const double dx = static_cast<double>(x) - xc, dy = static_cast<double>(y) - yc;
        values[y * nx + x] += static_cast<float>(peak * std::exp(-0.5 * (dx * dx + dy * dy) / (sigma * sigma)));
      }
  }
  /// Pixels above `full_well` clipped to it and flagged 256, as calwf3 does.
  void saturate(float full_well) {
    for (std::size_t i = 0; i < values.size(); ++i)
      if (values[i] > full_well) {
        values[i] = full_well;
        dq[i] |= 256;
      }
  }
  /// A trace-like stripe along row yc (Gaussian cross-profile 1.5 px) for columns beyond x_start,
  /// rising by `slope` per column like the simulator's spectrum does from its start.
  void stripe(double yc, double x_start, double slope) {
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t x = 0; x < nx; ++x) {
        const double d = static_cast<double>(x) - x_start;
        if (d <= 0) continue;
        const double dy = (static_cast<double>(y) - yc) / 1.5;
        values[y * nx + x] += static_cast<float>(slope * d * std::exp(-0.5 * dy * dy));
      }
  }
  FrameView view() const { return {values, dq, ny, nx}; }
};

PositionSettings settings(std::int64_t half_width, bool fit) {
  PositionSettings s;
  s.half_width = half_width;
  s.fit = fit;
  return s;
}

TEST(WindowedCentroid, FindsAGaussianOnAConstantBackgroundExactly) {
  Scene scene(60, 70, 40.0f);
  scene.gaussian(31.37, 27.81, 8000, 1.6);
  std::vector<float> scratch;
  const Position p = windowed_centroid(scene.view(), 30, 29, settings(10, false), scratch);
  ASSERT_TRUE(p.ok) << p.why;
  EXPECT_NEAR(p.x, 31.37, 1e-4);
  EXPECT_NEAR(p.y, 27.81, 1e-4);
  EXPECT_NEAR(p.background, 40.0, 1e-3);
  EXPECT_NEAR(p.flux, 2 * std::numbers::pi * 1.6 * 1.6 * 8000, 1.0);
  // Started 4 px away, the window walks onto the star.
  const Position far = windowed_centroid(scene.view(), 35, 24, settings(10, false), scratch);
  ASSERT_TRUE(far.ok) << far.why;
  EXPECT_NEAR(far.x, 31.37, 1e-4);
  EXPECT_NEAR(far.y, 27.81, 1e-4);
}

TEST(WindowedCentroid, LeftoverBackgroundDoesNotPullACentredWindow) {
  // A background the annulus cannot see (a step inside the window only): once the window is
  // centred on the star, a constant contributes no first moment.
  Scene scene(60, 70, 0.0f);
  scene.gaussian(31.37, 27.81, 8000, 1.6);
  for (std::size_t y = 20; y <= 36; ++y)
    for (std::size_t x = 23; x <= 40; ++x) scene.values[y * scene.nx + x] += 25.0f;  // +25 inside the window
  std::vector<float> scratch;
  const Position p = windowed_centroid(scene.view(), 31, 28, settings(6, false), scratch);
  ASSERT_TRUE(p.ok) << p.why;
  EXPECT_NEAR(p.x, 31.37, 2e-3);
  EXPECT_NEAR(p.y, 27.81, 2e-3);
}

TEST(WindowedCentroid, KeepsATraceStripeOutWhereAWideBoxIsPulledByIt) {
  // The 0th order with a trace starting 14 px to its right, as in a G280 frame.
  Scene scene(64, 90, 15.0f);
  scene.gaussian(30.42, 31.76, 60000, 1.7);
  scene.stripe(31.76, 30.42 + 14, 40.0);
  std::vector<float> scratch;
  const Position windowed = windowed_centroid(scene.view(), 30, 32, settings(10, false), scratch);
  ASSERT_TRUE(windowed.ok) << windowed.why;
  EXPECT_NEAR(windowed.x, 30.42, 2e-3);
  EXPECT_NEAR(windowed.y, 31.76, 2e-3);
  // A box that reaches the trace (what a 140 x 140 centroid does) is dragged along x.
  const Position wide = windowed_centroid(scene.view(), 30, 32, settings(30, false), scratch);
  ASSERT_TRUE(wide.ok) << wide.why;
  EXPECT_GT(wide.x - 30.42, 0.3);
  // The Gaussian fit in the same small window agrees.
  const Position fitted = measure_position(scene.view(), 30, 32, settings(10, true), scratch);
  ASSERT_TRUE(fitted.fitted) << fitted.why;
  EXPECT_NEAR(fitted.x, 30.42, 1e-4);
  EXPECT_NEAR(fitted.y, 31.76, 1e-4);
}

TEST(GaussianFit, RecoversASaturatedCoreFromItsWings) {
  // Core clipped at the full well and flagged 256: the fit leaves it out and is exact; the
  // centroid with the clipped core kept is close (its error depends on the sub-pixel phase).
  for (double dx : {0.0, 0.13, 0.37, 0.5}) {
    Scene scene(48, 48, 15.0f);
    const double xc = 23.0 + dx, yc = 24.0 - 0.6 * dx;
    scene.gaussian(xc, yc, 2.5e5, 1.7);
    scene.saturate(63000.0f);
    std::vector<float> scratch;
    const Position fitted = measure_position(scene.view(), 23, 24, settings(12, true), scratch);
    ASSERT_TRUE(fitted.fitted) << fitted.why;
    EXPECT_NEAR(fitted.x, xc, 1e-4) << "dx " << dx;
    EXPECT_NEAR(fitted.y, yc, 1e-4) << "dx " << dx;
    EXPECT_NEAR(fitted.sigma_x, 1.7, 1e-4);
    EXPECT_NEAR(fitted.background, 15.0, 0.01);
    const Position centroid = measure_position(scene.view(), 23, 24, settings(12, false), scratch);
    ASSERT_TRUE(centroid.ok) << centroid.why;
    EXPECT_NEAR(centroid.x, xc, 0.03) << "dx " << dx;
    EXPECT_NEAR(centroid.y, yc, 0.03) << "dx " << dx;
  }
}

TEST(GaussianFit, ClipsACosmicRayInTheWing) {
  Scene scene(48, 48, 15.0f);
  scene.gaussian(22.71, 25.18, 5000, 1.5);
  scene.values[28 * 48 + 25] += 3000.0f;  // 3 px right, 3 px down: on the wing
  std::vector<float> scratch;
  const Position fitted = measure_position(scene.view(), 22, 25, settings(10, true), scratch);
  ASSERT_TRUE(fitted.fitted) << fitted.why;
  EXPECT_NEAR(fitted.x, 22.71, 1e-4);
  EXPECT_NEAR(fitted.y, 25.18, 1e-4);
  // The centroid has no such defence: the hit moves it by a visible amount.
  const Position centroid = measure_position(scene.view(), 22, 25, settings(10, false), scratch);
  EXPECT_GT(std::hypot(centroid.x - 22.71, centroid.y - 25.18), 0.05);
}

TEST(Peaks, ASingleHotPixelDoesNotWinOverAStar) {
  Scene scene(40, 50, 10.0f);
  scene.gaussian(31.2, 12.7, 3000, 1.7);
  scene.values[30 * 50 + 8] = 20000.0f;  // one pixel, brighter than the star's peak
  const auto [px, py] = brightest_smoothed_peak(scene.view());
  EXPECT_LE(std::fabs(static_cast<double>(px) - 31.2), 1.0);
  EXPECT_LE(std::fabs(static_cast<double>(py) - 12.7), 1.0);
  const auto near = brightest_pixel(scene.view(), 28, 15, 6);
  ASSERT_TRUE(near.has_value());
  EXPECT_EQ(*near, (std::pair<long, long>{31, 13}));
  EXPECT_FALSE(brightest_pixel(scene.view(), -30, 15, 6).has_value());
}

TEST(Background, AnnulusMedianAndSpread) {
  // Values 10, 11, 12 in about equal numbers: median 11, median absolute deviation 1.
  Scene scene(30, 30, 0.0f);
  for (std::size_t y = 0; y < 30; ++y)
    for (std::size_t x = 0; x < 30; ++x) scene.values[y * 30 + x] = static_cast<float>(10 + (x + y) % 3);
  scene.values[15 * 30 + 15] = 1e6f;  // inside the inner edge: not counted
  std::vector<float> scratch;
  const LocalBackground b = annulus_background(scene.view(), 15, 15, 3, 6, scratch);
  EXPECT_EQ(b.pixels, 13u * 13u - 7u * 7u);
  EXPECT_EQ(b.level, 11.0);
  EXPECT_NEAR(b.noise, 1.4826, 1e-6);
  // Clipped to the image at a corner.
  EXPECT_EQ(annulus_background(scene.view(), 0, 0, 3, 6, scratch).pixels, 7u * 7u - 4u * 4u);
}

// ---- the steps, run the way the engine runs them, on 1 and 3 emulated ranks ----

/// `nranks` emulated ranks whose frames are scenes drawn by `fill`.
std::vector<Dataset> make_ranks(CubeShape shape, int nranks, const std::function<void(std::size_t, Scene&)>& fill) {
  return tessera::testing::make_ranks(shape, nranks, [&](std::size_t t, std::span<float> data, std::span<std::uint32_t> dq) {
    Scene scene(shape.ny, shape.nx, 0.0f);
    fill(t, scene);
    std::copy(scene.values.begin(), scene.values.end(), data.begin());
    std::copy(scene.dq.begin(), scene.dq.end(), dq.begin());
  });
}

using tessera::testing::run_like_engine;

/// Frame t: the scene shifted by (0.02 t, −0.015 t) px; a clipped 0th order at (40.3, 30.6),
/// a trace to its right, and two unsaturated stars.
constexpr double kZx = 40.3, kZy = 30.6;
double shift_x(std::size_t t) { return 0.02 * static_cast<double>(t); }
double shift_y(std::size_t t) { return -0.015 * static_cast<double>(t); }
void visit_frame(std::size_t t, Scene& scene) {
  std::fill(scene.values.begin(), scene.values.end(), 12.0f);
  const double sx = shift_x(t), sy = shift_y(t);
  scene.gaussian(kZx + sx, kZy + sy, 2.5e5, 1.7);
  scene.stripe(kZy + sy, kZx + sx + 16, 30.0);
  scene.gaussian(12.4 + sx, 8.7 + sy, 3000, 1.6);
  scene.gaussian(70.8 + sx, 52.2 + sy, 4500, 1.6);
  scene.saturate(63000.0f);
}

TEST(Track0th, FollowsTheShiftOnAnyNumberOfRanks) {
  const CubeShape shape{7, 64, 96};
  Track0thParams params;
  params.location = std::vector<double>{41.0, 30.0};
  params.window = 12;
  std::vector<std::vector<double>> first_run;
  for (int nranks : {1, 3}) {
    auto ranks = make_ranks(shape, nranks, visit_frame);
    run_like_engine<Track0th>(params, ranks);
    for (const auto& d : ranks) {
      const auto& x = d.frame_vectors().at("track_0th_x").values;
      const auto& y = d.frame_vectors().at("track_0th_y").values;
      const auto& dx = d.frame_vectors().at("track_0th_x_shift").values;
      const auto& dy = d.frame_vectors().at("track_0th_y_shift").values;
      for (std::size_t t = 0; t < shape.nt; ++t) {
        EXPECT_NEAR(x[t], kZx + shift_x(t), 1e-4) << "frame " << t;
        EXPECT_NEAR(y[t], kZy + shift_y(t), 1e-4) << "frame " << t;
        EXPECT_NEAR(dx[t], shift_x(t), 1e-4) << "frame " << t;
        EXPECT_NEAR(dy[t], shift_y(t), 1e-4) << "frame " << t;
      }
      EXPECT_EQ(dx[0], 0.0);
      const std::vector<std::vector<double>> results{x, y, dx, dy};
      if (first_run.empty()) first_run = results;
      EXPECT_EQ(results, first_run) << "on " << nranks << " ranks";  // bit-identical across partitions
    }
  }
}

TEST(Track0th, UsesLocateAttributesWhenLocationIsUnsetAndSaysWhatIsMissing) {
  const CubeShape shape{2, 64, 96};
  Track0thParams params;
  params.location.reset();
  auto ranks = make_ranks(shape, 1, visit_frame);
  try {
    run_like_engine<Track0th>(params, ranks);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("locate"), std::string::npos) << e.what();
  }
  ranks = make_ranks(shape, 1, visit_frame);
  ranks[0].attributes()["target_x"] = 39.0;
  ranks[0].attributes()["target_y"] = 31.5;
  run_like_engine<Track0th>(params, ranks);
  EXPECT_NEAR(ranks[0].frame_vectors().at("track_0th_x").values[1], kZx + shift_x(1), 1e-4);

  // The template's default location is far outside these small frames.
  Track0thParams defaults;
  ranks = make_ranks(shape, 1, visit_frame);
  try {
    run_like_engine<Track0th>(defaults, ranks);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the 96 x 64 frames"), std::string::npos) << e.what();
  }
  // It declares what it reads: the attributes only when it needs them.
  auto reads_attribute = [](const StepIO& io) {
    for (const auto& r : io.reads)
      if (r.kind == DataKind::Attribute && r.name == "target_x") return true;
    return false;
  };
  EXPECT_TRUE(reads_attribute(Track0th::io(params)));
  EXPECT_FALSE(reads_attribute(Track0th::io(defaults)));
}

TEST(TrackStars, ShiftsPerStarInImagesOverTimeAndStar) {
  const CubeShape shape{5, 64, 96};
  TrackStarsParams params;
  params.bkg_stars_loc = {{13.0, 9.0}, {70.0, 53.0}};
  params.bkg_window = 7;  // keeps the 0th order out of the first star's window
  std::vector<float> first_run;
  for (int nranks : {1, 3}) {
    auto ranks = make_ranks(shape, nranks, visit_frame);
    run_like_engine<TrackStars>(params, ranks);
    for (const auto& d : ranks) {
      const Image& dx = d.images().at("track_stars_x_shift");
      const Image& dy = d.images().at("track_stars_y_shift");
      const Image& x = d.images().at("track_stars_x");
      ASSERT_EQ(dx.ny, shape.nt);
      ASSERT_EQ(dx.nx, 2u);
      EXPECT_EQ(dx.dim_y, "time");
      EXPECT_EQ(dx.dim_x, "star");
      ASSERT_EQ(dx.values.size(), shape.nt * 2);
      for (std::size_t t = 0; t < shape.nt; ++t) {
        EXPECT_NEAR(x.values[t * 2 + 0], 12.4 + shift_x(t), 1e-4);
        EXPECT_NEAR(x.values[t * 2 + 1], 70.8 + shift_x(t), 1e-4);
        for (std::size_t k = 0; k < 2; ++k) {
          EXPECT_NEAR(dx.values[t * 2 + k], shift_x(t), 1e-4) << "frame " << t << " star " << k;
          EXPECT_NEAR(dy.values[t * 2 + k], shift_y(t), 1e-4) << "frame " << t << " star " << k;
        }
      }
      if (first_run.empty()) first_run = dx.values;
      EXPECT_EQ(dx.values, first_run) << "on " << nranks << " ranks";
    }
  }
}

TEST(TrackStars, WindowPartlyOffTheFrameIsClipped) {
  const CubeShape shape{3, 40, 40};
  TrackStarsParams params;
  params.bkg_stars_loc = {{3.0, 20.0}};  // the ±15 window reaches 12 px past the left edge
  auto ranks = make_ranks(shape, 1, [](std::size_t t, Scene& scene) {
    std::fill(scene.values.begin(), scene.values.end(), 5.0f);
    scene.gaussian(4.2 + shift_x(t), 19.6 + shift_y(t), 4000, 1.5);
  });
  run_like_engine<TrackStars>(params, ranks);
  const Image& dx = ranks[0].images().at("track_stars_x_shift");
  for (std::size_t t = 0; t < shape.nt; ++t) EXPECT_NEAR(dx.values[t], shift_x(t), 1e-4);
  EXPECT_NEAR(ranks[0].images().at("track_stars_x").values[0], 4.2, 1e-4);
}

TEST(TrackStars, ThePlaceholderPositionsAreRefusedWithAnExplanation) {
  const CubeShape shape{2, 64, 96};
  TrackStarsParams params;  // the template's [[0, 0], [0, 0]]
  auto ranks = make_ranks(shape, 1, visit_frame);
  try {
    run_like_engine<TrackStars>(params, ranks);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bkg_stars_loc[0]"), std::string::npos) << what;
    EXPECT_NE(what.find("placeholder"), std::string::npos) << what;
  }
  params.bkg_stars_loc = {{10.0, 10.0, 3.0}};
  ranks = make_ranks(shape, 1, visit_frame);
  EXPECT_THROW(run_like_engine<TrackStars>(params, ranks), ConfigError);
  params.bkg_stars_loc = {{500.0, 10.0}};
  ranks = make_ranks(shape, 1, visit_frame);
  try {
    run_like_engine<TrackStars>(params, ranks);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("outside"), std::string::npos) << e.what();
  }
}

// ---- locate ----

Dataset with_direct_image(const Scene& scene) {
  const CubeShape shape{2, 8, 8};
  Dataset d(shape, Partition::frames(shape, 1), 0);
  d.add_cube({"data", "electron", "signal"}, ElementType::Float32);
  Image image;
  image.info = {"direct_image", "electron", "direct image"};
  image.dim_y = "direct_y";
  image.dim_x = "direct_x";
  image.ny = scene.ny;
  image.nx = scene.nx;
  image.values = scene.values;
  d.images()["direct_image"] = image;
  return d;
}

void run_locate(const LocateParams& params, Dataset& d) {
  Logger log(0, Verbosity::Quiet);
  StepContext context(d, log, nullptr);
  Locate::run(params, context);
}

TEST(Locate, FindsTheBrightestStarOrTheOneNearLocation) {
  Scene scene(80, 120, 1.5f);
  scene.gaussian(70.64, 41.27, 30000, 1.7);  // the target
  scene.gaussian(20.31, 15.82, 2000, 1.7);   // a field star
  scene.values[60 * 120 + 100] = 90000.0f;   // a cosmic ray
  Dataset d = with_direct_image(scene);
  run_locate({}, d);
  EXPECT_NEAR(std::get<double>(d.attributes().at("target_x")), 70.64, 1e-3);
  EXPECT_NEAR(std::get<double>(d.attributes().at("target_y")), 41.27, 1e-3);

  LocateParams near_star;
  near_star.location = std::vector<double>{22.0, 14.0};
  near_star.window = 8;
  run_locate(near_star, d);
  EXPECT_NEAR(std::get<double>(d.attributes().at("target_x")), 20.31, 1e-3);
  EXPECT_NEAR(std::get<double>(d.attributes().at("target_y")), 15.82, 1e-3);
}

TEST(Locate, ErrorsNameWhatIsMissing) {
  Scene scene(40, 60, 1.0f);
  scene.gaussian(30.2, 20.1, 10000, 1.7);
  Dataset d = with_direct_image(scene);
  LocateParams outside;
  outside.location = std::vector<double>{970.0, 170.0};
  try {
    run_locate(outside, d);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the 60 x 40 direct image"), std::string::npos) << e.what();
  }
  d.images().clear();
  try {
    run_locate({}, d);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("directimages/"), std::string::npos) << e.what();
  }
  // Declared, so a workflow without a direct image fails validation before any data is read.
  const StepIO io = Locate::io({});
  ASSERT_EQ(io.reads.size(), 1u);
  EXPECT_EQ(io.reads[0].name, "direct_image");
}

}  // namespace
