// Every built-in step and input kind, one explicit line each (no static self-registration:
// linkers drop unreferenced objects from static libraries).
#include "tessera/registry.hpp"

#include "steps/cleaning/fixed_iter.hpp"
#if __has_include("steps/inputs/hst_flt_dir.hpp")  // TEMP until the input lands
#include "steps/inputs/hst_flt_dir.hpp"
#define TEMP_HAVE_HST 1
#endif

namespace tessera {

void register_builtins(Registry& registry) {
#ifdef TEMP_HAVE_HST
  registry.add_input(describe_input<HstFltDir>());
#endif

  registry.add_step(describe_step<steps::FixedIter>());
}

}  // namespace tessera
