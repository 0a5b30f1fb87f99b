#!/usr/bin/env bash
# Checkpoints through the command line on a simulated UVIS visit (workflows/uvis_stage1.toml):
# a run killed (SIGKILL) right after a checkpoint leaves no output; `--resume` on another rank
# count restarts after that step and writes variables identical to an uninterrupted run's;
# resuming a complete output does nothing; a changed step invalidates its checkpoint and later
# ones (removed, never reused) while earlier ones still serve.
# Usage: checkpoint_resume.sh TESSERA_BINARY SOURCE_DIR MPIEXEC
set -euo pipefail
tessera=$1; source_dir=$2; mpiexec=$3
work=$(mktemp -d /tmp/tessera_checkpoint.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }

"$tessera" simulate uvis --out visit --frames 12 --ny 120 --nx 400 --seed 3 2>sim.log || { cat sim.log; fail "simulate"; }
read -r x0 y0 < <(/usr/bin/python3 -c "
import h5py
t = h5py.File('visit/truth.h5', 'r'); print(round(float(t.attrs['zeroth_x'])), round(float(t.attrs['zeroth_y'])))")
sets=(--set input.path=visit --set "locate.location=[$x0, $y0]" --set "track_0th.location=[$x0, $y0]"
      --set "spatial_smooth.smth_bounds=[[40, 80, 150, 300]]" --set "bkg_uniform.bounds=[[0, 20, 0, 400], [100, 120, 0, 400]]"
      --set bkg_column.dist_from_trace=30 --set bkg_sky.path_to_Pagul=visit/sky/g280_sky.fits
      --set track_stars.enabled=false --set output.save_plots=0 --set output.show_plots=0
      --set fixed_iter.checkpoint=true --set bkg_uniform.checkpoint=true)
wf="$source_dir/workflows/uvis_stage1.toml"
run() { local n=$1 out=$2; shift 2; "$mpiexec" -n "$n" --oversubscribe "$tessera" run "$wf" "${sets[@]}" --set output.path="$out" "$@"; }
same() {  # every variable of two outputs equal (NaN where NaN), the same variables
  /usr/bin/python3 - "$1" "$2" <<'PY' || fail "$1 differs from $2"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
assert set(a) == set(b), set(a) ^ set(b)
bad = [k for k in a if not np.array_equal(a[k][...], b[k][...], equal_nan=True)]
assert not bad, bad
print(f"{sys.argv[2]}: {len(a)} variables identical to {sys.argv[1]}")
PY
}

run 2 reference/out.h5 2>reference.log || { cat reference.log; fail "uninterrupted run"; }

# Killed right after bkg_uniform's checkpoint (the hook SIGKILLs rank 0, as a scheduler would).
set +e
TESSERA_TEST_KILL_AFTER_CHECKPOINT=bkg_uniform run 2 killed/out.h5 >killed.log 2>&1
rc=$?
set -e
[[ $rc -ne 0 ]] || fail "the killed run exited 0"
[[ ! -e killed/out.h5 && ! -e killed/out.h5.partial ]] || fail "a killed run left an output"
ls killed/out.checkpoints/02_fixed_iter.h5 killed/out.checkpoints/06_bkg_uniform.h5 >/dev/null || fail "checkpoints missing"

# Resumed on 3 ranks: restarts after bkg_uniform, same variables as the uninterrupted run.
run 3 killed/out.h5 --resume 2>resume.log || { cat resume.log; fail "resume"; }
grep -q "resuming after step 'bkg_uniform'" resume.log || { cat resume.log; fail "did not resume from the checkpoint"; }
grep -q "\[read\]" resume.log && fail "the resumed run read the input again"
same reference/out.h5 killed/out.h5

# Complete: a second resume does nothing and leaves the file alone.
before=$(stat -c %Y.%i killed/out.h5)
run 2 killed/out.h5 --resume 2>again.log || { cat again.log; fail "second resume"; }
grep -q "is complete for this workflow" again.log || { cat again.log; fail "complete output not recognised"; }
[[ $(stat -c %Y.%i killed/out.h5) == "$before" ]] || fail "a complete output was rewritten"

# led runs between the two checkpoints: changing it invalidates bkg_uniform's (removed) but
# not fixed_iter's, and the result is that of a fresh run with the new value.
run 2 killed/out.h5 --resume --set led.led_threshold=12 2>changed.log || { cat changed.log; fail "resume after a change"; }
grep -q "resuming after step 'fixed_iter'" changed.log || { cat changed.log; fail "did not resume after fixed_iter"; }
grep -q "06_bkg_uniform.h5 was made by a different workflow" changed.log || { cat changed.log; fail "stale checkpoint not reported"; }
run 1 fresh/out.h5 --set led.led_threshold=12 2>fresh.log || { cat fresh.log; fail "fresh run"; }
same fresh/out.h5 killed/out.h5
echo "checkpoint_resume: all checks passed"
