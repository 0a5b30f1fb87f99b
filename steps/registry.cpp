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
#include "steps/inputs/jwst_uncal.hpp"
#include "steps/detector/dq_init.hpp"
#include "steps/detector/saturation.hpp"
#include "steps/detector/superbias.hpp"
#include "steps/detector/linearity.hpp"
#include "steps/detector/dark_current.hpp"
#include "steps/detector/group_scale.hpp"
#include "steps/detector/gain_scale.hpp"
#include "steps/detector/refpix.hpp"
#include "steps/detector/one_over_f.hpp"
#include "steps/ramps/jump.hpp"
#include "steps/ramps/ramp_fit.hpp"
#include "steps/miri/drop_groups.hpp"
#include "steps/miri/drop_integrations.hpp"
#include "steps/miri/regroup.hpp"
#include "steps/miri/group_background.hpp"
#include "steps/miri/custom_gain.hpp"
#include "steps/miri/custom_linearity.hpp"
#include "steps/miri/refpix_miri.hpp"
#include "steps/spectra/trace.hpp"
#include "steps/spectra/one_over_f_masked.hpp"
#include "steps/spectra/clean_outliers.hpp"
#include "steps/spectra/background_subtract.hpp"
#include "steps/spectra/extract_box.hpp"
#include "steps/spectra/extract_optimal.hpp"
#include "steps/spectra/align_spectra.hpp"
#include "steps/lightcurves/lightcurves.hpp"
#include "steps/lightcurves/lc_diagnostics.hpp"
#include "steps/inputs/jwst_rateints.hpp"
#include "steps/inputs/tessera_h5.hpp"

namespace tessera {

void register_builtins(Registry& registry) {
  registry.add_input(describe_input<HstFltDir>());
  registry.add_input(describe_input<JwstUncal>());
  registry.add_input(describe_input<JwstRateints>());
  registry.add_input(describe_input<TesseraH5>());

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
  registry.add_step(describe_step<steps::DqInit>());
  registry.add_step(describe_step<steps::Saturation>());
  registry.add_step(describe_step<steps::Superbias>());
  registry.add_step(describe_step<steps::Linearity>());
  registry.add_step(describe_step<steps::DarkCurrent>());
  registry.add_step(describe_step<steps::GroupScale>());
  registry.add_step(describe_step<steps::GainScale>());
  registry.add_step(describe_step<steps::Refpix>());
  registry.add_step(describe_step<steps::OneOverF>());
  registry.add_step(describe_step<steps::Jump>());
  registry.add_step(describe_step<steps::RampFit>());
  registry.add_step(describe_step<steps::DropGroups>());
  registry.add_step(describe_step<steps::DropIntegrations>());
  registry.add_step(describe_step<steps::Regroup>());
  registry.add_step(describe_step<steps::GroupBackground>());
  registry.add_step(describe_step<steps::CustomGain>());
  registry.add_step(describe_step<steps::CustomLinearity>());
  registry.add_step(describe_step<steps::RefpixMiri>());
  registry.add_step(describe_step<steps::Trace>());
  registry.add_step(describe_step<steps::OneOverFMasked>());
  registry.add_step(describe_step<steps::CleanOutliers>());
  registry.add_step(describe_step<steps::BackgroundSubtract>());
  registry.add_step(describe_step<steps::ExtractBox>());
  registry.add_step(describe_step<steps::ExtractOptimal>());
  registry.add_step(describe_step<steps::AlignSpectra>());
  registry.add_step(describe_step<steps::Lightcurves>());
  registry.add_step(describe_step<steps::LcDiagnostics>());
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
