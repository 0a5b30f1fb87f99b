#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct TraceParams {
  static Schema<TraceParams> schema() { return tessera::schema<TraceParams>(); }
};

struct Trace {
  static constexpr std::string_view name = "trace";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = TraceParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
