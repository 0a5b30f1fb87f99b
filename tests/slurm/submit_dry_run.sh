#!/usr/bin/env bash
# `tessera submit --dry-run`: the sbatch scripts it prints for a workflow and for a survey (one
# MPI job, and a job array with its index job), every option as its #SBATCH line, quoting of
# awkward paths and values, and clear errors for bad options and files. Needs no Slurm: the
# printed scripts are also run with stand-in `srun` and `mpirun` that record their arguments,
# to check that tessera would be started with exactly the intended argument vector.
# Usage: submit_dry_run.sh TESSERA_BINARY SOURCE_DIR
set -euo pipefail
tessera=$(readlink -f "$1")
source_dir=$2
exe=$tessera
work=$(mktemp -d /tmp/tessera_submit_dry.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# expect_line FILE LINE: FILE has LINE as one whole line.
expect_line() {
  grep -qxF -- "$2" "$1" || fail "$(basename "$1"): no line '$2'"
}
expect_text() {
  grep -qF -- "$2" "$1" || fail "$(basename "$1"): no '$2'"
}
reject_text() {
  if grep -qF -- "$2" "$1"; then fail "$(basename "$1"): unexpected '$2'"; fi
}
# expect_error NAME 'TEXT' ARGS...: `tessera submit ARGS` fails (exit 2), writes TEXT to stderr, prints no script.
expect_error() {
  local name=$1 text=$2 status=0
  shift 2
  "$tessera" submit "$@" >"$work/$name.out" 2>"$work/$name.err" || status=$?
  [[ $status -eq 2 ]] || fail "$name: exit status $status, expected 2 ($(cat "$work/$name.err"))"
  grep -qF -- "$text" "$work/$name.err" || fail "$name: stderr lacks '$text': $(cat "$work/$name.err")"
  [[ ! -s "$work/$name.out" ]] || fail "$name: printed something on stdout"
}
# split OUT PREFIX: splits a dry run's output into PREFIX.1, PREFIX.2, ... one per script.
split_scripts() {
  awk -v prefix="$2" '/^# ==> .* <==$/ { n++; next } { print > (prefix "." n) }' "$1"
}

# ---- a workflow ---------------------------------------------------------------------------
mkdir -p "wf dir" sim
cp "$source_dir/workflows/smoke.toml" "wf dir/smoke.toml"
wf="$work/wf dir/smoke.toml"

"$tessera" submit "wf dir/smoke.toml" --dry-run >wf_default.txt 2>wf_default.err
split_scripts wf_default.txt wf_default
[[ -f wf_default.1 && ! -f wf_default.2 ]] || fail "workflow: expected exactly one script"
head -1 wf_default.txt | grep -qF "$work/out/tessera-smoke.sbatch" ||
  fail "workflow: default script path is not next to the output ($(head -1 wf_default.txt))"
expect_line wf_default.1 '#!/bin/bash'
expect_line wf_default.1 '#SBATCH --job-name=tessera-smoke'
expect_line wf_default.1 "#SBATCH --output=$work/out/slurm-%j.out"
expect_line wf_default.1 '#SBATCH --ntasks=2'
expect_line wf_default.1 '#SBATCH --time=01:00:00'
expect_line wf_default.1 "cd $work || exit 1"
expect_line wf_default.1 "srun --mpi=pmix --kill-on-bad-exit=1 $exe run '$wf'"
for absent in --nodes --mem --partition --account --cpus-per-task --ntasks-per-node --array --dependency; do
  reject_text wf_default.1 "#SBATCH $absent"
done
[[ ! -e out ]] || fail "a dry run created the output/script directory"
bash -n wf_default.1 || fail "workflow script: bash syntax error"

"$tessera" submit "$wf" --dry-run --nodes 2 --ntasks 8 --ntasks-per-node 4 --cpus-per-task 3 --time 2-12:00:00 \
  --mem 16G --partition short,long --account proj_1 --job-name my.job --launcher mpirun \
  --sbatch-option=--hold --sbatch-option=--qos=long --sbatch-option="--constraint=a&b" \
  --set "clip.fixed_sigmas=[4.5, 4.5]" --set "input.path=it's here" --resume --checkpoint-all \
  --script-dir "$work/logs 100%" >wf_all.txt
split_scripts wf_all.txt wf_all
for line in '--job-name=my.job' '--nodes=2' '--ntasks=8' '--ntasks-per-node=4' '--cpus-per-task=3' \
  '--time=2-12:00:00' '--mem=16G' '--partition=short,long' '--account=proj_1' '--hold' '--qos=long' \
  '--constraint=a&b' "--output=\"$work/logs 100%%/slurm-%j.out\""; do
  expect_line wf_all.1 "#SBATCH $line"
done
expect_text wf_all.1 "mpirun -n \"\$SLURM_NTASKS\" $exe run '$wf' --set 'clip.fixed_sigmas=[4.5, 4.5]'"
expect_text wf_all.1 "--set 'input.path=it'\\''s here' --resume --checkpoint-all"
reject_text wf_all.1 'srun --mpi'
head -1 wf_all.txt | grep -qF "$work/logs 100%/my.job.sbatch" || fail "--script-dir not used: $(head -1 wf_all.txt)"
bash -n wf_all.1 || fail "workflow script (all options): bash syntax error"

# Run the printed scripts with stand-ins for srun and mpirun that record their arguments, one
# a line: tessera must get exactly the words intended, whatever the quoting.
mkdir -p fakebin
for launcher in srun mpirun; do
  cat >"fakebin/$launcher" <<EOF
#!/bin/bash
printf '%s\n' "$launcher" "\$@" >"$work/argv.$launcher"
echo "OMPI_ALLOW_RUN_AS_ROOT=\${OMPI_ALLOW_RUN_AS_ROOT:-unset}" >>"$work/argv.$launcher"
EOF
  chmod +x "fakebin/$launcher"
done
fake_env=(env -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM PATH="$work/fakebin:$PATH"
  SLURM_JOB_ID=77 SLURM_JOB_NODELIST=node1 SLURM_NTASKS=8)
(cd / && "${fake_env[@]}" bash "$work/wf_all.1" >"$work/wf_all.run" 2>&1) || fail "running the mpirun script failed"
expect_line wf_all.run 'tessera: job 77 on node1, 8 tasks, started '"$(grep -o 'started .*' wf_all.run | cut -c9-)"
root_expect="unset"
[[ $(id -u) -eq 0 ]] && root_expect=1
printf '%s\n' mpirun -n 8 "$exe" run "$wf" --set 'clip.fixed_sigmas=[4.5, 4.5]' --set "input.path=it's here" \
  --resume --checkpoint-all "OMPI_ALLOW_RUN_AS_ROOT=$root_expect" >argv.expected
diff -u argv.expected argv.mpirun || fail "the mpirun script starts tessera with other arguments"
(cd / && "${fake_env[@]}" bash "$work/wf_default.1" >/dev/null 2>&1) || fail "running the srun script failed"
printf '%s\n' srun --mpi=pmix --kill-on-bad-exit=1 "$exe" run "$wf" "OMPI_ALLOW_RUN_AS_ROOT=$root_expect" >argv.expected
diff -u argv.expected argv.srun || fail "the srun script starts tessera with other arguments"

"$tessera" submit "$wf" --dry-run --mpi pmi2 >wf_pmi2.txt
expect_text wf_pmi2.txt "srun --mpi=pmi2 --kill-on-bad-exit=1 $exe run"

# ---- a survey -----------------------------------------------------------------------------
mkdir -p visits/a visits/b visits/c visits/d visits/e
cat >survey.toml <<EOF
[survey]
name = "dry"
workflow = "wf dir/smoke.toml"
output = "survey_out"
[[visits]]
glob = "visits/*"
EOF
survey="$work/survey.toml"

"$tessera" submit survey.toml --dry-run >sv_job.txt
split_scripts sv_job.txt sv_job
[[ -f sv_job.1 && ! -f sv_job.2 ]] || fail "survey as one job: expected exactly one script"
head -1 sv_job.txt | grep -qF "$work/survey_out/tessera-dry.sbatch" ||
  fail "survey: default script path is not in the survey output: $(head -1 sv_job.txt)"
expect_line sv_job.1 "#SBATCH --output=$work/survey_out/slurm-%j.out"
expect_line sv_job.1 '#SBATCH --ntasks=2'
expect_line sv_job.1 "srun --mpi=pmix --kill-on-bad-exit=1 $exe survey run $survey"
reject_text sv_job.1 '#SBATCH --array'
bash -n sv_job.1 || fail "survey job script: bash syntax error"
[[ ! -e survey_out ]] || fail "a dry run created the survey output directory"

"$tessera" submit survey.toml --dry-run --ntasks 4 --group-size 2 --resume --launcher mpirun \
  --set clip.estimator=std >sv_job2.txt 2>sv_job2.err
expect_text sv_job2.txt "mpirun -n \"\$SLURM_NTASKS\" $exe survey run $survey --set clip.estimator=std --resume --group-size 2"
expect_text sv_job2.err "resume: 0 of 5 visits are complete already"

"$tessera" submit survey.toml --dry-run --array --visits-per-task 2 --max-parallel 2 --ntasks 1 --partition debug \
  --sbatch-option=--hold --checkpoint-all >sv_array.txt
split_scripts sv_array.txt sv_array
[[ -f sv_array.1 && -f sv_array.2 && ! -f sv_array.3 ]] || fail "survey array: expected an array and an index script"
expect_line sv_array.1 '#SBATCH --array=0-2%2'
expect_line sv_array.1 '#SBATCH --ntasks=1'
expect_line sv_array.1 '#SBATCH --partition=debug'
expect_line sv_array.1 '#SBATCH --hold'
expect_line sv_array.1 "#SBATCH --output=$work/survey_out/slurm-%A_%a.out"
expect_line sv_array.1 "srun --mpi=pmix --kill-on-bad-exit=1 $exe survey run $survey --array-task \"\$SLURM_ARRAY_TASK_ID\" --visits-per-task 2 --checkpoint-all"
expect_line sv_array.2 '#SBATCH --job-name=tessera-dry-index'
expect_line sv_array.2 '#SBATCH --dependency=afterany:ARRAY_JOB_ID'
expect_line sv_array.2 '#SBATCH --ntasks=1'
expect_line sv_array.2 '#SBATCH --partition=debug'
expect_line sv_array.2 '#SBATCH --hold'
expect_line sv_array.2 "$exe survey index $survey"
reject_text sv_array.2 'srun --mpi'
bash -n sv_array.1 || fail "array script: bash syntax error"
bash -n sv_array.2 || fail "index script: bash syntax error"
grep -q 'not written; would be submitted with: sbatch --parsable' sv_array.txt || fail "dry run does not show the sbatch command"

# The array script run as task 1 of a stand-in array: tessera gets the task id.
(cd / && "${fake_env[@]}" SLURM_ARRAY_JOB_ID=70 SLURM_ARRAY_TASK_ID=1 bash "$work/sv_array.1" >/dev/null 2>&1) ||
  fail "running the array script failed"
printf '%s\n' srun --mpi=pmix --kill-on-bad-exit=1 "$exe" survey run "$survey" --array-task 1 --visits-per-task 2 \
  --checkpoint-all "OMPI_ALLOW_RUN_AS_ROOT=$root_expect" >argv.expected
diff -u argv.expected argv.srun || fail "the array script starts tessera with other arguments"

"$tessera" submit survey.toml --dry-run --array >sv_array1.txt
expect_text sv_array1.txt '#SBATCH --array=0-4'
expect_text sv_array1.txt '--visits-per-task 1'
"$tessera" submit survey.toml --dry-run --array --visits-per-task 10 >sv_array10.txt
expect_line sv_array10.txt '#SBATCH --array=0'

# ---- errors -------------------------------------------------------------------------------
expect_error missing_file "nope.toml: no such file" nope.toml --dry-run
expect_error dir_file "visits: not a file" visits --dry-run
printf '[workflow\nname = "x"\n' >broken.toml
expect_error broken_toml "broken.toml" broken.toml --dry-run
expect_error bad_time "--time: expected MINUTES" "$wf" --dry-run --time 1h
expect_error bad_mem "--mem: expected a whole number" "$wf" --dry-run --mem 4GB
expect_error bad_partition "--partition: expected" "$wf" --dry-run --partition "a b"
expect_error bad_account "--account: expected" "$wf" --dry-run --account 'x;rm'
expect_error bad_job_name "--job-name: expected" "$wf" --dry-run --job-name 'my job'
expect_error bad_sbatch_option "--sbatch-option: expected one sbatch option" "$wf" --dry-run --sbatch-option=hold
expect_error owned_sbatch_option "use --script-dir instead" "$wf" --dry-run --sbatch-option=--output=x.out
expect_error owned_array_option "use --array instead" survey.toml --dry-run --sbatch-option=--array=0-3
expect_error array_dependency "--dependency" survey.toml --dry-run --array --sbatch-option=--dependency=afterok:5
expect_error bad_set "--set: expected STEP.PARAM=VALUE" "$wf" --dry-run --set clip.fixed_sigmas
expect_error array_workflow "--array: only for surveys" "$wf" --dry-run --array
expect_error group_workflow "--group-size: only for surveys" "$wf" --dry-run --group-size 2
expect_error per_task_alone "--visits-per-task: only used with --array" survey.toml --dry-run --visits-per-task 2
expect_error max_parallel_alone "--max-parallel: only used with --array" survey.toml --dry-run --max-parallel 2
expect_error mpi_with_mpirun "--mpi: is srun's" "$wf" --dry-run --launcher mpirun --mpi pmix
expect_error bad_launcher "--launcher" "$wf" --dry-run --launcher aprun
expect_error bad_ntasks "--ntasks" "$wf" --dry-run --ntasks 0
expect_error bad_param "clip" "$wf" --dry-run --set clip.no_such_parameter=1
expect_error newline_dir "line break" "$wf" --dry-run --script-dir "$work/a
b"
cat >empty_survey.toml <<EOF
[survey]
name = "empty"
workflow = "wf dir/smoke.toml"
output = "empty_out"
EOF
expect_error empty_survey "no visits" empty_survey.toml --dry-run --array
cat >badwf_survey.toml <<EOF
[survey]
name = "badwf"
workflow = "wf dir/smoke.toml"
output = "badwf_out"
set = ["clip.fixed_sigmas=oops"]
[[visit]]
id = "v1"
input = "visits/a"
EOF
expect_error workflow_for_no_visit "does not load for any visit" badwf_survey.toml --dry-run

# sbatch itself missing (not a dry run): a clear message, exit 1, and no job claimed.
status=0
env PATH=/nonexistent "$exe" submit "$wf" >nosbatch.out 2>nosbatch.err || status=$?
[[ $status -eq 1 ]] || fail "without sbatch: exit status $status, expected 1"
grep -qF "could not run sbatch" nosbatch.err || fail "without sbatch: unclear message: $(cat nosbatch.err)"
reject_text nosbatch.out "submitted job"

if ((failures)); then
  echo "submit_dry_run: $failures check(s) failed" >&2
  exit 1
fi
echo "submit_dry_run: all checks passed"
