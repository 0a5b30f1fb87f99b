#!/usr/bin/env bash
# Every test on a fresh machine: install, build, run ctest (unit, MPI on 1-3 ranks, end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build
ctest --output-on-failure --timeout 600 "$@"
