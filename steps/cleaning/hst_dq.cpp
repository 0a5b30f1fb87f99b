#include "steps/cleaning/hst_dq.hpp"

namespace tessera::steps {

void HstDq::run(const Params&, StepContext&) { throw StepError("hst_dq is under construction"); }

}  // namespace tessera::steps
