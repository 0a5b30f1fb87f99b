#!/usr/bin/env bash
# The full UVIS stage-1 workflow (workflows/uvis_stage1.toml, every step enabled) through the
# command line on a simulated visit: identical output on 1, 2 and 3 ranks (and odd tile shapes), outputs where the
# reference tools put them (outputs/stage1/<run>/ with the HDF5 file, the workflow copy and
# plots/), xarray reads every variable, and a .hustle file converts to a workflow that runs.
# Usage: stage1_end_to_end.sh TESSERA_BINARY SOURCE_DIR MPIEXEC
set -euo pipefail
tessera=$1; source_dir=$2; mpiexec=$3
work=$(mktemp -d /tmp/tessera_stage1.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }

"$tessera" simulate uvis --out visit --frames 24 --ny 160 --nx 480 --seed 11 2>sim.log || { cat sim.log; fail "simulate"; }
# Where the simulator put the star and the field stars (the template's defaults fit a 600 x 2100 frame).
read -r x0 y0 stars < <(/usr/bin/python3 - <<'PY'
import h5py
with h5py.File("visit/truth.h5", "r") as t:
    stars = [[float(x), float(y)] for x, y in zip(t["star_x"][...], t["star_y"][...])] if "star_x" in t else []
    print(t.attrs["zeroth_x"], t.attrs["zeroth_y"], str(stars).replace(" ", ""))
PY
)
sets=(--set input.path=visit
      --set "locate.location=[$x0, $y0]" --set "track_0th.location=[$x0, $y0]"
      --set "spatial_smooth.smth_bounds=[[60, 100, 200, 400]]"
      --set "bkg_uniform.bounds=[[0, 40, 0, 480], [125, 160, 0, 480]]"
      --set bkg_column.dist_from_trace=30
      --set bkg_sky.path_to_Pagul=visit/sky/g280_sky.fits)
if [[ "$stars" != "[]" ]]; then sets+=(--set "track_stars.bkg_stars_loc=$stars"); else sets+=(--set track_stars.enabled=false); fi

cp "$source_dir/workflows/uvis_stage1.toml" stage1.toml
"$tessera" validate stage1.toml "${sets[@]}" >/dev/null || fail "validate"
# 3 ranks also use odd pixel tiles: the output must not depend on the tile shape either.
for n in 1 2 3; do
  tiles=(); [[ $n -eq 3 ]] && tiles=(--set engine.tile_ny=7 --set engine.tile_nx=33)
  "$mpiexec" -n $n --oversubscribe "$tessera" run stage1.toml "${sets[@]}" "${tiles[@]}" --set output.run=np$n 2>run$n.log \
    || { cat run$n.log; fail "stage 1 on $n ranks"; }
done
out=visit/outputs/stage1
for n in 1 2 3; do
  [[ -f $out/np$n/clean_obs.h5 && ! -e $out/np$n/clean_obs.h5.partial ]] || fail "np$n: clean_obs.h5 missing or partial"
  [[ -f $out/np$n/clean_obs.workflow.toml ]] || fail "np$n: workflow copy missing"
done
ls $out/np2/plots > plots.txt
for f in CR_location.png quicklookup.gif quicklookupDQ.gif displacements.png; do
  grep -qx "$f" plots.txt || { cat plots.txt; fail "plot $f missing"; }
done
grep -q "bkg_values_" plots.txt || { cat plots.txt; fail "background plots missing"; }
# The workflow copy runs again as it is and gives the same result.
"$tessera" validate $out/np1/clean_obs.workflow.toml >/dev/null || fail "the workflow copy does not validate"

/usr/bin/python3 "$source_dir/tests/workflows/check_stage1.py" visit/truth.h5 $out/np1/clean_obs.h5 \
  $out/np2/clean_obs.h5 $out/np3/clean_obs.h5

# A .hustle file converts to a workflow that validates with the same overrides.
cat > stage_1.hustle <<'HUSTLE'
toplevel_dir    'visit'       # where specimages/ are
output_run      'from_hustle'
verbose         1
show_plots      0
save_plots      1
skip_first_fm   False
skip_first_or   False
do_hst_flags    True
hst_flags       [16,4096]
hst_replace     True
do_fixed_iter   False
fixed_sigmas    [10,10]
replacement     None
do_free_iter    True
free_sigma      3.5
do_led          True
led_threshold   10
led_factor      2
led_n           2
fine_structure  True
contrast_factor 5
do_smooth       False
smth_type       '1D_smooth'
smth_kernel     11
smth_threshold  5
smth_bounds     [[260, 370, 640, 1100],]
do_uniform      True
fit             'Gaussian'
bounds          [[0,40,0,480],[125,160,0,480]]
hist_min        -20
hist_max        50
hist_bins       1000
do_column       False
rows            [i for i in range(10)]
mask_trace      True
dist_from_trace 100
col_sigma       3
do_Pagul        False
path_to_Pagul   './'
mask_parameter  0.001
smooth_fits     True
smoothing_param 2.5
median_columns  True
do_location     False
do_0thtracking  True
location        [970, 170]
do_bkg_stars    False
bkg_stars_loc   [[0, 0], [0, 0]]
bkg_window      15
do_quicklook    False
traces_included ('+1',)
include_hst_dq  True
do_save         True
# ENDPARSE
HUSTLE
"$tessera" import-hustle stage_1.hustle -o from_hustle.toml 2>import.log || { cat import.log; fail "import-hustle"; }
"$mpiexec" -n 2 --oversubscribe "$tessera" run from_hustle.toml --set "track_0th.location=[$x0, $y0]" 2>hustle_run.log \
  || { cat hustle_run.log; fail "run of the imported workflow"; }
[[ -f visit/outputs/stage1/from_hustle/clean_obs.h5 ]] || fail "imported workflow wrote no output"
[[ -f visit/outputs/stage1/from_hustle/plots/CR_location.png ]] || fail "imported workflow wrote no CR_location.png"

echo "stage 1 end to end: all checks passed"
