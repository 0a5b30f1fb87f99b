#!/usr/bin/env bash
# Every workflow shipped in workflows/ validates, and plans on a small simulated visit.
# Usage: validate_shipped.sh TESSERA_BINARY SOURCE_DIR
set -euo pipefail
tessera=$1; source_dir=$2
work=$(mktemp -d /tmp/tessera_shipped.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$tessera" simulate uvis --out "$work/sim" --frames 8 --ny 64 --nx 256 --seed 3 2>/dev/null
count=0
for wf in "$source_dir"/workflows/*.toml; do
  "$tessera" validate "$wf" --set input.path="$work/sim"
  "$tessera" plan "$wf" --ranks 2 --set input.path="$work/sim" >/dev/null
  count=$((count + 1))
done
[[ $count -gt 0 ]] || { echo "no workflows found"; exit 1; }
echo "$count shipped workflow(s) valid and planned"
