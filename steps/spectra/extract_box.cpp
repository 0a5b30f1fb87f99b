// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/spectra/extract_box.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void ExtractBox::run(const Params&, StepContext&) { throw StepError("extract_box: under construction"); }

}  // namespace tessera::steps
