#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct RefpixMiriParams {
  static Schema<RefpixMiriParams> schema() { return tessera::schema<RefpixMiriParams>(); }
};

struct RefpixMiri {
  static constexpr std::string_view name = "refpix_miri";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = RefpixMiriParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
