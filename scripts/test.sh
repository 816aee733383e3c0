#!/usr/bin/env bash
# `make test`: unit tests, ansible-test sanity, ansible-lint, lab tests, molecule.
# With arguments, runs only the named stages.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
stages=("$@")
((${#stages[@]})) || stages=(unit sanity lint labtest molecule)

# pytest exits 5 when it collected nothing; that is not a failure of the stage.
run_pytest() { pytest "$@"; local rc=$?; ((rc == 5)) && rc=0; return $rc; }

unit() { run_pytest -q tests/unit; }

sanity() {
  local root; root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  local dest="$root/ansible_collections/l3ha/routers"
  mkdir -p "$dest"
  # ansible-test wants the collection under ansible_collections/<ns>/<name>: copy the
  # tracked and new (not ignored) files there.
  git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$dest" &&
    (cd "$dest" && git init -q && git add -A &&
     "$OLDPWD/.venv-sanity/bin/ansible-test" sanity --local --python 3.11 --color no)
}

lint() { ansible-lint --profile production --strict; }

labtest() { run_pytest -q tests/lab; }

molecule() { scripts/molecule.sh; }

failed=()
for stage in "${stages[@]}"; do
  echo "=== make test: $stage"
  start=$SECONDS
  if "$stage"; then echo "=== $stage: ok ($((SECONDS - start)) s)"
  else echo "=== $stage: FAILED ($((SECONDS - start)) s)"; failed+=("$stage"); fi
done
((${#failed[@]} == 0)) || { echo "make test: failed stages: ${failed[*]}"; exit 1; }
echo "make test: all stages passed"
