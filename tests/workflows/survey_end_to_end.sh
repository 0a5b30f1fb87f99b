#!/usr/bin/env bash
# `tessera survey` through the command line: four small simulated UVIS visits and one broken
# one (no FITS files), the UVIS stage-1 workflow with per-visit positions from each truth.h5,
# run under mpirun -n 2 as two groups of one rank and as one group of two. Every complete
# visit's output opens with xarray and is the same whatever the group; the index and the
# records say what happened (frames, outliers found, the median background against the
# simulator's truth); the broken visit is recorded as failed and makes the exit status 1;
# --resume reruns only the failed visit; `survey index` and `survey list` work without MPI; a
# survey killed mid-visit resumes from that visit's checkpoint, every visit run exactly once.
# Usage: survey_end_to_end.sh TESSERA_BINARY SOURCE_DIR MPIEXEC
set -euo pipefail
tessera=$1; source_dir=$2; mpiexec=$3
work=$(mktemp -d /tmp/tessera_survey.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in 1 2 3 4; do
  "$tessera" simulate uvis --out data/v0$i --frames 12 --ny 120 --nx 400 --seed $i 2>>sim.log || { cat sim.log; fail "simulate"; }
done
mkdir -p broken/v05_empty
echo "no FITS files here" > broken/v05_empty/README.txt

# The survey: shared overrides for the 120 x 400 frame, each visit's own positions from its truth.
/usr/bin/python3 - "$source_dir/workflows/uvis_stage1.toml" > survey_g1.toml <<'PY'
import sys, h5py
print(f'''[survey]
name = "e2e"
workflow = "{sys.argv[1]}"
output = "out_g1"
set = ["output.save_plots=0", "output.show_plots=0",
       "spatial_smooth.smth_bounds=[[45, 75, 150, 400]]",
       "bkg_uniform.bounds=[[0, 40, 0, 400], [80, 120, 0, 400]]",
       "bkg_column.dist_from_trace=25",
       "bkg_sky.path_to_Pagul={{input.path}}/sky/g280_sky.fits"]
[survey.figures]
outliers_found = "sum(fixed_iter_outliers, free_iter_outliers, led_outliers)"
median_background = "median(bkg_uniform_value)"
''')
for i in range(1, 5):
    with h5py.File(f"data/v0{i}/truth.h5", "r") as t:
        x0, y0 = float(t.attrs["zeroth_x"]), float(t.attrs["zeroth_y"])
        stars = [[round(float(x), 2), round(float(y), 2)] for x, y in zip(t["star_x"][...], t["star_y"][...])]
    print(f'''[[visit]]
id = "v0{i}"
input = "data/v0{i}"
set = ["locate.location=[{x0}, {y0}]", "track_0th.location=[{x0}, {y0}]",
       "track_stars.bkg_stars_loc={str(stars).replace(' ', '')}"]
''')
print('[[visits]]\nglob = "broken/*"')
PY
sed 's/^output = "out_g1"/output = "out_g2"/' survey_g1.toml > survey_g2.toml

"$tessera" survey list survey_g1.toml > list.txt || { cat list.txt; fail "survey list"; }
[[ "$(tail -n 1 list.txt)" == "5 visits" ]] || { cat list.txt; fail "survey list: last line"; }
grep -q "^v05_empty " list.txt || { cat list.txt; fail "survey list: the glob's visit"; }

# Two groups of one rank, then one group of two; the broken visit makes both exit 1.
for g in 1 2; do
  rc=0
  "$mpiexec" -n 2 --oversubscribe "$tessera" survey run survey_g$g.toml --group-size $g 2>run_g$g.log || rc=$?
  [[ $rc -eq 1 ]] || { cat run_g$g.log; fail "survey run (group size $g): exit status $rc, expected 1"; }
  grep -q "^visit v01: complete in .* s on group [01] ($g rank" run_g$g.log || { cat run_g$g.log; fail "no completion line"; }
  grep -q "^visit v05_empty: FAILED" run_g$g.log || { cat run_g$g.log; fail "no failure line"; }
  grep -q "^survey e2e: 4 complete, 0 already complete, 1 failed of 5 visits" run_g$g.log \
    || { cat run_g$g.log; fail "no summary line"; }
done

/usr/bin/python3 - <<'PY' || fail "survey outputs"
import csv, glob, math, sys, tomllib
import h5py, numpy as np, xarray as xr

def check(out, ranks, groups):
    with open(f"{out}/survey_index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ids = [r["visit_id"] for r in rows]
    assert ids == ["v01", "v02", "v03", "v04", "v05_empty"], ids
    seen_groups = set()
    for r in rows:
        vid = r["visit_id"]
        record = tomllib.load(open(f"{out}/{vid}/survey_record.toml", "rb"))
        assert record["attempt"] == 1 and r["attempt"] == "1", (vid, record["attempt"])
        assert record["ranks"] == ranks and r["ranks"] == str(ranks), (vid, record["ranks"])
        seen_groups.add(record["group"])
        assert float(r["wall_s"]) > 0
        log = open(f"{out}/{vid}/{vid}.log").read()
        assert log.startswith(f"== tessera survey e2e: visit {vid} on group") and "== attempt 1 " in log, log[:300]
        if vid == "v05_empty":
            assert r["status"] == "failed" and record["status"] == "failed", r
            # No FITS files: the workflow cannot load for this input; the message says why.
            assert "direct_image" in r["message"] and record["message"].startswith(r["message"][:60]), r["message"]
            assert not glob.glob(f"{out}/{vid}/*.h5"), "a failed visit left an output"
            continue
        assert r["status"] == "complete" and record["status"] == "complete", r
        assert r["frames"] == "12", r["frames"]
        path = f"{out}/{vid}/{vid}.h5"
        assert r["output"] == path, r["output"]
        ds = xr.open_dataset(path)
        assert ds["data"].shape == (12, 120, 400), ds["data"].shape
        assert ds.attrs["visit_id"] == vid and ds.attrs["survey_name"] == "e2e", ds.attrs
        assert ds.attrs["mpi_ranks"] == ranks
        outliers = float(r["outliers_found"])
        assert outliers > 0, outliers
        assert math.isclose(outliers, float(ds.attrs["figure_outliers_found"])), (outliers, ds.attrs["figure_outliers_found"])
        assert math.isclose(outliers, record["figures"]["outliers_found"])
        total = sum(float(ds[v].values.sum()) for v in ("fixed_iter_outliers", "free_iter_outliers", "led_outliers"))
        assert math.isclose(outliers, total), (outliers, total)
        # The uniform background of each frame is the sky's mode in the two bands of rows;
        # truth.h5's `background` is the frame's mean sky per pixel (docs/simulator.md).
        with h5py.File(f"data/{vid}/truth.h5", "r") as t:
            truth = float(np.median(t["background"][...]))
        found = float(r["median_background"])
        assert abs(found - truth) < 0.1 * truth, (vid, found, truth)
        print(f"{out} {vid}: outliers {outliers:.0f}, median background {found:.2f} (truth {truth:.2f})")
        ds.close()
    assert seen_groups == set(range(groups)), (seen_groups, groups)

check("out_g1", ranks=1, groups=2)
check("out_g2", ranks=2, groups=1)
# Partition invariance: one rank or two, the same result.
for vid in ("v01", "v02", "v03", "v04"):
    with h5py.File(f"out_g1/{vid}/{vid}.h5") as a, h5py.File(f"out_g2/{vid}/{vid}.h5") as b:
        assert np.array_equal(a["data"][...], b["data"][...], equal_nan=True), vid
print("survey outputs OK")
PY

# `survey index` rebuilds the same index from the records (serial; exit 1: a visit failed).
cp out_g1/survey_index.csv index_before.csv
rc=0; "$tessera" survey index survey_g1.toml > index.txt || rc=$?
[[ $rc -eq 1 ]] || fail "survey index: exit status $rc, expected 1"
grep -q "4 of 5 visits complete" index.txt || { cat index.txt; fail "survey index: counts"; }
cmp -s index_before.csv out_g1/survey_index.csv || fail "survey index wrote a different index"

# --resume: complete visits are skipped (their records keep attempt 1); the broken one runs again.
rc=0
"$mpiexec" -n 2 --oversubscribe "$tessera" survey run survey_g1.toml --group-size 1 --resume 2>resume.log || rc=$?
[[ $rc -eq 1 ]] || { cat resume.log; fail "survey run --resume: exit status $rc, expected 1"; }
grep -q "^survey e2e: 0 complete, 4 already complete, 1 failed of 5 visits" resume.log \
  || { cat resume.log; fail "resume summary line"; }
/usr/bin/python3 - <<'PY' || { cat resume.log; fail "resume"; }
import tomllib
def attempt(vid):
    return tomllib.load(open(f"out_g1/{vid}/survey_record.toml", "rb"))["attempt"]
assert attempt("v05_empty") == 2, attempt("v05_empty")
for vid in ("v01", "v02", "v03", "v04"):
    assert attempt(vid) == 1, (vid, attempt(vid))
PY
cmp -s index_before.csv out_g1/survey_index.csv && fail "the index did not record the second attempt"

# Killed mid-visit: with checkpoints after every step, the job is SIGKILLed once the first
# visit to get there has written bkg_uniform's checkpoint. --resume on one group of 2 ranks
# restarts that visit from its checkpoint and completes every visit exactly once (attempt 1),
# with the same variables as the uninterrupted survey.
sed 's/^output = "out_g1"/output = "out_k"/' survey_g1.toml > survey_k.toml
rc=0
TESSERA_TEST_KILL_AFTER_CHECKPOINT=bkg_uniform "$mpiexec" -n 2 --oversubscribe "$tessera" survey run survey_k.toml \
  --group-size 1 --checkpoint-all >killed.log 2>&1 || rc=$?
[[ $rc -ne 0 && $rc -ne 1 ]] || { cat killed.log; fail "the killed survey exited $rc"; }
[[ -e out_k/survey_index.csv ]] && fail "a killed survey wrote an index"
rc=0
"$mpiexec" -n 2 --oversubscribe "$tessera" survey run survey_k.toml --group-size 2 --resume 2>resumed.log || rc=$?
[[ $rc -eq 1 ]] || { cat resumed.log; fail "resumed survey: exit status $rc, expected 1 (the broken visit)"; }
/usr/bin/python3 - <<'PY' || { cat resumed.log; fail "killed and resumed survey"; }
import csv, tomllib
import h5py, numpy as np
rows = {r["visit_id"]: r for r in csv.DictReader(open("out_k/survey_index.csv", newline=""))}
resumed = []
for vid in ("v01", "v02", "v03", "v04"):
    record = tomllib.load(open(f"out_k/{vid}/survey_record.toml", "rb"))
    assert rows[vid]["status"] == "complete" and record["attempt"] == 1, (vid, rows[vid]["status"], record["attempt"])
    if record["resumed_after"]:
        resumed.append((vid, record["resumed_after"]))
        assert f"resuming after step '{record['resumed_after']}'" in open(f"out_k/{vid}/{vid}.log").read()
    with h5py.File(f"out_g1/{vid}/{vid}.h5") as a, h5py.File(f"out_k/{vid}/{vid}.h5") as b:
        assert set(a) == set(b), (vid, set(a) ^ set(b))
        bad = [k for k in a if not np.array_equal(a[k][...], b[k][...], equal_nan=True)]
        assert not bad, (vid, bad)
assert ("bkg_uniform",) in {(r,) for _, r in resumed}, resumed
print("killed survey resumed:", resumed)
PY
echo "survey end to end OK"
