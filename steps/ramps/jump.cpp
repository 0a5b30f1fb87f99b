// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/ramps/jump.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Jump::run(const Params&, StepContext&) { throw StepError("jump: under construction"); }

}  // namespace tessera::steps
