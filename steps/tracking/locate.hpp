#pragma once
/// locate: refine the target's position in the direct image by centroiding (ExoTiC-UVIS /
/// HUSTLE-tools stage 1, "refine target location"). Sets the dataset attributes target_x and
/// target_y, which track_0th uses when its own location is unset.
#include <cstdint>
#include <optional>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct LocateParams {
  std::optional<std::vector<double>> location;  // unset: the brightest (3 x 3 median) peak of the direct image
  std::int64_t window = 15;
  std::int64_t annulus = 5;

  static Schema<LocateParams> schema() {
    return tessera::schema<LocateParams>(
        field(&LocateParams::location, "location",
              "[x, y] guess of the target in the direct image (template: location); unset: its brightest peak "
              "after a 3 x 3 median"),
        field(&LocateParams::window, "window",
              "Half-width (px) of the square centroiding window; the window follows the centroid",
              Range::at_least(2)),
        field(&LocateParams::annulus, "annulus",
              "Width (px) of the square annulus just outside the window whose median is the local background",
              Range::at_least(1)));
  }
};

/// Reads only the replicated direct image, so every rank computes the same target_x, target_y.
struct Locate {
  static constexpr std::string_view name = "locate";
  static constexpr std::string_view summary =
      "Refine the target position in the direct image by a background-subtracted windowed centroid -> target_x, "
      "target_y";
  using Params = LocateParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
