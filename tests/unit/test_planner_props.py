"""Property tests (hypothesis) for the planner's invariants."""
from collections import Counter

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from test_planner_helpers import bare, facts_of, nodes, replicas, router, run

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scenarios(draw):
    """(routers, node map, options) that can be planned without errors."""
    zone_names = ["az%d" % i for i in range(draw(st.integers(1, 3)))]
    zones = draw(st.lists(st.sampled_from(zone_names), min_size=1, max_size=6))
    node_map = nodes(*zones)
    drained = draw(st.lists(st.sampled_from(sorted(node_map)), max_size=2, unique=True))
    for name in drained:
        node_map[name]["drained"] = True
    open_nodes = len(node_map) - len(drained)
    assume(open_nodes >= 1)
    max_nodes = draw(st.integers(0, 4))
    min_nodes = draw(st.integers(1, min(open_nodes, max_nodes or open_nodes)))
    routers = []
    for index in range(draw(st.integers(1, 12))):
        tenant = draw(st.sampled_from(["t1", "t2"]))
        spec = router("r%d" % index, index + 1, tenant=tenant) if draw(st.booleans()) else bare("r%d" % index, tenant=tenant)
        if draw(st.integers(0, 4)) == 0:
            spec.update(ha=False, min_nodes=1)
        elif draw(st.integers(0, 4)) == 0:
            spec["vrid"] = 200 + index  # unique pins
        routers.append(spec)
    return routers, node_map, {"max_nodes_per_router": max_nodes, "min_nodes_per_router": min_nodes}


def plan_of(scenario, current=None, **changes):
    routers, node_map, options = scenario
    options = dict(options, **changes)
    return run(routers, node_map, current, **options)


def check_invariants(result, scenario):
    routers, node_map, options = scenario
    assert result["errors"] == []
    specs = dict((r["name"], r) for r in routers)
    group_size = len(node_map)
    for node, planned in result["nodes"].items():
        names = [r["name"] for r in planned["routers"]]
        assert len(names) == len(set(names)), "node %s hosts a router twice" % node
    for name, planned in result["routers"].items():
        count = len(planned["replicas"])
        assert len(set(planned["replicas"])) == count
        if planned["ha"]:
            limit = options["max_nodes_per_router"] or group_size
            assert options["min_nodes_per_router"] <= count <= limit, (name, count)
        else:
            assert count == 1
        for node in planned["replicas"]:
            assert any(r["name"] == name for r in result["nodes"][node]["routers"])
    assert set(result["routers"]) == set(specs)
    seen_vrids, seen_addresses = Counter(), Counter()
    for name, planned in result["routers"].items():
        if planned["ha"]:
            seen_vrids[(planned["segment"], planned["vrid"])] += 1
    for node, planned in result["nodes"].items():
        for router in planned["routers"]:
            if router["ha"]:
                seen_addresses[(router["segment"], router["ha_address"])] += 1
                others = [n for n in result["routers"][router["name"]]["replicas"] if n != node]
                peers = [r["ha_address"].split("/")[0] for n in others for r in result["nodes"][n]["routers"]
                         if r["name"] == router["name"]]
                assert sorted(router["peers"]) == sorted(peers)
    assert all(n == 1 for n in seen_vrids.values()), "a VRID twice in a segment"
    check_names_and_macs(result)
    assert all(n == 1 for n in seen_addresses.values()), "an HA address twice in a segment"


def check_names_and_macs(result):
    """Root-namespace device names are unique per node; a MAC belongs to one port per segment."""
    owners = {}
    for node, planned in result["nodes"].items():
        peers = [p["peer"] for r in planned["routers"] for p in r["ports"]]
        assert len(peers) == len(set(peers)), node
        for r in planned["routers"]:
            for port in r["ports"]:
                # qg/qr ports are one port on every replica; an ha port is one per node
                owner = (r["name"], port["name"], node if port["kind"] == "ha" else None)
                assert owners.setdefault((port["segment"], port["mac"]), owner) == owner, (port, owner)


def placed_values(result):
    """{(router, node): (vrid, segment, ha_address)}: what must not move."""
    return dict(((r["name"], node), (r["vrid"], r["segment"], r["ha_address"]))
                for node, planned in result["nodes"].items() for r in planned["routers"])


@SETTINGS
@given(scenarios())
def test_invariants_and_fixed_point(scenario):
    first = plan_of(scenario)
    check_invariants(first, scenario)
    assert plan_of(scenario, facts_of(first)) == first


@SETTINGS
@given(scenarios())
def test_drained_nodes_get_no_new_replicas(scenario):
    node_map = scenario[1]
    result = plan_of(scenario)
    for name, node in node_map.items():
        if node.get("drained"):
            assert result["nodes"][name]["routers"] == []


@SETTINGS
@given(scenarios())
def test_zone_spread_when_enough_zones(scenario):
    node_map = scenario[1]
    result = plan_of(scenario)
    open_zones = set(n["availability_zone"] for n in node_map.values() if not n.get("drained"))
    for name, planned in result["routers"].items():
        zones = set(node_map[n]["availability_zone"] for n in planned["replicas"])
        assert len(zones) == min(len(planned["replicas"]), len(open_zones)), (name, planned["replicas"])


@SETTINGS
@given(scenarios(), st.sampled_from(["az0", "az1", "az5"]))
def test_adding_a_node_and_a_router_moves_no_replica(scenario, zone):
    routers, node_map, options = scenario
    first = plan_of(scenario)
    grown_nodes = dict(node_map, net9={"tunnel_ip": "192.0.2.99", "availability_zone": zone})
    grown = (routers + [bare("rnew", tenant="t1")], grown_nodes, options)
    second = plan_of(grown, facts_of(first))
    check_invariants(second, grown)
    for name, planned in first["routers"].items():
        assert set(planned["replicas"]) <= set(second["routers"][name]["replicas"]), name
    after = placed_values(second)
    for key, values in placed_values(first).items():
        assert after[key] == values, key


@SETTINGS
@given(scenarios(), st.data())
def test_removing_a_node_moves_only_its_replicas(scenario, data):
    routers, node_map, options = scenario
    first = plan_of(scenario)
    gone = data.draw(st.sampled_from(sorted(node_map)))
    left = dict((n, spec) for n, spec in node_map.items() if n != gone)
    open_nodes = sum(1 for spec in left.values() if not spec.get("drained"))
    assume(left and open_nodes >= options["min_nodes_per_router"])
    second = plan_of((routers, left, options), facts_of(first, drop=(gone,)))
    check_invariants(second, (routers, left, options))
    for name, planned in first["routers"].items():
        old, new = set(planned["replicas"]), set(second["routers"][name]["replicas"])
        if gone in old:
            assert old - {gone} <= new, name
        else:
            assert old == new, name
    after = placed_values(second)
    for (name, node), values in placed_values(first).items():
        if node != gone:
            assert after[(name, node)] == values


@SETTINGS
@given(scenarios(), st.integers(0, 4))
def test_changing_max_keeps_what_fits(scenario, new_max):
    routers, node_map, options = scenario
    first = plan_of(scenario)
    new_min = min(options["min_nodes_per_router"], new_max or len(node_map))
    changed = (routers, node_map, dict(options, max_nodes_per_router=new_max, min_nodes_per_router=new_min))
    second = plan_of(changed, facts_of(first))
    check_invariants(second, changed)
    for name, planned in first["routers"].items():
        old, new = set(planned["replicas"]), set(second["routers"][name]["replicas"])
        assert old <= new or new <= old, name
    assert replicas(plan_of(changed, facts_of(second))) == replicas(second)
