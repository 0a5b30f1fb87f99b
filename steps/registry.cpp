// Every built-in step and input kind, one explicit line each (no static self-registration:
// linkers drop unreferenced objects from static libraries).
#include "tessera/registry.hpp"

#include "steps/cleaning/fixed_iter.hpp"
#include "steps/inputs/hst_flt_dir.hpp"

namespace tessera {

void register_builtins(Registry& registry) {
  registry.add_input(describe_input<HstFltDir>());

  registry.add_step(describe_step<steps::FixedIter>());
}

const Registry& builtin_registry() {
  static const Registry registry = [] {
    Registry r;
    register_builtins(r);
    return r;
  }();
  return registry;
}

}  // namespace tessera
