"""Machine nodes (`l3ha-lab up --nodes machine`): real systemd-nspawn containers with
systemd as PID 1, reached over SSH as the non-root admin user.

The first run builds the image (mmdebstrap, about 1-2 minutes); it is cached in
/var/cache/l3ha-lab, so one session builds it at most once.
"""

import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from l3ha_lab import Lab, kernel, machine  # on sys.path through conftest.py
from l3ha_lab.testing import REPO, VENV_BIN, playbook_env, wait_until
from lab_helpers import LAB_DIR_PREFIX

ANSIBLE = os.path.join(VENV_BIN, "ansible")
NODES = ("m1", "m2")
INVENTORY = {"all": {"children": {"l3ha_network_nodes": {
    "hosts": {name: None for name in NODES},
    "vars": {
        "l3ha_networks": {"ext": {"type": "bridge", "bridge": "br-ex", "cidr": "203.0.113.0/24",
                                  "external": True},
                          "tn": {"type": "vxlan", "vni": 1001, "cidr": "10.0.0.0/24"}},
        "l3ha_routers": [{"name": "r1",
                          "gateway": {"network": "ext", "address": "203.0.113.10/24",
                                      "gateway_ip": "203.0.113.1"},
                          "interfaces": [{"network": "tn", "address": "10.0.0.1/24"}]}]}}}}}


def require_root():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, mounts, containers)")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("machine") / "inventory.yml"
    path.write_text(yaml.safe_dump(INVENTORY))
    return str(path)


@pytest.fixture(scope="module")
def machine_lab(inventory):
    require_root()
    lab = Lab(LAB_DIR_PREFIX + "machine")
    try:
        lab.up([inventory], nodes="machine")
        yield lab
    finally:
        lab.down()


