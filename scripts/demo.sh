#!/usr/bin/env bash
# The main job on a fresh machine: install, build, simulate a small UVIS visit, reduce it
# on 2 MPI ranks with workflows/smoke.toml, and show what was written.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tessera=build/bin/tessera

rm -rf sim
$tessera simulate uvis --out sim/ --frames 40 --ny 256 --nx 512 --seed 1
$tessera validate workflows/smoke.toml
$tessera plan workflows/smoke.toml --ranks 2
mpirun -n 2 --oversubscribe $tessera run workflows/smoke.toml
/usr/bin/python3 -c "import xarray; print(xarray.open_dataset('out/smoke.h5'))"
echo
echo "output: $(pwd)/out/smoke.h5 (truth of the simulation: $(pwd)/sim/truth.h5)"
