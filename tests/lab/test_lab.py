"""Tests of the lab on real kernel objects: isolation, VXLAN, faults, endpoints, down."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from l3ha_lab import Lab, LabError, host, kernel, model, probe, testing  # on sys.path through conftest.py
from l3ha_lab.testing import (CONFIG_DIR, PYTHON, REPO, RUN_DIR, VENV_BIN, HostSnapshot, namespace_of, process_exists,
                              wait_until)
from lab_helpers import DEFAULT_INVENTORY, LAB_DIR_PREFIX

CLI = os.path.join(REPO, "lab", "l3ha-lab")
MARKER = os.path.join(CONFIG_DIR, "marker")   # a file on a node's config disk
DISK = os.path.join(CONFIG_DIR, "disk")


def sh(lab, name, script, check=True):
    proc = lab.run(name, ["sh", "-c", script])
    if check and proc.returncode != 0:
        raise AssertionError("%s: %r failed (%d): %s"
                             % (name, script, proc.returncode, proc.stderr))
    return proc


def pings(lab, name, address):
    return lab.run(name, ["ping", "-c", "1", "-W", "1", address]).returncode == 0


def _ns_inode(pid, kind):
    try:
        return os.readlink("/proc/%d/ns/%s" % (pid, kind))
    except OSError:
        return None


def processes_in_pid_namespaces(namespaces):
    """Host pids of live (non-zombie) processes whose PID namespace is one of these."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if _ns_inode(pid, "pid") in namespaces and not _is_zombie(pid):
            found.append(pid)
    return found


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _cli(*args, lab_dir):
    env = dict(os.environ, L3HA_LAB_DIR=lab_dir)
    return subprocess.run([CLI] + list(args), capture_output=True, text=True, env=env,
                          check=False)


# ---- topology (pure: no kernel objects) ----------------------------------------------

def _listing(networks, routers, hosts=("net1", "net2"), extra_vars=None):
    common = {"l3ha_networks": networks, "l3ha_routers": routers}
    common.update(extra_vars or {})
    hostvars = {h: dict(common) for h in hosts}
    return {"_meta": {"hostvars": hostvars},
            "all": {"children": ["ungrouped", "l3ha_network_nodes"]},
            "l3ha_network_nodes": {"hosts": list(hosts)}}


def test_topology_addresses_skip_router_addresses_and_add_floating_ips():
    networks = {"ext": {"type": "bridge", "bridge": "br-ex", "cidr": ["203.0.113.0/24"],
                        "external": True},
                "tn": {"type": "vxlan", "vni": 7, "cidr": ["10.0.0.0/24", "fd00:1::/64"]}}
    routers = [{"name": "r1",
                "gateway": {"network": "ext", "address": "203.0.113.2/24",
                            "gateway_ip": "203.0.113.1", "snat": False},
                "interfaces": [{"network": "tn", "address": "10.0.0.1/24"},
                               {"network": "tn", "address": "fd00:1::2/64"}],
                "floating_ips": [{"external": "203.0.113.3", "internal": "10.0.0.9"}]}]
    topology = model.build_topology(_listing(networks, routers))
    endpoints = {e["name"]: e for e in topology["endpoints"]}
    client = endpoints["client-tn"]["attachments"][0]
    assert client["addresses"] == ["10.0.0.2/24", "fd00:1::1/64", "10.0.0.9/24"]
    assert client["gateways"] == {"ipv4": "10.0.0.1", "ipv6": "fd00:1::2"}
    assert endpoints["client-ext"]["attachments"][0]["addresses"] == ["203.0.113.4/24"]
    upstream = endpoints["upstream"]
    assert upstream["attachments"][0]["addresses"] == ["203.0.113.1/24"]
    # snat: false, so upstream routes the tenant subnet back via the router's gateway.
    assert upstream["routes"] == [{"destination": "10.0.0.0/24", "via": "203.0.113.2"}]
    assert endpoints["client-tn"]["vtep_ip"] == "192.0.2.201"
    assert endpoints["client-ext"]["vtep_ip"] is None
    assert [n["tunnel_ip"] for n in topology["nodes"]] == ["192.0.2.11", "192.0.2.12"]
    assert model.remote_vteps(topology) == {"tn": ["192.0.2.201"]}


def test_topology_keeps_inventory_tunnel_ips_and_numbers_the_rest_around_them():
    listing = _listing({}, [], hosts=("a", "b", "c"))
    listing["_meta"]["hostvars"]["b"]["l3ha_tunnel_ip"] = "192.0.2.11"
    topology = model.build_topology(listing)
    assert [n["tunnel_ip"] for n in topology["nodes"]] == ["192.0.2.12", "192.0.2.11",
                                                           "192.0.2.13"]


