"""The fault matrix (issue 7, part 2): real keepalived in the lab, traffic measured.

One lab from tests/lab/faults_inventory.yml (net1, net2; routers r1 and r2, the external
health check on) is converged once and shared. Every case leaves it converged with
exactly one master per router. Probe gaps are recorded (`record_measurement`), never
asserted: the machine is shared and timing is noise here.

Node crash, reboot and drain are molecule scenarios (molecule/failover, reboot, drain).
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from l3ha_lab.collection import vocabulary
from l3ha_lab.testing import (ANSIBLE_PLAYBOOK, REPO, RUN_DIR, TRANSITIONS_LOG, answers, converge, keepalived_pids,
                              masters, namespace_of, node_sh, playbook_env, probing, process_alive, process_running,
                              recap, router_config_dir, router_run_dir, run_playbook, state_changes, transitions,
                              wait_one_master, wait_settled, wait_until)
from lab_helpers import ha_vxlan_device, record_measurement, vip_holders

INVENTORY = str(Path(__file__).with_name("faults_inventory.yml"))
NODES = ["net1", "net2"]
ROUTERS = ["r1", "r2"]
CLIENT = "client-demo-net"      # behind r1
UPSTREAM = "203.0.113.1"
R1_GATEWAY = "203.0.113.10"     # on r1's master only

with open(INVENTORY) as _handle:
    BASE_ROUTERS = yaml.safe_load(_handle)["all"]["children"]["l3ha_network_nodes"]["vars"]["l3ha_routers"]


@pytest.fixture(scope="module")
def lab_inventory():
    return [INVENTORY]


@pytest.fixture(scope="module")
def converged(lab):
    converge(lab, inventories=[INVENTORY])
    for router in ROUTERS:
        wait_one_master(lab, NODES, router)
    return lab


@pytest.fixture
def fault_lab(converged):
    """The shared lab; after the case, one master and only backups besides per router, and
    one holder of r1's gateway address."""
    yield converged
    wait_settled(converged, NODES, ROUTERS)
    wait_until(lambda: vip_holders(converged, NODES, "r1", R1_GATEWAY), 30, "one holder of r1's gateway address",
               ok=lambda holders: len(holders) == 1)


def other(node):
    return [n for n in NODES if n != node][0]


def site(lab, **kwargs):
    return converge(lab, inventories=[INVENTORY], **kwargs)


def wait_traffic(lab):
    wait_until(lambda: answers(lab, CLIENT, UPSTREAM), 30, "client to upstream through r1", interval=0.1)


def test_keepalived_sigkill_on_master(fault_lab):
    """Parent and VRRP child SIGKILLed: addresses stay, the peer takes over, the reconciler
    (the lab's supervisor: a re-run of the site playbook) restarts it as a clean backup."""
    lab = fault_lab
    master = wait_one_master(lab, NODES, "r1")
    parent, child = keepalived_pids(lab, master, "r1")
    assert parent and child
    with probing(lab, "sigkill", CLIENT, UPSTREAM) as probe:
        # Stopped first: a dying parent sends its child SIGTERM (a clean exit that removes
        # the addresses), and a child dying first would be restarted by the parent.
        node_sh(lab, master, "kill -STOP {p} {c} && kill -KILL {c} {p}".format(p=parent, c=child))
        wait_until(lambda: masters(lab, NODES, "r1"), 30, "%s to take r1 over" % other(master),
                   ok=lambda seen: seen == [other(master)])
        # The dead keepalived could not remove anything: both replicas hold the addresses.
        assert sorted(vip_holders(lab, NODES, "r1", R1_GATEWAY)) == NODES
        # notify.sh saw its writer die without STOP and recorded it.
        wait_until(lambda: transitions(lab, master, "r1")[-1:], 10, "stop recorded on %s" % master,
                   ok=lambda seen: seen == ["stop"])
        wait_traffic(lab)
    record_measurement("keepalived SIGKILL on master", probe=probe)
    assert probe["received"] > 0

    site(lab)
    wait_until(lambda: keepalived_pids(lab, master, "r1")[0] not in (None, parent), 30, "a new keepalived on " + master)
    wait_until(lambda: transitions(lab, master, "r1")[-1:], 30, "r1 on %s back as backup" % master,
               ok=lambda seen: seen == ["backup"])
    assert vip_holders(lab, NODES, "r1", R1_GATEWAY) == [other(master)], "stale addresses left on " + master
    assert masters(lab, NODES, "r1") == [other(master)]


