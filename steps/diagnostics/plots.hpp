#pragma once
/// plots: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct PlotsParams {
  static Schema<PlotsParams> schema() { return tessera::schema<PlotsParams>(); }
};

struct Plots {
  static constexpr std::string_view name = "plots";
  static constexpr std::string_view summary = "under construction";
  using Params = PlotsParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