def test_topology_reports_every_bad_field_at_once():
    networks = {"a": {"type": "vxlan", "vni": "x", "cidr": "10.0.0.0/24"},
                "b": {"type": "bridge", "cidr": "10.0.1.0/33"},
                "c": {"type": "vlan"},
                "ha": {"type": "bridge", "bridge": "br-ha", "cidr": "192.0.2.128/25"},
                "d": {"type": "bridge", "bridge": "br-ha"},
                "e": {"type": "bridge", "bridge": "ul0"}}
    listing = _listing(networks, [], extra_vars={"l3ha_tunnel_ip": "10.9.9.9/24"})
    with pytest.raises(LabError) as caught:
        model.build_topology(listing)
    message = str(caught.value)
    for expected in ("network a: vni", "network b: bridge", "network b: cidr",
                     "network c: type vlan", "network ha: the name is reserved",
                     "network ha: cidr 192.0.2.128/25 overlaps",
                     "network d: bridge br-ha is also the bridge of network ha",
                     "network e: bridge ul0 is a name the lab uses", "node net1: l3ha_tunnel_ip",
                     "node net2: l3ha_tunnel_ip"):
        assert expected in message


def test_topology_names_the_router_with_a_gateway_ip_outside_the_network():
    networks = {"ext": {"type": "bridge", "bridge": "br-ex", "cidr": "203.0.113.0/24"}}
    routers = [{"name": "edge", "gateway": {"network": "ext", "address": "203.0.113.2/24",
                                            "gateway_ip": "198.51.100.1"}}]
    with pytest.raises(LabError, match="router edge: gateway.gateway_ip"):
        model.build_topology(_listing(networks, routers))


def test_topology_derives_a_missing_cidr_from_the_routers_addresses():
    networks = {"ext": {"type": "bridge", "bridge": "br-ex"},
                "tn": {"type": "vxlan", "vni": 7}, "spare": {"type": "vxlan", "vni": 8}}
    routers = [{"name": "r1", "gateway": {"network": "ext", "address": "203.0.113.10/24",
                                          "gateway_ip": "203.0.113.1"},
                "interfaces": [{"network": "tn", "address": "10.0.0.1/24"},
                               {"network": "tn", "address": "fd00:1::1/64"}]},
               {"name": "r2", "interfaces": [{"network": "tn", "address": "10.0.1.1/24"}]}]
    topology = model.build_topology(_listing(networks, routers))
    cidrs = {name: net["cidrs"] for name, net in topology["networks"].items()}
    assert cidrs == {"ext": ["203.0.113.0/24"], "tn": ["10.0.0.0/24", "fd00:1::/64", "10.0.1.0/24"],
                     "spare": []}
    endpoints = {e["name"]: e for e in topology["endpoints"]}
    assert endpoints["upstream"]["attachments"][0]["addresses"] == ["203.0.113.1/24"]
    assert endpoints["client-tn"]["attachments"][0]["addresses"] == [
        "10.0.0.2/24", "fd00:1::2/64", "10.0.1.2/24"]
    assert [n for n in topology["notes"] if n.startswith("network ")] == [
        "network ext: no cidr in the inventory; the lab uses 203.0.113.0/24 (the subnets of the "
        "routers' addresses on it)",
        "network tn: no cidr in the inventory; the lab uses 10.0.0.0/24, fd00:1::/64, 10.0.1.0/24 "
        "(the subnets of the routers' addresses on it)"]


def test_topology_maps_tunnel_ips_outside_the_underlay_onto_it():
    listing = _listing({"tn": {"type": "vxlan", "vni": 7, "cidr": "10.0.0.0/24"}}, [],
                       hosts=("a", "b", "c"))
    hostvars = listing["_meta"]["hostvars"]
    hostvars["a"]["l3ha_tunnel_ip"] = "10.30.0.11"
    hostvars["b"]["l3ha_tunnel_ip"] = "10.30.0.201"   # where a client VTEP would go
    topology = model.build_topology(listing)
    assert [n["tunnel_cidr"] for n in topology["nodes"]] == [
        "10.30.0.11/24", "10.30.0.201/24", "192.0.2.11/24"]
    client = {e["name"]: e for e in topology["endpoints"]}["client-tn"]
    assert client["vtep_cidr"] == "10.30.0.202/24"    # the first node's subnet, a free address
    assert topology["underlay"] == ["10.30.0.0/24", "192.0.2.0/24"]
    assert client["underlay"] == topology["underlay"]
    assert topology["notes"] == [
        "node %s: l3ha_tunnel_ip %s is outside the lab underlay 192.0.2.0/24; the lab gives it to "
        "the node's ul0 on its own switch (10.30.0.0/24 on-link)" % (node, address)
        for node, address in (("a", "10.30.0.11"), ("b", "10.30.0.201"))]
    # a network in a mapped subnet would share a client VTEP's namespace with the underlay
    hostvars["a"]["l3ha_tunnel_ip"] = "10.0.0.11"
    with pytest.raises(LabError, match=r"network tn: cidr 10.0.0.0/24 overlaps the lab underlay "
                                       r"10.0.0.0/24 \(l3ha_tunnel_ip of node a\)"):
        model.build_topology(listing)


