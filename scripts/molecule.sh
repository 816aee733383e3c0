#!/usr/bin/env bash
# Runs every molecule scenario in turn (each creates and destroys its lab).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
failed=()
for dir in molecule/*/; do
  scenario=$(basename "$dir")
  [[ -f "$dir/molecule.yml" ]] || continue
  echo "--- molecule scenario: $scenario"
  start=$SECONDS
  if molecule test -s "$scenario"; then
    echo "--- molecule scenario $scenario: ok ($((SECONDS - start)) s)"
  else
    echo "--- molecule scenario $scenario: FAILED ($((SECONDS - start)) s)"
    failed+=("$scenario")
  fi
done
# The summary comes last, so it is in the tail of any log.
((${#failed[@]} == 0)) || { echo "molecule: failed scenarios: ${failed[*]}"; exit 1; }
echo "molecule: all scenarios passed"
