#pragma once
/// spatial_smooth: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct SpatialSmoothParams {
  static Schema<SpatialSmoothParams> schema() { return tessera::schema<SpatialSmoothParams>(); }
};

struct SpatialSmooth {
  static constexpr std::string_view name = "spatial_smooth";
  static constexpr std::string_view summary = "under construction";
  using Params = SpatialSmoothParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
