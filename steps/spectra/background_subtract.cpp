// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/spectra/background_subtract.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void BackgroundSubtract::run(const Params&, StepContext&) { throw StepError("background_subtract: under construction"); }

}  // namespace tessera::steps
