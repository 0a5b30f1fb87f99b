#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct GainScaleParams {
  static Schema<GainScaleParams> schema() { return tessera::schema<GainScaleParams>(); }
};

struct GainScale {
  static constexpr std::string_view name = "gain_scale";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = GainScaleParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
