#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct SuperbiasParams {
  static Schema<SuperbiasParams> schema() { return tessera::schema<SuperbiasParams>(); }
};

struct Superbias {
  static constexpr std::string_view name = "superbias";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = SuperbiasParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
