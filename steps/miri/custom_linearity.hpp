#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct CustomLinearityParams {
  static Schema<CustomLinearityParams> schema() { return tessera::schema<CustomLinearityParams>(); }
};

struct CustomLinearity {
  static constexpr std::string_view name = "custom_linearity";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = CustomLinearityParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
