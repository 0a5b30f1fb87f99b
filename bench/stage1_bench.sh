#!/usr/bin/env bash
# The issue's stage-1 benchmark: hst_dq, free_iter, led, bkg_uniform, bkg_column, track_0th and
# save on a 74 x 600 x 2100 visit (WASP-127b scale), on 1 and 2 ranks, with the speed-up.
#   bash bench/stage1_bench.sh [build-dir] [pairs] [extra workflow_bench options]
# The runs alternate 1 and 2 ranks `pairs` times (default 3) and the speed-up is the median of
# the pairs' ratios: single runs on a shared virtual machine vary by up to 30%. The output goes
# to /dev/shm when it exists, so that the figures measure Tessera rather than the machine's
# disk (pass --set output.path=... to write elsewhere).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
pairs="${2:-3}"
shift $(( $# >= 2 ? 2 : $# )) || true
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$here"
out_dir="$build/bench_out"
[[ -d /dev/shm ]] && out_dir=/dev/shm/tessera_stage1_bench
# Only the issue's step list; the visit's 0th order is where the simulator puts it.
steps=(--set fixed_iter.enabled=false --set spatial_smooth.enabled=false --set bkg_sky.enabled=false
       --set locate.enabled=false --set track_stars.enabled=false --set quicklook.enabled=false
       --set plots.enabled=false --set "track_0th.location=[735.3, 299.8]"
       --set "bkg_uniform.bounds=[[0, 150, 0, 2100], [450, 600, 0, 2100]]"
       --set "output.path=$out_dir/clean_obs.h5")
ratios=()
for ((i = 1; i <= pairs; i++)); do
  for n in 1 2; do
    mpirun -n "$n" --oversubscribe "$build/bin/workflow_bench" --sim "$build/bench_sim" "${steps[@]}" "$@" \
      > "$build/stage1_bench_$n.txt"
    [[ $i -eq 1 ]] && cat "$build/stage1_bench_$n.txt"
  done
  t1=$(sed -n 's/^RESULT ranks=1 total_s=//p' "$build/stage1_bench_1.txt")
  t2=$(sed -n 's/^RESULT ranks=2 total_s=//p' "$build/stage1_bench_2.txt")
  echo "pair $i: 1 rank $t1 s, 2 ranks $t2 s"
  ratios+=("$t1/$t2")
done
rm -rf "$out_dir"
/usr/bin/python3 -c "
import statistics, sys
r = [eval(x) for x in sys.argv[1:]]
print(f'2 ranks vs 1 rank: median {statistics.median(r):.2f}x over {len(r)} pairs (each: ' + ', '.join(f'{x:.2f}' for x in r) + ')')
print('reference tool: about 1730 s for the whole stage')" "${ratios[@]}"
