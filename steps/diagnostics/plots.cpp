#include "steps/diagnostics/plots.hpp"

namespace tessera::steps {

void Plots::run(const Params&, StepContext&) { throw StepError("plots is under construction"); }

}  // namespace tessera::steps
