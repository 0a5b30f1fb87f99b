#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct LinearityParams {
  static Schema<LinearityParams> schema() { return tessera::schema<LinearityParams>(); }
};

struct Linearity {
  static constexpr std::string_view name = "linearity";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = LinearityParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