def test_probe_summary_counts_the_outage_until_the_last_send():
    replies = [100.1, 100.2, 100.3, 101.5, 101.6]
    result = probe.summarize(100.0, replies, last_send=101.7, sent=17)
    assert result["received"] == 5 and result["sent"] == 17
    assert result["longest_gap"] == pytest.approx(1.2)
    assert result["gap_start"] == pytest.approx(100.3)
    # Nothing came back after 100.1: the gap runs to the last datagram sent.
    unrecovered = probe.summarize(100.0, [100.1], last_send=103.1, sent=300)
    assert unrecovered["longest_gap"] == pytest.approx(3.0)


# ---- a running lab -----------------------------------------------------------------

def test_nodes_are_isolated_from_each_other_and_from_the_host(lab):
    assert sh(lab, "net1", "hostname").stdout.strip() == "net1"
    assert sh(lab, "net2", "hostname").stdout.strip() == "net2"
    namespace = namespace_of("isolation")
    try:
        sh(lab, "net1", "ip netns add %s && echo one > %s" % (namespace, MARKER))
        sh(lab, "net2", "echo two > %s" % MARKER)
        assert namespace in sh(lab, "net1", "ip netns list").stdout
        assert namespace not in sh(lab, "net2", "ip netns list").stdout
        assert namespace not in HostSnapshot.take().netns
        assert sh(lab, "net1", "cat %s" % MARKER).stdout == "one\n"
        assert sh(lab, "net2", "cat %s" % MARKER).stdout == "two\n"
        assert not os.path.exists(MARKER)
        # Each node sees only its own processes.
        listing = [line.split() for line in
                   sh(lab, "net1", "ps -e -o pid=,comm=").stdout.splitlines()]
        assert listing[0][0] == "1" and listing[0][1].startswith("python")
        assert [comm for _pid, comm in listing[1:]] == ["sh", "ps"]
    finally:
        sh(lab, "net1", "ip netns del %s; rm -f %s" % (namespace, MARKER), check=False)
        sh(lab, "net2", "rm -f %s" % MARKER, check=False)


def test_node_pid1_reaps_orphans(lab):
    # sh exits at once; its background child is reparented to the node's PID 1.
    orphan = sh(lab, "net1", "sleep 0.2 & echo $!").stdout.strip()
    assert orphan.isdigit()

    def stat():
        return sh(lab, "net1", "ps -o stat= -p %s" % orphan, check=False).stdout.strip()
    wait_until(stat, 10, "the orphan to be reaped, not left as a zombie", interval=0.01, ok=lambda found: found == "")


def _add_vxlan(lab, node, vni, local, address, remotes, name="vxt"):
    script = ("ip link add %s type vxlan id %d dstport 4789 local %s dev ul0 && "
              "ip addr add %s dev %s && ip link set %s up"
              % (name, vni, local, address, name, name))
    for remote in remotes:
        script += " && bridge fdb append 00:00:00:00:00:00 dev %s dst %s" % (name, remote)
    sh(lab, node, script)


def test_vxlan_segment_between_two_nodes_carries_traffic(lab):
    try:
        _add_vxlan(lab, "net1", 3001, "192.0.2.11", "10.200.0.1/24", ["192.0.2.12"])
        _add_vxlan(lab, "net2", 3001, "192.0.2.12", "10.200.0.2/24", ["192.0.2.11"])
        assert pings(lab, "net1", "10.200.0.2")
        assert pings(lab, "net2", "10.200.0.1")
    finally:
        for node in ("net1", "net2"):
            sh(lab, node, "ip link del vxt", check=False)


def test_clients_reach_upstream_over_a_bridge_network(lab):
    assert pings(lab, "client-ext", "203.0.113.1")
    assert pings(lab, "client-ext", "2001:db8:ff::1")
    fetch = "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())"
    for url, source in (("http://203.0.113.1/", "203.0.113.2"),
                        ("http://[2001:db8:ff::1]/", "2001:db8:ff::2")):
        proc = lab.run("client-ext", [PYTHON, "-c", fetch, url])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == source


