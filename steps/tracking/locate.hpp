#pragma once
/// locate: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct LocateParams {
  static Schema<LocateParams> schema() { return tessera::schema<LocateParams>(); }
};

struct Locate {
  static constexpr std::string_view name = "locate";
  static constexpr std::string_view summary = "under construction";
  using Params = LocateParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
