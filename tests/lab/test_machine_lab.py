"""Machine nodes (`l3ha-lab up --nodes machine`): real systemd-nspawn containers with
systemd as PID 1, reached over SSH as the non-root admin user.

The first `up --nodes machine` on a machine builds the image (mmdebstrap, about 1-2
minutes); it is cached in /var/cache/l3ha-lab (or $L3HA_LAB_CACHE) and keyed by its
recipe, so a session builds it at most once. The session's leak check (conftest.py)
covers these labs too; the last test also checks what only machine nodes make (the
management bridge, cgroups, SSH master connections).
"""

import ipaddress
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from l3ha_lab import Lab, kernel, machine  # on sys.path through conftest.py
from l3ha_lab.testing import REPO, VENV_BIN, HostSnapshot, node_sh, playbook_env, process_exists, wait_until
from lab_helpers import LAB_DIR_PREFIX

NODES = ("m1", "m2")
GROUP_VARS = {
    "l3ha_networks": {"ext": {"type": "bridge", "bridge": "br-ex", "cidr": "203.0.113.0/24", "external": True},
                      "tn": {"type": "vxlan", "vni": 1001, "cidr": "10.0.0.0/24"}},
    "l3ha_routers": [{"name": "r1",
                      "gateway": {"network": "ext", "address": "203.0.113.10/24", "gateway_ip": "203.0.113.1"},
                      "interfaces": [{"network": "tn", "address": "10.0.0.1/24"}]}]}


def write_inventory(path, nodes):
    path.write_text(yaml.safe_dump({"all": {"children": {"l3ha_network_nodes": {
        "hosts": {name: None for name in nodes}, "vars": GROUP_VARS}}}}))
    return str(path)


def require_root():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, mounts, containers)")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return write_inventory(tmp_path_factory.mktemp("machine") / "inventory.yml", NODES)


@pytest.fixture(scope="module")
def machine_lab(inventory):
    require_root()
    lab = Lab(LAB_DIR_PREFIX + "machine")
    try:
        lab.up([inventory], nodes="machine")
        yield lab
    finally:
        lab.down()


def state_of(lab):
    with open(lab.state_path) as handle:
        return json.load(handle)


def ansible(lab, inventory, pattern, *args):
    """An ad-hoc ansible command on lab nodes: the user's inventory, then the lab's fragment."""
    return subprocess.run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, "-i", lab.fragment_path, pattern]
                          + list(args), capture_output=True, text=True, env=playbook_env(), cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=180, check=False)


def pid_namespace(pid):
    return os.readlink("/proc/%d/ns/pid" % pid)


def running_in(namespaces):
    """Host pids of the running (not zombie) processes in these PID namespaces."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and pid_namespace(int(entry)) in namespaces and kernel.start_time(int(entry)):
                found.append(int(entry))
        except OSError:
            continue
    return found


def in_node_network(lab, node, argv):
    """A host command in the node's network namespace (the image has neither ip nor ping)."""
    return subprocess.run(kernel.nsenter_argv(lab.box_pid(node), net_only=True) + argv,
                          capture_output=True, text=True, check=False, timeout=30)


def pings(lab, node, address):
    return in_node_network(lab, node, ["ping", "-n", "-q", "-c", "1", "-W", "1", address]).returncode == 0


def links_of(lab, node):
    """{link: MAC} of the node's network namespace."""
    out = in_node_network(lab, node, ["ip", "-j", "link", "show"]).stdout
    return {link["ifname"]: link.get("address") for link in json.loads(out)}


def commands_running(lab, node):
    """The comm of every process of the node, read inside (its own /proc)."""
    return node_sh(lab, node, "cat /proc/[0-9]*/comm 2>/dev/null; true").split()


def ssh_answers(ip):
    try:
        with socket.create_connection((ip, machine.SSH_PORT), timeout=1) as sock:
            sock.settimeout(3)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def status_of(lab, node):
    return {n["name"]: n for n in lab.status()["nodes"]}[node]


# ---- what a node is ------------------------------------------------------------------

