#include "steps/tracking/track_0th.hpp"

namespace tessera::steps {

void Track0th::run(const Params&, StepContext&) { throw StepError("track_0th is under construction"); }

}  // namespace tessera::steps
