#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct GroupBackgroundParams {
  static Schema<GroupBackgroundParams> schema() { return tessera::schema<GroupBackgroundParams>(); }
};

struct GroupBackground {
  static constexpr std::string_view name = "group_background";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = GroupBackgroundParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
