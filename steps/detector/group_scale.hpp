#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct GroupScaleParams {
  static Schema<GroupScaleParams> schema() { return tessera::schema<GroupScaleParams>(); }
};

struct GroupScale {
  static constexpr std::string_view name = "group_scale";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = GroupScaleParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
