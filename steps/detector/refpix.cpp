// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/refpix.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Refpix::run(const Params&, StepContext&) { throw StepError("refpix: under construction"); }

}  // namespace tessera::steps
