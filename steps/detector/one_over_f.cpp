// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/detector/one_over_f.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void OneOverF::run(const Params&, StepContext&) { throw StepError("one_over_f: under construction"); }

}  // namespace tessera::steps
