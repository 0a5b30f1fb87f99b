// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/gain_scale.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void GainScale::run(const Params&, StepContext&) { throw StepError("gain_scale: under construction"); }

}  // namespace tessera::steps
