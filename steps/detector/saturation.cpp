// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/saturation.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Saturation::run(const Params&, StepContext&) { throw StepError("saturation: under construction"); }

}  // namespace tessera::steps
