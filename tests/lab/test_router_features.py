"""Router features run on a kernel (issue 16, acceptance): real namespaces, keepalived and
traffic in the lab.

- A tenant with 300 HA routers on 3 nodes (a lab of its own, inventory written into
  tmp_path): one master each, (segment, VRID) unique, the routers of the second HA
  segment pass traffic.
- Extra routes (only on the master, traffic over them, also after a failover) and a
  router without HA (one replica, no VRRP) passing traffic with SNAT.
- Validation with keepalived hidden from the controller's PATH: a broken keepalived
  template is rejected on the node, before any node changes.
- Silent backups: tcpdump on the root-side peer of every backup replica's qr-/qg- port,
  across a converge, a reload and a crash failover: no frame leaves a replica while it
  is a backup.

The tests after the first share one lab from tests/lab/features_inventory.yml. Durations
and outages are recorded (`record_measurement`), never asserted.
"""

import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from l3ha_lab.collection import vocabulary
from l3ha_lab.model import VXLAN_PORT
from l3ha_lab.testing import (CONFIG_DIR, PYTHON, REPO, VENV_BIN, answers, converge, keepalived_pids, masters,
                              masters_by_router, namespace_of, node_sh, node_states, parse_transitions, probing,
                              router_config_dir, router_run_dir, run_playbook, TRANSITIONS_LOG, wait_one_master,
                              wait_settled, wait_until)
from lab_helpers import differences, record_measurement, settled_snapshot, snapshot_all, vip_holders

INVENTORY = str(Path(__file__).with_name("features_inventory.yml"))
NODES = ["net1", "net2", "net3"]
UPSTREAM = "203.0.113.1"
BEHIND_NEXT_HOP = "10.99.0.1"      # client-net-b's address in net-b's second cidr
NEXT_HOP = "10.20.2.254"           # rt's extra route: 10.99.0.0/16 via this
EXTRA_ROUTE = "10.99.0.0/16 via %s" % NEXT_HOP

with open(INVENTORY) as _handle:
    BASE_VARS = yaml.safe_load(_handle)["all"]["children"]["l3ha_network_nodes"]["vars"]
ROUTERS = {router["name"]: router for router in BASE_VARS["l3ha_routers"]}
assert ROUTERS["rt"]["routes"][0]["nexthop"] == NEXT_HOP, "features_inventory.yml changed: rt's next hop"


@pytest.fixture(scope="module")
def lab_inventory():
    return [INVENTORY]


@pytest.fixture(scope="module")
def converged(lab):
    # The host behind rt's next hop: client-net-b answers for 10.99.0.1 and routes back
    # through rt (its default route); the next hop address is the one thing the lab does
    # not make from the inventory.
    node_sh(lab, "client-net-b", "ip addr add %s/24 dev net-b" % NEXT_HOP)
    converge(lab)
    wait_settled(lab, NODES, list(ROUTERS))
    return lab


def site(lab, **kwargs):
    return converge(lab, inventories=[INVENTORY], **kwargs)


# ---------------------------------------------------------------- 300 routers in one tenant

BIG_ROUTERS = 300
# The planner gives a tenant one HA segment per 254 VRIDs, in name order: big-r255 and
# big-r300 are on the second. Each gets a gateway and an internal network with a client.
BIG_TRAFFIC = {"big-r255": ("big-a", "10.30.1"), "big-r300": ("big-b", "10.30.2")}