def test_vxlan_client_is_a_vtep_with_its_addresses_and_routes(lab):
    addresses = sh(lab, "client-demo-net", "ip -o addr show dev demo-net").stdout
    for address in ("10.0.0.2/24", "10.0.0.5/24", "fd00:1::2/64"):
        assert address in addresses
    assert "default via 10.0.0.1" in sh(lab, "client-demo-net", "ip route").stdout
    assert "default via fd00:1::1" in sh(lab, "client-demo-net", "ip -6 route").stdout
    fdb = sh(lab, "client-demo-net", "bridge fdb show dev demo-net").stdout
    assert "dst 192.0.2.11" in fdb and "dst 192.0.2.12" in fdb
    fragment = Path(lab.fragment_path).read_text()
    assert "192.0.2.201" in fragment and "ansible_nsenter_pid" in fragment


def test_link_down_stops_one_nodes_traffic_on_one_network_only(lab):
    try:
        # Both nodes on the bridge network (by hand, as a router would be) and on the
        # tenant vxlan (towards the client VTEP), plus a vxlan between the nodes.
        sh(lab, "net1", "ip addr add 203.0.113.201/24 dev br-ex")
        sh(lab, "net2", "ip addr add 203.0.113.202/24 dev br-ex")
        _add_vxlan(lab, "net1", 1001, "192.0.2.11", "10.0.0.101/24", ["192.0.2.201"], "vxc")
        _add_vxlan(lab, "net2", 1001, "192.0.2.12", "10.0.0.102/24", ["192.0.2.201"], "vxc")
        _add_vxlan(lab, "net1", 3002, "192.0.2.11", "10.201.0.1/24", ["192.0.2.12"])
        _add_vxlan(lab, "net2", 3002, "192.0.2.12", "10.201.0.2/24", ["192.0.2.11"])
        assert pings(lab, "net1", "203.0.113.1") and pings(lab, "net1", "10.0.0.2")

        lab.link("net1", "ext", up=False)
        assert not pings(lab, "net1", "203.0.113.1")
        assert pings(lab, "net2", "203.0.113.1")
        assert pings(lab, "net1", "10.0.0.2")
        lab.link("net1", "ext", up=True)
        assert pings(lab, "net1", "203.0.113.1")

        lab.link("net1", "demo-net", up=False)      # only VNI 1001 of net1
        assert not pings(lab, "net1", "10.0.0.2")
        assert pings(lab, "net2", "10.0.0.2")
        assert pings(lab, "net1", "10.201.0.2")
        assert {"node": "net1", "network": "demo-net"} in lab.status()["cuts"]
        lab.link("net1", "demo-net", up=True)
        assert pings(lab, "net1", "10.0.0.2")

        lab.link("net1", "ha", up=False)            # the whole underlay of net1
        assert not pings(lab, "net1", "10.201.0.2")
        assert not pings(lab, "net1", "10.0.0.2")
        assert pings(lab, "net2", "10.0.0.2")
        assert pings(lab, "net1", "203.0.113.1")
        lab.link("net1", "ha", up=True)
        assert pings(lab, "net1", "10.201.0.2")
        assert lab.status()["cuts"] == []
    finally:
        for network in ("ext", "demo-net", "ha"):
            lab.link("net1", network, up=True)
        for node in ("net1", "net2"):
            sh(lab, node, "ip link del vxt; ip link del vxc; ip addr flush dev br-ex "
                          "scope global", check=False)


def test_link_rejects_unknown_names(lab):
    with pytest.raises(LabError, match="unknown network nope"):
        lab.link("net1", "nope", up=False)
    with pytest.raises(LabError, match="unknown node net9"):
        lab.link("net9", "ha", up=False)


