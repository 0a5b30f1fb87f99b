#include "steps/tracking/track_stars.hpp"

namespace tessera::steps {

void TrackStars::run(const Params&, StepContext&) { throw StepError("track_stars is under construction"); }

}  // namespace tessera::steps
