"""Bad input never breaks a working network (issue 7, part 1).

One lab: the good inventory (tests/lab/inventory.yml, router r1 on net1 and net2) is
converged once. Then every bad case runs `ansible-playbook ... l3ha.routers.site` with
the case's variables on top (extra vars, so they win over the inventory), and must:
- fail;
- print a message naming the router (or node/option) and the field;
- leave every node exactly as it was: namespaces, links, addresses, routes, nftables,
  files with checksums and modes, processes (compared as snapshots).

Most cases keep r1 as it is and add a bad router r2, so a run that went ahead anyway
would show up as new objects on the nodes.
"""

import copy

import pytest
import yaml

from l3ha_lab.testing import converge, run_playbook, wait_one_master
from lab_helpers import DEFAULT_INVENTORY, differences, settled_snapshot, snapshot_all

NODES = ["net1", "net2"]

with open(DEFAULT_INVENTORY) as _handle:
    _GROUP_VARS = yaml.safe_load(_handle)["all"]["children"]["l3ha_network_nodes"]["vars"]
R1 = _GROUP_VARS["l3ha_routers"][0]
assert R1["name"] == "r1", "tests/lab/inventory.yml changed: the cases below expect router r1"

# A good second router on the same networks; cases break one field of it.
R2 = {
    "name": "r2",
    "tenant": "demo",
    "gateway": {"network": "ext", "address": "203.0.113.30/24", "gateway_ip": "203.0.113.1"},
    "interfaces": [{"network": "demo-net", "address": "10.0.0.129/25"}],
}


def with_r2(**changes):
    """l3ha_routers = [r1, r2 with `changes` (None deletes a field)]."""
    router = copy.deepcopy(R2)
    for key, value in changes.items():
        if value is None:
            router.pop(key, None)
        else:
            router[key] = value
    # r2's internal subnet must not overlap r1's, unless a case wants it to.
    return {"l3ha_routers": [R1, router]}


def routers(*entries):
    return {"l3ha_routers": [R1] + list(entries)}


GW = R2["gateway"]

