#!/usr/bin/env bash
# The issue's stage-1 benchmark: hst_dq, free_iter, led, bkg_uniform, bkg_column, track_0th and
# save on a 74 x 600 x 2100 visit (WASP-127b scale), on 1 and 2 ranks, with the speed-up.
#   bash bench/stage1_bench.sh [build-dir] [extra workflow_bench options]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shift || true
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$here"
# Only the issue's step list; the visit's 0th order is where the simulator puts it.
steps=(--set fixed_iter.enabled=false --set spatial_smooth.enabled=false --set bkg_sky.enabled=false
       --set locate.enabled=false --set track_stars.enabled=false --set quicklook.enabled=false
       --set plots.enabled=false --set "track_0th.location=[735.3, 299.8]"
       --set "bkg_uniform.bounds=[[0, 150, 0, 2100], [450, 600, 0, 2100]]")
for n in 1 2; do
  mpirun -n "$n" --oversubscribe "$build/bin/workflow_bench" --sim "$build/bench_sim" "${steps[@]}" "$@" | tee "$build/stage1_bench_$n.txt"
done
t1=$(sed -n 's/^RESULT ranks=1 total_s=//p' "$build/stage1_bench_1.txt")
t2=$(sed -n 's/^RESULT ranks=2 total_s=//p' "$build/stage1_bench_2.txt")
/usr/bin/python3 -c "print(f'2 ranks vs 1 rank: {float($t1)/float($t2):.2f}x  (reference tool: about 1730 s for the whole stage)')"
