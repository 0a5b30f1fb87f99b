#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct DropIntegrationsParams {
  static Schema<DropIntegrationsParams> schema() { return tessera::schema<DropIntegrationsParams>(); }
};

struct DropIntegrations {
  static constexpr std::string_view name = "drop_integrations";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = DropIntegrationsParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
