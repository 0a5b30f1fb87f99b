// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "steps/spectra/clean_outliers.hpp"

#include "tessera/errors.hpp"

namespace tessera::steps {

void CleanOutliers::run(const Params&, StepContext&) { throw StepError("clean_outliers: under construction"); }

}  // namespace tessera::steps
