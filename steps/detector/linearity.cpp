// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/linearity.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Linearity::run(const Params&, StepContext&) { throw StepError("linearity: under construction"); }

}  // namespace tessera::steps
