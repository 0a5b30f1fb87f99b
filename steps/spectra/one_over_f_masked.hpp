#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct OneOverFMaskedParams {
  static Schema<OneOverFMaskedParams> schema() { return tessera::schema<OneOverFMaskedParams>(); }
};

struct OneOverFMasked {
  static constexpr std::string_view name = "one_over_f_masked";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = OneOverFMaskedParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
