#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct CleanOutliersParams {
  static Schema<CleanOutliersParams> schema() { return tessera::schema<CleanOutliersParams>(); }
};

struct CleanOutliers {
  static constexpr std::string_view name = "clean_outliers";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = CleanOutliersParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
