#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct LightcurvesParams {
  static Schema<LightcurvesParams> schema() { return tessera::schema<LightcurvesParams>(); }
};

struct Lightcurves {
  static constexpr std::string_view name = "lightcurves";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = LightcurvesParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
