#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct JumpParams {
  static Schema<JumpParams> schema() { return tessera::schema<JumpParams>(); }
};

struct Jump {
  static constexpr std::string_view name = "jump";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = JumpParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
