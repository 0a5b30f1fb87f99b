// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/miri/refpix_miri.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void RefpixMiri::run(const Params&, StepContext&) { throw StepError("refpix_miri: under construction"); }

}  // namespace tessera::steps
