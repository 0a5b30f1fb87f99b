#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct RegroupParams {
  static Schema<RegroupParams> schema() { return tessera::schema<RegroupParams>(); }
};

struct Regroup {
  static constexpr std::string_view name = "regroup";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = RegroupParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
