// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/miri/drop_groups.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void DropGroups::run(const Params&, StepContext&) { throw StepError("drop_groups: under construction"); }

}  // namespace tessera::steps
