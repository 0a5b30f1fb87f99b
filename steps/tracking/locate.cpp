#include "steps/tracking/locate.hpp"

namespace tessera::steps {

void Locate::run(const Params&, StepContext&) { throw StepError("locate is under construction"); }

}  // namespace tessera::steps
