#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct RefpixParams {
  static Schema<RefpixParams> schema() { return tessera::schema<RefpixParams>(); }
};

struct Refpix {
  static constexpr std::string_view name = "refpix";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = RefpixParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
