#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct LcDiagnosticsParams {
  static Schema<LcDiagnosticsParams> schema() { return tessera::schema<LcDiagnosticsParams>(); }
};

struct LcDiagnostics {
  static constexpr std::string_view name = "lc_diagnostics";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = LcDiagnosticsParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
