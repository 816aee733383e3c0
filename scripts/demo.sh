#!/usr/bin/env bash
# `make demo`: lab up from an inventory, deploy, status, crash the node holding the most
# masters while traffic flows, the measured outage per router, status again.
# Re-runnable: nodes crashed by a previous run are booted again first.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
inventory=${1:-examples/inventory.yml}
nodes=${L3HA_DEMO_NODES:-namespace}
status_json=$(mktemp /tmp/l3ha-demo-status.XXXXXX.json)
trap 'rm -f "$status_json"' EXIT

lab/l3ha-lab up -i "$inventory" --nodes "$nodes"
for node in $(lab/l3ha-lab status --json | python3 -c 'import json,sys; print(" ".join(n["name"] for n in json.load(sys.stdin)["nodes"] if not n["alive"]))'); do
  echo "demo: booting $node, crashed by an earlier run"
  lab/l3ha-lab boot "$node"
done
lab/l3ha-lab status
fragment=$(lab/l3ha-lab inventory)
inventories=(-i "$inventory" -i "$fragment")
# Machine nodes are reached as the admin user `l3ha`: the routers need become.
[[ $nodes == machine ]] && inventories+=(-i examples/become.yml)
play() { ansible-playbook "${inventories[@]}" "$@"; }

echo "demo: deploying the routers (l3ha.routers.site)"
play l3ha.routers.site
echo "demo: where the masters are (l3ha.routers.status)"
play l3ha.routers.status -e l3ha_status_json="$status_json"
python3 scripts/demo_failover.py "$status_json" "$inventory" "$fragment"
echo "demo: status after the crash"
play l3ha.routers.status
echo "demo: done. 'make demo-clean' removes the lab."
