// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/lightcurves/lightcurves.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Lightcurves::run(const Params&, StepContext&) { throw StepError("lightcurves: under construction"); }

}  // namespace tessera::steps