def test_crash_kills_every_process_of_the_node_and_boot_brings_it_back_empty(lab):
    try:
        crashing = namespace_of("crash")
        sh(lab, "net2", "ip netns add %s && echo kept > %s "
                        "&& echo gone > /run/volatile && mkdir -p %s "
                        "&& (setsid sleep 300 >/dev/null 2>&1 &) "
                        "&& (ip netns exec %s sleep 300 >/dev/null 2>&1 &)" % (crashing, DISK, RUN_DIR, crashing))
        holder = lab.box_pid("net2")
        pid_ns = _ns_inode(holder, "pid")
        victims = processes_in_pid_namespaces({pid_ns})
        assert len(victims) >= 3        # PID 1 and the two sleeps
        lab.crash("net2")
        wait_until(lambda: processes_in_pid_namespaces({pid_ns}), 1.0, "every process of net2 to die",
                   interval=0.01, ok=lambda left: not left)
        status = {n["name"]: n for n in lab.status()["nodes"]}
        assert status["net2"]["alive"] is False and status["net1"]["alive"] is True
        with pytest.raises(LabError, match="not running"):
            lab.run("net2", ["true"])
        assert "ansible_nsenter_pid: 0" in Path(lab.fragment_path).read_text()
        # `up` on a running lab does not boot a crashed node.
        lab.up([DEFAULT_INVENTORY])
        assert {n["name"]: n["alive"] for n in lab.status()["nodes"]}["net2"] is False

        lab.boot("net2")
        assert lab.box_pid("net2") != holder
        assert sh(lab, "net2", "ip netns list").stdout.strip() == ""
        assert sh(lab, "net2", "ls -A /run").stdout.split() == ["lock"]
        assert sh(lab, "net2", "cat %s" % DISK).stdout == "kept\n"
        assert sh(lab, "net2", "pgrep -x sleep", check=False).stdout == ""
        assert "ansible_nsenter_pid: %d" % lab.box_pid("net2") in Path(
            lab.fragment_path).read_text()
        assert pings(lab, "net1", "192.0.2.12")      # re-linked to the underlay
        sh(lab, "net2", "ip addr add 203.0.113.203/24 dev br-ex")
        assert pings(lab, "net2", "203.0.113.1")     # and to the bridge network
    finally:
        if not lab.status()["nodes"][1]["alive"]:
            lab.boot("net2")
        sh(lab, "net2", "rm -f %s; ip addr flush dev br-ex scope global" % DISK, check=False)


def test_up_again_keeps_the_running_nodes(lab):
    before = {n["name"]: n["pid"] for n in lab.status()["nodes"]}
    lab.up([DEFAULT_INVENTORY])
    assert {n["name"]: n["pid"] for n in lab.status()["nodes"]} == before
    assert pings(lab, "client-ext", "203.0.113.1")


def test_probe_measures_replies_and_an_unanswered_target(lab):
    lab.probe_start("answered", "client-ext", "203.0.113.1", interval=0.01)
    lab.probe_start("silent", "client-ext", "203.0.113.99", interval=0.01)
    wait_until(lambda: pings(lab, "client-ext", "203.0.113.1"), 5, "upstream answering", interval=0.01)
    answered = lab.probe_stop("answered")
    silent = lab.probe_stop("silent")
    assert answered["sent"] > 0 and answered["received"] > 0
    assert answered["received"] <= answered["sent"]
    assert silent["sent"] > 0 and silent["received"] == 0
    assert silent["longest_gap"] == pytest.approx(silent["duration"], abs=0.01)


def test_cli_exec_passes_the_exit_code_and_status_json(lab):
    proc = _cli("exec", "net1", "--", "sh", "-c", "hostname; exit 7", lab_dir=lab.dir)
    assert proc.returncode == 7 and proc.stdout == "net1\n"
    status = json.loads(_cli("status", "--json", lab_dir=lab.dir).stdout)
    assert [n["name"] for n in status["nodes"]] == ["net1", "net2"]
    assert _cli("inventory", lab_dir=lab.dir).stdout.strip() == lab.fragment_path
    bad = _cli("crash", "nosuchnode", lab_dir=lab.dir)
    assert bad.returncode == 2 and "unknown node nosuchnode" in bad.stderr


def test_ansible_reaches_the_nodes_through_the_fragment(lab):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible"), "-i", DEFAULT_INVENTORY, "-i", lab.fragment_path,
         "l3ha_network_nodes", "-m", "command", "-a", "hostname", "-o"],
        capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "net1 | CHANGED | rc=0 | (stdout) net1" in proc.stdout
    assert "net2 | CHANGED | rc=0 | (stdout) net2" in proc.stdout


def test_group_membership_comes_from_the_users_inventory(lab, tmp_path):
    """The fragment only says how to reach the lab's nodes: a node the user's inventory
    takes out of the nodes group is out of it, although the lab still runs it."""
    user = yaml.safe_load(Path(DEFAULT_INVENTORY).read_text())
    group = user["all"]["children"]["l3ha_network_nodes"]
    del group["hosts"]["net2"]
    user["all"]["children"]["spare"] = {"hosts": {"net2": None}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(user))
    listing = json.loads(subprocess.run(
        [os.path.join(VENV_BIN, "ansible-inventory"), "--list", "-i", str(path), "-i",
         lab.fragment_path], capture_output=True, text=True, check=True).stdout)
    assert listing["l3ha_network_nodes"]["hosts"] == ["net1"]
    assert listing["l3ha_lab_nodes"]["hosts"] == ["net1", "net2"]
    fragment = yaml.safe_load(Path(lab.fragment_path).read_text())
    assert list(fragment["all"]["children"]) == ["l3ha_lab_nodes"]
    assert set(fragment["all"]["children"]["l3ha_lab_nodes"]) == {"hosts"}
    for hostvars in fragment["all"]["children"]["l3ha_lab_nodes"]["hosts"].values():
        # connection variables, what the lab decided about its networks, and what a
        # namespace node cannot have of its own (it shares the host's packages, /etc and /var/lib)
        assert set(hostvars) == {"ansible_connection", "ansible_nsenter_pid",
                                 "ansible_python_interpreter", "l3ha_tunnel_ip",
                                 "l3ha_vxlan_remote_vteps", "l3ha_install_packages", "l3ha_sysctl_file",
                                 "l3ha_metrics_dir"}


