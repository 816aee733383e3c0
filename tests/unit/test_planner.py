"""Table tests for the planner: every validation error, and every placement/allocation rule."""
import copy
import hashlib

import pytest

from test_planner_helpers import NETWORKS, bare, entry, facts_of, nodes, ok, replicas, router, run

TWO = nodes("az1", "az2")


def _set(path, value):
    """A mutation of the base inventory: set routers[i].a.b = value."""
    def mutate(inv):
        target = inv
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _base():
    floating = [{"external": "203.0.113.50", "internal": "10.0.2.5"}]
    return {"routers": [router("r1", 1), router("r2", 2, floating_ips=floating)],
            "networks": copy.deepcopy(NETWORKS), "nodes": nodes(), "options": {}}


ERRORS = [
    # names
    ("name pattern", _set(("routers", 0, "name"), "R1"), "router #0: name 'R1' must match"),
    ("name injection", _set(("routers", 0, "name"), "r1;reboot"), "router #0: name 'r1;reboot' must match"),
    ("name with a newline", _set(("routers", 0, "name"), "r1\n"), "router #0: name 'r1\\n' must match"),
    ("name in unicode", _set(("routers", 0, "name"), "r\u00e9"), "router #0: name 'r\u00e9' must match"),
    ("tenant with a newline", _set(("routers", 0, "tenant"), "demo\n"), "router 'r1': tenant 'demo\\n' must match"),
    ("name length", _set(("routers", 0, "name"), "r" * 49), "at most 48 characters"),
    ("duplicate name", _set(("routers", 1, "name"), "r1"), "router 'r1': name is defined twice (entries #0 and #1)"),
    ("unknown field", _set(("routers", 0, "colour"), "red"), "router 'r1': colour is not a known field"),
    ("bad master service", _set(("routers", 0, "master_services"), [{"name": "md"}]),
     "router 'r1': master_services[0].command must be a non-empty list"),
    ("bad tenant", _set(("routers", 0, "tenant"), "Demo!"), "router 'r1': tenant 'Demo!' must match"),
    ("bad state", _set(("routers", 0, "state"), "gone"), "router 'r1': state 'gone' is not one of present, absent"),
    # networks and addresses
    ("unknown gateway network", _set(("routers", 0, "gateway", "network"), "nope"),
     "router 'r1': gateway.network 'nope' is not in l3ha_networks"),
    ("unknown interface network", _set(("routers", 0, "interfaces", 0, "network"), "nope"),
     "router 'r1': interfaces[0].network 'nope' is not in l3ha_networks"),
    ("address without prefix", _set(("routers", 0, "interfaces", 0, "address"), "10.0.1.1"),
     "router 'r1': interfaces[0].address '10.0.1.1' is not an address with a prefix"),
    ("network address as interface", _set(("routers", 0, "interfaces", 0, "address"), "10.0.1.0/24"),
     "router 'r1': interfaces[0].address 10.0.1.0/24 is the network address of 10.0.1.0/24"),
    ("bad gateway_ip", _set(("routers", 0, "gateway", "gateway_ip"), "203.0.113.300"),
     "router 'r1': gateway.gateway_ip '203.0.113.300' is not an IP address"),
    ("gateway_ip outside", _set(("routers", 0, "gateway", "gateway_ip"), "203.0.114.1"),
     "router 'r1': gateway.gateway_ip 203.0.114.1 is outside 203.0.113.0/24"),
    ("gateway_ip family without address", _set(("routers", 0, "gateway", "gateway_ip"), ["203.0.113.1", "2001:db8:ff::1"]),
     "router 'r1': gateway.gateway_ip 2001:db8:ff::1 has no gateway.address of its family"),
    ("two addresses of a family", _set(("routers", 0, "gateway", "address"), ["203.0.113.11/24", "203.0.113.12/24"]),
     "router 'r1': gateway.address has two IPv4 entries"),
    ("missing gateway address", _set(("routers", 0, "gateway", "address"), None), "router 'r1': gateway.address is required"),
    ("gateway address outside network cidr", _set(("routers", 0, "gateway", "address"), "198.51.100.5/24"),
     "router 'r1': gateway.address 198.51.100.5/24 is outside network 'ext'"),
    ("overlapping internal subnets", _set(("routers", 0, "interfaces"), [
        {"network": "net-a", "address": "10.0.1.1/24"}, {"network": "net-a", "address": "10.0.1.129/25"}]),
     "router 'r1': interfaces (network 'net-a') address 10.0.1.129/25 overlaps interfaces (network 'net-a') address 10.0.1.1/24"),
    ("interface on the gateway network", _set(("routers", 0, "interfaces", 0), {"network": "ext", "address": "203.0.113.99/24"}),
     "router 'r1': interfaces[0].network 'ext' is already the gateway network"),
    ("floating ip outside external subnet", _set(("routers", 1, "floating_ips", 0, "external"), "198.51.100.7"),
     "router 'r2': floating_ips[0].external 198.51.100.7 is outside the external subnet 203.0.113.0/24"),
    ("floating internal not internal", _set(("routers", 1, "floating_ips", 0, "internal"), "10.9.9.9"),
     "router 'r2': floating_ips[0].internal 10.9.9.9 is not in an internal subnet of the router"),
    ("floating ip across families", _set(("routers", 1, "floating_ips", 0, "internal"), "fd00:1::5"),
     "router 'r2': floating_ips[0].internal fd00:1::5 is not of the external address's family"),
    ("floating ip twice", _set(("routers", 0, "floating_ips"), [{"external": "203.0.113.50", "internal": "10.0.1.5"}]),
     "floating_ips[0].external 203.0.113.50 on network 'ext' is already used by router"),
    ("floating ip is a gateway address", _set(("routers", 1, "floating_ips", 0, "external"), "203.0.113.11"),
     "router 'r2': floating_ips[0].external 203.0.113.11 on network 'ext' is already used by router 'r1' (gateway.address)"),
    ("floating ip without gateway", lambda inv: inv["routers"][1].pop("gateway"),
     "router 'r2': floating_ips[0] needs a gateway"),
    ("gateway address twice", _set(("routers", 1, "gateway", "address"), "203.0.113.11/24"),
     "router 'r2': gateway.address 203.0.113.11 on network 'ext' is already used by router 'r1'"),
    ("route nexthop not connected", _set(("routers", 0, "routes"), [{"destination": "10.9.0.0/16", "nexthop": "10.7.0.1"}]),
     "router 'r1': routes[0].nexthop 10.7.0.1 is not in a subnet of the router"),
    ("route family mismatch", _set(("routers", 0, "routes"), [{"destination": "fd00:9::/64", "nexthop": "10.0.1.254"}]),
     "router 'r1': routes[0].nexthop 10.0.1.254 is not of the destination's family"),
    ("route destination host bits", _set(("routers", 0, "routes"), [{"destination": "10.9.0.1/16", "nexthop": "10.0.1.254"}]),
     "router 'r1': routes[0].destination 10.9.0.1/16 has host bits set (the network is 10.9.0.0/16)"),
    # VRIDs, counts, zones
    ("vrid out of range", _set(("routers", 0, "vrid"), 255), "router 'r1': vrid 255 is out of range 1..254"),
    ("vrid pinned twice", lambda inv: [r.update(vrid=7) for r in inv["routers"]],
     "router 'r2': vrid 7 is also pinned by router 'r1' of tenant 'demo'"),
    ("min above max", lambda inv: inv["routers"][0].update(min_nodes=3, max_nodes=2),
     "router 'r1': min_nodes 3 is above max_nodes 2"),
    ("non-HA with min_nodes 2", lambda inv: inv["routers"][0].update(ha=False, min_nodes=2),
     "router 'r1': min_nodes 2 is above 1 but ha is false"),
    ("non-HA with a vrid", lambda inv: inv["routers"][0].update(ha=False, vrid=3),
     "router 'r1': vrid is set but ha is false"),
    ("ha not a boolean", _set(("routers", 0, "ha"), "maybe"), "router 'r1': ha 'maybe' is not a boolean"),
    ("not enough nodes", lambda inv: inv["routers"][0].update(min_nodes=4, max_nodes=0),
     "router 'r1': min_nodes 4 but only 3 node(s) available: net1, net2, net3"),
    ("unknown zone", _set(("routers", 0, "availability_zones"), ["az9"]),
     "router 'r1': availability_zones az9 have no node in the group (zones: az1, az2)"),
    # nodes
    ("no nodes", _set(("nodes",), {}), "nodes: there are no network nodes in the group"),
    ("missing tunnel ip", lambda inv: inv["nodes"]["net2"].pop("tunnel_ip"),
     "node 'net2': l3ha_tunnel_ip is missing; vxlan segments need it"),
    ("duplicate tunnel ip", _set(("nodes", "net3", "tunnel_ip"), "192.0.2.11"),
     "node 'net3': l3ha_tunnel_ip 192.0.2.11 is also used by node 'net1'"),
    ("bad tunnel ip", _set(("nodes", "net3", "tunnel_ip"), "192.0.2"), "node 'net3': l3ha_tunnel_ip '192.0.2' is not an IP address"),
    # network definitions
    ("bad network type", _set(("networks", "net-b", "type"), "ovs"), "network 'net-b': type 'ovs' is not one of bridge, vxlan, vlan"),
    ("vni out of range", _set(("networks", "net-b", "vni"), 16777216), "network 'net-b': vni 16777216 is out of range"),
    ("vni twice", _set(("networks", "net-b", "vni"), 1001), "network 'net-b': vni 1001 is also used by network 'net-a'"),
    ("vni inside the HA range", _set(("networks", "net-b", "vni"), 2500),
     "network 'net-b': vni 2500 is inside ha_vni_range 2000..2999"),
    ("bridge name too long", _set(("networks", "ext", "bridge"), "br-external-uplink"),
     "network 'ext': bridge 'br-external-uplink' is not a device name"),
    ("vlan without vlan_id", _set(("networks", "net-b"), {"type": "vlan", "physical_device": "eth1"}),
     "network 'net-b': vlan_id None is not an integer"),
    ("vlan without physical device", _set(("networks", "net-b"), {"type": "vlan", "vlan_id": 10}),
     "network 'net-b': physical_device None is not a device name"),
    ("reserved network name", _set(("networks", "ha-x"), {"type": "vxlan", "vni": 1003}),
     "network 'ha-x': name: names starting with 'ha-' are reserved"),
    ("network cidr host bits", _set(("networks", "net-b", "cidr"), "10.1.0.1/16"),
     "network 'net-b': cidr 10.1.0.1/16 has host bits set"),
    ("vxlan mtu above underlay", _set(("networks", "net-b", "mtu"), 1500),
     "network 'net-b': mtu 1500 is above 1450 (underlay_mtu - 50 for vxlan)"),
    ("router on a broken network", _set(("networks", "net-a", "vni"), "x"),
     "router 'r1': interfaces[0].network 'net-a' is invalid (see its own error)"),
    # options
    ("unknown option", _set(("options", "max_agents"), 2), "option max_agents: unknown option"),
    ("bad ha cidr", _set(("options", "ha_network_cidr"), "169.254.192.0"), "option ha_network_cidr: value '169.254.192.0' is not a CIDR"),
    ("ha cidr over the VIPs", _set(("options", "ha_network_cidr"), "169.254.0.0/16"),
     "option ha_network_cidr: value 169.254.0.0/16 overlaps 169.254.0.0/24"),
    ("vni range reversed", _set(("options", "ha_vni_range"), [3000, 2000]), "option ha_vni_range: first 3000 is above last 2000"),
    ("ha bridge missing", _set(("options", "ha_network_type"), "bridge"), "option ha_bridge: value None is not a device name"),
    ("remote vteps for an unknown network", _set(("options", "vxlan_remote_vteps"), {"nope": ["192.0.2.200"]}),
     "option vxlan_remote_vteps: 'nope' is not a vxlan network"),
    ("bad remote vtep", _set(("options", "vxlan_remote_vteps"), ["192.0.2.x"]),
     "option vxlan_remote_vteps: value '192.0.2.x' is not an IP address"),
    ("options min above max", lambda inv: inv["options"].update(min_nodes_per_router=3, max_nodes_per_router=2),
     "option min_nodes_per_router: 3 is above max_nodes_per_router 2"),
]


