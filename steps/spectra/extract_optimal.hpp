#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct ExtractOptimalParams {
  static Schema<ExtractOptimalParams> schema() { return tessera::schema<ExtractOptimalParams>(); }
};

struct ExtractOptimal {
  static constexpr std::string_view name = "extract_optimal";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = ExtractOptimalParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
