#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct RampFitParams {
  static Schema<RampFitParams> schema() { return tessera::schema<RampFitParams>(); }
};

struct RampFit {
  static constexpr std::string_view name = "ramp_fit";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = RampFitParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
