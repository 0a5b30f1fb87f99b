#include "steps/tracking/locate.hpp"

#include <cstdio>

#include "steps/tracking/track_0th.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

StepIO Locate::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Image, "direct_image",
               "the visit needs a directimages/ folder with a _flt.fits exposure, or disable locate (do_location) "
               "and give track_0th a location"}};
  io.writes = {{DataKind::Attribute, {"target_x", "pixel", "target column in the direct image (locate)"}},
               {DataKind::Attribute, {"target_y", "pixel", "target row in the direct image (locate)"}}};
  return io;
}

void Locate::run(const Params& params, StepContext& context) {
  auto& images = context.data().images();
  const auto found = images.find("direct_image");
  if (found == images.end())
    throw InputError("locate: there is no direct image: the input found no exposure in its directimages/ folder "
                     "(hst_flt_dir reads the earliest directimages/*_flt.fits); add it, or disable locate and give "
                     "track_0th a location");
  const Image& direct = found->second;
  const FrameView image{direct.values, {}, direct.ny, direct.nx};
  char text[256];

  double gx = 0, gy = 0;
  if (params.location) {
    if (params.location->size() != 2)
      throw ConfigError("locate: location: expected [x, y], got " + std::to_string(params.location->size()) +
                        " numbers");
    gx = (*params.location)[0];
    gy = (*params.location)[1];
    if (!(gx >= -0.5 && gy >= -0.5 && gx < static_cast<double>(direct.nx) - 0.5 &&
          gy < static_cast<double>(direct.ny) - 0.5)) {
      std::snprintf(text, sizeof text,
                    "locate: location [%g, %g] is outside the %zu x %zu direct image (x, y); give the target's "
                    "[x, y] in it, or unset location to take its brightest peak",
                    gx, gy, direct.nx, direct.ny);
      throw ConfigError(text);
    }
  } else {
    const auto [px, py] = brightest_smoothed_peak(image);
    gx = static_cast<double>(px);
    gy = static_cast<double>(py);
  }

  PositionSettings settings;
  settings.half_width = params.window;
  settings.annulus = params.annulus;
  settings.fit = false;  // the template's centroiding
  std::vector<float> scratch;
  const Position p = measure_position(image, gx, gy, settings, scratch);
  if (!p.ok) {
    std::snprintf(text, sizeof text, "locate: no target near [%.2f, %.2f] in the direct image: ", gx, gy);
    throw StepError(text + p.why);
  }
  context.data().attributes()["target_x"] = p.x;
  context.data().attributes()["target_y"] = p.y;
  std::snprintf(text, sizeof text, "locate: target at x = %.3f, y = %.3f in the direct image (from %s [%.1f, %.1f])",
                p.x, p.y, params.location ? "location" : "its brightest peak", gx, gy);
  context.log().info(text);
}

}  // namespace tessera::steps
