#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct BackgroundSubtractParams {
  static Schema<BackgroundSubtractParams> schema() { return tessera::schema<BackgroundSubtractParams>(); }
};

struct BackgroundSubtract {
  static constexpr std::string_view name = "background_subtract";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = BackgroundSubtractParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
