#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct DarkCurrentParams {
  static Schema<DarkCurrentParams> schema() { return tessera::schema<DarkCurrentParams>(); }
};

struct DarkCurrent {
  static constexpr std::string_view name = "dark_current";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = DarkCurrentParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
