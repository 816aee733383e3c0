"""Inventory builders shared by the planner tests (no tests here)."""
from ansible_collections.l3ha.routers.plugins.module_utils._planner import plan

NETWORKS = {
    "ext": {"type": "bridge", "bridge": "br-ex", "cidr": ["203.0.113.0/24", "2001:db8:ff::/64"], "external": True},
    "net-a": {"type": "vxlan", "vni": 1001, "cidr": ["10.0.0.0/16", "fd00:1::/48"]},
    "net-b": {"type": "vxlan", "vni": 1002, "cidr": "10.1.0.0/16"},
}


def router(name, slot=1, **fields):
    """A valid HA router; `slot` (1..200) keeps its addresses apart from other routers'."""
    spec = {
        "name": name,
        "tenant": "demo",
        "gateway": {"network": "ext", "address": "203.0.113.%d/24" % (slot + 10), "gateway_ip": "203.0.113.1"},
        "interfaces": [{"network": "net-a", "address": "10.0.%d.1/24" % slot}],
    }
    spec.update(fields)
    return spec


def bare(name, **fields):
    """A router with no ports but its HA port: cheap for property tests."""
    spec = {"name": name, "tenant": "demo"}
    spec.update(fields)
    return spec


def nodes(*zones, **flags):
    """nodes("az1", "az1", "az2") -> net1..net3 with tunnel IPs; flags: name={"drained": True}."""
    zones = zones or ("az1", "az1", "az2")
    found = dict(("net%d" % (i + 1), {"tunnel_ip": "192.0.2.%d" % (11 + i), "availability_zone": zone})
                 for i, zone in enumerate(zones))
    for name, extra in flags.items():
        found.setdefault(name, {"tunnel_ip": "192.0.2.%d" % (100 + len(found)), "availability_zone": "az1"})
        found[name].update(extra)
    return found


def run(routers, node_map=None, current=None, networks=None, **options):
    options.setdefault("max_nodes_per_router", 2)
    options.setdefault("min_nodes_per_router", 2)
    return plan(routers, NETWORKS if networks is None else networks,
                nodes() if node_map is None else node_map, current or {}, options)


def ok(*args, **kwargs):
    result = run(*args, **kwargs)
    assert result["errors"] == [], result["errors"]
    return result


def facts_of(result, drop=()):
    """The plan as router facts, the way router_facts hands router.json back."""
    current = {}
    for node, entry in result["nodes"].items():
        if node in drop:
            continue
        current[node] = dict((r["name"], {"tenant": r["tenant"], "vrid": r["vrid"], "segment": r["segment"],
                                          "ha_address": r["ha_address"], "metadata": r["metadata"]})
                             for r in entry["routers"])
    return current


def replicas(result):
    return dict((name, r["replicas"]) for name, r in result["routers"].items())


def entry(result, node, name):
    """The plan entry of router `name` on `node`."""
    found = [r for r in result["nodes"][node]["routers"] if r["name"] == name]
    assert len(found) == 1, (node, name, found)
    return found[0]
