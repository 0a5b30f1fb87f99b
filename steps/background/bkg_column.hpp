#pragma once
/// bkg_column: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct BkgColumnParams {
  static Schema<BkgColumnParams> schema() { return tessera::schema<BkgColumnParams>(); }
};

struct BkgColumn {
  static constexpr std::string_view name = "bkg_column";
  static constexpr std::string_view summary = "under construction";
  using Params = BkgColumnParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
