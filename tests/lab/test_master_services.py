"""Master-only services (issue 16): radvd for IPv6 clients and the metadata example, run
by the master only, supervised, moved by a failover, and repaired by `site`.

One lab from tests/lab/faults_inventory.yml (net1, net2; r1 has fd00:1::/64 inside and
2001:db8:ff::/64 outside), converged with the metadata example as a global master-only
service. The client behind r1 drops its static IPv6 address and route and lives on
router advertisements alone. Outages are recorded, never asserted.
"""

import json
import time
from pathlib import Path

import pytest

from l3ha_lab.testing import (REPO, converge, masters, node_sh, transitions, wait_one_master, wait_settled,
                              wait_until)
from lab_helpers import record_measurement
from test_drift import drift
from test_faults import CLIENT, INVENTORY, NODES, ROUTERS, lab_inventory, other  # noqa: F401 pylint: disable=unused-import

RESPONDER = str(Path(REPO) / "examples" / "metadata" / "metadata_responder.py")
SERVICES = {"l3ha_master_services": [{"name": "metadata", "command": ["python3", RESPONDER]}]}
UPSTREAM6 = "2001:db8:ff::1"
PREFIX = "fd00:1:"
FETCH = ("python3 -c \"import urllib.request; print(urllib.request.urlopen("
         "'http://169.254.169.254/latest', timeout=2).read().decode())\"")


def site(lab, **kwargs):
    return converge(lab, inventories=[INVENTORY], extra_vars=SERVICES, **kwargs)


@pytest.fixture(scope="module")
def services_lab(lab):
    site(lab)
    wait_settled(lab, NODES, ROUTERS)
    # the client forgets its static IPv6 configuration: SLAAC and router advertisements only
    node_sh(lab, CLIENT, "ip -6 addr flush dev demo-net scope global && ip -6 route flush proto static "
                         "&& ip -6 route flush proto boot && sysctl -qw net.ipv6.conf.demo-net.accept_ra=2")
    return lab


def service_pid(lab, node, router, service):
    out = lab.run(node, ["cat", "/run/l3ha/routers/%s/service-%s.pid" % (router, service)], timeout=30).stdout
    pid = out.strip()
    if not pid or lab.run(node, ["kill", "-0", pid], timeout=30).returncode != 0:
        return None
    return int(pid)


def running_on(lab, router, service, nodes=None):
    return [node for node in nodes or NODES if service_pid(lab, node, router, service)]


def client_ipv6(lab):
    """(SLAAC addresses in the router's prefix, next hops of the default routes) of the client."""
    addresses = [line.split()[3] for line in node_sh(lab, CLIENT, "ip -6 -o addr show dev demo-net").splitlines()
                 if " dynamic " in line and line.split()[3].startswith(PREFIX)]
    routes = [line.split()[2] for line in node_sh(lab, CLIENT, "ip -6 route show default").splitlines()
              if " proto ra " in line]
    return addresses, routes


def reaches_upstream6(lab):
    return lab.run(CLIENT, ["ping", "-6", "-n", "-q", "-c", "1", "-W", "1", UPSTREAM6], timeout=30).returncode == 0


def metadata(lab):
    result = lab.run(CLIENT, ["sh", "-c", FETCH], timeout=30)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else None


def advertisements(lab, node, router, seconds):
    """Router advertisements leaving the router's qr- port on `node` (its root-side peer) in `seconds`."""
    peer = node_sh(lab, node, "ip -o link show | grep -o 'vqr[0-9a-f]*' | head -n 1").strip()
    namespace = "qrouter-" + router
    own = node_sh(lab, node, "ip netns exec %s ip -o link show | grep -o 'qr-[0-9a-f]*' | head -n 1" % namespace).strip()
    assert peer == "v" + own.replace("-", ""), (peer, own)
    out = lab.run(node, ["timeout", str(seconds), "tcpdump", "-i", peer, "-Q", "in", "-n", "-l",
                         "icmp6 and ip6[40] == 134"], timeout=seconds + 30).stdout
    return [line for line in out.splitlines() if "router advertisement" in line]


