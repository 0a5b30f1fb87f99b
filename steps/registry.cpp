// Every built-in step and input kind, one explicit line each (no static self-registration:
// linkers drop unreferenced objects from static libraries).
#include "tessera/registry.hpp"

#include "steps/cleaning/fixed_iter.hpp"
#include "steps/cleaning/hst_dq.hpp"
#include "steps/cleaning/free_iter.hpp"
#include "steps/cleaning/led.hpp"
#include "steps/cleaning/spatial_smooth.hpp"
#include "steps/background/bkg_uniform.hpp"
#include "steps/background/bkg_column.hpp"
#include "steps/background/bkg_sky.hpp"
#include "steps/tracking/locate.hpp"
#include "steps/tracking/track_0th.hpp"
#include "steps/tracking/track_stars.hpp"
#include "steps/diagnostics/quicklook.hpp"
#include "steps/diagnostics/plots.hpp"
#include "steps/inputs/hst_flt_dir.hpp"

namespace tessera {

void register_builtins(Registry& registry) {
  registry.add_input(describe_input<HstFltDir>());

  registry.add_step(describe_step<steps::FixedIter>());
  registry.add_step(describe_step<steps::HstDq>());
  registry.add_step(describe_step<steps::FreeIter>());
  registry.add_step(describe_step<steps::Led>());
  registry.add_step(describe_step<steps::SpatialSmooth>());
  registry.add_step(describe_step<steps::BkgUniform>());
  registry.add_step(describe_step<steps::BkgColumn>());
  registry.add_step(describe_step<steps::BkgSky>());
  registry.add_step(describe_step<steps::Locate>());
  registry.add_step(describe_step<steps::Track0th>());
  registry.add_step(describe_step<steps::TrackStars>());
  registry.add_step(describe_step<steps::Quicklook>());
  registry.add_step(describe_step<steps::Plots>());
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