def test_reboot_of_a_namespace_node_is_crash_and_boot(lab):
    try:
        sh(lab, "net2", "echo kept > %s && ip netns add %s" % (DISK, namespace_of("reboot")))
        old = lab.box_pid("net2")
        lab.reboot("net2")
        assert lab.box_pid("net2") != old and kernel.start_time(old) is None
        assert sh(lab, "net2", "cat %s" % DISK).stdout == "kept\n"
        assert sh(lab, "net2", "ip netns list").stdout.strip() == ""
        assert pings(lab, "net1", "192.0.2.12")
        assert "ansible_nsenter_pid: %d" % lab.box_pid("net2") in Path(lab.fragment_path).read_text()
    finally:
        if not lab.status()["nodes"][1]["alive"]:
            lab.boot("net2")
        sh(lab, "net2", "rm -f %s" % DISK, check=False)


def _readme_real_hosts_inventory():
    """The inventory of README.md's "Using the collection on real hosts", as written there."""
    readme = Path(REPO, "README.md").read_text()
    section = readme.split("## Using the collection on real hosts", 1)[1]
    block = next(b for b in section.split("```yaml\n")[1:] if "l3ha_network_nodes" in b)
    return yaml.safe_load(block.split("```", 1)[0])


@pytest.mark.parametrize("variant", ["as written", "one tunnel IP left out"])
def test_the_readme_real_hosts_inventory_comes_up(lab_factory, tmp_path, variant):
    inventory = _readme_real_hosts_inventory()
    hosts = inventory["all"]["children"]["l3ha_network_nodes"]["hosts"]
    assert hosts["net1"]["l3ha_tunnel_ip"] == "10.30.0.11"   # outside the lab's 192.0.2.0/24
    if variant != "as written":
        del hosts["net2"]["l3ha_tunnel_ip"]       # then it is on the lab's own subnet
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    lab = lab_factory([str(path)])
    tunnel = {n["name"]: n["tunnel_ip"] for n in lab.status()["nodes"]}
    expected = {"net1": "10.30.0.11", "net2": "10.30.0.12" if variant == "as written" else "192.0.2.11"}
    assert tunnel == expected
    assert any(n.startswith("node net1: l3ha_tunnel_ip 10.30.0.11 is outside") for n in lab.notes)
    assert any(n.startswith("network ext: no cidr") for n in lab.notes)
    assert "inet 10.30.0.11/24 " in sh(lab, "net1", "ip -o addr show dev ul0").stdout
    # the nodes reach each other and the client VTEP (in net1's subnet) on the one switch
    vtep = {e["name"]: e["vtep_ip"] for e in lab.status()["endpoints"]}["client-private"]
    assert vtep == "10.30.0.201"
    for source, target in (("net1", expected["net2"]), ("net2", expected["net1"]),
                           ("net2", vtep), ("client-private", expected["net2"])):
        assert pings(lab, source, target), "%s -> %s" % (source, target)
    assert "203.0.113.1/24" in sh(lab, "upstream", "ip -o addr").stdout
    fragment = yaml.safe_load(Path(lab.fragment_path).read_text())
    net1 = fragment["all"]["children"]["l3ha_lab_nodes"]["hosts"]["net1"]
    assert net1["l3ha_tunnel_ip"] == "10.30.0.11"
    assert net1["l3ha_vxlan_remote_vteps"] == {"private": [vtep]}


# ---- inventory formats and down ------------------------------------------------------

INI_INVENTORY = """\
[l3ha_network_nodes]
alpha
beta l3ha_tunnel_ip=192.0.2.50

[l3ha_network_nodes:vars]
l3ha_config_dir=/etc/l3ha-labtest-ini
l3ha_networks={"lan": {"type": "bridge", "bridge": "br-lan", "cidr": "198.51.100.0/24", "external": True}}
"""

JSON_INVENTORY = {"all": {"children": {"l3ha_network_nodes": {
    "hosts": {"gamma": {}, "delta": {}},
    "vars": {"l3ha_networks": {"lan": {"type": "bridge", "bridge": "br-lan",
                                       "cidr": "198.51.100.0/24", "external": True}}}}}}}