def test_systemd_is_pid_1_and_the_system_runs(machine_lab):
    status = machine_lab.status()
    assert status["kind"] == "machine"
    assert {n["name"]: n["kind"] for n in status["nodes"]} == dict.fromkeys(NODES, "machine")
    for node in NODES:
        assert node_sh(machine_lab, node, "cat /proc/1/comm") == "systemd\n"
        state = machine_lab.run(node, ["systemctl", "is-system-running", "--wait"], timeout=120).stdout
        assert state.strip() in ("running", "degraded"), state
        assert node_sh(machine_lab, node, "systemctl is-active ssh") == "active\n"
        assert node_sh(machine_lab, node, "hostname") == node + "\n"
        # sudo needs the hostname in /etc/hosts (else it warns "unable to resolve host")
        assert node_sh(machine_lab, node, "getent hosts %s" % node).split()[1:] == [node]


def test_nodes_have_their_own_root_machine_id_and_host_key(machine_lab):
    try:
        node_sh(machine_lab, "m1", "echo m1 > /var/tmp/mine")
        assert machine_lab.run("m2", ["test", "-e", "/var/tmp/mine"]).returncode == 1
        ids = {node_sh(machine_lab, node, "cat /etc/machine-id") for node in NODES}
        assert len(ids) == len(NODES)
        keys = {node_sh(machine_lab, node, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1] for node in NODES}
        assert len(keys) == len(NODES)
    finally:
        machine_lab.run("m1", ["rm", "-f", "/var/tmp/mine"])


def test_management_addresses_come_from_the_labs_benchmarking_range(machine_lab):
    network = ipaddress.ip_network(machine_lab.status()["mgmt"]["network"])
    assert network.subnet_of(machine.MGMT_RANGE) and network.prefixlen == 24
    for node in machine_lab.status()["nodes"]:
        assert ipaddress.ip_address(node["mgmt_ip"]) in network
        routes = node_sh(machine_lab, node["name"], "cat /proc/net/route").splitlines()[1:]
        assert [r for r in routes if r.split()[1] == "00000000"] == []   # no default route: no way out


# ---- how Ansible reaches it -------------------------------------------------------------

def test_ansible_connects_over_ssh_as_the_admin_user_and_becomes_root(machine_lab, inventory):
    ping = ansible(machine_lab, inventory, "l3ha_network_nodes", "-m", "ping")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    user = ansible(machine_lab, inventory, "l3ha_network_nodes", "-o", "-m", "command", "-a", "id -un")
    become = ansible(machine_lab, inventory, "l3ha_network_nodes", "-o", "-b", "-m", "command", "-a", "id -u")
    assert user.returncode == 0 and become.returncode == 0, user.stdout + become.stdout + become.stderr
    for node in NODES:
        assert "%s | CHANGED | rc=0 | (stdout) %s\n" % (node, machine.ADMIN_USER) in user.stdout
        assert "%s | CHANGED | rc=0 | (stdout) 0\n" % node in become.stdout
    # sudo had nothing to say (no "unable to resolve host")
    assert "sudo:" not in become.stdout + become.stderr
    hosts = yaml.safe_load(Path(machine_lab.fragment_path).read_text())["all"]["children"]["l3ha_lab_nodes"]["hosts"]
    assert {hosts[node]["ansible_connection"] for node in NODES} == {"ssh"}
    assert "ansible_become" not in hosts["m1"]


def test_host_keys_are_checked_against_the_labs_known_hosts(machine_lab, inventory, tmp_path):
    known = dict(line.split(" ", 1) for line in
                 Path(machine.ssh_dir(machine_lab.dir), "known_hosts").read_text().splitlines())
    m1, m2 = status_of(machine_lab, "m1")["mgmt_ip"], status_of(machine_lab, "m2")["mgmt_ip"]
    assert set(known) == {m1, m2}
    wrong = tmp_path / "known_hosts"
    wrong.write_text("%s %s\n" % (m1, known[m2]))   # another node's key for m1
    args = "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o ControlPath=none" % wrong
    refused = ansible(machine_lab, inventory, "m1", "-m", "ping", "-e", "ansible_ssh_common_args='%s'" % args)
    assert refused.returncode != 0
    assert "Host key verification failed" in refused.stdout + refused.stderr
    accepted = ansible(machine_lab, inventory, "m1", "-m", "ping")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


