// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/spectra/align_spectra.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void AlignSpectra::run(const Params&, StepContext&) { throw StepError("align_spectra: under construction"); }

}  // namespace tessera::steps