@pytest.mark.parametrize("kind", ["ini", "json"])
def test_ini_and_json_inventories_work(lab_factory, tmp_path, kind):
    if kind == "ini":
        path = tmp_path / "hosts.ini"
        path.write_text(INI_INVENTORY)
        names, tunnel = ["alpha", "beta"], {"alpha": "192.0.2.11", "beta": "192.0.2.50"}
    else:
        path = tmp_path / "hosts.json"
        path.write_text(json.dumps(JSON_INVENTORY))
        names, tunnel = ["gamma", "delta"], {"gamma": "192.0.2.11", "delta": "192.0.2.12"}
    lab = lab_factory([str(path)])
    nodes = lab.status()["nodes"]
    assert [n["name"] for n in nodes] == names
    assert {n["name"]: n["tunnel_ip"] for n in nodes} == tunnel
    assert sh(lab, names[1], "hostname").stdout.strip() == names[1]
    assert pings(lab, names[0], tunnel[names[1]])
    assert "198.51.100.1/24" in sh(lab, "client-lan", "ip -o addr").stdout
    sh(lab, names[0], "ip addr add 198.51.100.250/24 dev br-lan")
    assert pings(lab, names[0], "198.51.100.1")
    if kind == "ini":
        assert sh(lab, "alpha", "findmnt -n -o TARGET /etc/l3ha-labtest-ini").stdout.strip() \
            == "/etc/l3ha-labtest-ini"


def _host_limits():
    return [int(Path("/proc/sys/" + key).read_text()) for key, _floor in host.FLOORS]


