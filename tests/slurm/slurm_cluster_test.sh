#!/usr/bin/env bash
# `tessera submit` on a real single-node Slurm cluster started on localhost for this test
# (tests/slurm/local_slurm.sh: munged, slurmctld and slurmd in a temporary directory, stopped by
# pid at the end). A survey of four small simulated UVIS visits is submitted
#   1. as one MPI job under srun and under mpirun: every visit's output carries the job id,
#      the index lists every visit complete; submitted again with --resume, nothing is re-run;
#   2. as a job array (2 visits per task) followed by the index job;
#   3. as a held array of one visit per task, one task cancelled before it starts: the index
#      job and `tessera survey index` report that visit missing and fail; `tessera submit
#      --array --resume` then submits that task alone, every visit ends complete, and the
#      visits that were complete were not run again (same file, same bytes, attempt 1);
# and a single workflow is submitted as one job. See tests/slurm/README.md.
# Usage: slurm_cluster_test.sh TESSERA_BINARY SOURCE_DIR MPIEXEC
# Set TESSERA_KEEP_SLURM_TEST=1 to keep the temporary directory (it is printed).
set -euo pipefail
tessera=$(readlink -f "$1")
source_dir=$(cd "$2" && pwd)
mpiexec=$3
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
start_time=$SECONDS

for program in munged slurmctld slurmd sbatch squeue scontrol scancel; do
  command -v "$program" >/dev/null || {
    echo "slurm_cluster_test: '$program' not found: install slurm-wlm and munge (scripts/setup.sh)" >&2
    exit 1
  }
done
# The jobs' `mpirun` is the MPI the tests were built with.
mpi_bin=$(dirname "$(readlink -f "$(command -v "$mpiexec")")")
export PATH="$mpi_bin:$PATH"
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

