#!/usr/bin/env bash
# Installs every Debian package that Tessera's build, tests and demo need.
# Idempotent: packages already present are skipped quickly.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libcfitsio-dev
  libeigen3-dev
  libtomlplusplus-dev
  libboost-graph-dev
  libgtest-dev googletest
  libcli11-dev
  libplplot-dev
  plplot-driver-cairo
  libgif-dev
  python3 python3-numpy python3-scipy python3-xarray python3-h5py python3-h5netcdf python3-netcdf4 python3-astropy
  # tessera submit's test starts a real single-node Slurm cluster (tests/slurm/local_slurm.sh)
  slurm-wlm munge
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