def sh(lab, node, script, check=True, timeout=120):
    proc = lab.run(node, ["sh", "-c", script], timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("%s: %r failed (%d): %s%s"
                             % (node, script, proc.returncode, proc.stdout, proc.stderr))
    return proc


def ansible(lab, inventory, pattern, *args):
    return subprocess.run([ANSIBLE, "-i", inventory, "-i", lab.fragment_path, pattern] + list(args),
                          capture_output=True, text=True, env=playbook_env(), cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def node_entry(lab, node):
    return lab._require()["nodes"][node]


def pid_namespace(pid):
    return os.readlink("/proc/%d/ns/pid" % pid)


def processes_in(namespaces):
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and pid_namespace(int(entry)) in namespaces \
                    and kernel.start_time(int(entry)) is not None:
                found.append(int(entry))
        except OSError:
            continue
    return found


def pings(lab, node, address):
    """ping from the node's network namespace, with the host's ping (the image has none)."""
    argv = kernel.nsenter_argv(lab.box_pid(node), net_only=True) + ["ping", "-c", "1", "-W", "1",
                                                                   address]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def node_links(lab, node):
    """Links in the node's network namespace (the host's ip: the image has none)."""
    argv = kernel.nsenter_argv(lab.box_pid(node), net_only=True) + ["ip", "-o", "link", "show"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines()}


def running_commands(lab, node):
    script = ("import os\nfor p in os.listdir('/proc'):\n  if p.isdigit():\n"
              "    try: print(open('/proc/%s/comm' % p).read().strip())\n    except OSError: pass")
    return lab.run(node, ["python3", "-c", script]).stdout.split()


def ssh_answers(ip):
    try:
        with socket.create_connection((ip, machine.SSH_PORT), timeout=1) as sock:
            sock.settimeout(3)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def test_systemd_is_pid_1_and_the_system_runs(machine_lab):
    for node in NODES:
        assert sh(machine_lab, node, "cat /proc/1/comm").stdout == "systemd\n"
        state = sh(machine_lab, node, "systemctl is-system-running --wait", check=False).stdout
        assert state.strip() in ("running", "degraded"), state
        assert sh(machine_lab, node, "systemctl is-active ssh").stdout == "active\n"
        assert sh(machine_lab, node, "hostname").stdout == node + "\n"
        assert sh(machine_lab, node, "getent hosts %s" % node, check=False).returncode == 0


def test_nodes_have_their_own_root_and_machine_id(machine_lab):
    try:
        sh(machine_lab, "m1", "echo m1 > /var/tmp/mine")
        assert sh(machine_lab, "m2", "test -e /var/tmp/mine", check=False).returncode != 0
        ids = {sh(machine_lab, node, "cat /etc/machine-id").stdout for node in NODES}
        assert len(ids) == len(NODES)
        keys = {sh(machine_lab, node, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
                for node in NODES}
        assert len(keys) == len(NODES)
    finally:
        sh(machine_lab, "m1", "rm -f /var/tmp/mine", check=False)


def test_ansible_connects_over_ssh_as_the_admin_user_and_becomes_root(machine_lab, inventory):
    plain = ansible(machine_lab, inventory, "l3ha_network_nodes", "-m", "command", "-a", "id -un")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    become = ansible(machine_lab, inventory, "l3ha_network_nodes", "-b", "-m", "command",
                     "-a", "id -u")
    assert become.returncode == 0, become.stdout + become.stderr
    for node in NODES:
        assert "%s | CHANGED | rc=0 >>\n%s\n" % (node, machine.ADMIN_USER) in plain.stdout
        assert "%s | CHANGED | rc=0 >>\n0\n" % node in become.stdout
    hostvars = yaml.safe_load(Path(machine_lab.fragment_path).read_text())
    assert hostvars["all"]["children"]["l3ha_lab_nodes"]["hosts"]["m1"]["ansible_connection"] == "ssh"


def test_host_keys_are_checked_against_the_labs_known_hosts(machine_lab, inventory, tmp_path):
    entry = node_entry(machine_lab, "m1")
    wrong = tmp_path / "known_hosts"
    other = node_entry(machine_lab, "m2")["host_key"]
    wrong.write_text("%s %s\n" % (entry["mgmt_ip"], other))   # another node's key
    args = "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o ControlPath=none" % wrong
    refused = ansible(machine_lab, inventory, "m1", "-m", "ping", "-e",
                      "ansible_ssh_common_args='%s'" % args)
    assert refused.returncode != 0
    assert "Host key verification failed" in refused.stdout + refused.stderr
    accepted = ansible(machine_lab, inventory, "m1", "-m", "ping")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_the_roles_packages_install_offline_from_the_lab_repository(machine_lab):
    packages = " ".join(machine.REPO_PACKAGES)
    # a fresh node: none of them, and no route out of the lab
    missing = sh(machine_lab, "m1", "dpkg-query -W keepalived nftables", check=False)
    assert missing.returncode != 0
    routes = sh(machine_lab, "m1", "cat /proc/net/route").stdout.splitlines()[1:]
    assert not [r for r in routes if r.split()[1] == "00000000"], routes
    sources = sh(machine_lab, "m1", "cat /etc/apt/sources.list /etc/apt/sources.list.d/*",
                 check=False).stdout
    assert sources == "deb [trusted=yes] file:%s ./\n" % machine.REPO_MOUNT
    sh(machine_lab, "m1", "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && "
                          "apt-get install -y -q %s" % packages, timeout=600)
    status = sh(machine_lab, "m1", "dpkg-query -W -f '${Package} ${Status}\\n' %s" % packages)
    assert sorted(status.stdout.splitlines()) == sorted(
        "%s install ok installed" % p for p in machine.REPO_PACKAGES)
    assert sh(machine_lab, "m1", "keepalived --version 2>&1").stdout.startswith("Keepalived v")
    assert sh(machine_lab, "m1", "python3 -c 'import pyroute2'").returncode == 0


def test_link_down_cuts_the_underlay_between_two_nodes(machine_lab):
    peer = node_entry(machine_lab, "m2")["tunnel_ip"]
    try:
        wait_until(lambda: pings(machine_lab, "m1", peer), 10, "m1 reaching m2's tunnel IP")
        machine_lab.link("m1", "ha", up=False)
        wait_until(lambda: not pings(machine_lab, "m1", peer), 10, "the cut to stop m1 -> m2")
        assert pings(machine_lab, "m2", peer)   # m2 itself is fine
        machine_lab.link("m1", "ha", up=True)
        wait_until(lambda: pings(machine_lab, "m1", peer), 10, "m1 reaching m2 again")
    finally:
        machine_lab.link("m1", "ha", up=True)


def test_crash_ends_every_process_and_boot_keeps_the_disk(machine_lab, inventory):
    node = "m2"
    sh(machine_lab, node, "echo kept > /root/before-crash && (setsid sleep 600 >/dev/null 2>&1 &)")
    entry = node_entry(machine_lab, node)
    old_pid1 = entry["machine"]["pid1"]["pid"]
    namespaces = {pid_namespace(old_pid1), pid_namespace(entry["box"]["pid"])}
    # kernel state of the node: a bridge in its network namespace
    subprocess.run(kernel.nsenter_argv(old_pid1, net_only=True)
                   + ["ip", "link", "add", "br-volatile", "type", "bridge"], check=True)
    assert "sleep" in running_commands(machine_lab, node)
    assert len(processes_in(namespaces)) >= 5    # box, systemd, journald, sshd, sleep
    machine_lab.crash(node)
    assert processes_in(namespaces) == []
    status = {n["name"]: n for n in machine_lab.status()["nodes"]}
    assert not status[node]["alive"] and status["m1"]["alive"]
    assert not ssh_answers(entry["mgmt_ip"])

    machine_lab.boot(node)
    assert ssh_answers(entry["mgmt_ip"])
    assert machine_lab.box_pid(node) != old_pid1
    assert sh(machine_lab, node, "cat /root/before-crash").stdout == "kept\n"
    assert "sleep" not in running_commands(machine_lab, node)
    links = node_links(machine_lab, node)
    assert "br-volatile" not in links and "ul0" in links
    result = ansible(machine_lab, inventory, node, "-m", "ping")
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
        sh(machine_lab, node, "cat > /etc/systemd/system/l3ha-test-%s.service <<'EOF'\n%sEOF"
           % (name, REBOOT_UNIT % {"name": name, "after": after}))
    sh(machine_lab, node, "rm -f /root/stopped; systemctl daemon-reload && "
                          "systemctl enable --now l3ha-test-first l3ha-test-second")
    boot_id = sh(machine_lab, node, "cat /proc/sys/kernel/random/boot_id").stdout
    old_pid1 = machine_lab.box_pid(node)
    subprocess.run(kernel.nsenter_argv(old_pid1, net_only=True)
                   + ["ip", "link", "add", "br-volatile", "type", "bridge"], check=True)

    machine_lab.reboot(node)
    # the units stopped, the later one first, and the marker is on the disk
    assert sh(machine_lab, node, "cat /root/stopped").stdout == "second\nfirst\n"
    assert machine_lab.box_pid(node) != old_pid1
    assert sh(machine_lab, node, "cat /proc/sys/kernel/random/boot_id").stdout != boot_id
    assert sh(machine_lab, node, "systemctl is-active l3ha-test-first l3ha-test-second",
              check=False).stdout == "active\nactive\n"
    assert "br-volatile" not in node_links(machine_lab, node)   # as after a real reboot
    result = ansible(machine_lab, inventory, node, "-m", "ping")
    assert result.returncode == 0, result.stdout + result.stderr


def _host_state(lab):
    """Host links, the lab's mounts anywhere, the labs' cgroups."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True).stdout
    mounts = set()
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/mountinfo" % entry) as handle:
                mounts |= {line.split()[4] for line in handle if lab.dir in line}
        except OSError:
            continue
    cgroups = set()
    for root in machine._cgroup_roots():
        cgroups |= {name for name in os.listdir(root) if name.startswith("l3ha-lab-")}
    return {"links": {line.split(":", 2)[1].strip().split("@")[0] for line in links.splitlines()},
            "mounts": mounts, "cgroups": cgroups}


def test_down_leaves_no_container_copy_mount_link_or_process(inventory, tmp_path):
    require_root()
    one = {"all": {"children": {"l3ha_network_nodes": {
        "hosts": {"m9": None}, "vars": INVENTORY["all"]["children"]["l3ha_network_nodes"]["vars"]}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(one))
    lab = Lab(LAB_DIR_PREFIX + "machine-down")
    before = _host_state(lab)
    try:
        lab.up([str(path)], nodes="machine")
        state = lab._require()
        entry = state["nodes"]["m9"]
        records = machine.records(entry) + [entry["box"]]
        namespaces = {pid_namespace(entry["machine"]["pid1"]["pid"]), pid_namespace(entry["box"]["pid"])}
        during = _host_state(lab)
        assert state["mgmt"]["bridge"] in during["links"]
        assert during["cgroups"] - before["cgroups"] == {"l3ha-lab-m%d" % state["mgmt"]["index"]}
        assert os.listdir(os.path.join(entry["disk"], "upper"))   # the node's own disk
        assert during["mounts"]                # its overlay, in the box's mount namespace
        sh(lab, "m9", "(setsid sleep 600 >/dev/null 2>&1 &)")
        result = ansible(lab, str(path), "m9", "-m", "ping")    # leaves an SSH master
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        lab.down()
    assert processes_in(namespaces) == []
    assert [r["pid"] for r in records if kernel.is_alive(r["pid"], r["start"])] == []
    masters = subprocess.run(["pgrep", "-f", "ssh: %s/" % lab.dir], capture_output=True,
                             text=True, check=False).stdout
    assert masters == ""
    after = _host_state(lab)
    for kind in ("links", "mounts", "cgroups"):
        assert after[kind] ^ before[kind] == set(), kind
    assert not os.path.exists(lab.dir)
