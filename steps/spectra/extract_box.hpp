#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct ExtractBoxParams {
  static Schema<ExtractBoxParams> schema() { return tessera::schema<ExtractBoxParams>(); }
};

struct ExtractBox {
  static constexpr std::string_view name = "extract_box";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = ExtractBoxParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