# (case id, extra vars, substrings the failure output must contain)
CASES = [
    # Names that try shell or config injection, unicode, overlong values.
    ("name-semicolon", with_r2(name="r1;reboot"), ["router #1", "name", "r1;reboot"]),
    ("name-dollar-paren", with_r2(name="$(id)"), ["router #1", "name", "$(id)"]),
    ("name-backticks", with_r2(name="`id`"), ["router #1", "name", "`id`"]),
    ("name-newline", with_r2(name="r2\nreboot"), ["router #1", "name", "r2\\nreboot"]),
    ("name-unicode", with_r2(name="r\u00f6uter"), ["router #1", "name"]),
    ("name-overlong", with_r2(name="r" * 49), ["router #1", "name", "at most 48"]),
    ("name-missing", with_r2(name=None), ["router #1", "name None"]),
    ("tenant-injection", with_r2(tenant="demo; rm -rf /"), ["router 'r2'", "tenant"]),
    ("tenant-unicode", with_r2(tenant="d\u00e9mo"), ["router 'r2'", "tenant"]),
    # Duplicates and conflicts.
    ("router-twice", routers(copy.deepcopy(R1)), ["router 'r1'", "name is defined twice"]),
    ("vrid-pin-conflict", routers(dict(R2, vrid=7), {"name": "r3", "tenant": "demo", "vrid": 7}),
     ["router 'r3'", "vrid 7 is also pinned by router 'r2'"]),
    ("address-twice", with_r2(gateway=dict(GW, address="203.0.113.10/24")),
     ["router 'r2'", "gateway.address", "already used by router 'r1'"]),
    ("node-twice", dict(with_r2(), l3ha_tunnel_ip="192.0.2.11"),
     ["node 'net2'", "l3ha_tunnel_ip 192.0.2.11 is also used by node 'net1'"]),
    # Every planner rule on a router's fields.
    ("unknown-field", with_r2(gatway=GW), ["router 'r2'", "gatway is not a known field"]),
    ("state-bad", with_r2(state="gone"), ["router 'r2'", "state 'gone'"]),
    ("ha-not-bool", with_r2(ha="maybe"), ["router 'r2'", "ha 'maybe' is not a boolean"]),
    ("vrid-range", with_r2(vrid=255), ["router 'r2'", "vrid 255 is out of range"]),
    ("vrid-without-ha", with_r2(vrid=5, ha=False), ["router 'r2'", "vrid is set but ha is false"]),
    ("conntrackd-not-bool", with_r2(conntrackd="maybe"), ["router 'r2'", "conntrackd"]),
    ("conntrackd-without-ha", with_r2(conntrackd=True, ha=False), ["router 'r2'", "conntrackd is true but ha is false"]),
    ("min-above-max", with_r2(min_nodes=3, max_nodes=2), ["router 'r2'", "min_nodes 3 is above max_nodes 2"]),
    ("min-above-nodes", with_r2(min_nodes=3, max_nodes=3), ["router 'r2'", "min_nodes 3 but only 2 node(s)"]),
    ("zone-unknown", with_r2(availability_zones=["az9"]), ["router 'r2'", "availability_zones az9"]),
    ("gateway-network-unknown", with_r2(gateway=dict(GW, network="nowhere")),
     ["router 'r2'", "gateway.network 'nowhere'"]),
    ("gateway-address-empty", with_r2(gateway=dict(GW, address=[])), ["router 'r2'", "gateway.address is required"]),
    ("gateway-address-outside", with_r2(gateway=dict(GW, address="198.51.100.30/24", gateway_ip="198.51.100.1")),
     ["router 'r2'", "gateway.address 198.51.100.30/24 is outside network 'ext'"]),
    ("gateway-two-ipv4", with_r2(gateway=dict(GW, address=["203.0.113.30/24", "203.0.113.31/24"])),
     ["router 'r2'", "gateway.address has two IPv4 entries"]),
    ("gateway-ip-family", with_r2(gateway=dict(GW, address="2001:db8:ff::30/64", gateway_ip="203.0.113.1")),
     ["router 'r2'", "gateway.gateway_ip 203.0.113.1 has no gateway.address of its family"]),
    ("gateway-ip-is-own", with_r2(gateway=dict(GW, gateway_ip="203.0.113.30")),
     ["router 'r2'", "gateway.gateway_ip 203.0.113.30 is the router's own"]),
    ("gateway-not-dict", with_r2(gateway="ext"), ["router 'r2'", "gateway must be a dict"]),
    ("interfaces-not-list", with_r2(interfaces="demo-net"), ["router 'r2'", "interfaces must be a list"]),
    ("interfaces-empty-address", with_r2(interfaces=[{"network": "demo-net", "address": ""}]),
     ["router 'r2'", "interfaces[0].address"]),
    ("interface-network-address", with_r2(interfaces=[{"network": "demo-net", "address": "10.0.0.128/25"}]),
     ["router 'r2'", "interfaces[0].address", "network address"]),
    ("interface-ipv6-in-ipv4-field", with_r2(interfaces=[{"network": "demo-net", "address": "fd00:1::1"}]),
     ["router 'r2'", "interfaces[0].address"]),
    ("interface-on-gateway-network", with_r2(interfaces=[{"network": "ext", "address": "203.0.113.40/24"}]),
     ["router 'r2'", "interfaces[0].network 'ext' is already the gateway network"]),
    ("interfaces-overlap", with_r2(interfaces=[
        {"network": "demo-net", "address": "10.0.0.129/25"},
        {"network": "demo-net", "address": "10.0.0.130/26"}]),
     ["router 'r2'", "overlaps"]),
    ("route-family", with_r2(routes=[{"destination": "10.9.0.0/16", "nexthop": "fd00:1::9"}]),
     ["router 'r2'", "routes[0].nexthop fd00:1::9 is not of the destination's family"]),
    ("route-not-connected", with_r2(routes=[{"destination": "10.9.0.0/16", "nexthop": "10.5.0.1"}]),
     ["router 'r2'", "routes[0].nexthop 10.5.0.1 is not in a subnet"]),
    ("fip-without-gateway", with_r2(gateway=None, floating_ips=[{"external": "203.0.113.50",
                                                                 "internal": "10.0.0.140"}]),
     ["router 'r2'", "floating_ips[0] needs a gateway"]),
    ("fip-family", with_r2(floating_ips=[{"external": "203.0.113.50", "internal": "fd00:1::5"}]),
     ["router 'r2'", "floating_ips[0].internal fd00:1::5 is not of the external address's family"]),
    ("fip-outside", with_r2(floating_ips=[{"external": "198.51.100.50", "internal": "10.0.0.140"}]),
     ["router 'r2'", "floating_ips[0].external 198.51.100.50 is outside"]),
    # Networks and options.
    ("network-vni-in-ha-range", {"l3ha_networks": dict(_GROUP_VARS["l3ha_networks"],
                                                       extra={"type": "vxlan", "vni": 2001})},
     ["network 'extra'", "vni 2001 is inside ha_vni_range"]),
    ("network-reserved-name", {"l3ha_networks": dict(
        _GROUP_VARS["l3ha_networks"], **{"ha-x": {"type": "bridge", "bridge": "br-x"}})},
     ["network 'ha-x'", "name"]),
    ("ha-cidr-overlaps-vips", {"l3ha_ha_network_cidr": "169.254.0.0/16"},
     ["option ha_network_cidr", "overlaps 169.254.0.0/24"]),
    ("vni-range-reversed", {"l3ha_ha_vni_range": [2999, 2000]}, ["option ha_vni_range", "first 2999 is above last 2000"]),
    # Role and module arguments.
    ("routers-not-list", {"l3ha_routers": {"r1": R1}}, ["l3ha_routers", "list"]),
    ("supervisor-choice", {"l3ha_supervisor": "cron"}, ["l3ha_supervisor", "cron"]),
    ("advert-int-type", {"l3ha_advert_int": "fast"}, ["l3ha_advert_int", "convert to float"]),
    ("profile-choice", {"l3ha_profile": "huge"}, ["l3ha_profile", "huge"]),
    ("max-nodes-type", {"l3ha_max_nodes_per_router": "three"}, ["l3ha_max_nodes_per_router", "three"]),
    ("notify-hook-state", {"l3ha_notify_hooks": {"mastr": ["true"]}},
     ["router r1", "l3ha_notify_hooks", "mastr"]),
    ("uplink-interval-zero", {"l3ha_uplink_monitor_interval": 0}, ["uplink_monitor", "interval", "0.01 to 60"]),
    ("uplink-port-type", {"l3ha_uplink_monitor_port": "udp"}, ["l3ha_uplink_monitor_port", "udp"]),
]


@pytest.fixture(scope="module")
def converged(lab):
    converge(lab)
    wait_one_master(lab, NODES, "r1")
    return settled_snapshot(lab, NODES)


def test_table_is_big_enough():
    ids = [case[0] for case in CASES]
    assert len(set(ids)) == len(ids) >= 30


@pytest.mark.parametrize("extra_vars,expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_fails_before_any_change(lab, converged, extra_vars, expected):
    result = run_playbook(lab, extra_vars=extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, "the run passed:\n" + output[-4000:]
    missing = [text for text in expected if text not in output]
    assert not missing, "message lacks %r:\n%s" % (missing, output[-4000:])
    changed = differences(converged, snapshot_all(lab, NODES))
    assert not changed, "nodes changed:\n" + "\n".join(changed[:40])
