"""Exact drift (issue 16): runtime changes inside a router namespace, made by hand on a
converged lab, are reported by `site --check` (router, node, what), repaired by `site`
without a failover, and the next `--check` reports nothing.

One lab from tests/lab/faults_inventory.yml (net1, net2; r1 with IPv4 and IPv6, a
floating IP and the health check), converged once and shared; every case leaves it
converged. The reports are read from the reconcile task's result (JSON callback).
"""

import json

import pytest

from l3ha_lab.testing import (answers, converge, masters, namespace_of, node_sh, recap, run_playbook, transitions,
                              wait_one_master, wait_settled, wait_until)

# the fault tests' lab and its converged fixture (module scope: a lab of this module's own)
from test_faults import (  # noqa: F401 pylint: disable=unused-import
    CLIENT, INVENTORY, NODES, R1_GATEWAY, ROUTERS, UPSTREAM, converged, lab_inventory, other,
)

RECONCILE_TASK = "Reconcile every router of this node in one call"


@pytest.fixture
def drift_lab(converged):
    """The shared lab, converged again and unchanged after the case."""
    yield converged
    converge(converged, inventories=[INVENTORY])
    wait_settled(converged, NODES, ROUTERS)


def drift(lab, extra_vars=None):
    """{(node, router): [change lines]} that `site --check` reports, and its recap."""
    run = run_playbook(lab, inventories=[INVENTORY], check=True, extra_vars=extra_vars,
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    assert run.returncode == 0, run.tail()
    report = json.loads(run.stdout[run.stdout.index("{"):])
    found = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            if not task["task"]["name"].endswith(RECONCILE_TASK):
                continue
            for node, result in task["hosts"].items():
                for router, outcome in (result.get("routers") or {}).items():
                    if outcome.get("changes"):
                        found[(node, router)] = outcome["changes"]
    changed = dict((host, counts["changed"]) for host, counts in report["stats"].items())
    return found, changed


def port(lab, node, router, prefix):
    out = node_sh(lab, node, "ip netns exec %s ip -o link show" % namespace_of(router))
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [name for name in names if name.startswith(prefix)][0]


def in_router(lab, node, router, command):
    return node_sh(lab, node, "ip netns exec %s %s" % (namespace_of(router), command))


def check_repair_cycle(lab, node, router, kind):
    """--check names (node, router) with a change containing `kind`; site repairs it
    without a transition anywhere; the next --check is clean. Returns the change lines."""
    before = dict((n, transitions(lab, n, router)) for n in NODES)
    found, _changed = drift(lab)
    lines = found.get((node, router)) or []
    assert any(kind in line for line in lines), "no %r for %s on %s in %s" % (kind, router, node, found)
    assert set(found) == {(node, router)}, "drift reported elsewhere too: %s" % found
    converge(lab, inventories=[INVENTORY])
    found, changed = drift(lab)
    assert found == {} and set(changed.values()) == {0}, (found, changed)
    after = dict((n, transitions(lab, n, router)) for n in NODES)
    assert after == before, "a transition happened during the repair: %s -> %s" % (before, after)
    return lines


def test_converged_lab_reports_no_drift(converged):
    found, changed = drift(converged)
    assert found == {} and set(changed.values()) == {0}, (found, changed)


def test_nft_rule_deleted_on_master(drift_lab):
    lab = drift_lab
    master = wait_one_master(lab, NODES, "r1")
    before = in_router(lab, master, "r1", "nft list chain ip l3ha prerouting")
    assert "dnat to" in before
    in_router(lab, master, "r1", "nft flush chain ip l3ha prerouting")
    lines = check_repair_cycle(lab, master, "r1", "nftables ruleset")
    assert any("dnat to 10.0.0.5" in line for line in lines), lines
    assert "dnat to 10.0.0.5" in in_router(lab, master, "r1", "nft list chain ip l3ha prerouting")


def test_foreign_nft_table_on_backup(drift_lab):
    lab = drift_lab
    backup = other(wait_one_master(lab, NODES, "r1"))
    in_router(lab, backup, "r1", "nft add table inet intruder")
    check_repair_cycle(lab, backup, "r1", "inet intruder")
    assert "intruder" not in in_router(lab, backup, "r1", "nft list tables")


def test_virtual_address_deleted_on_master(drift_lab):
    lab = drift_lab
    master = wait_one_master(lab, NODES, "r1")
    qg = port(lab, master, "r1", "qg-")
    in_router(lab, master, "r1", "ip addr del %s/24 dev %s" % (R1_GATEWAY, qg))
    check_repair_cycle(lab, master, "r1", "master: address %s/24 on %s" % (R1_GATEWAY, qg))
    assert "%s/24" % R1_GATEWAY in in_router(lab, master, "r1", "ip -4 -o addr show dev " + qg)
    wait_until(lambda: answers(lab, CLIENT, UPSTREAM), 30, "client to upstream through r1")


def test_address_added_on_backup(drift_lab):
    lab = drift_lab
    backup = other(wait_one_master(lab, NODES, "r1"))
    qr = port(lab, backup, "r1", "qr-")
    in_router(lab, backup, "r1", "ip addr add 10.0.0.1/24 dev " + qr)
    check_repair_cycle(lab, backup, "r1", "backup: address 10.0.0.1/24 on %s" % qr)
    assert "10.0.0.1" not in in_router(lab, backup, "r1", "ip -4 -o addr show dev " + qr)


def test_default_route_removed_on_master(drift_lab):
    lab = drift_lab
    master = wait_one_master(lab, NODES, "r1")
    in_router(lab, master, "r1", "ip route del default")
    check_repair_cycle(lab, master, "r1", "master: route 0.0.0.0/0 via 203.0.113.1")
    assert "default via 203.0.113.1" in in_router(lab, master, "r1", "ip route show")
    wait_until(lambda: answers(lab, CLIENT, UPSTREAM), 30, "client to upstream through r1")


@pytest.mark.parametrize("key,kind", [("net.ipv4.ip_forward", "sysctl ipv4/ip_forward"),
                                      ("net.ipv6.conf.all.forwarding", "master: sysctl net/ipv6/conf/all/forwarding")])
def test_forwarding_off_on_master(drift_lab, key, kind):
    lab = drift_lab
    master = wait_one_master(lab, NODES, "r1")
    in_router(lab, master, "r1", "sysctl -qw %s=0" % key)
    check_repair_cycle(lab, master, "r1", kind)
    assert in_router(lab, master, "r1", "sysctl -n " + key).strip() == "1"
    assert masters(lab, NODES, "r1") == [master]


def test_check_is_clean_after_the_cases(converged):
    """Also a no-op run after all the repairs: changed=0 everywhere."""
    run = converge(converged, inventories=[INVENTORY])
    assert set(counts["changed"] for counts in recap(run.stdout).values()) == {0}, run.tail()
