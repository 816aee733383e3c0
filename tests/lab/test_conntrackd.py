"""conntrackd (issue 7, part 4): a long-lived TCP connection through SNAT survives a crash
failover when its router syncs connections, and breaks when it does not.

One lab (net1, net2): router `ct` (conntrackd on, through its own `conntrackd: true`
over the role default `l3ha_conntrackd: false`) and router `plain` (no conntrackd), each
SNATing its own client network to its gateway address. Both masters are put on the same
node, one TCP connection per router is opened from its client to a server in `upstream`,
then that node is crashed. After the other node is master, the server sends first (as in
a download: the packet needs the NAT mapping of the connection on the new master), then
the client sends and expects the echo.

The sockets are the test's own, created inside the endpoints' network namespaces
(setns), so both ends are observed directly; no helper processes are left behind.
"""

import contextlib
import copy
import ctypes
import json
import os
import socket
import time

import pytest
import yaml

from l3ha_lab.collection import vocabulary
from l3ha_lab.testing import (RUN_DIR, CONFIG_DIR, converge, keepalived_pids, masters, namespace_of, node_sh, recap,
                              router_config_dir, router_run_dir, wait_one_master, wait_until)
from lab_helpers import record_measurement

NODES = ["net1", "net2"]
UPSTREAM = "203.0.113.1"
PORT = 7000
# Per router: its client endpoint and its SNAT (gateway) address.
ROUTERS = {
    "ct": {"client": "client-net-a", "snat": "203.0.113.10"},
    "plain": {"client": "client-net-b", "snat": "203.0.113.11"},
}
CONFIG = os.path.join(router_config_dir("ct"), vocabulary.CONNTRACKD_CONF)
CT_NAMESPACE = namespace_of("ct")
# How long a byte may take to cross the lab before the connection counts as broken.
ANSWER_DEADLINE = 5.0

INVENTORY = {"all": {"children": {"l3ha_network_nodes": {
    "hosts": {"net1": None, "net2": None},
    "vars": {
        "l3ha_conntrackd": False,
        "l3ha_networks": {
            "ext": {"type": "bridge", "bridge": "br-ex", "cidr": "203.0.113.0/24", "external": True},
            "net-a": {"type": "vxlan", "vni": 1101, "cidr": "10.0.1.0/24"},
            "net-b": {"type": "vxlan", "vni": 1102, "cidr": "10.0.2.0/24"},
        },
        "l3ha_routers": [
            {"name": "ct", "tenant": "demo", "max_nodes": 2, "conntrackd": True,
             "gateway": {"network": "ext", "address": "203.0.113.10/24", "gateway_ip": UPSTREAM},
             "interfaces": [{"network": "net-a", "address": "10.0.1.1/24"}]},
            {"name": "plain", "tenant": "demo", "max_nodes": 2,
             "gateway": {"network": "ext", "address": "203.0.113.11/24", "gateway_ip": UPSTREAM},
             "interfaces": [{"network": "net-b", "address": "10.0.2.1/24"}]},
        ],
    },
}}}}

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def network_namespace_of(pid):
    """Run the block (this thread) in the network namespace of process `pid`.

    A socket belongs to the namespace it was created in, also after the thread leaves it."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the network namespace of %d" % pid)
        yield
    finally:
        if _libc.setns(own, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back to the test's network namespace")
        os.close(own)
        os.close(target)


def receive(sock, size, deadline=ANSWER_DEADLINE):
    """Bytes read within the deadline; b"" on timeout; raises on reset."""
    sock.settimeout(deadline)
    try:
        return sock.recv(size)
    except socket.timeout:
        return b""


class Connection(object):
    """One TCP connection: client end in a client endpoint, server end in upstream."""

    def __init__(self, client, server):
        self.client = client
        self.server = server
        self.errors = []  # socket errors seen, e.g. a reset from a router without the state

    def server_sends(self, data):
        """The server sends first; True when the client got exactly `data`."""
        try:
            self.server.sendall(data)
            return receive(self.client, len(data)) == data
        except OSError as error:
            self.errors.append(type(error).__name__)
            return False

    def client_sends_and_gets_echo(self, data):
        """The client sends, the server echoes; True when the echo came back."""
        try:
            self.client.sendall(data)
            got = receive(self.server, len(data))
            if got != data:
                return False
            self.server.sendall(got)
            return receive(self.client, len(data)) == data
        except OSError as error:
            self.errors.append(type(error).__name__)
            return False

    def close(self):
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture(scope="module")
def lab_inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("conntrackd") / "inventory.yml"
    path.write_text(yaml.safe_dump(INVENTORY))
    return [str(path)]


@pytest.fixture(scope="module")
def converged(lab, lab_inventory):
    first = converge(lab, inventories=lab_inventory)
    for router in ROUTERS:
        wait_one_master(lab, NODES, router)
    return lab, first


@pytest.fixture
def listener(converged):
    lab, _result = converged
    with network_namespace_of(lab.box_pid("upstream")):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((UPSTREAM, PORT))
        server.listen(8)
        server.settimeout(ANSWER_DEADLINE)
        yield server
    finally:
        server.close()


def connect(lab, listener, router):
    """A connection from the router's client to the server in upstream, checked once."""
    with network_namespace_of(lab.box_pid(ROUTERS[router]["client"])):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.settimeout(ANSWER_DEADLINE)
        client.connect((UPSTREAM, PORT))
        server, peer = listener.accept()
    except OSError:
        client.close()
        raise
    connection = Connection(client, server)
    # The server sees the router's gateway address: the connection is SNATed.
    assert peer[0] == ROUTERS[router]["snat"], "%s: server saw %s" % (router, peer[0])
    assert connection.client_sends_and_gets_echo(b"before\n"), "%s: no echo before the failover" % router
    return connection


