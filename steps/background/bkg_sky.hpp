#pragma once
/// bkg_sky: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct BkgSkyParams {
  static Schema<BkgSkyParams> schema() { return tessera::schema<BkgSkyParams>(); }
};

struct BkgSky {
  static constexpr std::string_view name = "bkg_sky";
  static constexpr std::string_view summary = "under construction";
  using Params = BkgSkyParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
