#pragma once
/// bkg_uniform: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct BkgUniformParams {
  static Schema<BkgUniformParams> schema() { return tessera::schema<BkgUniformParams>(); }
};

struct BkgUniform {
  static constexpr std::string_view name = "bkg_uniform";
  static constexpr std::string_view summary = "under construction";
  using Params = BkgUniformParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
