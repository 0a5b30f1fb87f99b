#pragma once
/// track_stars: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct TrackStarsParams {
  static Schema<TrackStarsParams> schema() { return tessera::schema<TrackStarsParams>(); }
};

struct TrackStars {
  static constexpr std::string_view name = "track_stars";
  static constexpr std::string_view summary = "under construction";
  using Params = TrackStarsParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
