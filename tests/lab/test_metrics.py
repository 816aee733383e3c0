"""Prometheus metrics (issue 17) with real keepalived: each node's textfiles, parsed with
the official parser (prometheus_client), against the real VRRP states before and after a
failover (the master's keepalived killed) and a drain.

The default inventory (net1, net2, router r1). A namespace node shares the host's file
system except its private config and state directories, so the metrics go to a
directory in the node's own state directory, never to the host's /var/lib/prometheus.
"""

import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from l3ha_lab.testing import (STATE_DIR, converge, keepalived_pids, masters, node_sh, router_states,
                              run_playbook, wait_settled, wait_until)

NODES = ["net1", "net2"]
ROUTER = "r1"
TENANT = "demo"
METRICS_DIR = STATE_DIR + "/metrics"
METRICS = {"l3ha_metrics_dir": METRICS_DIR}


def site(lab, **kwargs):
    return converge(lab, extra_vars=dict(METRICS, **kwargs.pop("extra_vars", {})), **kwargs)


def read_samples(lab, node, name):
    """{(metric, ((label, value), ...)): value} of one file of the node's metrics directory."""
    text = node_sh(lab, node, "cat %s/%s 2>/dev/null; true" % (METRICS_DIR, name))
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def router_metrics(lab, node, router=ROUTER):
    """(state whose series is 1, transitions, last transition time) of the router's file, or None."""
    found = read_samples(lab, node, "l3ha_router_%s.prom" % router)
    if not found:
        return None
    labels = (("router", router), ("tenant", TENANT))
    current = [state for state in ("backup", "fault", "master", "stop")
               if found[("l3ha_router_state", tuple(sorted(labels + (("state", state),))))] == 1]
    assert len(current) == 1, found  # exactly one state is 1, the others 0
    return (current[0], found[("l3ha_router_transitions_total", labels)],
            found[("l3ha_router_last_transition_timestamp_seconds", labels)])


def services_up(lab, node, router=ROUTER):
    """{service: l3ha_service_up} of the router's file (r1 has radvd: an internal IPv6 /64)."""
    return dict((dict(labels)["service"], value) for (name, labels), value
                in read_samples(lab, node, "l3ha_router_%s.prom" % router).items() if name == "l3ha_service_up")


def node_metrics(lab, node):
    return dict((name, value) for (name, _labels), value in read_samples(lab, node, "l3ha_node.prom").items())


def metric_states(lab):
    return dict((node, (router_metrics(lab, node) or (None,))[0]) for node in NODES)


def vrrp_states(lab):
    return dict((node, (router_states(lab, node) or {}).get(ROUTER)) for node in NODES)


def wait_metrics_match(lab, what, expected=None):
    """Wait until every node's metrics say the state its state file says (and `expected`,
    {node: state}, when given); return them."""
    return wait_until(lambda: (metric_states(lab), vrrp_states(lab)), 30,
                      "the metrics of %s to match the VRRP states %s" % (ROUTER, what),
                      ok=lambda pair: pair[0] == pair[1] and None not in pair[0].values()
                      and expected in (None, pair[0]))[0]


@pytest.fixture(scope="module")
def converged(lab):
    site(lab)
    wait_settled(lab, NODES, [ROUTER])
    return lab


def test_metrics_show_the_vrrp_states_and_the_node(converged):
    lab = converged
    states = wait_metrics_match(lab, "after the converge")
    assert sorted(states.values()) == ["backup", "master"]
    assert dict((node, services_up(lab, node)) for node in NODES) == dict(
        (node, {"radvd": 1 if state == "master" else 0}) for node, state in states.items())
    for node in NODES:
        _state, transitions, since = router_metrics(lab, node)
        assert transitions >= 1 and since > 0
        found = node_metrics(lab, node)
        assert (found["l3ha_node_routers"], found["l3ha_node_drained"],
                found["l3ha_node_last_converge_success"]) == (1, 0, 1), (node, found)
    # nothing on the host: the nodes wrote into their private state directories
    assert not os.path.exists(os.path.join(METRICS_DIR, "l3ha_node.prom"))
    assert not os.path.exists("/var/lib/prometheus/node-exporter/l3ha_node.prom")


def test_a_failover_moves_the_master_in_the_metrics(converged):
    lab = converged
    wait_metrics_match(lab, "before the failover")
    master = masters(lab, NODES, ROUTER)[0]
    other = [node for node in NODES if node != master][0]
    _state, other_count, other_since = router_metrics(lab, other)
    node_sh(lab, master, "kill -KILL %s" % " ".join(str(pid) for pid in keepalived_pids(lab, master, ROUTER) if pid))
    wait_metrics_match(lab, "after the kill", {master: "stop", other: "master"})
    assert (services_up(lab, master), services_up(lab, other)) == ({"radvd": 0}, {"radvd": 1})
    _state, count, since = router_metrics(lab, other)
    assert count > other_count and since > other_since
    # the next converge starts the killed keepalived again: a backup (nopreempt)
    before = node_metrics(lab, master)["l3ha_node_last_converge_timestamp_seconds"]
    site(lab)
    wait_settled(lab, NODES, [ROUTER])
    wait_metrics_match(lab, "after the converge", {master: "backup", other: "master"})
    assert node_metrics(lab, master)["l3ha_node_last_converge_timestamp_seconds"] > before


def test_check_mode_writes_no_node_metrics(converged):
    lab = converged
    before = dict((node, node_metrics(lab, node)) for node in NODES)
    run = run_playbook(lab, extra_vars=METRICS, check=True)
    assert run.returncode == 0, run.tail()
    assert dict((node, node_metrics(lab, node)) for node in NODES) == before


def test_a_drain_stops_the_replicas_in_the_metrics_and_marks_the_node(converged):
    lab = converged
    wait_settled(lab, NODES, [ROUTER])
    master = masters(lab, NODES, ROUTER)[0]
    other = [node for node in NODES if node != master][0]
    try:
        site(lab, playbook="l3ha.routers.drain", extra_vars={"l3ha_drain_node": master})
        wait_metrics_match(lab, "after the drain", {master: "stop", other: "master"})
        # the drain playbook does not run the reconciler: the node's file says drained from
        # the next converge on (which keeps the drained node's keepalived stopped)
        site(lab)
        assert node_metrics(lab, master)["l3ha_node_drained"] == 1
        assert node_metrics(lab, other)["l3ha_node_drained"] == 0
        wait_metrics_match(lab, "on the drained node", {master: "stop", other: "master"})
    finally:
        site(lab, playbook="l3ha.routers.undrain", extra_vars={"l3ha_drain_node": master})
    wait_settled(lab, NODES, [ROUTER])
    assert node_metrics(lab, master)["l3ha_node_drained"] == 0
    wait_metrics_match(lab, "after the undrain", {master: "backup", other: "master"})
