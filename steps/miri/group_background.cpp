// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/miri/group_background.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void GroupBackground::run(const Params&, StepContext&) { throw StepError("group_background: under construction"); }

}  // namespace tessera::steps