def test_vrrp_child_sigkill_is_respawned(fault_lab):
    """Only the VRRP child killed: keepalived's parent starts a new one, which removes the
    addresses the old one left and comes back as backup; no supervisor involved."""
    lab = fault_lab
    master = wait_one_master(lab, NODES, "r1")
    parent, child = keepalived_pids(lab, master, "r1")
    with probing(lab, "child-kill", CLIENT, UPSTREAM) as probe:
        node_sh(lab, master, "kill -KILL %d" % child)
        wait_until(lambda: masters(lab, NODES, "r1"), 30, "%s to take r1 over" % other(master),
                   ok=lambda seen: seen == [other(master)])
        wait_traffic(lab)
    record_measurement("VRRP child SIGKILL on master", probe=probe)

    def respawned():
        pids = keepalived_pids(lab, master, "r1")
        return pids if pids[1] not in (None, child) else None

    new_parent, new_child = wait_until(respawned, 30, "a new VRRP child on " + master)
    assert new_parent == parent and process_alive(lab, master, new_child)
    wait_until(lambda: vip_holders(lab, NODES, "r1", R1_GATEWAY) == [other(master)], 30,
               "the respawned child on %s to drop the stale addresses" % master)
    try:
        wait_until(lambda: transitions(lab, master, "r1")[-1:], 30, "r1 on %s back as backup" % master,
                   ok=lambda seen: seen == ["backup"])
    except AssertionError as exc:
        raise AssertionError("%s\n%s" % (exc, transition_logs(lab)))
    # The old child's notify reader must not stay as a second reader of the FIFO.
    wait_until(lambda: len(notify_readers(lab, master, "r1")) == 1, 30, "one notify reader of r1 on " + master)
    wait_settled(lab, NODES, ROUTERS)
    assert masters(lab, NODES, "r1") == [other(master)]


def notify_readers(lab, node, router):
    """pids of the router's notify.sh FIFO readers."""
    out = lab.run(node, ["pgrep", "-f", "notify.sh fifo %s/" % router_run_dir(router)], timeout=30).stdout
    return out.split()


def test_ha_link_cut_is_split_brain_until_restored(fault_lab, tmp_path):
    lab = fault_lab
    master = wait_one_master(lab, NODES, "r1")
    backup = other(master)
    device = ha_vxlan_device(lab, backup, "r1")
    try:
        node_sh(lab, backup, "ip link set %s down" % device)
        wait_until(lambda: sorted(masters(lab, NODES, "r1")), 30, "both replicas of r1 master",
                   ok=lambda seen: seen == NODES)
        report_path = tmp_path / "status.json"
        result = run_playbook(lab, "l3ha.routers.status", inventories=[INVENTORY],
                              extra_vars={"l3ha_status_json": str(report_path)})
        assert report_path.exists(), "status wrote no report:\n" + result.stdout[-4000:]
        report = json.loads(report_path.read_text())
        assert "r1" in report["flagged"]["SPLIT BRAIN"], report["flagged"]
        assert "r2" not in report["flagged"]["SPLIT BRAIN"], report["flagged"]
    finally:
        node_sh(lab, backup, "ip link set %s up" % device)
    restored = time.monotonic()
    wait_one_master(lab, NODES, "r1")
    wait_until(lambda: len(vip_holders(lab, NODES, "r1", R1_GATEWAY)) == 1, 30, "one holder of r1's addresses")
    record_measurement("HA link cut: one master again after restore", seconds=round(time.monotonic() - restored, 3),
                       polled_every=0.05)


