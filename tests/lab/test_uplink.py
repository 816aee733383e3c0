"""The uplink monitor (issue 17 item 1), on real namespaces, bridges, keepalived and ARP.

One lab from tests/lab/uplink_inventory.yml (net1..net3, every router on all three, the
monitor with its defaults, no per-router health check), converged once. Each case
leaves every uplink restored and one master per router with only backups besides.
Traffic gaps are recorded (`record_measurement`), never asserted.
"""

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from l3ha_lab.collection import vocabulary
from l3ha_lab.testing import (RUN_DIR, STATE_DIR, answers, busiest, converge, masters_by_router, node_sh,
                              node_states, one_master_each, probing, router_config_dir, run_playbook, transitions,
                              uplink_gateway, uplink_status, wait_settled, wait_until)
from lab_helpers import record_measurement

INVENTORY = str(Path(__file__).with_name("uplink_inventory.yml"))
NODES = ["net1", "net2", "net3"]
ROUTERS = ["r1", "r2", "r3", "r4"]
TUNNEL = {"net1": "192.0.2.11", "net2": "192.0.2.12", "net3": "192.0.2.13"}
GW4, GW6 = "203.0.113.1", "2001:db8:ff::1"
CLIENT = "client-up-net"     # behind r1
DROP_TABLE = "netdev l3ha_uplink_test"


@pytest.fixture(scope="module")
def lab_inventory():
    return [INVENTORY]


@pytest.fixture(scope="module")
def converged(lab):
    converge(lab, inventories=[INVENTORY])
    wait_settled(lab, NODES, ROUTERS)
    return lab


def uplink_port(lab, node):
    """The node's port of the external bridge to the lab switch (the lab names it uplink<N>)."""
    ports = [p for p in node_sh(lab, node, "ls /sys/class/net/br-ex/brif").split() if p.startswith("uplink")]
    assert len(ports) == 1, ports
    return ports[0]


def restore_everything(lab):
    for node in NODES:
        lab.link(node, "ext", True)
        node_sh(lab, node, "ip link set %s up; nft delete table %s 2>/dev/null; true"
                % (uplink_port(lab, node), DROP_TABLE))


@pytest.fixture
def uplink_lab(converged):
    """The shared lab; afterwards every uplink is back and every router settled again."""
    try:
        yield converged
    finally:
        restore_everything(converged)
    for node in NODES:
        wait_until(lambda: uplink_gateway(converged, node, "ext", GW4), 30, "%s to reach the gateway again" % node,
                   ok=lambda gw: gw and gw["state"] == "up" and not gw["failed"])
    wait_settled(converged, NODES, ROUTERS)


def fault_on(node, states):
    """Every replica on `node` in FAULT, and every router with one master, elsewhere."""
    held = masters_by_router(states)
    return (states[node] is not None and all(states[node].get(r) == "fault" for r in ROUTERS)
            and all(len(held[r]) == 1 and held[r] != [node] for r in ROUTERS))


def uplink_metrics(lab, node):
    """{(series, gateway): value} of the node's l3ha_uplink.prom, read with Prometheus' own parser."""
    # the lab points l3ha_metrics_dir into each node's state directory
    path = "%s/metrics/%s" % (STATE_DIR, vocabulary.METRICS_UPLINK_FILE)
    text = node_sh(lab, node, "cat %s" % path)
    return dict(((sample.name, sample.labels.get("gateway")), sample.value)
                for family in text_string_to_metric_families(text) for sample in family.samples)


def test_one_monitor_per_node_probes_both_families_and_hears_its_peers(converged):
    for node in NODES:
        status = wait_until(lambda: uplink_status(converged, node), 30, "the monitor of %s to hear both peers" % node,
                            ok=lambda s: s and len(s["networks"]["ext"]["peers_reporting"]) == 2)
        ext = status["networks"]["ext"]
        assert ext["peers_reporting"] == sorted(TUNNEL[n] for n in NODES if n != node)
        assert sorted(ext["gateways"]) == sorted([GW4, GW6])
        assert all(gw["state"] == "up" and not gw["failed"] for gw in ext["gateways"].values()), ext
        assert ext["carrier"] is True
        # one supervisor and its one monitor process, nothing per router
        assert node_sh(converged, node, "pgrep -c -x %s; true" % vocabulary.UPLINK_PROGRAM).strip() == "2"
    r1 = node_sh(converged, "net1", "cat %s/keepalived.conf" % router_config_dir("r1"))
    r2 = node_sh(converged, "net1", "cat %s/keepalived.conf" % router_config_dir("r2"))
    assert r1.count("track_file uplink_") == 2 and "/uplink/track/ext/2001:db8:ff::1" in r1
    assert r2.count("track_file uplink_") == 1 and "/uplink/track/ext/203.0.113.1" in r2