def big_inventory(path):
    """A tenant of 300 routers on 3 nodes, 2 replicas each, the large profile (0.5 s adverts):
    the cheapest that still has 600 keepalived instances. Only the traffic routers have
    ports besides the HA port."""
    routers = [{"name": "big-r%03d" % number, "tenant": "big"} for number in range(1, BIG_ROUTERS + 1)]
    networks = {"ext": {"type": "bridge", "bridge": "br-ex", "cidr": "203.0.113.0/24", "external": True}}
    for index, (name, (network, prefix)) in enumerate(sorted(BIG_TRAFFIC.items())):
        networks[network] = {"type": "vxlan", "vni": 1301 + index, "cidr": prefix + ".0/24"}
        router = routers[int(name.split("-r")[1]) - 1]
        router["gateway"] = {"network": "ext", "address": "203.0.113.%d/24" % (50 + index), "gateway_ip": UPSTREAM}
        router["interfaces"] = [{"network": network, "address": prefix + ".1/24"}]
    inventory = {"all": {"children": {"l3ha_network_nodes": {
        "hosts": {node: None for node in NODES},
        "vars": {"l3ha_profile": "large", "l3ha_max_nodes_per_router": 2, "l3ha_networks": networks,
                 "l3ha_routers": routers}}}}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return str(path)


# Runs in a node: (name, segment, vrid, segment vni) of every router record there.
RECORDS_SCRIPT = r'''
import glob, json, os, sys
found = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*", sys.argv[2]))):
    with open(path) as handle:
        record = json.load(handle)
    found.append([record["name"], record["segment"], record["vrid"], record["metadata"]["segment_vni"]])
print(json.dumps(found))
'''


def router_records(lab, node):
    """[(router, segment, vrid, segment vni)] of the router records on the node."""
    base = os.path.join(CONFIG_DIR, vocabulary.ROUTERS_SUBDIR)
    result = lab.run(node, [PYTHON, "-c", RECORDS_SCRIPT, base, vocabulary.RECORD_FILE], timeout=60)
    assert result.returncode == 0, "%s: reading the router records failed: %s" % (node, result.stderr)
    return [tuple(entry) for entry in json.loads(result.stdout)]


def test_tenant_with_300_routers_uses_a_second_segment(lab_factory, tmp_path):
    start = time.monotonic()
    inventory = big_inventory(tmp_path / "big_inventory.yml")
    lab = lab_factory([inventory])
    up = time.monotonic()
    run = converge(lab, timeout=900)
    converged_at = time.monotonic()
    names = ["big-r%03d" % number for number in range(1, BIG_ROUTERS + 1)]

    def master_counts():
        found = masters_by_router(node_states(lab, NODES))
        return {name: len(found.get(name, [])) for name in names}

    wait_until(master_counts, 180, "exactly one master for each of the %d routers" % BIG_ROUTERS, interval=1,
               ok=lambda counts: set(counts.values()) == {1})
    settled = time.monotonic()

    replicas = {}   # router -> {node: (segment, vrid, vni)}
    for node in NODES:
        for name, segment, vrid, vni in router_records(lab, node):
            replicas.setdefault(name, {})[node] = (segment, vrid, vni)
    assert sorted(replicas) == names
    assert {name: len(nodes) for name, nodes in replicas.items() if len(nodes) != 2} == {}
    disagreeing = {name: nodes for name, nodes in replicas.items() if len(set(nodes.values())) != 1}
    assert not disagreeing, "replicas of a router disagree on segment/VRID: %r" % disagreeing
    claims = {name: next(iter(nodes.values())) for name, nodes in replicas.items()}
    pairs = {}
    for name, (segment, vrid, _vni) in sorted(claims.items()):
        pairs.setdefault((segment, vrid), []).append(name)
    assert {pair: held for pair, held in pairs.items() if len(held) > 1} == {}
    assert all(1 <= vrid <= 254 for _segment, vrid, _vni in claims.values())
    segments = {}
    for name, (segment, _vrid, vni) in claims.items():
        segments.setdefault((segment, vni), []).append(name)
    assert len(segments) == 2 and len({vni for _segment, vni in segments}) == 2, sorted(segments)
    first, second = sorted(segments.values(), key=len, reverse=True)
    assert (len(first), len(second)) == (254, BIG_ROUTERS - 254)
    assert set(BIG_TRAFFIC) <= set(second), "the traffic routers are not on the second segment: %r" % sorted(second)

    for name, (network, _prefix) in sorted(BIG_TRAFFIC.items()):
        wait_until(lambda: answers(lab, "client-" + network, UPSTREAM), 30,
                   "client-%s to reach upstream through %s" % (network, name), interval=0.2)
    record_measurement("300 HA routers in one tenant on 3 nodes", lab_up_s=round(up - start, 1),
                       converge_s=round(converged_at - up, 1), playbook_s=round(run.seconds, 1),
                       one_master_each_after_converge_s=round(settled - converged_at, 1),
                       total_s=round(time.monotonic() - start, 1),
                       segments={segment: len(held) for (segment, _vni), held in segments.items()})


# ---------------------------------------------------------------- extra routes, ha: false

def routes_of(lab, node, router):
    return node_sh(lab, node, "ip -n %s route show" % namespace_of(router))


def extra_route_holders(lab, router="rt"):
    return [node for node in NODES if EXTRA_ROUTE in routes_of(lab, node, router)]


def namespace_nodes(lab, router):
    """Nodes where the router's namespace exists."""
    return [node for node in NODES
            if namespace_of(router) in node_sh(lab, node, "ip netns list").split()]


FETCH = "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())"


def http_source(lab, endpoint, url):
    """The source address upstream's HTTP server saw for a GET from `endpoint` (SNAT)."""
    proc = lab.run(endpoint, [PYTHON, "-c", FETCH, url], timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_extra_routes_only_on_the_master_and_carry_traffic(converged):
    lab = converged
    master = wait_one_master(lab, NODES, "rt")
    assert extra_route_holders(lab) == [master], {node: routes_of(lab, node, "rt") for node in NODES}
    wait_until(lambda: answers(lab, "client-net-a", BEHIND_NEXT_HOP), 30,
               "client-net-a to reach %s over rt's extra route" % BEHIND_NEXT_HOP, interval=0.2)
    # The router resolved the next hop: the traffic went over the extra route (rt has no
    # address in 10.99/16, and upstream has no route there).
    neighbour = node_sh(lab, master, "ip -n %s neigh show %s" % (namespace_of("rt"), NEXT_HOP))
    assert "lladdr" in neighbour, neighbour

    # A clean stop of the master's keepalived: the route leaves with it and comes up on
    # the new master only.
    parent, _child = keepalived_pids(lab, master, "rt")
    node_sh(lab, master, "kill -TERM %d" % parent)
    new_master = wait_until(lambda: masters(lab, NODES, "rt"), 30, "another replica to take rt over",
                            ok=lambda seen: len(seen) == 1 and seen != [master])[0]
    wait_until(lambda: extra_route_holders(lab), 30, "the extra route on the new master only",
               ok=lambda holders: holders == [new_master])
    wait_until(lambda: answers(lab, "client-net-a", BEHIND_NEXT_HOP), 30,
               "client-net-a to reach %s through the new master %s" % (BEHIND_NEXT_HOP, new_master), interval=0.2)
    site(lab)   # the reconciler (the lab's supervisor) starts the stopped keepalived again
    wait_settled(lab, NODES, list(ROUTERS))
    assert extra_route_holders(lab) == masters(lab, NODES, "rt") == [new_master]


def test_router_without_ha_passes_traffic(converged):
    lab = converged
    [node] = namespace_nodes(lab, "solo")
    record = json.loads(node_sh(lab, node, "cat %s" % os.path.join(router_config_dir("solo"), vocabulary.RECORD_FILE)))
    assert (record["ha"], record["vrid"], record["segment"], record["peers"]) == (False, None, None, [])
    config = node_sh(lab, node, "cat %s" % os.path.join(router_config_dir("solo"), vocabulary.KEEPALIVED_CONF))
    assert "vrrp_instance" not in config
    ports = node_sh(lab, node, "ip -n %s -br link" % namespace_of("solo"))
    assert vocabulary.PORT_PREFIXES["ha"] not in ports, ports
    assert "default via %s" % UPSTREAM in routes_of(lab, node, "solo")
    wait_until(lambda: answers(lab, "client-net-c", UPSTREAM), 30, "client-net-c to reach upstream through solo",
               interval=0.2)
    # SNAT to solo's gateway address: upstream saw the router, not the client.
    assert http_source(lab, "client-net-c", "http://%s/" % UPSTREAM) == "203.0.113.11"


# ---------------------------------------------------------------- validation on the node

def path_without(program, tmp_path):
    """A directory of symlinks to every command on this PATH except `program` (the first
    of each name wins, as PATH lookup would)."""
    hidden = tmp_path / ("path-without-" + program)
    hidden.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory) or os.path.realpath(directory) == os.path.realpath(VENV_BIN):
            continue
        for name in sorted(os.listdir(directory)):
            target = os.path.join(directory, name)
            if name != program and not (hidden / name).exists() and os.access(target, os.X_OK) \
                    and not os.path.isdir(target):
                (hidden / name).symlink_to(target)
    path = os.pathsep.join([VENV_BIN, str(hidden)])
    assert shutil.which(program, path=path) is None
    return path


def broken_keepalived_template(tmp_path):
    """The role's keepalived.conf.j2 with a keyword keepalived -t rejects."""
    text = (Path(REPO) / "roles" / "l3ha" / "templates" / "keepalived.conf.j2").read_text()
    broken = text.replace("\n    nopreempt\n", "\n    nopreempt_typo\n")
    assert broken != text, "the role's keepalived.conf.j2 no longer has a 'nopreempt' line"
    path = tmp_path / "keepalived.conf.j2"
    path.write_text(broken)
    return str(path)


def test_broken_template_is_rejected_on_the_node_when_the_controller_has_no_keepalived(converged, tmp_path):
    lab = converged
    before = settled_snapshot(lab, NODES)
    result = run_playbook(lab, extra_vars={"l3ha_keepalived_template": broken_keepalived_template(tmp_path)},
                          env={"PATH": path_without("keepalived", tmp_path)})
    output = result.stdout + result.stderr
    assert result.returncode != 0, "the run passed:\n" + result.tail()
    for expected in ("router rt: keepalived.conf does not pass keepalived -t (validated on the node)",
                     "nopreempt_typo"):
        assert expected in output, "message lacks %r:\n%s" % (expected, result.tail())
    assert "validated on the controller" not in output
    changed = differences(before, snapshot_all(lab, NODES))
    assert not changed, "nodes changed:\n" + "\n".join(changed[:40])


# ---------------------------------------------------------------- silent backups

# A new master sends its gratuitous ARPs as keepalived enters MASTER; notify.sh logs the
# transition a moment later. Frames up to this long before a logged MASTER count as the
# master's (an attribution margin, not a timing check: the measured lead is recorded).
MASTER_LEAD = 1.0
CAPTURED_PORTS = (vocabulary.PORT_PREFIXES["gateway"], vocabulary.PORT_PREFIXES["internal"])


def port_peers(lab, node, router):
    """{router port: its veth peer in the node's root namespace} for the qg-/qr- ports."""
    inside = json.loads(node_sh(lab, node, "ip -j -n %s link show" % namespace_of(router)))
    root = {link["ifindex"]: link["ifname"] for link in json.loads(node_sh(lab, node, "ip -j link show"))}
    return {link["ifname"]: root[link["link_index"]] for link in inside
            if link["ifname"].startswith(CAPTURED_PORTS)}


class Capture:
    """tcpdump in a node on one interface, with epoch time stamps, into a file. Default: the
    frames it receives (on a router port's peer: what the router namespace sent out of the
    veth's other end); direction "out" and a filter: what the node sends out of a link."""

    def __init__(self, lab, node, port, interface, directory, direction="in", expression=""):
        self.lab, self.node, self.port, self.interface = lab, node, port, interface
        self.out = directory / ("%s-%s-%s.txt" % (node, port, direction))
        self.err = directory / ("%s-%s-%s.err" % (node, port, direction))
        script = "echo $$ >&2; exec tcpdump -i %s -Q %s -e -n -tt -l -p %s" % (
            interface, direction, shlex.quote(expression) if expression else "")
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(lab.exec_argv(node, ["sh", "-c", script]), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        wait_until(lambda: "listening on" in self.err.read_text() or self.proc.poll() is not None, 30,
                   "tcpdump on %s %s to listen" % (node, interface))
        assert self.proc.poll() is None, "tcpdump on %s %s: %s" % (node, interface, self.err.read_text())
        self.pid = int(self.err.read_text().split()[0])   # in the node's pid namespace

    def stop(self):
        if self.proc.poll() is None:
            self.lab.run(self.node, ["kill", "-INT", str(self.pid)], timeout=30)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def frames(self):
        """[(epoch, tcpdump lines)]; a line without a time stamp (a decoded VXLAN frame's
        inner header) belongs to the frame before it."""
        found = []
        for line in self.out.read_text().splitlines():
            try:
                found.append((float(line.split()[0]), line))
            except (IndexError, ValueError):
                if found:
                    found[-1] = (found[-1][0], found[-1][1] + " | " + line.strip())
        return found


def router_macs(lab, node, router):
    """{port key: MAC} of the router's qg-/qr- ports (the same on every replica)."""
    path = os.path.join(router_config_dir(router), vocabulary.RECORD_FILE)
    macs = json.loads(node_sh(lab, node, "cat %s" % path))["metadata"]["macs"]
    return {key: mac for key, mac in macs.items() if key != "ha"}


def node_egress_captures(lab, node, macs, directory):
    """Captures of what `node` sends to the lab's networks with one of `macs` as source:
    out of its uplinks (bridge networks) and, inside VXLAN, out of its underlay NIC. They
    see a replica's ports from the moment they are made, unlike captures on the peers."""
    uplinks = [link["ifname"] for link in json.loads(node_sh(lab, node, "ip -j link show"))
               if link["ifname"].startswith("uplink")]
    by_source = " or ".join("ether src %s" % mac for mac in sorted(macs.values()))
    # VXLAN over IPv4: the inner frame starts 16 bytes into the UDP header (UDP 8, VXLAN 8),
    # its source MAC 6 bytes later.
    inner = " or ".join("(udp[22:4] = 0x%s and udp[26:2] = 0x%s)" % (mac.replace(":", "")[:8],
                                                                     mac.replace(":", "")[8:])
                        for mac in sorted(macs.values()))
    captures = [Capture(lab, node, uplink, uplink, directory, "out", by_source) for uplink in uplinks]
    captures.append(Capture(lab, node, "underlay", "ul0", directory, "out",
                            "udp dst port %d and (%s)" % (VXLAN_PORT, inner)))
    return captures


def transition_times(lab, node, router):
    path = os.path.join(router_run_dir(router), TRANSITIONS_LOG)
    return parse_transitions(node_sh(lab, node, "cat %s 2>/dev/null; true" % path))


def master_periods(logged):
    """[(from, until)] of the MASTER periods in a transitions log (until None: still master)."""
    periods = []
    for index, (at, state) in enumerate(logged):
        if state == "master" and (not periods or periods[-1][1] is not None):
            following = [t for t, later in logged[index + 1:] if later != "master"]
            periods.append((at, following[0] if following else None))
    return periods


def sent_as_backup(frames, periods):
    """The frames outside every master period (widened by MASTER_LEAD before it)."""
    def as_master(at):
        return any(start - MASTER_LEAD <= at and (until is None or at <= until) for start, until in periods)
    return [(at, line) for at, line in frames if not as_master(at)]


CAPTURE_WINDOW_S = 60.0   # how long the backups' ports are watched, at least


def test_backups_send_nothing_across_converge_reload_and_failover(converged, tmp_path):
    lab = converged
    states = wait_settled(lab, NODES, list(ROUTERS))
    master = wait_one_master(lab, NODES, "rt")
    backups = [node for node in NODES if states[node].get("rt") == "backup"]
    assert len(backups) == 2, states
    pids_before = {node: keepalived_pids(lab, node, "rt")[0] for node in backups}
    macs = router_macs(lab, master, "rt")
    captures = []
    try:
        for node in backups:
            for port, peer in sorted(port_peers(lab, node, "rt").items()):
                captures.append(Capture(lab, node, port, peer, tmp_path))
        assert len(captures) == 2 * 3, [(c.node, c.port) for c in captures]   # qg-, 2 x qr- each
        window_start = time.time()
        with probing(lab, "silent", "client-net-a", UPSTREAM) as probe:
            # A converge that reconfigures rt: a new floating IP (addresses and nftables).
            routers = [dict(ROUTERS["rt"], floating_ips=[{"external": "203.0.113.21", "internal": "10.20.1.50"}]),
                       ROUTERS["solo"]]
            site(lab, extra_vars={"l3ha_routers": routers})
            wait_settled(lab, NODES, list(ROUTERS))
            assert vip_holders(lab, NODES, "rt", "203.0.113.21") == [master]
            # A reload: only keepalived.conf changes (a GARP setting), keepalived gets SIGHUP
            # and reports its state again (fifo_write_vrrp_states_on_reload).
            logged = {node: len(transition_times(lab, node, "rt")) for node in backups}
            site(lab, extra_vars={"l3ha_routers": routers, "l3ha_garp_master_repeat": 4})
            wait_settled(lab, NODES, list(ROUTERS))
            for node in backups:
                wait_until(lambda node=node: transition_times(lab, node, "rt")[logged[node]:], 30,
                           "keepalived on %s to report its state after the reload" % node)
            reloaded = {node: keepalived_pids(lab, node, "rt")[0] for node in backups}
            assert reloaded == pids_before, "keepalived was restarted, not reloaded: %r -> %r" % (
                pids_before, reloaded)
            # A crash of the master's node: one backup takes over, the other stays backup.
            lab.crash(master)
            crashed_at = time.time()
            new_master = wait_until(lambda: masters(lab, backups, "rt"), 30, "a backup to take rt over",
                                    ok=lambda seen: len(seen) == 1)[0]
            wait_until(lambda: answers(lab, "client-net-a", UPSTREAM), 30, "traffic through the new master",
                       interval=0.1)
            # The capture of what the new master sends inside VXLAN must see its qr- traffic
            # (a check of the filter); the booted node's new replica is captured from the
            # moment its ports are made.
            controls = node_egress_captures(lab, new_master, macs, tmp_path)
            captures += controls
            lab.boot(master)
            restored = node_egress_captures(lab, master, macs, tmp_path)
            captures += restored
            site(lab, extra_vars={"l3ha_routers": routers, "l3ha_garp_master_repeat": 4})
            wait_settled(lab, NODES, list(ROUTERS))
            assert masters(lab, NODES, "rt") == [new_master]
            # the rest of the capture window, with the cluster settled (the 60 s)
            time.sleep(max(0.0, CAPTURE_WINDOW_S - (time.time() - window_start)))
    finally:
        for capture in captures:
            capture.stop()
    window = time.time() - window_start

    offenders, counts, lead = [], {}, None
    for capture in captures:
        logged = transition_times(lab, capture.node, "rt")
        periods = master_periods(logged)
        frames = capture.frames()
        counts["%s %s" % (capture.node, capture.port)] = len(frames)
        offenders += ["%s %s (%s): %s" % (capture.node, capture.port, capture.interface, line)
                      for _at, line in sent_as_backup(frames, periods)]
        if capture.node == new_master and capture not in controls:
            took_over = periods[-1][0] if periods else None
            assert took_over is not None and took_over > crashed_at - MASTER_LEAD, (logged, crashed_at)
            first = min([at for at, _line in frames if at >= took_over - MASTER_LEAD], default=None)
            if first is not None:
                lead = took_over - first if lead is None else max(lead, took_over - first)
    record_measurement("silent backups: converge, reload, crash failover", window_s=round(window, 1),
                       frames_per_port=counts, new_master=new_master, crashed=master,
                       first_frame_before_logged_master_s=None if lead is None else round(lead, 3),
                       outage_s=probe.get("longest_gap"), probe_sent=probe.get("sent"),
                       probe_received=probe.get("received"))
    # The capture works: the replica that took over sent from its qg- port once master
    # (gratuitous ARPs, the probe's traffic).
    gateway = [c for c in captures if c.node == new_master and c.port.startswith(CAPTURED_PORTS[0])]
    assert gateway and gateway[0].frames(), "no frame captured from the new master's %s" % gateway
    underlay = [c for c in controls if c.port == "underlay"]
    assert underlay[0].frames(), "no VXLAN frame with rt's MACs captured from the new master"
    assert restored and master_periods(transition_times(lab, master, "rt")) == [], "the restored replica was master"
    assert not offenders, "frames sent by backup replicas:\n" + "\n".join(offenders[:60])
