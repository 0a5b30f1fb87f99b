#include "steps/cleaning/spatial_smooth.hpp"

namespace tessera::steps {

void SpatialSmooth::run(const Params&, StepContext&) { throw StepError("spatial_smooth is under construction"); }

}  // namespace tessera::steps
