#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct DropGroupsParams {
  static Schema<DropGroupsParams> schema() { return tessera::schema<DropGroupsParams>(); }
};

struct DropGroups {
  static constexpr std::string_view name = "drop_groups";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = DropGroupsParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