@pytest.mark.parametrize("cause", ["cut", "carrier"])
def test_uplink_loss_moves_every_master_off_the_node_and_its_return_moves_nothing_back(uplink_lab, cause):
    """`cut`: the lab drops the node's traffic in the switch (carrier stays up: the probes
    find it); `carrier`: the node's uplink port goes down (the netlink event finds it)."""
    lab = uplink_lab
    victim = busiest(wait_settled(lab, NODES, ROUTERS))
    port = uplink_port(lab, victim)
    with probing(lab, "uplink-%s" % cause, CLIENT, GW4) as probe:
        if cause == "cut":
            lab.link(victim, "ext", False)
        else:
            node_sh(lab, victim, "ip link set %s down" % port)
        moved = wait_until(lambda: node_states(lab, NODES), 30, "every master off %s, its replicas in FAULT" % victim,
                           interval=0.05, ok=lambda states: fault_on(victim, states))
        wait_until(lambda: answers(lab, CLIENT, GW4), 30, "client traffic through r1's new master", interval=0.1)
    record_measurement("uplink loss (%s) on %s, the master of %d routers" % (
        cause, victim, sum(1 for r in ROUTERS if victim not in masters_by_router(moved)[r])), probe=probe)
    gateway = uplink_gateway(lab, victim, "ext", GW4)
    assert gateway["state"] == "down" and gateway["failed"], gateway
    assert gateway["reason"] == ("probes" if cause == "cut" else "carrier"), gateway
    metrics = uplink_metrics(lab, victim)
    assert metrics[("l3ha_uplink_up", GW4)] == 0 and metrics[("l3ha_uplink_routers_failed", GW4)] == 1
    for node in NODES:
        if node != victim:
            other = uplink_gateway(lab, node, "ext", GW4)
            assert other["state"] == "up" and not other["failed"], (node, other)
    logged = dict((r, transitions(lab, victim, r)) for r in ROUTERS)

    if cause == "cut":
        lab.link(victim, "ext", True)
    else:
        node_sh(lab, victim, "ip link set %s up" % port)
    back = wait_until(lambda: node_states(lab, NODES), 30, "%s's replicas back to BACKUP" % victim,
                      ok=lambda states: one_master_each(states, ROUTERS)
                      and all(states[victim][r] == "backup" for r in ROUTERS))
    assert masters_by_router(back) == masters_by_router(moved)  # nopreempt: nothing moved back
    for router in ROUTERS:  # and nothing went there and back in between
        assert "master" not in transitions(lab, victim, router)[len(logged[router]):], router
    gateway = uplink_gateway(lab, victim, "ext", GW4)
    assert gateway["state"] == "up" and not gateway["failed"]
    assert uplink_metrics(lab, victim)[("l3ha_uplink_up", GW4)] == 1


def test_one_lost_probe_moves_nothing(uplink_lab):
    lab = uplink_lab
    states = wait_settled(lab, NODES, ROUTERS)
    node = busiest(states)
    before = uplink_gateway(lab, node, "ext", GW4)
    logged = dict((r, len(transitions(lab, node, r))) for r in ROUTERS)
    # The next ARP reply to a probe (target 0.0.0.0) and only that one is dropped.
    node_sh(lab, node, "nft -f - <<'EOF'\ntable %s {\n chain in {\n  type filter hook ingress device %s priority 0;\n"
                       "  arp operation reply arp daddr ip 0.0.0.0 limit rate 1/hour burst 1 packets drop\n }\n}\nEOF"
            % (DROP_TABLE, uplink_port(lab, node)))
    after = wait_until(lambda: uplink_gateway(lab, node, "ext", GW4), 30, "one probe lost and answers again",
                       ok=lambda gw: gw["lost"] > before["lost"] and gw["misses"] == 0)
    assert after["lost"] == before["lost"] + 1
    assert after["transitions"] == before["transitions"] and after["state"] == "up" and not after["failed"]
    assert node_states(lab, NODES) == states
    assert dict((r, len(transitions(lab, node, r))) for r in ROUTERS) == logged


