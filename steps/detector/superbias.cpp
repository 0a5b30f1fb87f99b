// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/superbias.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Superbias::run(const Params&, StepContext&) { throw StepError("superbias: under construction"); }

}  // namespace tessera::steps