def test_services_run_on_the_master_only(services_lab):
    lab = services_lab
    master = wait_one_master(lab, NODES, "r1")
    for service in ("radvd", "metadata"):
        wait_until(lambda s=service: running_on(lab, "r1", s), 30, "%s on the master only" % service,
                   ok=lambda seen: seen == [master])
    # r2 has no IPv6 inside: no radvd, but the global metadata service
    assert running_on(lab, "r2", "radvd") == []
    assert running_on(lab, "r2", "metadata") == [wait_one_master(lab, NODES, "r2")]
    # the qr- port's MAC (so its link-local address, the clients' next hop) is the same on both
    macs = set(node_sh(lab, node, "ip netns exec qrouter-r1 ip -o link show | grep 'qr-' | grep -o 'ether [0-9a-f:]*'")
               for node in NODES)
    assert len(macs) == 1, macs


def test_ipv6_client_lives_on_router_advertisements_across_a_crash(services_lab):
    lab = services_lab
    master = wait_one_master(lab, NODES, "r1")
    backup = other(master)
    addresses, routes = wait_until(lambda: client_ipv6(lab), 60, "a SLAAC address and a default route from RAs",
                                   ok=lambda found: found[0] and found[1])
    assert len(routes) == 1 and routes[0].startswith("fe80::"), routes
    wait_until(lambda: reaches_upstream6(lab), 30, "client to upstream over IPv6")
    # RAs come from the master only (radvd: at most 10 s apart)
    assert advertisements(lab, backup, "r1", 12) == []
    assert advertisements(lab, master, "r1", 12), "no router advertisement from the master in 12 s"
    served = wait_until(lambda: metadata(lab), 30, "metadata from the master")
    assert served["node"] == master and served["router"] == "r1"

    before = time.monotonic()
    lab.crash(master)
    try:
        wait_until(lambda: masters(lab, [backup], "r1"), 30, backup + " to take r1 over")
        wait_until(lambda: reaches_upstream6(lab), 30, "client to upstream over IPv6 after the crash", interval=0.02)
        outage = time.monotonic() - before
        assert client_ipv6(lab)[1] == routes, "the client's default route changed"
        assert client_ipv6(lab)[0] == addresses
        served = wait_until(lambda: metadata(lab), 30, "metadata from the new master")
        assert served["node"] == backup
        assert running_on(lab, "r1", "radvd", [backup]) == [backup]
        assert advertisements(lab, backup, "r1", 12), "the new master sends no router advertisements"
        record_measurement("IPv6 client, crash failover", outage_s=round(outage, 3))
    finally:
        lab.boot(master)
        site(lab)
        wait_settled(lab, NODES, ROUTERS)
    # the booted replica is a backup: nothing of the services there
    assert running_on(lab, "r1", "radvd") == [backup]
    assert running_on(lab, "r1", "metadata") == [backup]


def test_a_dead_service_is_restarted_on_the_master(services_lab):
    lab = services_lab
    master = wait_one_master(lab, NODES, "r1")
    pid = wait_until(lambda: service_pid(lab, master, "r1", "metadata"), 30, "metadata on " + master)
    node_sh(lab, master, "kill -KILL %d" % pid)
    wait_until(lambda: service_pid(lab, master, "r1", "metadata"), 30, "metadata restarted on " + master,
               ok=lambda new: new and new != pid)
    wait_until(lambda: metadata(lab), 30, "metadata answers again")


def test_a_service_without_its_supervisor_is_drift(services_lab):
    """The service and the loop that restarts it killed: --check names it, site starts it
    again, without a failover."""
    lab = services_lab
    master = wait_one_master(lab, NODES, "r1")
    before = dict((n, transitions(lab, n, "r1")) for n in NODES)
    pid = wait_until(lambda: service_pid(lab, master, "r1", "metadata"), 30, "metadata on " + master)
    node_sh(lab, master, "kill -KILL $(cat /run/l3ha/routers/r1/service-metadata.loop) %d" % pid)
    found, _changed = drift(lab, extra_vars=SERVICES)
    assert any("master: service metadata" in line for line in found.get((master, "r1"), [])), found
    site(lab)
    wait_until(lambda: service_pid(lab, master, "r1", "metadata"), 30, "metadata started again on " + master)
    found, changed = drift(lab, extra_vars=SERVICES)
    assert found == {} and set(changed.values()) == {0}, (found, changed)
    assert dict((n, transitions(lab, n, "r1")) for n in NODES) == before
