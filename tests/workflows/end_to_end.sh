#!/usr/bin/env bash
# End to end through the command line: simulate a visit, reduce it on 1, 2 and 3 ranks,
# check that xarray opens the output, that all rank counts agree bit for bit, that
# fixed_iter finds the injected cosmic rays, and that bad input fails cleanly.
# Usage: end_to_end.sh TESSERA_BINARY SOURCE_DIR MPIEXEC
set -euo pipefail
tessera=$1; source_dir=$2; mpiexec=$3
work=$(mktemp -d /tmp/tessera_e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }

"$tessera" simulate uvis --out sim --frames 30 --ny 96 --nx 320 --seed 7 2>sim.log || { cat sim.log; fail "simulate"; }
cp "$source_dir/workflows/smoke.toml" smoke.toml

"$tessera" validate smoke.toml >/dev/null || fail "validate"
"$tessera" graph smoke.toml | grep -q '"clip" \[label="clip\\nfixed_iter (pixels)"' || fail "graph output"
"$tessera" plan smoke.toml --ranks 3 | grep -q "move    frames -> tiles" || fail "plan output"
"$tessera" steps fixed_iter | grep -q "estimator" || fail "steps help"

for n in 1 2 3; do
  "$mpiexec" -n $n --oversubscribe "$tessera" run smoke.toml --set output.path=out/np$n.h5 2>run$n.log \
    || { cat run$n.log; fail "run on $n ranks"; }
  [[ -f out/np$n.h5 && ! -e out/np$n.h5.partial ]] || fail "output of $n ranks missing or partial"
done
grep -q "\[1/1\] clip (fixed_iter)" run2.log || { cat run2.log; fail "progress line"; }
grep -q "summary:" run2.log || fail "summary"

/usr/bin/python3 "$source_dir/tests/workflows/check_output.py" sim/truth.h5 out/np1.h5 out/np2.h5 out/np3.h5

# Bad input: clear message, exit status, no output.
set +e
"$mpiexec" -n 2 --oversubscribe "$tessera" run smoke.toml --set input.path=missing_dir --set output.path=out/bad.h5 2>bad.log
status=$?
set -e
[[ $status -eq 1 ]] || { cat bad.log; fail "missing input dir: exit $status, want 1"; }
grep -q "missing_dir" bad.log || { cat bad.log; fail "missing input dir not named"; }
[[ ! -e out/bad.h5 && ! -e out/bad.h5.partial ]] || fail "output left behind after a failed run"

printf '[workflow]\nname = "x\n' > broken.toml
set +e
"$tessera" validate broken.toml 2>broken.log
status=$?
set -e
[[ $status -eq 2 ]] || fail "malformed TOML: exit $status, want 2"
grep -q "broken.toml:2:" broken.log || { cat broken.log; fail "malformed TOML position"; }

# A NaN in one input frame is reported (naming the file), replaced and flagged, not propagated.
cp -r sim sim_nan
nan_file=$(ls sim_nan/specimages/*_flt.fits | sed -n 5p)
/usr/bin/python3 -c "
from astropy.io import fits; import numpy as np, sys
with fits.open(sys.argv[1], mode='update') as f: f['SCI'].data[40, 100] = np.nan
" "$nan_file"
"$mpiexec" -n 2 --oversubscribe "$tessera" run smoke.toml --set input.path=sim_nan --set output.path=out/nan.h5 2>nan.log \
  || { cat nan.log; fail "run with a NaN"; }
grep -q "1 NaN or infinite input values in 1 frame, first in frame 4 (.*$(basename "$nan_file"))" nan.log \
  || { cat nan.log; fail "NaN not reported with its file"; }
/usr/bin/python3 -c "
import xarray, numpy as np
ds = xarray.open_dataset('out/nan.h5')
assert np.isfinite(ds['data'].values).all(), 'NaN reached the output'
assert ds['dq'].values[4, 40, 100] & (1 << 17), 'NaN not flagged non_finite'
assert int(ds['nonfinite_input'][4]) == 1 and int(ds['nonfinite_input'].sum()) == 1
" || fail "NaN handling"

echo "end to end: all checks passed"
