// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/miri/regroup.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Regroup::run(const Params&, StepContext&) { throw StepError("regroup: under construction"); }

}  // namespace tessera::steps
