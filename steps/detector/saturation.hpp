#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct SaturationParams {
  static Schema<SaturationParams> schema() { return tessera::schema<SaturationParams>(); }
};

struct Saturation {
  static constexpr std::string_view name = "saturation";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = SaturationParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
