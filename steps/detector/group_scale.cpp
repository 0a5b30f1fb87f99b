// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/group_scale.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void GroupScale::run(const Params&, StepContext&) { throw StepError("group_scale: under construction"); }

}  // namespace tessera::steps
