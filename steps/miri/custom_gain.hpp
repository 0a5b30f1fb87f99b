#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct CustomGainParams {
  static Schema<CustomGainParams> schema() { return tessera::schema<CustomGainParams>(); }
};

struct CustomGain {
  static constexpr std::string_view name = "custom_gain";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = CustomGainParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
