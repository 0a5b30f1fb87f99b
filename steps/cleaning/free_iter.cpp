#include "steps/cleaning/free_iter.hpp"

namespace tessera::steps {

void FreeIter::run(const Params&, StepContext&) { throw StepError("free_iter is under construction"); }

}  // namespace tessera::steps
