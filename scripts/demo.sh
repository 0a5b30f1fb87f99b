#!/usr/bin/env bash
# The main job on a fresh machine: install, build, simulate a UVIS G280 visit and reduce it
# with the full stage-1 workflow (workflows/uvis_stage1.toml) on 2 MPI ranks, then simulate a
# JWST NIRISS/SOSS exposure (uncal segments) and turn its ramps into rates with
# workflows/niriss_soss_detector1.toml on 2 ranks; show what was written. The visit's geometry differs from the WASP-127b data the template's defaults
# were made for, so the positions and boxes are set for it with --set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tessera=build/bin/tessera

rm -rf demo_visit
$tessera simulate uvis --out demo_visit --frames 40 --ny 300 --nx 1050 --seed 1
read -r x0 y0 stars < <(/usr/bin/python3 - <<'PY'
import h5py
with h5py.File("demo_visit/truth.h5", "r") as t:
    stars = [[round(float(x)), round(float(y))] for x, y in zip(t["star_x"][...], t["star_y"][...])] if "star_x" in t else []
    print(round(float(t.attrs["zeroth_x"])), round(float(t.attrs["zeroth_y"])), str(stars).replace(" ", ""))
PY
)
sets=(--set input.path=demo_visit
      --set "locate.location=[$x0, $y0]" --set "track_0th.location=[$x0, $y0]"
      --set "spatial_smooth.smth_bounds=[[120, 180, 500, 700]]"
      --set "bkg_uniform.bounds=[[0, 60, 0, 1050], [240, 300, 0, 1050]]"
      --set bkg_column.dist_from_trace=60
      --set bkg_sky.path_to_Pagul=demo_visit/sky/g280_sky.fits)
if [[ "$stars" != "[]" ]]; then sets+=(--set "track_stars.bkg_stars_loc=$stars"); else sets+=(--set track_stars.enabled=false); fi

$tessera validate workflows/uvis_stage1.toml "${sets[@]}"
$tessera plan workflows/uvis_stage1.toml --ranks 2 "${sets[@]}"
mpirun -n 2 --oversubscribe $tessera run workflows/uvis_stage1.toml "${sets[@]}"
out=demo_visit/outputs/stage1/run_1
/usr/bin/python3 -c "import xarray; print(xarray.open_dataset('$out/clean_obs.h5'))"
echo
echo "output:   $(pwd)/$out/clean_obs.h5"
echo "workflow: $(pwd)/$out/clean_obs.workflow.toml"
echo "plots:    $(pwd)/$out/plots/ ($(ls $out/plots | wc -l) files: $(ls $out/plots | tr '\n' ' '))"
echo "truth of the simulation: $(pwd)/demo_visit/truth.h5"

# JWST: ramps -> rates on a NIRISS/SOSS-like exposure of 3 uncal segments.
rm -rf demo_soss
$tessera simulate niriss-soss --out demo_soss --ints 60 --groups 6 --ny 256 --nx 1024 --ints-per-segment 20 --seed 1
mpirun -n 2 --oversubscribe $tessera run workflows/niriss_soss_detector1.toml --set input.path=demo_soss/uncal
/usr/bin/python3 -c "import xarray; print(xarray.open_dataset('demo_soss/outputs/detector1/rateints.h5'))"
echo
echo "rates:    $(pwd)/demo_soss/outputs/detector1/rateints.h5 (data, err, var_poisson, var_rnoise, dq per integration)"
echo "truth of the simulation: $(pwd)/demo_soss/truth.h5"

# JWST: rates -> traces, spectra and light curves (orders 1 and 2) on the same exposure.
# Trace start points for this 1024-column strip; the transit is between integrations 15 and 45.
spec=(--set workflow.visit=demo_soss --set "trace.start=[1018, 917]" --set "trace.start_position=[67.8, 222.0]"
      --set "trace.end=[4, 375]")
for s in lightcurves_order1 lightcurves_order2 lightcurves_optimal_order1; do spec+=(--set "$s.out_of_event=[[0, 15], [45, 60]]"); done
for s in diagnostics_order1 diagnostics_order2 diagnostics_optimal_order1; do
  spec+=(--set "$s.out_of_event=[[0, 15], [45, 60]]" --set "$s.in_event=[[20, 40]]")
done
mpirun -n 2 --oversubscribe $tessera run workflows/niriss_soss_spec.toml "${spec[@]}"
/usr/bin/python3 -c "import xarray; print(xarray.open_dataset('demo_soss/outputs/spec/spectra.h5')[['flux_order1', 'flux_order2', 'white_light_order1', 'trace_order1']])"
echo
echo "spectra:  $(pwd)/demo_soss/outputs/spec/spectra.h5 (flux_order1/2, lc_*, white_light_*, depth_*, trace_*)"
echo "plots:    $(pwd)/demo_soss/outputs/spec/plots/ ($(ls demo_soss/outputs/spec/plots | wc -l) files)"
