// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/spectra/extract_optimal.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void ExtractOptimal::run(const Params&, StepContext&) { throw StepError("extract_optimal: under construction"); }

}  // namespace tessera::steps