# ---- packages ------------------------------------------------------------------------

def test_the_roles_packages_install_offline_from_the_lab_repository(machine_lab):
    packages = " ".join(machine.REPO_PACKAGES)
    # a fresh node has none of them: the role's installation is what puts them there
    assert machine_lab.run("m1", ["dpkg-query", "-W", "keepalived", "nftables"]).returncode != 0
    sources = node_sh(machine_lab, "m1", "cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null; true")
    assert sources == "deb [trusted=yes] file:%s ./\n" % machine.REPO_MOUNT
    assert machine_lab.run("m1", ["touch", machine.REPO_MOUNT + "/x"]).returncode != 0   # read-only
    node_sh(machine_lab, "m1", "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && "
                               "apt-get install -y -q %s" % packages, timeout=600)
    status = node_sh(machine_lab, "m1", "dpkg-query -W -f '${Package} ${Status}\\n' %s" % packages)
    assert sorted(status.splitlines()) == sorted("%s install ok installed" % p for p in machine.REPO_PACKAGES)
    assert node_sh(machine_lab, "m1", "keepalived --version 2>&1").startswith("Keepalived v")
    node_sh(machine_lab, "m1", "python3 -c 'import pyroute2' && nft --version && ip -V")


# ---- the lab's faults ----------------------------------------------------------------

def test_link_down_cuts_the_underlay_between_two_nodes(machine_lab):
    peer = status_of(machine_lab, "m2")["tunnel_ip"]
    try:
        wait_until(lambda: pings(machine_lab, "m1", peer), 10, "m1 reaching m2's tunnel IP")
        machine_lab.link("m1", "ha", up=False)
        wait_until(lambda: not pings(machine_lab, "m1", peer), 10, "the cut to stop m1 -> m2")
        assert pings(machine_lab, "m2", peer)   # m2's own address answers in m2
        machine_lab.link("m1", "ha", up=True)
        wait_until(lambda: pings(machine_lab, "m1", peer), 10, "m1 reaching m2 again")
    finally:
        machine_lab.link("m1", "ha", up=True)


def test_crash_ends_every_process_and_boot_keeps_the_disk(machine_lab, inventory):
    node = "m2"
    node_sh(machine_lab, node, "echo kept > /root/before-crash && (setsid sleep 600 >/dev/null 2>&1 &)")
    entry = state_of(machine_lab)["nodes"][node]
    old_pid1, mgmt_ip = entry["machine"]["pid1"]["pid"], entry["mgmt_ip"]
    namespaces = {pid_namespace(old_pid1), pid_namespace(entry["box"]["pid"])}
    # kernel state of the node, which a power loss takes with it
    in_node_network(machine_lab, node, ["ip", "link", "add", "br-volatile", "type", "bridge"])
    macs = links_of(machine_lab, node)
    assert "br-volatile" in macs and "sleep" in commands_running(machine_lab, node)
    assert len(running_in(namespaces)) >= 5    # box, systemd, journald, sshd, sleep
    machine_lab.crash(node)
    assert running_in(namespaces) == []
    assert not status_of(machine_lab, node)["alive"] and status_of(machine_lab, "m1")["alive"]
    assert not ssh_answers(mgmt_ip)

    machine_lab.boot(node)
    assert ssh_answers(mgmt_ip)
    assert machine_lab.box_pid(node) != old_pid1
    assert node_sh(machine_lab, node, "cat /root/before-crash") == "kept\n"
    assert "sleep" not in commands_running(machine_lab, node)
    after = links_of(machine_lab, node)
    assert "br-volatile" not in after
    assert {link: after[link] for link in ("ul0", "mgmt0")} == {link: macs[link] for link in ("ul0", "mgmt0")}
    result = ansible(machine_lab, inventory, node, "-m", "ping")   # the fragment still fits
    assert result.returncode == 0, result.stdout + result.stderr


