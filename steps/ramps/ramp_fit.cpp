// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/ramps/ramp_fit.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void RampFit::run(const Params&, StepContext&) { throw StepError("ramp_fit: under construction"); }

}  // namespace tessera::steps
