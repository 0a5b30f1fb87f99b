#include "steps/tracking/track_stars.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "steps/tracking/track_0th.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

std::string star_vector(char axis, std::size_t k) {
  return std::string("track_stars_") + axis + "_" + std::to_string(k);
}

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
  for (std::size_t k = 0; k < params.bkg_stars_loc.size(); ++k) {
    const std::string which = "background star " + std::to_string(k) + " (bkg_stars_loc[" + std::to_string(k) + "])";
    io.writes.push_back({DataKind::FrameVector, {star_vector('x', k), "pixel", "centre column (x) of " + which}});
    io.writes.push_back({DataKind::FrameVector, {star_vector('y', k), "pixel", "centre row (y) of " + which}});
  }
  // Built in the second phase from the per-frame vectors, the same way on every rank. Their
  // rows are frames: the engine sizes images before the frame count is known, so run() gives
  // them nt rows.
  const std::size_t stars = params.bkg_stars_loc.size();
  auto image = [&](std::string name, std::string long_name) {
    DataOut out{DataKind::Image, {std::move(name), "pixel", std::move(long_name)}};
    out.combine = Combine::Identical;
    out.image_ny = DataOut::frames;
    out.image_nx = stars;
    out.dim_y = "time";
    out.dim_x = "star";
    return out;
  };
  io.writes.push_back(image("track_stars_x", "centre column (x) of each background star in each frame"));
  io.writes.push_back(image("track_stars_y", "centre row (y) of each background star in each frame"));
  io.writes.push_back(image("track_stars_x_shift", "background star x minus its value in the first frame"));
  io.writes.push_back(image("track_stars_y_shift", "background star y minus its value in the first frame"));
  return io;
}

void TrackStars::run(const Params& params, StepContext& context) {
  const auto& shape = context.shape();
  check_stars(params, shape.ny, shape.nx);
  const std::size_t stars = params.bkg_stars_loc.size();
  auto data = context.frames<float>("data");

  if (context.phase() == 1) {
    const char* names[] = {"track_stars_x", "track_stars_y", "track_stars_x_shift", "track_stars_y_shift"};
    for (int i = 0; i < 4; ++i) {
      Image& image = context.image(names[i]);
      const char axis = i % 2 == 0 ? 'x' : 'y';
      const bool shift = i >= 2;
      for (std::size_t k = 0; k < stars; ++k) {
        const std::vector<double>& position = context.frame_vector(star_vector(axis, k)).values;
        for (std::size_t t = 0; t < shape.nt; ++t)
          image.values[t * stars + k] = static_cast<float>(shift ? position[t] - position.front() : position[t]);
      }
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
  std::vector<std::vector<double>*> xs, ys;
  for (std::size_t k = 0; k < stars; ++k) {
    xs.push_back(&context.frame_vector(star_vector('x', k)).values);
    ys.push_back(&context.frame_vector(star_vector('y', k)).values);
  }
  std::size_t failed = 0, fallbacks = 0;
  std::string why;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    const FrameView frame{data.frame(t), dq.frame(t), shape.ny, shape.nx};
    for (std::size_t k = 0; k < stars; ++k) {
      const auto& guess = params.bkg_stars_loc[k];
      const Position p = measure_position(frame, guess[0], guess[1], settings, scratch);
      if (!p.ok) {
        // One bad frame (e.g. a cosmic ray on a faint star) should not stop the reduction.
        (*xs[k])[t] = (*ys[k])[t] = std::numeric_limits<double>::quiet_NaN();
        ++failed;
        why = "star " + std::to_string(k) + ", frame " + std::to_string(t) + ": " + p.why;
        continue;
      }
      if (settings.fit && !p.fitted) ++fallbacks;
      (*xs[k])[t] = p.x;
      (*ys[k])[t] = p.y;
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
