#pragma once
/// hst_dq: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct HstDqParams {
  static Schema<HstDqParams> schema() { return tessera::schema<HstDqParams>(); }
};

struct HstDq {
  static constexpr std::string_view name = "hst_dq";
  static constexpr std::string_view summary = "under construction";
  using Params = HstDqParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
