#pragma once
/// Applying a step's Resampling (new frame and group axes) to this rank's data.
#include "tessera/dataset.hpp"
#include "tessera/step.hpp"

namespace tessera {

/// Checks `r` against the dataset's shape; throws StepError naming `who` when it does not fit.
void check_resampling(const Resampling& r, const CubeShape& shape, const std::string& who);

/// Rebuilds every cube (which must be in pixel tiles, where each pixel's samples are local)
/// and every per-frame vector on the new axes, and sets the new shape and partition (the
/// same tiles on the same ranks). Images are left as they are. No communication.
void apply_resampling(Dataset& data, const Resampling& r);

}  // namespace tessera