work=$(mktemp -d /tmp/tessera_slurm_test.XXXXXX)
cluster="$work/cluster"
passed=0
cleanup() {
  local status=$?
  bash "$here/local_slurm.sh" stop "$cluster" || true
  if [[ $status -ne 0 || -n "${TESSERA_KEEP_SLURM_TEST:-}" ]]; then
    echo "slurm_cluster_test: kept $work (cluster logs in $cluster/log, job logs next to the outputs)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '[%3ds] %s\n' $((SECONDS - start_time)) "$*"; }
die() {
  echo "FAIL: $*" >&2
  find "$work" -name 'slurm-*.out' -print0 | sort -z | while IFS= read -r -d '' log; do
    echo "---- $log" >&2
    tail -n 25 "$log" >&2
  done
  echo "---- slurmctld.log (last lines)" >&2
  tail -n 15 "$cluster/log/slurmctld.log" >&2 || true
  echo "FAIL: $*" >&2
  exit 1
}
check() {
  local what=$1
  shift
  "$@" || die "$what"
  passed=$((passed + 1))
}

bash "$here/local_slurm.sh" start "$cluster" --owner $$ >/dev/null || die "the local Slurm cluster did not start"
# shellcheck source=/dev/null
source "$cluster/env.sh"
say "Slurm up: $(sinfo -h -o '%P %D node(s) %c CPUs %t')"

# The terminal states of every job (array tasks included) of job id $1, one a line; empty
# while Slurm does not know the job.
job_states() {
  scontrol -o show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true
}
# wait_jobs ID...: until every job (and array task) of these ids has ended; at most 240 s.
wait_jobs() {
  local id states deadline=$((SECONDS + 240))
  for id in "$@"; do
    while :; do
      states=$(job_states "$id")
      if [[ -n "$states" ]] && ! grep -qvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$' <<<"$states"; then
        break
      fi
      ((SECONDS < deadline)) || die "job $id still not finished after 240 s: $(squeue -h -j "$id" -o '%i %T %R' | tr '\n' ';')"
      sleep 0.5
    done
  done
}
# expect_job ID STATE EXIT: job ID ended in STATE with exit code EXIT (ExitCode=EXIT:0).
expect_job() {
  local line
  line=$(scontrol -o show job "$1")
  grep -q "JobState=$2 " <<<"$line" && grep -q "ExitCode=$3:0 " <<<"$line"
}
# submit ARGS...: runs `tessera submit`, prints the job ids it reports, one a line.
submit() {
  "$tessera" submit "$@" >"$work/submit.out" 2>"$work/submit.err" ||
    die "tessera submit $* failed: $(cat "$work/submit.err")"
  sed -n 's/^submitted job \([0-9]*\) .*/\1/p' "$work/submit.out"
}

# ---- four small simulated UVIS visits and the surveys over them -----------------------------
mkdir -p "$work/data"
for seed in 1 2 3 4; do
  "$tessera" simulate uvis --out "$work/data/v0$seed" --frames 12 --ny 120 --nx 400 --seed "$seed" 2>/dev/null
done
cp "$source_dir/workflows/uvis_stage1.toml" "$work/uvis_stage1.toml"
# Per-visit site overrides (as scripts/demo.sh does for its visit), from each visit's truth.
$python - "$work/data" >"$work/visits.toml" <<'PY'
import sys, pathlib, h5py
for d in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    with h5py.File(d / "truth.h5", "r") as t:
        x0, y0 = round(float(t.attrs["zeroth_x"])), round(float(t.attrs["zeroth_y"]))
        stars = [[round(float(x)), round(float(y))] for x, y in zip(t["star_x"][...], t["star_y"][...])] if "star_x" in t else []
    sets = [f"locate.location=[{x0}, {y0}]", f"track_0th.location=[{x0}, {y0}]",
            f"bkg_sky.path_to_Pagul={d}/sky/g280_sky.fits"]
    sets.append(f"track_stars.bkg_stars_loc={stars}".replace(" ", "") if stars else "track_stars.enabled=false")
    print(f'[[visit]]\nid = "{d.name}"\ninput = "data/{d.name}"\nset = {sets!r}\n'.replace("'", '"'))
PY
write_survey() {  # write_survey NAME: $work/NAME.toml, output $work/NAME_out
  cat >"$work/$1.toml" <<EOF
[survey]
name = "$1"
workflow = "uvis_stage1.toml"
output = "$1_out"
set = ["spatial_smooth.smth_bounds=[[40, 80, 150, 300]]", "bkg_uniform.bounds=[[0, 20, 0, 400], [100, 120, 0, 400]]",
       "bkg_column.dist_from_trace=20", "output.save_plots=0"]
[survey.figures]
outliers_found = "sum(fixed_iter_outliers, free_iter_outliers, led_outliers)"
median_background = "median(bkg_uniform_value)"

$(cat "$work/visits.toml")
EOF
}
for name in single_srun single_mpirun array lost; do write_survey "$name"; done
"$tessera" survey list "$work/single_srun.toml" >"$work/list.txt" || die "tessera survey list failed"
grep -q '^4 visits' "$work/list.txt" || die "survey list: $(cat "$work/list.txt")"
say "4 visits simulated; surveys written"

# check_outputs SURVEY_NAME PYTHON_EXPRESSIONS...: every visit's output is complete and its
# Slurm attributes are as expected; `expect` maps visit index i to the expected attributes.
check_outputs() {
  $python - "$work/$1_out" "$2" <<'PY'
import csv, sys, pathlib, h5py
out, spec = pathlib.Path(sys.argv[1]), sys.argv[2]
ids = ["v01", "v02", "v03", "v04"]
expect = eval(spec)  # {visit index: {attribute: value}}
def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)
bad = []
for i, vid in enumerate(ids):
    path = out / vid / f"{vid}.h5"
    if not path.exists():
        bad.append(f"{vid}: no output {path}"); continue
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        if int(attrs.get("tessera_complete", 0)) != 1:
            bad.append(f"{vid}: tessera_complete is {attrs.get('tessera_complete')}")
        if f["data"].shape[0] != 12:
            bad.append(f"{vid}: {f['data'].shape[0]} frames, expected 12")
        for key, value in expect[i].items():
            got = text(attrs[key]) if key in attrs else None
            if got != str(value):
                bad.append(f"{vid}: attribute {key} = {got!r}, expected {str(value)!r}")
rows = list(csv.DictReader(open(out / "survey_index.csv")))
if [r["visit_id"] for r in rows] != ids:
    bad.append(f"index lists {[r['visit_id'] for r in rows]}")
for r in rows:
    if r["status"] != "complete":
        bad.append(f"index: {r['visit_id']} is {r['status']}: {r.get('message')}")
    if r["frames"] != "12":
        bad.append(f"index: {r['visit_id']} frames {r['frames']}")
    for fig in ("outliers_found", "median_background"):
        if fig not in r or r[fig] == "":
            bad.append(f"index: {r['visit_id']} has no {fig}")
    job = expect[ids.index(r["visit_id"])].get("slurm_job_id")
    if job is not None and r["slurm_job_id"] != str(job):
        bad.append(f"index: {r['visit_id']} slurm_job_id {r['slurm_job_id']}, expected {job}")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
# fingerprints SURVEY_NAME: per visit "id inode mtime sha256 attempt", for comparing runs.
fingerprints() {
  local d
  for d in "$work/$1_out"/v0*; do
    local id=${d##*/} attempt
    attempt=$(sed -n 's/^attempt *= *\([0-9]*\).*/\1/p' "$d/survey_record.toml" 2>/dev/null || echo none)
    echo "$id $(stat -c '%i %Y' "$d/$id.h5") $(sha256sum "$d/$id.h5" | cut -c1-16) attempt=${attempt:-none}"
  done
}

# ---- 1. one MPI job, under srun and under mpirun --------------------------------------------
cd "$work"
srun_job=$(submit single_srun.toml --ntasks 2 --launcher srun --time 00:10:00)
mpirun_job=$(submit single_mpirun.toml --ntasks 2 --launcher mpirun --group-size 2 --time 00:10:00 \
  --script-dir "$work/mpirun logs")
[[ -n "$srun_job" && -n "$mpirun_job" ]] || die "no job ids printed: $(cat "$work/submit.out")"
say "submitted survey as one job: $srun_job (srun), $mpirun_job (mpirun)"
wait_jobs "$srun_job" "$mpirun_job"
say "jobs $srun_job and $mpirun_job ended"
check "srun job $srun_job did not complete with exit 0" expect_job "$srun_job" COMPLETED 0
check "mpirun job $mpirun_job did not complete with exit 0" expect_job "$mpirun_job" COMPLETED 0
check "mpirun job's log is not in --script-dir" test -s "$work/mpirun logs/slurm-$mpirun_job.out"
for pair in "single_srun $srun_job" "single_mpirun $mpirun_job"; do
  read -r name job <<<"$pair"
  check "$name: outputs or index wrong" check_outputs "$name" "{i: {'slurm_job_id': $job} for i in range(4)}"
done
# Both ranks were one MPI world: under srun the derived groups (2 of 1 rank) shared the visits
# out; under mpirun one group of 2 ranks ran every visit.
check "srun job: the visits were not shared by groups 0 and 1 of one MPI world" \
  test "$(sed -n "s/^group *= *//p" "$work/single_srun_out"/v0*/survey_record.toml | sort -u | tr '\n' ' ')" = "0 1 "
check "mpirun job: the visits did not run on one group of 2 ranks" \
  test "$(cat "$work/single_mpirun_out"/v0*/survey_record.toml | grep -c '^ranks *= *2$')" -eq 4
say "1. one MPI job: srun and mpirun outputs carry their job ids; index complete"

fingerprints single_srun >"$work/before_resume.txt"
resume_job=$(submit single_srun.toml --ntasks 2 --resume --time 00:10:00)
wait_jobs "$resume_job"
check "resume job $resume_job did not complete with exit 0" expect_job "$resume_job" COMPLETED 0
fingerprints single_srun >"$work/after_resume.txt"
check "--resume re-ran complete visits: $(diff "$work/before_resume.txt" "$work/after_resume.txt" | tr '\n' ' ')" \
  diff -q "$work/before_resume.txt" "$work/after_resume.txt"
check "resumed survey's index not complete" check_outputs single_srun "{i: {'slurm_job_id': $srun_job} for i in range(4)}"
say "1b. resubmitted with --resume (job $resume_job): nothing re-run, outputs unchanged"

# ---- 2. a job array, two visits per task, and the index job ---------------------------------
mapfile -t ids < <(submit array.toml --array --visits-per-task 2 --ntasks 1 --time 00:10:00)
((${#ids[@]} == 2)) || die "array submission printed ${#ids[@]} job ids: $(cat "$work/submit.out")"
array_job=${ids[0]} index_job=${ids[1]}
grep -q "^submitted job $array_job (array 0-1)$" "$work/submit.out" || die "array line: $(cat "$work/submit.out")"
grep -q "^submitted job $index_job (index, after $array_job)$" "$work/submit.out" || die "index line: $(cat "$work/submit.out")"
say "submitted array $array_job (2 tasks) and index job $index_job"
wait_jobs "$array_job" "$index_job"
for task in 0 1; do
  check "array task ${array_job}_$task did not complete" expect_job "${array_job}_$task" COMPLETED 0
done
check "index job $index_job did not complete with exit 0" expect_job "$index_job" COMPLETED 0
check "array: outputs or index wrong" check_outputs array \
  "{i: {'slurm_array_job_id': $array_job, 'slurm_array_task_id': i // 2} for i in range(4)}"
check "array: index job log has no counts" grep -q 'complete' "$work/array_out/slurm-$index_job.out"
say "2. job array: visits carry array job $array_job and their task ids; index job wrote a complete index"

# ---- 3. lose one array task, then resume ----------------------------------------------------
mapfile -t ids < <(submit lost.toml --array --visits-per-task 1 --ntasks 1 --time 00:10:00 --sbatch-option=--hold)
((${#ids[@]} == 2)) || die "held array submission printed ${#ids[@]} job ids: $(cat "$work/submit.out")"
lost_job=${ids[0]} lost_index=${ids[1]}
scancel "${lost_job}_1" || die "scancel ${lost_job}_1 failed"
scontrol release "$lost_job" "$lost_index" || die "scontrol release failed"
say "submitted held array $lost_job (4 tasks) and index $lost_index; cancelled task 1; released"
wait_jobs "$lost_job" "$lost_index"
# A task cancelled while pending never becomes a job of its own: Slurm just drops it.
check "cancelled task ${lost_job}_1 ran" test -z "$(job_states "${lost_job}_1" | grep -v CANCELLED)"
for task in 0 2 3; do
  check "array task ${lost_job}_$task did not complete" expect_job "${lost_job}_$task" COMPLETED 0
done
check "index job $lost_index should fail (exit 1) with a visit missing" expect_job "$lost_index" FAILED 1
check "v02 should be missing from the index" \
  grep -q '^v02,missing,' "$work/lost_out/survey_index.csv"
status=0
"$tessera" survey index "$work/lost.toml" >"$work/index.out" 2>&1 || status=$?
check "tessera survey index should exit non-zero with a visit missing (got $status)" test "$status" -ne 0
fingerprints lost >"$work/before_lost.txt"
grep -q '^v02 ' "$work/before_lost.txt" && die "v02 has an output although its task was cancelled"
say "3a. task 1 lost: index job $lost_index failed, v02 missing, survey index exits $status"

mapfile -t ids < <(submit lost.toml --array --resume --ntasks 1 --time 00:10:00)
((${#ids[@]} == 2)) || die "resume submission printed ${#ids[@]} job ids: $(cat "$work/submit.out")"
resume_array=${ids[0]} resume_index=${ids[1]}
grep -q "^submitted job $resume_array (array 1)$" "$work/submit.out" ||
  die "resume should submit task 1 alone: $(cat "$work/submit.out")"
grep -q "3 of 4 array tasks have every visit complete" "$work/submit.err" || die "resume notes: $(cat "$work/submit.err")"
wait_jobs "$resume_array" "$resume_index"
check "resumed task ${resume_array}_1 did not complete" expect_job "${resume_array}_1" COMPLETED 0
check "index job $resume_index did not complete with exit 0" expect_job "$resume_index" COMPLETED 0
check "lost: outputs or index wrong after resume" check_outputs lost \
  "{0: {'slurm_array_job_id': $lost_job, 'slurm_array_task_id': 0}, 1: {'slurm_array_job_id': $resume_array, 'slurm_array_task_id': 1}, 2: {'slurm_array_job_id': $lost_job, 'slurm_array_task_id': 2}, 3: {'slurm_array_job_id': $lost_job, 'slurm_array_task_id': 3}}"
fingerprints lost >"$work/after_lost.txt"
check "complete visits changed on resume: $(diff "$work/before_lost.txt" <(grep -v '^v02 ' "$work/after_lost.txt") | tr '\n' ' ')" \
  diff -q "$work/before_lost.txt" <(grep -v '^v02 ' "$work/after_lost.txt")
check "every visit ran exactly once: $(tr '\n' ' ' <"$work/after_lost.txt")" \
  test "$(grep -c 'attempt=1$' "$work/after_lost.txt")" -eq 4
"$tessera" survey index "$work/lost.toml" >"$work/index.out" 2>&1 || die "survey index after resume: $(cat "$work/index.out")"
say "3b. resumed (array $resume_array, task 1 only): every visit complete, each run exactly once"

# Nothing left to do: --array --resume submits the index job alone.
mapfile -t ids < <(submit lost.toml --array --resume --ntasks 1 --time 00:10:00)
if ((${#ids[@]} != 1)) || ! grep -q "^submitted job ${ids[0]} (index)$" "$work/submit.out"; then
  die "with every visit complete only the index job should go: $(cat "$work/submit.out")"
fi
wait_jobs "${ids[0]}"
check "lone index job ${ids[0]} did not complete with exit 0" expect_job "${ids[0]}" COMPLETED 0
say "3c. every visit complete: --array --resume submitted only the index job (${ids[0]})"

# ---- a single workflow as one job -----------------------------------------------------------
wf_job=$(submit "$source_dir/workflows/smoke.toml" --ntasks 2 --launcher mpirun --time 00:05:00 \
  --set "input.path=$work/data/v01" --set "output.path=$work/smoke_out/smoke.h5")
wait_jobs "$wf_job"
check "workflow job $wf_job did not complete with exit 0" expect_job "$wf_job" COMPLETED 0
check "workflow output lacks slurm_job_id $wf_job" $python -c "
import h5py, sys
with h5py.File('$work/smoke_out/smoke.h5', 'r') as f:
    v = f.attrs.get('slurm_job_id'); v = v.decode() if isinstance(v, bytes) else str(v)
    sys.exit(0 if v == '$wf_job' and int(f.attrs['tessera_complete']) == 1 else 1)"
check "workflow job's log is not next to the output" test -s "$work/smoke_out/slurm-$wf_job.out"
say "4. workflow job $wf_job: output carries its job id"

say "slurm_cluster_test: all $passed checks passed"
