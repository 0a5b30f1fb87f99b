#!/usr/bin/env bash
# Every workflow shipped in workflows/ validates, and plans on a small simulated visit.
# Usage: validate_shipped.sh TESSERA_BINARY SOURCE_DIR
set -euo pipefail
tessera=$1; source_dir=$2
work=$(mktemp -d /tmp/tessera_shipped.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$tessera" simulate uvis --out "$work/sim" --frames 8 --ny 64 --nx 256 --seed 3 2>/dev/null
"$tessera" simulate niriss-soss --out "$work/jwst" --ints 4 --groups 5 --ny 48 --nx 128 --ints-per-segment 2 2>/dev/null
# Workflows that read a Tessera file (tessera_h5) read what the detector1 workflow writes.
"$tessera" run "$source_dir/workflows/niriss_soss_detector1.toml" --set input.path="$work/jwst/uncal" \
  --set output.path="$work/rateints.h5" >/dev/null 2>&1
count=0
for wf in "$source_dir"/workflows/*.toml; do
  # A survey (a [survey] table) is checked as one: the file reads and lists its visits.
  if grep -q '^\[survey\]' "$wf"; then
    "$tessera" survey list "$wf" >/dev/null
    count=$((count + 1))
    continue
  fi
  input="$work/sim"
  grep -q '^kind = "jwst_uncal"' "$wf" && input="$work/jwst/uncal"
  grep -q '^kind = "tessera_h5"' "$wf" && input="$work/rateints.h5"
  "$tessera" validate "$wf" --set input.path="$input"
  "$tessera" plan "$wf" --ranks 2 --set input.path="$input" >/dev/null
  count=$((count + 1))
done
[[ $count -gt 0 ]] || { echo "no workflows found"; exit 1; }
echo "$count shipped workflow(s) valid and planned"

# The combined workflows are their two halves joined: the same steps, with the detector half's
# references found through {workflow.visit} instead of {input.path}/.. .
/usr/bin/python3 - "$source_dir/workflows" <<'PY'
import sys
from pathlib import Path
d = Path(sys.argv[1])
steps = lambda p: (d / p).read_text().split("[[step]]", 1)[1]
for full, first, second in (("niriss_soss_full.toml", "niriss_soss_detector1.toml", "niriss_soss_spec.toml"),
                            ("miri_lrs_full.toml", "miri_lrs_stage1.toml", "miri_lrs_stage2.toml")):
    joined = steps(first).replace("{input.path}/../", "{workflow.visit}/").rstrip() + "\n\n[[step]]" + steps(second)
    if steps(full) != joined:
        sys.exit(f"workflows/{full} is not {first} followed by {second}: regenerate it")
print("combined workflows match their halves")
PY
