#!/usr/bin/env bash
# `make demo`: bring the lab up from an inventory, deploy, show status.
set -euo pipefail
cd "$(dirname "$0")/.."
inventory=${1:-examples/inventory.yml}
lab/l3ha-lab up -i "$inventory"
lab/l3ha-lab status
echo "demo: the lab is up; the deploy step lands with the role (issue 5)."