def test_external_link_down_moves_master(fault_lab):
    lab = fault_lab
    master = wait_one_master(lab, NODES, "r1")
    try:
        with probing(lab, "uplink", CLIENT, UPSTREAM) as probe:
            lab.link(master, "ext", False)
            wait_until(lambda: masters(lab, NODES, "r1"), 60, "gateway tracking to move r1 off " + master,
                       ok=lambda seen: seen == [other(master)])
            wait_traffic(lab)
        record_measurement("external link down on master", probe=probe)
        assert transitions(lab, master, "r1")[-1] == "fault"
    finally:
        lab.link(master, "ext", True)
    # Healthy again, it rises to backup and does not take the router back (nopreempt).
    wait_settled(lab, NODES, ROUTERS)
    assert masters(lab, NODES, "r1") == [other(master)]
    # A new flow right after: which VTEP the client sends r1's MAC to, and how long until
    # the first answer (a replica that is not master must not attract the traffic).
    with probing(lab, "after-uplink", CLIENT, UPSTREAM) as probe:
        vtep = client_vtep_of(lab, "r1")
        wait_traffic(lab)
    record_measurement("new flow after the uplink is back", probe=probe, client_sends_r1_to=vtep,
                       master=other(master))
    # Only the master sends from r1's (shared) MAC, so the client's VTEP points at it.
    assert vtep == other(master)


def client_vtep_of(lab, router):
    """The node whose VTEP the client's vxlan device sends the router's qr MAC to."""
    record = os.path.join(router_config_dir(router), vocabulary.RECORD_FILE)
    mac = json.loads(node_sh(lab, NODES[0], "cat %s" % record))["metadata"]["macs"]["net/demo-net"]
    fdb = lab.run(CLIENT, ["bridge", "fdb", "show", "dev", "demo-net"], timeout=30).stdout
    tunnel_ips = {node["tunnel_ip"]: node["name"] for node in lab.status()["nodes"]}
    for line in fdb.splitlines():
        if line.startswith(mac + " ") and " dst " in line:
            return tunnel_ips.get(line.split(" dst ")[1].split()[0], line)
    return None


def extra_routers(count):
    return [{"name": "r%d" % (3 + i), "tenant": "burst",
             "gateway": {"network": "ext", "address": "203.0.113.%d/24" % (41 + i), "gateway_ip": UPSTREAM}}
            for i in range(count)]


def namespaces(lab, node):
    result = lab.run(node, ["ip", "netns", "list"], timeout=30)
    return set(line.split()[0] for line in result.stdout.splitlines() if line.strip())


def routers_on(lab, node):
    """Routers whose namespace exists on the node."""
    return {vocabulary.router_of(ns) for ns in namespaces(lab, node)} - {None}


def ansible_processes(lab):
    """Module processes (AnsiballZ) still running in the nodes."""
    return [node for node in NODES if "AnsiballZ" in lab.run(node, ["ps", "-eo", "args"], timeout=30).stdout]


