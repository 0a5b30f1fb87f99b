#pragma once
/// free_iter: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct FreeIterParams {
  static Schema<FreeIterParams> schema() { return tessera::schema<FreeIterParams>(); }
};

struct FreeIter {
  static constexpr std::string_view name = "free_iter";
  static constexpr std::string_view summary = "under construction";
  using Params = FreeIterParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
