// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/inputs/jwst_rateints.hpp"

#include "tessera/errors.hpp"

namespace tessera {

std::unique_ptr<FrameSource> JwstRateints::open(const Params&) { throw ConfigError("jwst_rateints: under construction"); }

}  // namespace tessera
