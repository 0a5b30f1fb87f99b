// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/spectra/trace.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void Trace::run(const Params&, StepContext&) { throw StepError("trace: under construction"); }

}  // namespace tessera::steps
