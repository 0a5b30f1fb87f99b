#include "steps/diagnostics/quicklook.hpp"

namespace tessera::steps {

void Quicklook::run(const Params&, StepContext&) { throw StepError("quicklook is under construction"); }

}  // namespace tessera::steps
