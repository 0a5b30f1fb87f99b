#!/usr/bin/env bash
# The JWST detector-level chain through ramp_fit (bench/ramps_bench.cpp) on the three
# shapes, on 1 and 2 ranks: per-step throughput, ratio to a memory copy of each rank's ramps,
# peak memory per rank. Needs about 8 GB of memory (the MIRI-LRS shape on one rank).
# Usage: bench/ramps_bench.sh [BUILD_DIR] [extra ramps_bench options...]
set -euo pipefail
build=${1:-build}; shift || true
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmake --build "$build" --target ramps_bench -j2 >/dev/null
for shape in niriss miri-lrs miri-imaging; do
  for n in 1 2; do
    echo "=== $shape on $n rank(s)"
    mpirun -n $n --oversubscribe "$build/bin/ramps_bench" --shape $shape "$@"
  done
done
