#include "steps/cleaning/led.hpp"

namespace tessera::steps {

void Led::run(const Params&, StepContext&) { throw StepError("led is under construction"); }

}  // namespace tessera::steps
