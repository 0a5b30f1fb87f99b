// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/lightcurves/lc_diagnostics.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void LcDiagnostics::run(const Params&, StepContext&) { throw StepError("lc_diagnostics: under construction"); }

}  // namespace tessera::steps
