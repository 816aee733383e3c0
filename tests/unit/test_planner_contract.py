"""The plan is what the other parts take: the reconciler's validation and the renderer's view.

These tests feed the planner's output for examples/inventory.yml (plus a vlan network and
a non-HA router) to the node reconciler's own input checks and to the template view, so
a drift between the planner and its consumers fails here, on the controller, with no lab.
"""
import pathlib

import pytest
import yaml

from ansible_collections.l3ha.routers.plugins.plugin_utils._router_view import router_view
from ansible_collections.l3ha.routers.plugins.module_utils._node_input import validate_routers
from ansible_collections.l3ha.routers.plugins.module_utils._segments import validate_segments
from ansible_collections.l3ha.routers.plugins.module_utils._validate import Errors

from test_planner_helpers import ok

ROOT = pathlib.Path(__file__).resolve().parents[2]


class _Link:
    kind = "bridge"
    alias = None


class _Root:
    """A root namespace that has the operator's bridges and devices, and nothing of ours."""

    def __init__(self, names):
        self.names = names

    def link(self, name):
        return _Link() if name in self.names else None


def _example():
    group = yaml.safe_load((ROOT / "examples" / "inventory.yml").read_text())["all"]["children"]["l3ha_network_nodes"]
    settings = group["vars"]
    nodes = dict((name, {"tunnel_ip": "192.0.2.%d" % (11 + i), "availability_zone": host["l3ha_availability_zone"]})
                 for i, (name, host) in enumerate(sorted(group["hosts"].items())))
    vlan = {"type": "vlan", "vlan_id": 100, "physical_device": "eth1", "cidr": "10.100.0.0/24"}
    networks = dict(settings["l3ha_networks"], vlan100=vlan)
    vlan_router = {"name": "vlan-r1", "tenant": "demo", "interfaces": [{"network": "vlan100", "address": "10.100.0.1/24"}]}
    routers = settings["l3ha_routers"] + [vlan_router]
    options = dict((key[len("l3ha_"):], value) for key, value in settings.items()
                   if key not in ("l3ha_networks", "l3ha_routers"))
    return ok(routers, nodes, networks=networks, **options)


PLAN = _example()
NODES = sorted(PLAN["nodes"])


@pytest.mark.parametrize("node", NODES)
def test_reconciler_accepts_the_plan(node):
    entry = PLAN["nodes"][node]
    routers = [dict(r, files={"keepalived.conf": "# rendered by the role\n"}) for r in entry["routers"]]
    errors = Errors()
    validate_routers(routers, entry["segments"], errors)
    validate_segments(entry["segments"], "192.0.2.11", _Root({"br-ex", "eth1"}), errors)
    assert errors.messages == []


@pytest.mark.parametrize("node", NODES)
def test_templates_view_accepts_the_plan(node):
    for router in PLAN["nodes"][node]["routers"]:
        view = router_view(router)
        assert view["ha"] == router["ha"]


def test_example_covers_ha_non_ha_and_vlan():
    planned = PLAN["routers"]
    assert planned["acme-r10"]["ha"] is False and len(planned["acme-r10"]["replicas"]) == 1
    assert all(planned[name]["ha"] and len(planned[name]["replicas"]) == 2 for name in ("demo-r1", "demo-r2", "acme-r1"))
    vlan = [e["segments"]["vlan100"] for e in PLAN["nodes"].values() if "vlan100" in e["segments"]]
    assert vlan and vlan[0]["type"] == "vlan" and vlan[0]["physical_device"] == "eth1" and vlan[0]["vlan_id"] == 100
