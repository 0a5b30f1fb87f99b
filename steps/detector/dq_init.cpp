// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/dq_init.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void DqInit::run(const Params&, StepContext&) { throw StepError("dq_init: under construction"); }

}  // namespace tessera::steps
