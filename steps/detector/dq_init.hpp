#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct DqInitParams {
  static Schema<DqInitParams> schema() { return tessera::schema<DqInitParams>(); }
};

struct DqInit {
  static constexpr std::string_view name = "dq_init";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = DqInitParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
