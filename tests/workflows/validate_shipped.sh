#!/usr/bin/env bash
# Every workflow shipped in workflows/ validates, and plans on a small simulated visit.
# Usage: validate_shipped.sh TESSERA_BINARY SOURCE_DIR
set -euo pipefail
tessera=$1; source_dir=$2
work=$(mktemp -d /tmp/tessera_shipped.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$tessera" simulate uvis --out "$work/sim" --frames 8 --ny 64 --nx 256 --seed 3 2>/dev/null
"$tessera" simulate niriss-soss --out "$work/jwst" --ints 4 --groups 5 --ny 48 --nx 128 --ints-per-segment 2 2>/dev/null
count=0
for wf in "$source_dir"/workflows/*.toml; do
  input="$work/sim"
  grep -q '^kind = "jwst_uncal"' "$wf" && input="$work/jwst/uncal"
  "$tessera" validate "$wf" --set input.path="$input"
  "$tessera" plan "$wf" --ranks 2 --set input.path="$input" >/dev/null
  count=$((count + 1))
done
[[ $count -gt 0 ]] || { echo "no workflows found"; exit 1; }
echo "$count shipped workflow(s) valid and planned"