REBOOT_UNIT = """[Unit]
Description=lab test unit %(name)s
%(after)s
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c 'echo %(name)s >> /root/stopped'
[Install]
WantedBy=multi-user.target
"""


def test_reboot_stops_units_in_order_and_comes_back(machine_lab, inventory):
    node = "m1"
    for name, after in (("first", ""), ("second", "After=l3ha-test-first.service")):
        node_sh(machine_lab, node, "cat > /etc/systemd/system/l3ha-test-%s.service <<'EOF'\n%sEOF"
                % (name, REBOOT_UNIT % {"name": name, "after": after}))
    node_sh(machine_lab, node, "rm -f /root/stopped; systemctl daemon-reload && "
                               "systemctl enable --now l3ha-test-first l3ha-test-second 2>&1")
    boot_id = node_sh(machine_lab, node, "cat /proc/sys/kernel/random/boot_id")
    old_pid1 = machine_lab.box_pid(node)
    in_node_network(machine_lab, node, ["ip", "link", "add", "br-volatile", "type", "bridge"])

    machine_lab.reboot(node)
    # the units stopped, the later one first, and their marker is on the disk
    assert node_sh(machine_lab, node, "cat /root/stopped") == "second\nfirst\n"
    assert machine_lab.box_pid(node) != old_pid1
    assert node_sh(machine_lab, node, "cat /proc/sys/kernel/random/boot_id") != boot_id
    active = machine_lab.run(node, ["systemctl", "is-active", "l3ha-test-first", "l3ha-test-second"]).stdout
    assert active == "active\nactive\n"
    assert "br-volatile" not in links_of(machine_lab, node)   # kernel state is lost, as on a real reboot
    result = ansible(machine_lab, inventory, node, "-m", "ping")
    assert result.returncode == 0, result.stdout + result.stderr


# ---- down ----------------------------------------------------------------------------

def _lab_cgroups():
    return {name for root in machine.cgroup_roots() for name in os.listdir(root) if name.startswith("l3ha-lab-")}


def test_down_leaves_no_container_copy_mount_link_or_process(tmp_path):
    require_root()
    inventory = write_inventory(tmp_path / "inventory.yml", ["m9"])
    lab = Lab(LAB_DIR_PREFIX + "machine-down")
    owned_by = [lab.dir]    # other labs may run on the machine meanwhile
    before, cgroups_before = HostSnapshot.take(owned_by), _lab_cgroups()
    try:
        lab.up([inventory], nodes="machine")
        state = state_of(lab)
        entry = state["nodes"]["m9"]
        records = machine.records(entry) + [entry["box"]]
        namespaces = {pid_namespace(entry["machine"]["pid1"]["pid"]), pid_namespace(entry["box"]["pid"])}
        during = HostSnapshot.take(owned_by).leaks_since(before)
        assert state["mgmt"]["bridge"] in during["links"]
        assert _lab_cgroups() - cgroups_before == {"l3ha-lab-m%d" % state["mgmt"]["index"]}
        assert os.listdir(os.path.join(entry["disk"], "upper"))   # the node's own copy
        node_sh(lab, "m9", "(setsid sleep 600 >/dev/null 2>&1 &)")
        result = ansible(lab, inventory, "m9", "-m", "ping")      # leaves an SSH master behind
        assert result.returncode == 0, result.stdout + result.stderr
        masters = subprocess.run(["pgrep", "-f", "ssh: %s/" % lab.dir], capture_output=True, text=True,
                                 check=False).stdout
        assert masters
    finally:
        lab.down()
    assert running_in(namespaces) == []
    assert [r["pid"] for r in records if process_exists(r["pid"], r["start"])] == []   # reaped, too
    assert subprocess.run(["pgrep", "-f", "ssh: %s/" % lab.dir], check=False).returncode == 1
    assert HostSnapshot.take(owned_by).leaks_since(before) == {}
    assert _lab_cgroups() == cgroups_before
    assert not os.path.exists(lab.dir)
    assert os.path.isdir(machine.image_paths(machine.image_key())["rootfs"])   # the cache stays
