#include "steps/background/bkg_sky.hpp"

namespace tessera::steps {

void BkgSky::run(const Params&, StepContext&) { throw StepError("bkg_sky is under construction"); }

}  // namespace tessera::steps
