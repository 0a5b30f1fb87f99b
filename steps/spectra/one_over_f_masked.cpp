// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/spectra/one_over_f_masked.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void OneOverFMasked::run(const Params&, StepContext&) { throw StepError("one_over_f_masked: under construction"); }

}  // namespace tessera::steps