def inbound_ipv4_drops(ruleset_json):
    """Chains hooked on IPv4 input/prerouting that drop or reject (policy or rule)."""
    inbound = set()
    found = []
    for item in json.loads(ruleset_json)["nftables"]:
        chain, rule = item.get("chain"), item.get("rule")
        if chain and chain.get("family") in ("ip", "inet") and chain.get("hook") in ("input", "prerouting"):
            inbound.add((chain["family"], chain["table"], chain["name"]))
            if chain.get("policy") == "drop":
                found.append(chain)
        if rule and (rule["family"], rule["table"], rule["chain"]) in inbound:
            if '"drop"' in json.dumps(rule["expr"]) or '"reject"' in json.dumps(rule["expr"]):
                found.append(rule)
    return found


def conntrackd_namespaces(lab, node):
    """Router namespaces of the node's running conntrackd processes."""
    script = 'for pid in $(pgrep -x conntrackd); do ip netns identify "$pid"; done; true'
    return sorted(node_sh(lab, node, script).split())


def external_cache(lab, node):
    """conntrackd's external cache of router ct on the node (what the peer synced)."""
    return node_sh(lab, node, "ip netns exec %s conntrackd -C %s -e" % (CT_NAMESPACE, CONFIG))


def put_master_on(lab, router, node):
    """Move the router's master to `node`: SIGTERM the other master's keepalived (it hands
    over with priority 0), then start it again with the reconciler's command: a backup."""
    current = wait_one_master(lab, NODES, router)
    if current == node:
        return
    parent, _child = keepalived_pids(lab, current, router)
    argv = node_sh(lab, current, "tr '\\0' ' ' </proc/%d/cmdline" % parent).strip()
    node_sh(lab, current, "kill -TERM %d" % parent)
    wait_until(lambda: masters(lab, NODES, router), 30, "%s to take %s over" % (node, router),
               ok=lambda seen: seen == [node])
    wait_until(lambda: not node_sh(lab, current, "cat /proc/%d/stat 2>/dev/null; true" % parent), 30,
               "the stopped keepalived of %s on %s to exit" % (router, current))
    node_sh(lab, current, "ip netns exec %s %s" % (namespace_of(router), argv))
    wait_until(lambda: keepalived_pids(lab, current, router)[0] not in (None, parent), 30,
               "keepalived of %s to run again on %s" % (router, current))


def test_rerun_changes_nothing_and_conntrackd_runs_only_for_its_router(converged, lab_inventory):
    lab, first = converged
    files = node_sh(lab, "net1", "ls %s %s" % (router_config_dir("ct"), router_config_dir("plain"))).split()
    assert files.count("conntrackd.conf") == 1, files  # ct has one, plain none
    for node in NODES:
        assert conntrackd_namespaces(lab, node) == [CT_NAMESPACE], node
    again = converge(lab, inventories=lab_inventory)
    counters = recap(again.stdout)
    assert counters and all(entry["changed"] == 0 for entry in counters.values()), again.stdout[-3000:]
    assert "changed" in first.stdout


def conntrackd_pid(lab, node):
    pids = node_sh(lab, node, "pgrep -x conntrackd; true").split()
    assert len(pids) <= 1, (node, pids)
    return int(pids[0]) if pids else None


