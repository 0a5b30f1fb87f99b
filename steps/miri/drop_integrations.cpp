// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/miri/drop_integrations.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void DropIntegrations::run(const Params&, StepContext&) { throw StepError("drop_integrations: under construction"); }

}  // namespace tessera::steps
