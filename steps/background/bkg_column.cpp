#include "steps/background/bkg_column.hpp"

namespace tessera::steps {

void BkgColumn::run(const Params&, StepContext&) { throw StepError("bkg_column is under construction"); }

}  // namespace tessera::steps