def test_every_node_losing_the_uplink_fails_nobody_and_the_first_back_takes_over(uplink_lab):
    """The all-nodes rule: nobody fails while no node reaches the gateway (the masters stay
    and route between the internal networks); the first node to reach it again takes every
    router, and the others' return moves nothing."""
    lab = uplink_lab
    for node in NODES:
        lab.link(node, "ext", False)
    for node in NODES:
        wait_until(lambda: uplink_gateway(lab, node, "ext", GW4), 30, "%s to lose the gateway" % node,
                   ok=lambda gw: gw["state"] == "down")
    states = wait_until(lambda: node_states(lab, NODES), 30, "no replica in FAULT, one master each",
                        ok=lambda found: one_master_each(found, ROUTERS))
    assert not any(uplink_gateway(lab, node, "ext", GW4)["failed"] for node in NODES)
    held = masters_by_router(states)
    first = min(NODES, key=lambda node: (sum(1 for r in ROUTERS if held[r] == [node]), node))

    lab.link(first, "ext", True)
    wait_until(lambda: node_states(lab, NODES), 30, "every master on %s, the others in FAULT" % first,
               ok=lambda found: all(masters_by_router(found)[r] == [first] for r in ROUTERS)
               and all(found[n][r] == "fault" for n in NODES if n != first for r in ROUTERS))
    for node in NODES:
        lab.link(node, "ext", True)
    settled = wait_settled(lab, NODES, ROUTERS)
    assert all(masters_by_router(settled)[r] == [first] for r in ROUTERS)


def test_a_killed_monitor_is_restarted(converged):
    """Its worker by its supervisor at once; the supervisor itself by the next run, which
    --check reports."""
    lab = converged
    node = NODES[0]
    worker = uplink_status(lab, node)["pid"]
    node_sh(lab, node, "kill -9 %d" % worker)
    wait_until(lambda: uplink_status(lab, node), 30, "a new monitor worker",
               ok=lambda status: status and status["pid"] != worker)
    pid_file = "%s/%s/%s" % (RUN_DIR, vocabulary.UPLINK_SUBDIR, vocabulary.UPLINK_PID)
    node_sh(lab, node, "kill -9 $(cat %s)" % pid_file)
    wait_until(lambda: node_sh(lab, node, "pgrep -c -x %s; true" % vocabulary.UPLINK_PROGRAM).strip(), 30,
               "the worker to end with its supervisor", ok=lambda count: count == "0")
    check = run_playbook(lab, inventories=[INVENTORY], check=True, diff=True)
    assert check.returncode == 0, check.tail()
    assert check.recap[node]["changed"] == 1
    assert "-uplink monitor: stopped" in check.stdout and "+uplink monitor: running" in check.stdout
    assert all(check.recap[other]["changed"] == 0 for other in NODES if other != node)
    converge(lab, inventories=[INVENTORY])
    assert node_sh(lab, node, "pgrep -c -x %s; true" % vocabulary.UPLINK_PROGRAM).strip() == "2"


def test_opting_out_removes_the_monitor_and_the_track_files(converged):
    """Last in the module: l3ha_uplink_monitor false, then the default again."""
    lab = converged
    off = converge(lab, inventories=[INVENTORY], extra_vars={"l3ha_uplink_monitor": False})
    assert off.changed
    for node in NODES:
        assert node_sh(lab, node, "pgrep -c -x %s; true" % vocabulary.UPLINK_PROGRAM).strip() == "0"
        assert node_sh(lab, node, "ls %s/%s 2>&1; true" % (RUN_DIR, vocabulary.UPLINK_SUBDIR)) \
            .strip().endswith("No such file or directory")
        assert "track_file" not in node_sh(lab, node, "cat %s/keepalived.conf" % router_config_dir("r1"))
    wait_settled(lab, NODES, ROUTERS)
    assert converge(lab, inventories=[INVENTORY], extra_vars={"l3ha_uplink_monitor": False}).changed == 0
    converge(lab, inventories=[INVENTORY])
    for node in NODES:
        assert node_sh(lab, node, "pgrep -c -x %s; true" % vocabulary.UPLINK_PROGRAM).strip() == "2"
    wait_settled(lab, NODES, ROUTERS)
