#pragma once
/// quicklook: UNDER CONSTRUCTION (placeholder so the build is wired; replaced by the real step).
#include "tessera/step.hpp"

namespace tessera::steps {

struct QuicklookParams {
  static Schema<QuicklookParams> schema() { return tessera::schema<QuicklookParams>(); }
};

struct Quicklook {
  static constexpr std::string_view name = "quicklook";
  static constexpr std::string_view summary = "under construction";
  using Params = QuicklookParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
