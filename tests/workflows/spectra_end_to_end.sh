#!/usr/bin/env bash
# Spectra and light curves end to end on simulated exposures, through the command line:
# NIRISS/SOSS uncal -> workflows/niriss_soss_detector1.toml -> workflows/niriss_soss_spec.toml
# (two orders traced, 1/f re-corrected with the traces masked, box and optimal extraction,
# light curves, diagnostics), and MIRI/LRS uncal -> miri_lrs_stage1.toml -> miri_lrs_stage2.toml
# (ExoTiC-MIRI stage 2) with pointing drift. The spectral outputs are identical on 1, 2 and 3
# ranks (other tile shapes too), and check_spectra.py compares them with the simulator's truth:
# transit depths (white light and bins) within their errors, sensitivity near 1, traces and
# trace shifts, optimal against box extraction. Its output is the accuracy report.
# Usage: spectra_end_to_end.sh TESSERA_BINARY SOURCE_DIR MPIEXEC
set -euo pipefail
tessera=$1; source_dir=$2; mpiexec=$3
work=$(mktemp -d /tmp/tessera_spectra.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
check="$source_dir/tests/workflows/check_spectra.py"
wf="$source_dir/workflows"

# --- NIRISS/SOSS: 60 integrations of 5 groups on 256 x 512 pixels, both orders, a 1% transit
# between integrations 15 and 45 (full depth 20-39), 1/f noise. No pointing drift here: moving
# the spectrum along x moves light across the ends of the traced range, a real systematic that a
# depth from in- and out-of-event means does not decorrelate (the MIRI case below drifts).
"$tessera" simulate niriss-soss --out soss --ints 60 --groups 5 --ny 256 --nx 512 --ints-per-segment 20 --seed 4 \
  >sim_soss.log 2>&1 || { cat sim_soss.log; fail "simulate niriss-soss"; }
"$mpiexec" -n 2 --oversubscribe "$tessera" run "$wf/niriss_soss_detector1.toml" --set input.path=soss/uncal \
  >detector1.log 2>&1 || { cat detector1.log; fail "niriss_soss_detector1"; }
# Trace start points for this 512-column strip (the workflow's are for 2048 columns).
sets=(--set workflow.visit=soss --set "trace.start=[506, 458]" --set "trace.start_position=[67.3, 222.0]"
      --set "trace.end=[4, 190]")
for s in lightcurves_order1 lightcurves_order2 lightcurves_optimal_order1; do
  sets+=(--set "$s.out_of_event=[[0, 15], [45, 60]]")
done
for s in diagnostics_order1 diagnostics_order2 diagnostics_optimal_order1; do
  sets+=(--set "$s.out_of_event=[[0, 15], [45, 60]]" --set "$s.in_event=[[20, 40]]")
done
"$tessera" validate "$wf/niriss_soss_spec.toml" "${sets[@]}" >/dev/null || fail "validate niriss_soss_spec"
for n in 1 2 3; do
  extra=(--set output.save_plots=0)
  [[ $n -eq 1 ]] && extra=()
  [[ $n -eq 3 ]] && extra+=(--set engine.tile_ny=37 --set engine.tile_nx=45)
  "$mpiexec" -n $n --oversubscribe "$tessera" run "$wf/niriss_soss_spec.toml" "${sets[@]}" "${extra[@]}" \
    --set output.path=out/soss_np$n.h5 >spec$n.log 2>&1 || { cat spec$n.log; fail "niriss_soss_spec on $n ranks"; }
  [[ -f out/soss_np$n.h5 && ! -e out/soss_np$n.h5.partial ]] || fail "soss np$n: output missing or partial"
done
grep -q "\[12/12\] diagnostics_optimal_order1" spec2.log || { cat spec2.log; fail "progress output"; }
for plot in lightcurve_image_order1.png white_light_order1.png sensitivity_order1.png rms_vs_bin_order1.png \
            periodogram_order1.png lightcurve_image_order2.png; do
  [[ -s out/plots/$plot ]] || { ls out/plots; fail "plot $plot missing"; }
done
/usr/bin/python3 "$check" soss/truth.h5 out/soss_np1.h5 out/soss_np2.h5 out/soss_np3.h5 \
  --spectrum _order1:order1 --spectrum _order2:order2 --spectrum _optimal_order1 \
  --compare-optimal _order1:_optimal_order1

# --- MIRI/LRS: 60 integrations of 20 groups; ExoTiC-MIRI's stage 2. Without drift for the
# depths (drift along the dispersion moves light between wavelength bins), then a short
# exposure with 0.03 px drift whose cross-dispersion shift x_shift must follow the truth.
msets=(--set "lightcurves.out_of_event=[[0, 15], [45, 60]]"
       --set "lc_diagnostics.out_of_event=[[0, 15], [45, 60]]" --set "lc_diagnostics.in_event=[[20, 40]]")
"$tessera" simulate miri-lrs --out lrs --ints 60 --groups 20 --ints-per-segment 30 --seed 6 \
  >sim_lrs.log 2>&1 || { cat sim_lrs.log; fail "simulate miri-lrs"; }
"$mpiexec" -n 2 --oversubscribe "$tessera" run "$wf/miri_lrs_stage1.toml" --set input.path=lrs/uncal \
  >stage1.log 2>&1 || { cat stage1.log; fail "miri_lrs_stage1"; }
for n in 1 3; do
  "$mpiexec" -n $n --oversubscribe "$tessera" run "$wf/miri_lrs_stage2.toml" --set workflow.visit=lrs "${msets[@]}" \
    --set output.save_plots=0 --set output.path=out/lrs_np$n.h5 >stage2_$n.log 2>&1 \
    || { cat stage2_$n.log; fail "miri_lrs_stage2 on $n ranks"; }
done
/usr/bin/python3 "$check" lrs/truth.h5 out/lrs_np1.h5 out/lrs_np3.h5 --spectrum= --dispersion y

"$tessera" simulate miri-lrs --out drift --ints 30 --groups 20 --seed 7 --drift 0.03 \
  >sim_drift.log 2>&1 || { cat sim_drift.log; fail "simulate miri-lrs with drift"; }
"$mpiexec" -n 2 --oversubscribe "$tessera" run "$wf/miri_lrs_stage1.toml" --set input.path=drift/uncal \
  >stage1_drift.log 2>&1 || { cat stage1_drift.log; fail "miri_lrs_stage1 (drift)"; }
"$mpiexec" -n 2 --oversubscribe "$tessera" run "$wf/miri_lrs_stage2.toml" --set workflow.visit=drift \
  --set lightcurves.enabled=false --set lc_diagnostics.enabled=false --set output.save_plots=0 \
  --set output.path=out/drift.h5 >stage2_drift.log 2>&1 || { cat stage2_drift.log; fail "miri_lrs_stage2 (drift)"; }
/usr/bin/python3 - out/lrs_np1.h5 out/drift.h5 drift/truth.h5 <<'PY'
import sys
import numpy as np
import xarray as xr
ds, drift, truth = (xr.open_dataset(p) for p in sys.argv[1:])
# ExoTiC-MIRI's stage-2 product: the same variables, with units.
for name, units in (("flux", "electron/s"), ("flux_error", "electron/s"), ("background", "electron/s"),
                    ("x_shift", "pixel"), ("y_shift", "pixel"), ("psf_sigma", "pixel"), ("n_outliers", None),
                    ("wavelength", "micron")):
    if name not in ds.variables:
        sys.exit(f"FAIL: no {name} in the MIRI product")
    if units and ds[name].attrs.get("units") != units:
        sys.exit(f"FAIL: {name} units {ds[name].attrs.get('units')}, expected {units}")
# The cross-dispersion trace position follows the pointing drift (x for MIRI).
measured = drift["x_shift"].values - np.median(drift["x_shift"].values)
true = truth["shift_x"].values - np.median(truth["shift_x"].values)
rms = float(np.std(measured - true))
print(f"MIRI x_shift: rms {rms:.4f} px from the truth's drift (drift rms {true.std():.4f} px)")
if rms > 0.01:
    sys.exit("FAIL: x_shift does not follow the drift")
print(f"MIRI psf_sigma: median {float(np.median(ds['psf_sigma'].values)):.3f} px")
PY
echo "spectra end to end: OK"
