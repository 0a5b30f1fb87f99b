#!/usr/bin/env bash
# The JWST detector-level workflows through the command line on simulated exposures of several
# uncal segments: workflows/niriss_soss_detector1.toml and workflows/miri_lrs_stage1.toml give
# bit-identical outputs on 1, 2 and 3 ranks (and other tile shapes), xarray opens them, rates
# match the simulator's truth within their errors (pulls), jumps are found where they were
# injected; the ExoTiC-MIRI resampling steps (drop_integrations, regroup) are rank-invariant too.
# Usage: jwst_end_to_end.sh TESSERA_BINARY SOURCE_DIR MPIEXEC
set -euo pipefail
tessera=$1; source_dir=$2; mpiexec=$3
work=$(mktemp -d /tmp/tessera_jwst.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
check="$source_dir/tests/workflows/check_jwst.py"

# NIRISS/SOSS: 12 integrations of 6 groups in 3 segments, with 1/f noise.
"$tessera" simulate niriss-soss --out soss --ints 12 --groups 6 --ny 96 --nx 512 --ints-per-segment 5 --seed 3 --orders 1 \
  2>sim_soss.log || { cat sim_soss.log; fail "simulate niriss-soss"; }
"$tessera" validate "$source_dir/workflows/niriss_soss_detector1.toml" --set input.path=soss/uncal >/dev/null \
  || fail "validate niriss_soss_detector1"
for n in 1 2 3; do
  "$mpiexec" -n $n --oversubscribe "$tessera" run "$source_dir/workflows/niriss_soss_detector1.toml" \
    --set input.path=soss/uncal --set output.path=out/soss_np$n.h5 --set ramp_fit.keep_ramps=true 2>soss$n.log \
    || { cat soss$n.log; fail "niriss_soss_detector1 on $n ranks"; }
  [[ -f out/soss_np$n.h5 && ! -e out/soss_np$n.h5.partial ]] || fail "soss np$n: output missing or partial"
done
grep -q "\[10/10\] gain_scale" soss2.log || { cat soss2.log; fail "progress output"; }
# one_over_f takes each column's sky along with the 1/f noise (see the workflow's comment).
/usr/bin/python3 "$check" --background-removed soss/truth.h5 soss/refs out/soss_np1.h5 out/soss_np2.h5 out/soss_np3.h5

# MIRI/LRS: 10 integrations of 30 groups in 3 segments. The simulator's gain map replaces the
# custom gain here so that rates compare with the truth in electrons.
"$tessera" simulate miri-lrs --out lrs --ints 10 --groups 30 --ints-per-segment 4 --seed 5 \
  2>sim_lrs.log || { cat sim_lrs.log; fail "simulate miri-lrs"; }
gain=(--set jump.gain=lrs/refs/gain.fits --set ramp_fit.gain=lrs/refs/gain.fits --set gain_scale.gain=lrs/refs/gain.fits)
for n in 1 3; do
  "$mpiexec" -n $n --oversubscribe "$tessera" run "$source_dir/workflows/miri_lrs_stage1.toml" "${gain[@]}" \
    --set input.path=lrs/uncal --set output.path=out/lrs_np$n.h5 --set ramp_fit.keep_ramps=true 2>lrs$n.log \
    || { cat lrs$n.log; fail "miri_lrs_stage1 on $n ranks"; }
done
# ExoTiC-MIRI runs jump at 15 sigma: hits far above that must all be found.
/usr/bin/python3 "$check" --detectable-sigma=25 lrs/truth.h5 lrs/refs out/lrs_np1.h5 out/lrs_np3.h5

# The workflow as shipped (custom gain of 3.1 e/DN) runs too, and with the resampling steps on
# (drop integration 0, split 30 groups into 3 integrations of 10) the output is the same on 1, 2
# and 3 ranks and any tile shape.
resample=(--set drop_integrations.enabled=true --set regroup.enabled=true --set regroup.n_groups=10
          --set "drop_groups.drop_groups=[0, -1]" --set jump.minimum_groups=3)
for n in 1 2 3; do
  tiles=(); [[ $n -eq 3 ]] && tiles=(--set engine.tile_ny=7 --set engine.tile_nx=5)
  "$mpiexec" -n $n --oversubscribe "$tessera" run "$source_dir/workflows/miri_lrs_stage1.toml" "${resample[@]}" \
    "${tiles[@]}" --set input.path=lrs/uncal --set output.path=out/lrs_resampled_np$n.h5 2>resampled$n.log \
    || { cat resampled$n.log; fail "miri_lrs_stage1 with drop_integrations and regroup on $n ranks"; }
done
/usr/bin/python3 - out/lrs_resampled_np1.h5 out/lrs_resampled_np2.h5 out/lrs_resampled_np3.h5 <<'PY'
import sys
import h5py
import numpy as np
import xarray as xr
first, *others = sys.argv[1:]
ds = xr.open_dataset(first)
assert ds.sizes["time"] == 27, f"expected 9 x 3 integrations after dropping one and regrouping, got {ds.sizes['time']}"
assert np.all(np.diff(ds["time"].values) > 0), "regrouped integrations out of time order"
assert list(ds["integration"].values) == list(range(1, 28)), "integrations not renumbered"
with h5py.File(first, "r") as a:
    for other in others:
        with h5py.File(other, "r") as b:
            for k in a.keys():
                if isinstance(a[k], h5py.Dataset) and not np.array_equal(a[k][...], b[k][...], equal_nan=True):
                    sys.exit(f"FAIL: {other}: {k} differs from {first}")
print(f"resampled MIRI run: 27 integrations, identical on {1 + len(others)} rank counts")
PY
echo "jwst end to end: OK"