def descendants(pid):
    """Every live process below `pid` (Ansible's workers start sessions of their own)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def kill_process_tree(process):
    """SIGKILL a controller and all its workers at once, as a crash of the controller would.

    Freeze the tree first (no new forks, nobody reacts to the others' death), then kill it.
    """
    frozen = [process.pid]
    signal_all(frozen, signal.SIGSTOP)
    while True:
        more = [pid for pid in descendants(process.pid) if pid not in frozen]
        if not more:
            break
        signal_all(more, signal.SIGSTOP)
        frozen += more
    signal_all(frozen, signal.SIGKILL)
    process.wait()
    wait_until(lambda: [pid for pid in frozen[1:] if process_running(pid)], 30,
               "the killed controller's workers to exit", ok=lambda running: not running)


def test_converge_interrupted_then_rerun(fault_lab, tmp_path):
    lab = fault_lab
    added = extra_routers(3)
    names = [router["name"] for router in added]
    wanted = {"l3ha_routers": BASE_ROUTERS + added}
    before = {(node, router): len(transitions(lab, node, router)) for node in NODES for router in ROUTERS}
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(wanted))
    command = [ANSIBLE_PLAYBOOK, "-i", INVENTORY, "-i", lab.fragment_path, "-e", "@%s" % vars_file, "l3ha.routers.site"]
    env = playbook_env()
    with probing(lab, "interrupted", CLIENT, UPSTREAM) as probe:
        with open(tmp_path / "interrupted.log", "w") as log:
            controller = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        try:
            changed_node = wait_until(lambda: [n for n in NODES if set(names) & routers_on(lab, n)], 120,
                                      "a node to show a new router", interval=0.02)
        finally:
            kill_process_tree(controller)
        partial = {node: sorted(set(names) & routers_on(lab, node)) for node in NODES}
        wait_until(lambda: ansible_processes(lab), 60, "the killed run's modules to end", ok=lambda nodes: not nodes)
        site(lab, extra_vars=wanted)
        for router in ROUTERS + names:
            wait_one_master(lab, NODES, router)
        second = site(lab, extra_vars=wanted)
    record_measurement("converge interrupted", killed_when=changed_node, routers_then=partial, probe=probe)
    counts = recap(second.stdout)
    assert counts and all(c["changed"] == 0 for c in counts.values()), second.stdout[-3000:]
    for router in names:
        for node in NODES:
            assert namespace_of(router) in namespaces(lab, node)
        gateway = router_gateway_ip(added, router)
        assert len(vip_holders(lab, NODES, router, gateway)) == 1, router
    # The routers that were there all along never changed state.
    for (node, router), count in before.items():
        assert state_changes(transitions(lab, node, router), count) == 0, (node, router, transition_logs(lab))
    assert probe["received"] > 0
    # Back to the inventory: the added routers are purged.
    site(lab)
    for node in NODES:
        assert not set(names) & routers_on(lab, node)


def transition_logs(lab):
    """Every router's transitions.log (timestamped), for failure messages."""
    routers = os.path.join(RUN_DIR, vocabulary.ROUTERS_SUBDIR)
    script = "tail -n 8 %s/*/%s %s/*/%s; ps -eo pid,ppid,args | grep [n]otify" % (
        routers, TRANSITIONS_LOG, routers, vocabulary.STATE_FILE)
    return {node: node_sh(lab, node, script) for node in NODES}


def router_gateway_ip(routers, name):
    return [r for r in routers if r["name"] == name][0]["gateway"]["address"].split("/")[0]


def burst_variant(index):
    """The inventory's routers, changed on odd runs: a route on r1, a floating IP on r2."""
    routers = json.loads(json.dumps(BASE_ROUTERS))
    if index % 2 == 1:
        routers[0]["routes"] = [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}]
        routers[1]["floating_ips"] = [{"external": "203.0.113.31", "internal": "10.1.0.9"}]
    return routers


def test_reload_burst_causes_no_transition(fault_lab, tmp_path):
    """10 config changes in a row (one ansible-playbook run of 10 site plays: the site play
    runs 10 times, without paying for ansible's start 10 times), under traffic."""
    lab = fault_lab
    runs = 10
    plays = [{"ansible.builtin.import_playbook": "l3ha.routers.site", "vars": {"l3ha_routers": burst_variant(i + 1)}}
             for i in range(runs)]
    playbook = tmp_path / "burst.yml"
    playbook.write_text(yaml.safe_dump(plays))
    before_logs = {(n, r): len(transitions(lab, n, r)) for n in NODES for r in ROUTERS}
    before_pids = {(n, r): keepalived_pids(lab, n, r) for n in NODES for r in ROUTERS}
    before_masters = {r: masters(lab, NODES, r) for r in ROUTERS}
    with probing(lab, "burst", CLIENT, UPSTREAM) as probe:
        started = time.monotonic()
        result = site(lab, playbook=str(playbook))
        elapsed = time.monotonic() - started
    counts = recap(result.stdout)
    # Every play changed every node (a reload each time), and the last one is the inventory.
    assert all(counts[node]["changed"] == runs for node in NODES), counts
    changes = {"%s/%s" % key: state_changes(transitions(lab, *key), count) for key, count in before_logs.items()}
    record_measurement("reload burst", runs=runs, seconds=round(elapsed, 1), probe=probe, transitions=changes)
    assert not any(changes.values()), changes
    assert {(n, r): keepalived_pids(lab, n, r) for n in NODES for r in ROUTERS} == before_pids, "keepalived restarted"
    assert {r: masters(lab, NODES, r) for r in ROUTERS} == before_masters
