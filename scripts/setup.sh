#!/usr/bin/env bash
# Installs everything `make demo`, `make test` and `make bench` need, on a fresh
# Debian/Ubuntu machine as root. Re-runnable: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(iproute2 keepalived conntrackd conntrack nftables iputils-ping tcpdump radvd
              procps psmisc util-linux python3-venv git shellcheck
              # machine nodes (`l3ha-lab up --nodes machine`): systemd-nspawn, the image
              # builder, the index of the nodes' package repository, the controller's ssh.
              # The image itself is built on first use, not here (docs/lab.md).
              systemd-container mmdebstrap dpkg-dev openssh-client
              # promtool, for the example alert rules (examples/prometheus); no daemon is run
              prometheus)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# keepalived's Debian package may start a default instance; the lab runs its own.
if command -v service >/dev/null && pgrep -x keepalived -F /run/keepalived.pid >/dev/null 2>&1; then
  service keepalived stop >/dev/null 2>&1 || true
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "setup: creating .venv with pinned Python dependencies"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -U pip
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# ansible-test sanity runs with --local in its own venv (its --venv mode would fetch
# a pip bootstrap script from a host that is not reachable here).
stamp=.venv-sanity/.requirements.sha256
want=$(sha256sum requirements-sanity.txt | cut -d' ' -f1)
if [[ ! -x .venv-sanity/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "setup: creating .venv-sanity for ansible-test sanity"
  "$PYTHON" -m venv .venv-sanity
  .venv-sanity/bin/pip install -q --disable-pip-version-check -r requirements-sanity.txt
  echo "$want" > "$stamp"
fi

pip_version=$(grep -oP "pip='\K[0-9.]+" .venv-sanity/lib/python3.*/site-packages/ansible_test/_internal/python_requirements.py | head -1)
mkdir -p ~/.ansible/test/cache
install -m 0644 scripts/offline_get_pip.py ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"

# Make `l3ha.routers.*` resolve to this checkout (ansible.cfg points here).
mkdir -p .build/collections/ansible_collections/l3ha
ln -sfn ../../../.. .build/collections/ansible_collections/l3ha/routers
