#include "steps/background/bkg_uniform.hpp"

namespace tessera::steps {

void BkgUniform::run(const Params&, StepContext&) { throw StepError("bkg_uniform is under construction"); }

}  // namespace tessera::steps
