// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/dark_current.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void DarkCurrent::run(const Params&, StepContext&) { throw StepError("dark_current: under construction"); }

}  // namespace tessera::steps