def test_down_leaves_the_machine_as_before_up(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(Path(DEFAULT_INVENTORY).read_text().replace(
        "        net2:\n", "        net2:\n          l3ha_state_dir: /var/lib/l3ha-labtest-down\n"))
    lab_dir = LAB_DIR_PREFIX + "down"
    before = HostSnapshot.take()
    limits_before = _host_limits()
    assert not os.path.exists("/var/lib/l3ha-labtest-down")
    lab = Lab(lab_dir)
    try:
        lab.up([str(inventory)])
        # the neighbour tables all nodes share are raised while a lab runs
        assert all(value >= floor for value, (_key, floor) in zip(_host_limits(), host.FLOORS))
        assert lab_dir in json.loads(Path(host.REGISTRY).read_text())["labs"]
        # Processes of every kind: daemonized, nested netns, a probe.
        sh(lab, "net1", "ip netns add {ns} && (setsid sleep 300 >/dev/null 2>&1 &)"
                        " && (ip netns exec {ns} sleep 300 >/dev/null 2>&1 &)".format(ns=namespace_of("down")))
        lab.probe_start("left-running", "client-ext", "203.0.113.1")
        state = json.loads(Path(lab.state_path).read_text())
        boxes = [e["box"] for e in list(state["nodes"].values()) + list(
            state["endpoints"].values())] + [state["switch"]]
        lab_pid_namespaces = {_ns_inode(b["pid"], "pid") for b in boxes}
        lab_pids = {(b["pid"], b["start"]) for b in boxes} | {(b["unshare_pid"], b["unshare_start"]) for b in boxes}
        probe_record = state["probes"]["left-running"]
        lab_pids.add((probe_record["pid"], probe_record["start"]))
        assert len(processes_in_pid_namespaces(lab_pid_namespaces)) >= len(boxes) + 2
        assert os.path.isdir("/var/lib/l3ha-labtest-down")
        # A crashed node must not stop `down` from cleaning up.
        lab.crash("net2")
    finally:
        down = _cli("down", lab_dir=lab_dir)
    assert down.returncode == 0, down.stderr
    assert processes_in_pid_namespaces(lab_pid_namespaces) == []
    # `down` returns once the host's init has reaped the orphaned box parents and probes.
    assert [pid for pid, started in lab_pids if process_exists(pid, started)] == []
    leaks = HostSnapshot.take().leaks_since(before)
    for kind in ("netns", "links", "mounts"):
        assert kind not in leaks, leaks
    assert not os.path.exists(lab_dir)
    assert not os.path.exists("/var/lib/l3ha-labtest-down")
    if os.path.exists(host.REGISTRY):  # another lab (this module's) still runs
        assert lab_dir not in json.loads(Path(host.REGISTRY).read_text())["labs"]
    else:  # the last lab restored the values it found
        assert _host_limits() == limits_before
    # down on nothing is fine, and so is a second down.
    assert _cli("down", lab_dir=lab_dir).returncode == 0


def test_down_cleans_up_after_an_up_that_failed_half_way(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab_dir = LAB_DIR_PREFIX + "halfway"
    before = HostSnapshot.take()

    def broken_endpoints(self, state, topology):
        raise LabError("injected failure after the nodes were made")

    monkeypatch.setattr(Lab, "_ensure_endpoints", broken_endpoints)
    lab = Lab(lab_dir)
    try:
        with pytest.raises(LabError, match="injected"):
            lab.up([DEFAULT_INVENTORY])
        state = json.loads(Path(lab.state_path).read_text())
        boxes = [n["box"] for n in state["nodes"].values()] + [state["switch"]]
        namespaces = {_ns_inode(b["pid"], "pid") for b in boxes}
        assert len(processes_in_pid_namespaces(namespaces)) == 3
    finally:
        down = _cli("down", lab_dir=lab_dir)
    assert down.returncode == 0, down.stderr
    assert processes_in_pid_namespaces(namespaces) == []
    leaks = HostSnapshot.take().leaks_since(before)
    for kind in ("netns", "links", "mounts"):
        assert kind not in leaks, leaks
    assert not os.path.exists(lab_dir)


def test_up_starts_over_when_the_switch_is_gone(lab_factory):
    lab = lab_factory([DEFAULT_INVENTORY])
    sh(lab, "net1", "echo kept > %s" % DISK)
    old_pids = {n["name"]: n["pid"] for n in lab.status()["nodes"]}
    switch = json.loads(Path(lab.state_path).read_text())["switch"]
    os.kill(switch["pid"], 9)   # as after a restart of the machine: every box is gone
    lab.up([DEFAULT_INVENTORY])
    nodes = lab.status()["nodes"]
    assert all(n["alive"] for n in nodes)
    assert all(n["pid"] != old_pids[n["name"]] for n in nodes)
    assert sh(lab, "net1", "cat %s" % DISK).stdout == "kept\n"
    assert pings(lab, "net1", "192.0.2.12")
    assert pings(lab, "client-ext", "203.0.113.1")


def test_up_adds_what_the_inventory_gained(lab_factory, tmp_path):
    small = {"all": {"children": {"l3ha_network_nodes": {
        "hosts": {"a1": {}},
        "vars": {"l3ha_networks": {"lan": {"type": "bridge", "bridge": "br-lan",
                                           "cidr": "198.51.100.0/24"}}}}}}}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(small))
    lab = lab_factory([str(path)])
    first_pid = lab.box_pid("a1")
    mac = sh(lab, "client-lan", "cat /sys/class/net/lan/address").stdout
    group = small["all"]["children"]["l3ha_network_nodes"]
    group["hosts"]["a2"] = {}
    group["vars"]["l3ha_networks"]["lan"]["cidr"] = ["198.51.100.0/24", "2001:db8:5::/64"]
    group["vars"]["l3ha_networks"]["wan"] = {"type": "bridge", "bridge": "br-wan",
                                             "cidr": "203.0.113.0/24"}
    group["vars"]["l3ha_networks"]["tn"] = {"type": "vxlan", "vni": 77, "cidr": "10.7.0.0/24"}
    path.write_text(json.dumps(small))
    lab.up([str(path)])
    assert lab.box_pid("a1") == first_pid
    assert "br-wan" in sh(lab, "a1", "ip -o link show master br-wan; ip -o link").stdout
    assert pings(lab, "a1", "192.0.2.12")
    # client-lan got its new address, re-created with the same MAC.
    assert "2001:db8:5::1/64" in sh(lab, "client-lan", "ip -o addr").stdout
    assert sh(lab, "client-lan", "cat /sys/class/net/lan/address").stdout == mac
    fdb = sh(lab, "client-tn", "bridge fdb show dev tn").stdout
    assert "dst 192.0.2.11" in fdb and "dst 192.0.2.12" in fdb
    sh(lab, "a2", "ip addr add 203.0.113.200/24 dev br-wan")
    assert pings(lab, "a2", "203.0.113.1")


def _running(pid):
    """Alive and not a zombie (an orphan's reaping is up to the host's init)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_timed_out_playbook_run_ends_its_whole_process_group(tmp_path):
    # ansible-playbook's fork workers outlive a parent killed alone: the run's group goes.
    pids = tmp_path / "pids"
    script = 'sleep 60 & echo $! >"$0"; echo $$ >>"$0"; wait'
    with pytest.raises(subprocess.TimeoutExpired):
        testing._run_group(["sh", "-c", script, str(pids)], 2.0, stdout=subprocess.DEVNULL)
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    wait_until(lambda: not [pid for pid in started if _running(pid)], 10.0, "the run's processes to end")
