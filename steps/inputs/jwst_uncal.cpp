// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/inputs/jwst_uncal.hpp"

#include "tessera/errors.hpp"

namespace tessera {

std::unique_ptr<FrameSource> JwstUncal::open(const Params&) { throw InputError("jwst_uncal: under construction"); }

}  // namespace tessera
