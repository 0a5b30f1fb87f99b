#pragma once
/// led: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct LedParams {
  static Schema<LedParams> schema() { return tessera::schema<LedParams>(); }
};

struct Led {
  static constexpr std::string_view name = "led";
  static constexpr std::string_view summary = "under construction";
  using Params = LedParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
