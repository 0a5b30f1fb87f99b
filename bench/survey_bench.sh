#!/usr/bin/env bash
# Survey throughput and the survey machinery's overhead per visit, on small simulated UVIS
# visits run through workflows/uvis_stage1.toml (plots off), under mpirun -n 2:
#   - `tessera survey run` with 1 group of 2 ranks and with 2 groups of 1 rank;
#   - the same visits as separate `mpirun -n 2 tessera run` invocations, one after another.
# Overhead per visit = (wall time × groups − Σ visit wall times) / visits, where a visit's
# wall time is what its record says (load_workflow + run_workflow, timed by the group leader)
# and the wall time is the whole command's (mpirun start-up and shutdown included). It is the
# group-time not spent inside visits: start-up, survey file, queue, records, logs, index, and
# the ranks of a group idle at the end while the other group finishes its last visit.
# "inside" is the same with the survey's own time (its summary line) instead: without mpirun.
# For separate runs the visit time is the run's own "total" line.
# Usage: bench/survey_bench.sh [TESSERA_BINARY] [VISITS] [FRAMES NY NX]   (not a test: prints a table)
set -euo pipefail
source_dir=$(cd "$(dirname "$0")/.." && pwd)
tessera=$(realpath "${1:-$source_dir/build/bin/tessera}")
visits=${2:-32}; frames=${3:-12}; ny=${4:-120}; nx=${5:-400}
work=$(mktemp -d /tmp/tessera_survey_bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun --oversubscribe)
now() { date +%s.%N; }

echo "simulating $visits visits of $frames frames, $ny x $nx pixels..." >&2
for i in $(seq 1 "$visits"); do
  "$tessera" simulate uvis --out "data/$(printf 'v%02d' "$i")" --frames "$frames" --ny "$ny" --nx "$nx" --seed "$i" 2>/dev/null
done

# The scene's geometry depends on the frame size only, so one truth gives every visit's positions.
# Boxes scale with the frame (uvis_stage1's defaults are for 600 x 2100).
mapfile -t sets < <(/usr/bin/python3 - "$ny" "$nx" <<'PY'
import sys, h5py
ny, nx = int(sys.argv[1]), int(sys.argv[2])
with h5py.File("data/v01/truth.h5", "r") as t:
    x0, y0 = float(t.attrs["zeroth_x"]), float(t.attrs["zeroth_y"])
    stars = [[round(float(x), 2), round(float(y), 2)] for x, y in zip(t["star_x"][...], t["star_y"][...])]
band = round(ny / 3)
for s in ("output.save_plots=0", "output.show_plots=0",
          f"spatial_smooth.smth_bounds=[[{round(y0 - ny / 8)}, {round(y0 + ny / 8)}, {round(nx * 0.4)}, {nx}]]",
          f"bkg_uniform.bounds=[[0, {band}, 0, {nx}], [{ny - band}, {ny}, 0, {nx}]]",
          f"bkg_column.dist_from_trace={round(ny / 5)}",
          f"locate.location=[{x0}, {y0}]", f"track_0th.location=[{x0}, {y0}]",
          "track_stars.bkg_stars_loc=" + str(stars).replace(" ", "")):
    print(s)
PY
)
{
  echo "[survey]"
  echo "name = \"bench\""
  echo "workflow = \"$source_dir/workflows/uvis_stage1.toml\""
  echo "output = \"OUT\""
  echo "set = ["
  for s in "${sets[@]}"; do echo "  \"$s\","; done
  echo "  \"bkg_sky.path_to_Pagul={input.path}/sky/g280_sky.fits\","
  echo "]"
  echo "[survey.figures]"
  echo "outliers_found = \"sum(fixed_iter_outliers, free_iter_outliers, led_outliers)\""
  echo "[[visits]]"
  echo "glob = \"data/v*\""
} > survey.toml

# One untimed visit first, so that every mode starts with warm caches.
"${mpirun[@]}" -n 2 "$tessera" run "$source_dir/workflows/uvis_stage1.toml" "${sets[@]/#/--set=}" \
  --set input.path=data/v01 --set bkg_sky.path_to_Pagul=data/v01/sky/g280_sky.fits --set output.path=warm/warm.h5 -q

results=()
for g in 2 1; do
  sed "s/^output = \"OUT\"/output = \"out_g$g\"/" survey.toml > survey_g$g.toml
  echo "survey: group size $g..." >&2
  t0=$(now)
  "${mpirun[@]}" -n 2 "$tessera" survey run survey_g$g.toml --group-size $g 2> survey_g$g.log
  t1=$(now)
  inside=$(sed -n 's/^survey bench: .* visits in \([0-9.]*\) s.*/\1/p' survey_g$g.log)
  results+=("survey_g$g $(echo "$t1 - $t0" | bc -l) $inside")
done

echo "separate runs: $visits x mpirun -n 2 tessera run..." >&2
: > separate.log
t0=$(now)
for dir in data/v*; do
  id=$(basename "$dir")
  "${mpirun[@]}" -n 2 "$tessera" run "$source_dir/workflows/uvis_stage1.toml" "${sets[@]/#/--set=}" \
    --set input.path="$dir" --set bkg_sky.path_to_Pagul="$dir/sky/g280_sky.fits" --set output.path="separate/$id.h5" \
    2> separate_$id.log
  grep -h "^  total " separate_$id.log >> separate.log
done
t1=$(now)
results+=("separate $(echo "$t1 - $t0" | bc -l) -")

/usr/bin/python3 - "$visits" "$frames" "$ny" "$nx" "${results[@]}" <<'PY'
import os, sys, glob, tomllib
visits, frames, ny, nx = (int(a) for a in sys.argv[1:5])
print(f"\n{visits} visits of {frames} frames x {ny} x {nx} pixels, workflows/uvis_stage1.toml (plots off), mpirun -n 2\n")
print(f"{'mode':<28} {'wall s':>8} {'visits/min':>10} {'sum visit s':>12} {'overhead/visit s':>17} {'inside s':>9}")
for entry in sys.argv[5:]:
    mode, wall, inside = entry.split()
    wall = float(wall)
    if mode.startswith("survey"):
        g = int(mode[-1])
        groups = 2 // g
        records = [tomllib.load(open(p, "rb")) for p in glob.glob(f"out_g{g}/*/survey_record.toml")]
        assert len(records) == visits and all(r["status"] == "complete" for r in records), "not every visit completed"
        total = sum(r["wall_s"] for r in records)
        label = f"survey, {groups} group{'s' if groups > 1 else ''} of {g} rank{'s' if g > 1 else ''}"
        overhead = (wall * groups - total) / visits
        inner = (float(inside) * groups - total) / visits
        print(f"{label:<28} {wall:8.2f} {visits / wall * 60:10.1f} {total:12.2f} {overhead:17.3f} {inner:9.3f}")
    else:
        totals = [float(line.split()[1]) for line in open("separate.log")]
        assert len(totals) == visits, "not every separate run completed"
        total = sum(totals)
        overhead = (wall - total) / visits
        print(f"{'separate mpirun -n 2 runs':<28} {wall:8.2f} {visits / wall * 60:10.1f} {total:12.2f} {overhead:17.3f} {'-':>9}")
print("\nload average at the end (1, 5, 15 min): %.2f %.2f %.2f on %d cores (other work slows 2-rank groups most)"
      % (*os.getloadavg(), os.cpu_count()))
print("overhead/visit: (wall x groups - sum of visit wall times) / visits, mpirun start-up included;"
      "\ninside: the same from the survey's own time (its summary line), without mpirun start-up and shutdown.")
PY
