#pragma once
/// track_0th: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct Track0thParams {
  static Schema<Track0thParams> schema() { return tessera::schema<Track0thParams>(); }
};

struct Track0th {
  static constexpr std::string_view name = "track_0th";
  static constexpr std::string_view summary = "under construction";
  using Params = Track0thParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