def test_a_killed_conntrackd_is_started_again(converged, lab_inventory):
    """SIGKILL leaves its lock file behind; the next run removes it and starts a new one."""
    lab, _result = converged
    killed = conntrackd_pid(lab, "net2")
    node_sh(lab, "net2", "kill -KILL %d" % killed)
    wait_until(lambda: conntrackd_pid(lab, "net2"), 30, "the killed conntrackd to be gone", ok=lambda pid: pid is None)
    assert "conntrackd.lock" in node_sh(lab, "net2", "ls %s" % router_run_dir("ct"))
    result = converge(lab, inventories=lab_inventory)
    assert recap(result.stdout)["net2"]["changed"] == 1, result.stdout[-3000:]
    assert conntrackd_pid(lab, "net2") not in (None, killed)
    assert conntrackd_namespaces(lab, "net2") == [CT_NAMESPACE]


def test_switching_conntrackd_off_and_on_again(converged, lab_inventory):
    """Off: the daemon and its file go, notify.sh loses its calls, keepalived is reloaded
    (same pid). On again: it comes back on both nodes."""
    lab, _result = converged
    keepalived_before = {node: keepalived_pids(lab, node, "ct")[0] for node in NODES}
    routers = copy.deepcopy(INVENTORY["all"]["children"]["l3ha_network_nodes"]["vars"]["l3ha_routers"])
    routers[0]["conntrackd"] = False
    converge(lab, inventories=lab_inventory, extra_vars={"l3ha_routers": routers})
    for node in NODES:
        assert conntrackd_namespaces(lab, node) == [], node
        directory = router_config_dir("ct")
        listed = node_sh(lab, node, "ls %s; cat %s/%s" % (directory, directory, vocabulary.NOTIFY_SCRIPT))
        assert "conntrackd" not in listed
        assert keepalived_pids(lab, node, "ct")[0] == keepalived_before[node], node
    converge(lab, inventories=lab_inventory)
    for node in NODES:
        assert conntrackd_namespaces(lab, node) == [CT_NAMESPACE], node
        assert keepalived_pids(lab, node, "ct")[0] == keepalived_before[node], node


def test_removing_the_router_stops_its_conntrackd(converged, lab_inventory):
    lab, _result = converged
    routers = copy.deepcopy(INVENTORY["all"]["children"]["l3ha_network_nodes"]["vars"]["l3ha_routers"])
    routers[0]["state"] = "absent"
    converge(lab, inventories=lab_inventory, extra_vars={"l3ha_routers": routers})
    for node in NODES:
        assert node_sh(lab, node, "pgrep -x conntrackd; true").split() == [], node
        tops = [os.path.join(top, vocabulary.ROUTERS_SUBDIR) for top in (RUN_DIR, CONFIG_DIR)]
        listed = node_sh(lab, node, "ls %s %s" % tuple(tops))
        assert listed.split().count("ct") == 0, node
    converge(lab, inventories=lab_inventory)
    for node in NODES:
        assert conntrackd_namespaces(lab, node) == [CT_NAMESPACE], node
    wait_one_master(lab, NODES, "ct")


def test_tcp_connection_survives_crash_failover_only_with_conntrackd(converged, listener):
    lab, _result = converged
    victim = wait_one_master(lab, NODES, "ct")
    survivor = [node for node in NODES if node != victim][0]
    put_master_on(lab, "plain", victim)
    connections = {router: connect(lab, listener, router) for router in ROUTERS}
    try:
        # Sync traffic gets into the backup's namespace (its ruleset lets it in): the
        # backup's external cache holds ct's connection.
        client_port = connections["ct"].client.getsockname()[1]
        wait_until(lambda: "sport=%d dport=%d" % (client_port, PORT) in external_cache(lab, survivor), 30,
                   "ct's connection in the external cache of %s" % survivor)
        ruleset = node_sh(lab, survivor, "ip netns exec %s nft -j list ruleset" % CT_NAMESPACE)
        assert not inbound_ipv4_drops(ruleset), ruleset

        crashed_at = time.monotonic()
        lab.crash(victim)
        for router in ROUTERS:
            wait_until(lambda r=router: masters(lab, [survivor], r), 60,
                       "%s to become master of %s" % (survivor, router), ok=lambda seen: seen == [survivor])
        record_measurement("conntrackd-crash-failover", seconds_to_master=round(time.monotonic() - crashed_at, 2))

        outcome = {}
        for router, connection in sorted(connections.items()):
            pushed = connection.server_sends(b"after failover, server first\n")
            echoed = connection.client_sends_and_gets_echo(b"after failover, client\n")
            outcome[router] = (pushed, echoed)
        assert outcome["ct"] == (True, True), "with conntrackd the connection must keep working: %r" % outcome
        assert outcome["plain"] == (False, False), "without conntrackd the connection must break: %r" % outcome
        # It broke because the new master had no state for it and answered with a reset.
        assert "ConnectionResetError" in connections["plain"].errors, connections["plain"].errors
        assert connections["ct"].errors == []
    finally:
        for connection in connections.values():
            connection.close()
