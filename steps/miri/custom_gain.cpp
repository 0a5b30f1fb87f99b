// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/miri/custom_gain.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void CustomGain::run(const Params&, StepContext&) { throw StepError("custom_gain: under construction"); }

}  // namespace tessera::steps
