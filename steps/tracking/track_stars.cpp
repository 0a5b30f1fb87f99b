#include "steps/tracking/track_stars.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "steps/tracking/track_0th.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

/// The stars to track, or a ConfigError saying what is wrong with bkg_stars_loc.
void check_stars(const TrackStarsParams& params, std::size_t ny, std::size_t nx) {
  const auto& stars = params.bkg_stars_loc;
  if (stars.empty())
    throw ConfigError("track_stars: bkg_stars_loc is empty: give [[x, y], ...] of the background stars to track, "
                      "or disable the step");
  for (std::size_t k = 0; k < stars.size(); ++k) {
    const auto& s = stars[k];
    if (s.size() != 2)
      throw ConfigError("track_stars: bkg_stars_loc[" + std::to_string(k) + "]: expected [x, y], got " +
                        std::to_string(s.size()) + " numbers");
    if (s[0] == 0 && s[1] == 0)
      throw ConfigError("track_stars: bkg_stars_loc[" + std::to_string(k) +
                        "] is [0, 0], the template's placeholder: give the estimated [x, y] of each background star "
                        "to track (e.g. bkg_stars_loc = [[120.5, 48.0], [402.0, 210.3]]), or disable the step");
    const double h = static_cast<double>(params.bkg_window);
    if (s[0] + h < -0.5 || s[1] + h < -0.5 || s[0] - h > static_cast<double>(nx) - 0.5 ||
        s[1] - h > static_cast<double>(ny) - 0.5) {
      char text[256];
      std::snprintf(text, sizeof text,
                    "track_stars: bkg_stars_loc[%zu] = [%g, %g]: its window (bkg_window %lld) lies outside the %zu x "
                    "%zu frames (x, y)",
                    k, s[0], s[1], static_cast<long long>(params.bkg_window), nx, ny);
      throw ConfigError(text);
    }
  }
}

}  // namespace

StepIO TrackStars::io(const Params& params) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "dq"}};
  // Rows are frames. Positions: each rank fills its own frames' rows in the first phase and
  // the engine adds the ranks' rows up; shifts: the second phase computes them from the
  // combined positions, the same way on every rank.
  const std::size_t stars = params.bkg_stars_loc.size();
  auto image = [&](std::string name, std::string long_name, Combine combine) {
    DataOut out{DataKind::Image, {std::move(name), "pixel", std::move(long_name)}};
    out.combine = combine;
    out.image_ny = DataOut::frames;
    out.image_nx = stars;
    out.dim_y = "time";
    out.dim_x = "star";
    return out;
  };
  io.writes.push_back(
      image("track_stars_x", "centre column (x) of each background star in each frame", Combine::Auto));
  io.writes.push_back(image("track_stars_y", "centre row (y) of each background star in each frame", Combine::Auto));
  io.writes.push_back(image("track_stars_x_shift", "background star x minus its value in the first frame",
                            Combine::Identical));
  io.writes.push_back(image("track_stars_y_shift", "background star y minus its value in the first frame",
                            Combine::Identical));
  return io;
}

void TrackStars::run(const Params& params, StepContext& context) {
  const auto& shape = context.shape();
  check_stars(params, shape.ny, shape.nx);
  const std::size_t stars = params.bkg_stars_loc.size();
  auto data = context.frames<float>("data");

  Image& xs = context.image("track_stars_x");
  Image& ys = context.image("track_stars_y");
  if (context.phase() == 1) {
    Image& dx = context.image("track_stars_x_shift");
    Image& dy = context.image("track_stars_y_shift");
    for (std::size_t t = 0; t < shape.nt; ++t)
      for (std::size_t k = 0; k < stars; ++k) {
        dx.values[t * stars + k] = xs.values[t * stars + k] - xs.values[k];
        dy.values[t * stars + k] = ys.values[t * stars + k] - ys.values[k];
      }
    context.advance(data.t_end - data.t_begin);
    return;
  }

  auto dq = context.frames<std::uint32_t>("dq");
  PositionSettings settings;
  settings.half_width = params.bkg_window;
  settings.annulus = params.annulus;
  settings.fit = params.method == "gaussian";
  std::vector<float> scratch;
  std::size_t failed = 0, fallbacks = 0;
  std::string why;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    const FrameView frame{data.frame(t), dq.frame(t), shape.ny, shape.nx};
    for (std::size_t k = 0; k < stars; ++k) {
      const auto& guess = params.bkg_stars_loc[k];
      const Position p = measure_position(frame, guess[0], guess[1], settings, scratch);
      if (!p.ok) {
        // One bad frame (e.g. a cosmic ray on a faint star) should not stop the reduction.
        xs.values[t * stars + k] = ys.values[t * stars + k] = std::numeric_limits<float>::quiet_NaN();
        ++failed;
        why = "star " + std::to_string(k) + ", frame " + std::to_string(t) + ": " + p.why;
        continue;
      }
      if (settings.fit && !p.fitted) ++fallbacks;
      xs.values[t * stars + k] = static_cast<float>(p.x);
      ys.values[t * stars + k] = static_cast<float>(p.y);
    }
    context.advance(1);
  }
  if (failed > 0)
    context.log().warn("track_stars: " + std::to_string(failed) + " star position(s) not measured (NaN), e.g. " + why);
  if (fallbacks > 0)
    context.log().warn("track_stars: " + std::to_string(fallbacks) + " star position(s) from the centroid only (the "
                       "Gaussian fit failed)");
}

}  // namespace tessera::steps
