// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/inputs/tessera_h5.hpp"

#include "tessera/errors.hpp"

namespace tessera {

std::unique_ptr<FrameSource> TesseraH5::open(const Params&) { throw ConfigError("tessera_h5: under construction"); }

}  // namespace tessera
