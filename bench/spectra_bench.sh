#!/usr/bin/env bash
# The spectral stage against the notebook's Python loops (docs/spectra-speed.md).
#   (a) bench/notebook_reference.py: the notebook's per-integration loops (our re-implementation,
#       /usr/bin/python3 with numpy, scipy, astropy) on REF_INTS integrations;
#   (b) spectra_bench on the same REF_INTS integrations (the same arrays: spectra_bench --dump
#       writes the file (a) reads), 1 rank: the full stage, and the subset the notebook has;
#   (a) and (b) REPEAT times, interleaved, medians kept (this shared machine varies by 10-20 %);
#   (c) spectra_bench on BIG_INTS integrations of 256 x 2048 on 1 and 2 ranks, once.
# Then a table: integrations/s of each, and the speed-up per integration (notebook s/int over
# Tessera s/int), wall-clock, and the same with CPU time. The synthetic data are made in memory
# before the clock starts.
#
# Usage: bench/spectra_bench.sh [BUILD_DIR]
#   env REF_INTS (default 30), REPEAT (default 3), BIG_INTS (default 2000; lowered to what
#       memory allows, and said so), SPECTRA_BENCH_TMP (default /dev/shm/tessera_spectra_bench),
#       PYTHON (default /usr/bin/python3)
set -euo pipefail
build=${1:-build}
ref_ints=${REF_INTS:-30}
repeat=${REPEAT:-3}
big_ints=${BIG_INTS:-2000}
tmp=${SPECTRA_BENCH_TMP:-/dev/shm/tessera_spectra_bench}
python=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$tmp"
cmake --build "$build" --target tessera spectra_bench -j2 >/dev/null
bench="$build/bin/spectra_bench"

# data + err + dq (12 bytes per pixel) plus one cube in flight during the layout moves of
# extract_optimal (4 bytes) and some headroom: 17 bytes per pixel, 256 x 2048 pixels per integration.
avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
fit=$(( avail_kb * 1024 / (17 * 256 * 2048) ))
if (( big_ints > fit )); then
  echo "note: $big_ints integrations need ~$(( big_ints * 17 * 256 * 2048 / 1000000000 )) GB; \
$(( avail_kb / 1000000 )) GB available: running $fit integrations instead"
  big_ints=$fit
fi

run() {  # run LABEL RANKS ARGS... : prints the bench's output, keeps it for the table
  local label=$1 ranks=$2; shift 2
  echo "=== $label"
  mpirun -n "$ranks" --oversubscribe "$bench" "$@" | tee "$tmp/$label.txt"
}

subset=trace,one_over_f_masked,extract_box_order1,lightcurves,lc_diagnostics  # the notebook as written
"$bench" --ints "$ref_ints" --dump-only "$tmp/reference.h5"
for ((i = 1; i <= repeat; ++i)); do
  run "ref_tessera_1.$i" 1 --ints "$ref_ints"
  run "ref_subset_1.$i" 1 --ints "$ref_ints" --steps "$subset"
  echo "=== notebook reference (python) on the same $ref_ints integrations, run $i"
  "$python" "$here/notebook_reference.py" "$tmp/reference.h5" --json "$tmp/reference.$i.json"
done
rm -f "$tmp/reference.h5"  # /dev/shm is memory: give it back before the big runs
run big_tessera_1 1 --ints "$big_ints"
run big_tessera_2 2 --ints "$big_ints"

"$python" - "$tmp" "$repeat" <<'EOF'
import json, re, statistics, sys
tmp, repeat = sys.argv[1], int(sys.argv[2])
def result(label):
    text = open(f"{tmp}/{label}.txt").read()
    m = re.search(r"RESULT ranks=(\d+) ints=(\d+) seconds=(\S+) ms_per_int=(\S+) ints_per_s=(\S+) cpu_ms_per_int=(\S+)",
                  text)
    return int(m[2]), float(m[4]) / 1e3, float(m[6]) / 1e3
def median_result(label):
    runs = [result(f"{label}.{i}") for i in range(1, repeat + 1)]
    return runs[0][0], statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)
refs = [json.load(open(f"{tmp}/reference.{i}.json")) for i in range(1, repeat + 1)]
med = lambda key: statistics.median(r[key] for r in refs)
nt = refs[0]["nt"]
full = (med("seconds_per_integration"), med("cpu_per_integration"))
written = (med("as_written_per_integration"), med("as_written_cpu_per_integration"))
rows = [("notebook loops (python), full", nt, *full, *full),
        ("notebook loops, as written (no o2)", nt, *written, *written),
        ("Tessera as-written subset, 1 rank", *median_result("ref_subset_1"), *written),
        ("Tessera full, 1 rank", *median_result("ref_tessera_1"), *full),
        ("Tessera full, 1 rank", *result("big_tessera_1"), *full),
        ("Tessera full, 2 ranks", *result("big_tessera_2"), *full)]
print()
print(f"speed-up = notebook s/int / Tessera s/int, wall-clock ('cpu': CPU time of all processes); "
      f"{nt}-integration rows: medians of {repeat} runs")
print(f"{'':36} {'ints':>5} {'ms/int':>9} {'ints/s':>8} {'speed-up':>9} {'cpu ms/int':>11} {'cpu speed-up':>12}")
for name, n, wall, cpu, ref_wall, ref_cpu in rows:
    print(f"{name:36} {n:5d} {1e3 * wall:9.2f} {1 / wall:8.2f} {ref_wall / wall:8.1f}x {1e3 * cpu:11.2f} "
          f"{ref_cpu / cpu:11.1f}x")
print("(full: trace of 2 orders, masked 1/f, box extraction of orders 1 and 2 with wavelengths, light curves, "
      "diagnostics; Tessera's full stage also runs the optimal extraction of order 1, which the notebook has not. "
      "The as-written subset is compared with the notebook as written, which extracts order 1 only.)")
EOF
