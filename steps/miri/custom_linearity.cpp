// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/miri/custom_linearity.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void CustomLinearity::run(const Params&, StepContext&) { throw StepError("custom_linearity: under construction"); }

}  // namespace tessera::steps