@pytest.mark.parametrize("mutate,expected", [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_bad_input_is_an_error_naming_the_router_and_field(mutate, expected):
    inv = _base()
    assert run(inv["routers"], inv["nodes"], networks=inv["networks"], **inv["options"])["errors"] == []
    mutate(inv)
    result = run(inv["routers"], inv["nodes"], networks=inv["networks"], **inv["options"])
    assert any(expected in error for error in result["errors"]), result["errors"]
    assert result["nodes"] == {} and result["routers"] == {}, "a failed plan must not be usable"


def test_all_errors_are_collected():
    routers = [router("r1", 1, vrid=300), router("r2", 2), router("R3", 3)]
    routers[1]["gateway"]["gateway_ip"] = "198.51.100.1"
    errors = run(routers, networks=NETWORKS, max_agents=1)["errors"]
    assert len(errors) == 4, errors
    assert any(e.startswith("option max_agents") for e in errors)
    assert any(e.startswith("router 'r1': vrid 300") for e in errors)
    assert any(e.startswith("router 'r2': gateway.gateway_ip 198.51.100.1") for e in errors)
    assert any(e.startswith("router #2: name 'R3'") for e in errors)


def test_not_enough_nodes_names_the_unavailable_ones():
    node_map = nodes("az1", "az1", "az2", "az2")
    node_map["net2"]["drained"] = True
    node_map["net3"]["reachable"] = False
    errors = run([router("r1", 1, min_nodes=3, max_nodes=3)], node_map)["errors"]
    assert errors == ["router 'r1': min_nodes 3 but only 2 node(s) available: net1, net4; "
                      "not available: net2 (drained), net3 (unreachable)"]


# --- placement -----------------------------------------------------------------------

@pytest.mark.parametrize("max_nodes,zones,expected", [
    (2, ("az1", "az1", "az2"), ["net1", "net3"]),      # spread over zones before load and name
    (2, ("az1", "az1", "az1"), ["net1", "net2"]),      # one zone: ties broken by name
    (0, ("az1", "az1", "az2"), ["net1", "net2", "net3"]),  # 0 = every node
    (5, ("az1", "az2"), ["net1", "net2"]),             # capped by the available nodes
])
def test_replica_count_and_spread(max_nodes, zones, expected):
    result = ok([router("r1")], nodes(*zones), max_nodes_per_router=max_nodes, min_nodes_per_router=1)
    assert replicas(result) == {"r1": expected}


def test_least_loaded_nodes_get_new_replicas():
    result = ok([bare("r%d" % i) for i in range(1, 4)], nodes("az1", "az1", "az1"))
    assert replicas(result) == {"r1": ["net1", "net2"], "r2": ["net1", "net3"], "r3": ["net2", "net3"]}


def test_availability_zone_hints_restrict_nodes():
    result = ok([bare("r1", availability_zones=["az2"], min_nodes=1)], nodes("az1", "az1", "az2", "az2"))
    assert replicas(result) == {"r1": ["net3", "net4"]}


def test_non_ha_router_gets_one_node_and_sets_its_own_addresses():
    spec = router("r1", ha=False, min_nodes=1, floating_ips=[{"external": "203.0.113.60", "internal": "10.0.1.9"}])
    result = ok([spec])
    (node,) = result["routers"]["r1"]["replicas"]
    planned = entry(result, node, "r1")
    assert (planned["ha"], planned["vrid"], planned["segment"], planned["ha_address"]) == (False, None, None, None)
    assert [p["kind"] for p in planned["ports"]] == ["gateway", "internal"]
    assert planned["ports"][0]["addresses"] == ["203.0.113.11/24", "203.0.113.60/32"]
    assert planned["ports"][1]["addresses"] == ["10.0.1.1/24"]
    assert not any(key.startswith("ha-") for key in result["nodes"][node]["segments"])


def test_existing_replicas_stay():
    current = {"net2": {"r1": {"metadata": {"replicas": {"net2": None, "net3": None}}}}}
    assert replicas(ok([bare("r1")], current=current)) == {"r1": ["net2", "net3"]}


def test_drained_node_keeps_its_replicas_but_gets_no_new_ones():
    node_map = nodes("az1", "az1", "az1")
    node_map["net1"]["drained"] = True
    first = ok([bare("r1")], node_map, current={"net1": {"r1": {"metadata": {}}}})
    assert replicas(first) == {"r1": ["net1", "net2"]}
    assert replicas(ok([bare("r2")], node_map)) == {"r2": ["net2", "net3"]}


def test_unreachable_node_keeps_its_replicas_unless_rescheduling():
    first = ok([bare("r1")], nodes("az1", "az1", "az1"))
    assert replicas(first) == {"r1": ["net1", "net2"]}
    node_map = nodes("az1", "az1", "az1")
    node_map["net1"]["reachable"] = False
    current = facts_of(first, drop=("net1",))  # an unreachable node reports nothing
    assert replicas(ok([bare("r1")], node_map, current)) == {"r1": ["net1", "net2"]}
    moved = ok([bare("r1")], node_map, current, reschedule_unreachable=True)
    assert replicas(moved) == {"r1": ["net2", "net3"]}
    kept_address = entry(first, "net2", "r1")["ha_address"]
    assert entry(moved, "net2", "r1")["ha_address"] == kept_address


def test_node_that_left_the_group_loses_its_replicas():
    first = ok([bare("r1")], nodes("az1", "az1", "az1"))
    node_map = nodes("az1", "az1", "az1")
    node_map["net1"]["in_group"] = False
    result = ok([bare("r1")], node_map, facts_of(first))
    assert replicas(result) == {"r1": ["net2", "net3"]}
    assert "net1" not in result["nodes"]


def test_surplus_replicas_drop_from_the_most_loaded_node():
    current = {"net1": {"r1": {"metadata": {}}, "r2": {"metadata": {}}},
               "net2": {"r1": {"metadata": {}}}, "net3": {"r1": {"metadata": {}}}}
    result = ok([bare("r1"), bare("r2", max_nodes=1, min_nodes=1)], nodes("az1", "az1", "az1"), current)
    assert replicas(result) == {"r1": ["net2", "net3"], "r2": ["net1"]}


def test_stale_replica_is_dropped_first():
    # net3 was replaced by net2 while unreachable; its own stale report still names it.
    current = {"net1": {"r1": {"metadata": {"replicas": {"net1": None, "net2": None}}}},
               "net2": {"r1": {"metadata": {"replicas": {"net1": None, "net2": None}}}},
               "net3": {"r1": {"metadata": {"replicas": {"net1": None, "net3": None}}}}}
    assert replicas(ok([bare("r1")], nodes("az1", "az1", "az1"), current)) == {"r1": ["net1", "net2"]}


def test_absent_router_is_listed_and_planned_nowhere():
    result = ok([router("r1", 1), router("r2", 2, state="absent")])
    assert result["absent"] == ["r2"]
    assert set(result["routers"]) == {"r1"}
    assert all(r["name"] != "r2" for e in result["nodes"].values() for r in e["routers"])


# --- VRIDs, segments, addresses --------------------------------------------------------

def test_vrid_pin_then_existing_then_lowest_free():
    current = {"net1": {"r2": {"metadata": {"tenant": "demo", "segment": "ha-demo-0", "vrid": 9}}}}
    result = ok([bare("r1"), bare("r2"), bare("r3", vrid=1), bare("r4")], current=current)
    vrids = dict((name, r["vrid"]) for name, r in result["routers"].items())
    assert vrids == {"r1": 2, "r2": 9, "r3": 1, "r4": 3}


def test_pinned_vrid_taken_by_an_existing_router_goes_to_the_next_segment():
    current = {"net1": {"r1": {"metadata": {"tenant": "demo", "segment": "ha-demo-0", "vrid": 5}}}}
    result = ok([bare("r1"), bare("r2", vrid=5)], current=current)
    assert result["routers"]["r1"]["segment"] == "ha-demo-0"
    assert (result["routers"]["r2"]["segment"], result["routers"]["r2"]["vrid"]) == ("ha-demo-1", 5)


def test_tenants_get_their_own_segments_and_vnis():
    result = ok([bare("a1", tenant="acme"), bare("d1", tenant="demo")])
    assert replicas(result) == {"a1": ["net1", "net3"], "d1": ["net2", "net3"]}
    segments = result["nodes"]["net3"]["segments"]
    assert (result["routers"]["a1"]["segment"], result["routers"]["d1"]["segment"]) == ("ha-acme-0", "ha-demo-0")
    assert result["routers"]["a1"]["vrid"] == result["routers"]["d1"]["vrid"] == 1
    assert (segments["ha-acme-0"]["vni"], segments["ha-demo-0"]["vni"]) == (2000, 2001)


def test_600_routers_in_one_tenant_use_three_segments():
    routers = [bare("r%03d" % i) for i in range(600)]
    result = ok(routers, nodes("az1", "az2", "az1", "az2"))
    by_segment = {}
    for name, planned in result["routers"].items():
        by_segment.setdefault(planned["segment"], []).append(planned["vrid"])
    assert sorted((seg, len(v)) for seg, v in by_segment.items()) == [
        ("ha-demo-0", 254), ("ha-demo-1", 254), ("ha-demo-2", 92)]
    for vrids in by_segment.values():
        assert len(set(vrids)) == len(vrids) and min(vrids) >= 1 and max(vrids) <= 254
    vnis = set(seg["vni"] for e in result["nodes"].values() for k, seg in e["segments"].items())
    assert vnis == {2000, 2001, 2002}
    assert ok(routers, nodes("az1", "az2", "az1", "az2"), facts_of(result)) == result


def test_tenant_change_moves_router_to_the_new_tenants_segment():
    first = ok([bare("r1")])
    moved = ok([bare("r1", tenant="acme")], current=facts_of(first))
    assert moved["routers"]["r1"]["segment"] == "ha-acme-0"
    assert moved["routers"]["r1"]["replicas"] == first["routers"]["r1"]["replicas"]


def test_existing_vni_and_ha_addresses_are_kept():
    current = {"net1": {"r1": {"metadata": {"tenant": "demo", "segment": "ha-demo-0", "vrid": 4, "segment_vni": 2500,
                                            "ha_address": "169.254.192.77/18",
                                            "replicas": {"net1": "169.254.192.77/18", "net2": "169.254.192.3/18"}}}}}
    result = ok([bare("r1"), bare("r2")], current=current)
    assert result["nodes"]["net1"]["segments"]["ha-demo-0"]["vni"] == 2500
    r1 = entry(result, "net1", "r1")
    expected = (4, "169.254.192.77/18", ["169.254.192.3"], "169.254.0.4/24")
    assert (r1["vrid"], r1["ha_address"], r1["peers"], r1["ha_vip"]) == expected
    assert entry(result, "net2", "r1")["ha_address"] == "169.254.192.3/18"
    assert entry(result, "net1", "r2")["ha_address"] == "169.254.192.1/18"  # lowest free


def test_ha_addresses_on_a_shared_bridge_are_unique_over_all_tenants():
    result = ok([bare("a1", tenant="acme"), bare("d1", tenant="demo")], ha_network_type="bridge", ha_bridge="br-ha")
    addresses = [r["ha_address"] for e in result["nodes"].values() for r in e["routers"]]
    assert len(addresses) == 4 and len(set(addresses)) == 4
    assert result["nodes"]["net1"]["segments"]["ha-acme-0"] == {"type": "bridge", "bridge": "br-ha", "mtu": 1500}


def test_exhausted_vnis_and_addresses_are_errors():
    errors = run([bare("a1", tenant="acme"), bare("d1", tenant="demo")], ha_vni_range=[2000, 2000])["errors"]
    assert errors == ["HA segment 'ha-demo-0': no free VNI left in ha_vni_range 2000..2000"]
    errors = run([bare("r1"), bare("r2")], ha_network_cidr="169.254.192.0/30")["errors"]
    assert errors == ["router 'r2': no free HA address left in ha_network_cidr 169.254.192.0/30 for segment 'ha-demo-0'"]


# --- per node output -----------------------------------------------------------------

def test_node_entry_matches_the_reconciler_contract():
    spec = router("r1", routes=[{"destination": "10.9.0.0/16", "nexthop": "10.0.1.254"}],
                  floating_ips=[{"external": "203.0.113.20", "internal": "10.0.1.5"}])
    spec["gateway"].update(address=["203.0.113.11/24", "2001:DB8:FF::11/64"], gateway_ip=["203.0.113.1", "2001:db8:ff::1"])
    spec["interfaces"].append({"network": "net-a", "address": "fd00:1::1/64"})
    result = ok([spec], nodes("az1", "az2"), vxlan_remote_vteps={"net-a": ["192.0.2.200", "192.0.2.12"]})
    ids = dict((key, hashlib.sha256(key.encode()).hexdigest()[:8]) for key in ("r1/ha", "r1/gw", "r1/net/net-a"))
    one = entry(result, "net1", "r1")
    assert one["namespace"] == "qrouter-r1" and one["priority"] == 254
    assert [(p["kind"], p["name"], p["peer"], p["segment"], p["mtu"]) for p in one["ports"]] == [
        ("ha", "ha-" + ids["r1/ha"], "vha" + ids["r1/ha"], "ha-demo-0", 1450),
        ("gateway", "qg-" + ids["r1/gw"], "vqg" + ids["r1/gw"], "ext", 1500),
        ("internal", "qr-" + ids["r1/net/net-a"], "vqr" + ids["r1/net/net-a"], "net-a", 1450)]
    assert [p["addresses"] for p in one["ports"]] == [[one["ha_address"]], [], []]
    assert one["gateway"] == {"network": "ext", "port": "qg-" + ids["r1/gw"], "snat": True,
                              "addresses": ["203.0.113.11/24", "2001:db8:ff::11/64"],
                              "gateway_ips": ["203.0.113.1", "2001:db8:ff::1"],
                              "subnets": ["203.0.113.0/24", "2001:db8:ff::/64"]}
    assert one["interfaces"] == [{"network": "net-a", "port": "qr-" + ids["r1/net/net-a"],
                                  "addresses": ["10.0.1.1/24", "fd00:1::1/64"], "subnets": ["10.0.1.0/24", "fd00:1::/64"]}]
    assert one["internal_subnets"] == ["10.0.1.0/24", "fd00:1::/64"]
    assert one["routes"] == [{"destination": "10.9.0.0/16", "nexthop": "10.0.1.254"}]
    assert one["floating_ips"] == [{"external": "203.0.113.20", "internal": "10.0.1.5"}]
    segments = result["nodes"]["net1"]["segments"]
    assert segments["net-a"] == {"type": "vxlan", "vni": 1001, "bridge": "brq-" + hashlib.sha256(b"net-a").hexdigest()[:8],
                                 "device": "vx-" + hashlib.sha256(b"net-a").hexdigest()[:8], "mtu": 1450,
                                 "remotes": ["192.0.2.12", "192.0.2.200"]}
    assert segments["ha-demo-0"]["remotes"] == ["192.0.2.12"]  # HA segments: only other nodes
    assert set(segments) == {"ext", "net-a", "ha-demo-0"}  # net-b is unused


def test_remote_vteps_for_every_vxlan_network_but_not_ha_segments():
    spec = router("r1")
    spec["interfaces"].append({"network": "net-b", "address": "10.1.1.1/24"})
    result = ok([spec], nodes("az1", "az2"), vxlan_remote_vteps=["192.0.2.201", "192.0.2.11"])
    segments = result["nodes"]["net1"]["segments"]
    assert segments["net-a"]["remotes"] == segments["net-b"]["remotes"] == ["192.0.2.12", "192.0.2.201"]
    assert segments["ha-demo-0"]["remotes"] == ["192.0.2.12"]
    assert result["nodes"]["net2"]["segments"]["net-a"]["remotes"] == ["192.0.2.11", "192.0.2.201"]


def test_vlan_network_segment():
    networks = dict(NETWORKS, vl={"type": "vlan", "vlan_id": 100, "physical_device": "eth1"})
    result = ok([bare("r1", interfaces=[{"network": "vl", "address": "10.5.0.1/24"}])], networks=networks)
    ident = hashlib.sha256(b"vl").hexdigest()[:8]
    assert result["nodes"]["net1"]["segments"]["vl"] == {"type": "vlan", "vlan_id": 100, "physical_device": "eth1",
                                                         "bridge": "brq-" + ident, "device": "vl-" + ident, "mtu": 1500}


def test_macs_shared_ports_equal_on_replicas_ha_port_per_node():
    result = ok([router("r1")], nodes("az1", "az2"))
    one, two = entry(result, "net1", "r1"), entry(result, "net2", "r1")
    gw_hash = hashlib.sha256(b"r1/gw").hexdigest()
    assert one["ports"][1]["mac"] == two["ports"][1]["mac"] == "fa:16:3e:%s:%s:%s" % (gw_hash[0:2], gw_hash[2:4], gw_hash[4:6])
    assert one["ports"][2]["mac"] == two["ports"][2]["mac"]
    assert one["ports"][0]["mac"] != two["ports"][0]["mac"]
    ha_hash = hashlib.sha256(b"r1/ha/net1").hexdigest()
    assert one["ports"][0]["mac"] == "fa:16:3e:%s:%s:%s" % (ha_hash[0:2], ha_hash[2:4], ha_hash[4:6])


def test_mac_hash_collision_on_one_network_gets_a_rehash_that_stays():
    # sha256("r343/gw") and sha256("r2008/gw") share their first 3 bytes.
    assert hashlib.sha256(b"r343/gw").digest()[:3] == hashlib.sha256(b"r2008/gw").digest()[:3]
    routers = [router("r2008", 1), router("r343", 2)]
    result = ok(routers)
    macs = dict((name, entry(result, r["replicas"][0], name)["ports"][1]["mac"]) for name, r in result["routers"].items())
    assert macs["r2008"] != macs["r343"]
    # Stable: adding the colliding router later does not take the first one's MAC.
    alone = ok(routers[1:])
    again = ok(routers, current=facts_of(alone))
    planned = dict((n, entry(again, r["replicas"][0], n)["ports"][1]["mac"]) for n, r in again["routers"].items())
    assert planned["r343"] == entry(alone, alone["routers"]["r343"]["replicas"][0], "r343")["ports"][1]["mac"]
    assert planned["r2008"] != planned["r343"]


def test_device_id_collision_is_an_error():
    # sha256("r1861/ha") and sha256("r39637/ha") share their first 8 hex digits.
    assert hashlib.sha256(b"r1861/ha").hexdigest()[:8] == hashlib.sha256(b"r39637/ha").hexdigest()[:8]
    errors = run([bare("r1861"), bare("r39637")])["errors"]
    assert errors == ["router 'r39637': device id ha-e9518974 (from 'r39637/ha') collides with router 'r1861' "
                      "(from 'r1861/ha'); rename one of them"]


def test_every_node_of_the_group_has_an_entry():
    result = ok([bare("r1")], nodes("az1", "az1", "az1", "az1"))
    assert result["nodes"]["net4"] == {"segments": {}, "routers": [], "uplink_peers": {}}


def test_plan_fed_back_is_identical_and_json_serialisable():
    import json
    spec = [router("r1", 1), router("r2", 2, tenant="acme"), router("r3", 3, ha=False, min_nodes=1)]
    first = ok(spec)
    assert json.loads(json.dumps(first)) == first
    assert ok(spec, current=facts_of(first)) == first


def test_plan_does_not_share_objects_between_nodes():
    result = ok([router("r1")], nodes("az1", "az2"))
    one, two = entry(result, "net1", "r1"), entry(result, "net2", "r1")
    for key in ("gateway", "interfaces", "routes", "floating_ips", "internal_subnets", "ports"):
        assert one[key] is not two[key]


def test_uplink_peers_are_the_other_replicas_nodes_of_ha_routers_on_each_gateway_network():
    single = router("r3", 3, ha=False, min_nodes=1, max_nodes=1)
    result = ok([router("r1", 1), router("r2", 2), bare("r4"), single], nodes("az1", "az1", "az1"))
    tunnel = dict(("net%d" % (i + 1), "192.0.2.%d" % (11 + i)) for i in range(3))
    for node, plan_entry in result["nodes"].items():
        expected = set()
        for name in ("r1", "r2"):  # r3 has no VRRP, r4 no gateway: no peers from them
            where = result["routers"][name]["replicas"]
            if node in where:
                expected.update(tunnel[n] for n in where if n != node)
        assert plan_entry["uplink_peers"] == ({"ext": sorted(expected)} if expected else {})
