"""Input of the naive baseline playbook (bench/naive/site.yml).

A user writing routers by hand keeps per-router values (VRID, HA address, port names,
MACs) in the inventory. To build routers equivalent to the collection's, the bench takes
those values from the collection's own planner, once, and writes them as a vars file;
the playbook itself only loops over them with `command: ip ...` and `template`.
"""

import json
import os
import sys

import yaml

from benchlab import REPO, BenchError

sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from ansible_collections.l3ha.routers.plugins.module_utils._planner import plan  # noqa: E402

PLAYBOOK = os.path.join(REPO, "bench", "naive", "site.yml")


def _lab_hosts(bench):
    with open(bench.lab.fragment_path) as handle:
        fragment = yaml.safe_load(handle)
    hosts = fragment["all"]["children"]["l3ha_lab_nodes"]["hosts"]
    return hosts, next(iter(hosts.values()))  # the lab's variables are the same on every node


def _router(entry, segments, advert_int):
    ports = []
    for port in entry["ports"]:
        ports.append({"name": port["name"], "peer": port["peer"], "mac": port["mac"],
                      "mtu": port["mtu"], "bridge": segments[port["segment"]]["bridge"]})
    ha_port = next(p["name"] for p in entry["ports"] if p["kind"] == "ha")
    excluded = ["%s dev %s" % (a, entry["gateway"]["port"]) for a in entry["gateway"]["addresses"]]
    for interface in entry["interfaces"]:
        excluded += ["%s dev %s" % (a, interface["port"]) for a in interface["addresses"]]
    routes = ["default via %s dev %s" % (gw, entry["gateway"]["port"])
              for gw in entry["gateway"]["gateway_ips"]]
    return {"name": entry["name"], "namespace": entry["namespace"], "ports": ports,
            "ha_port": ha_port, "ha_address": entry["ha_address"], "ha_vip": entry["ha_vip"],
            "vrid": entry["vrid"], "priority": entry["priority"], "peers": entry["peers"],
            "unicast_src_ip": entry["ha_address"].split("/")[0], "advert_int": advert_int,
            "excluded": excluded, "routes": routes}


def write_vars(bench, path, advert_int):
    """Plan the bench's inventory for the lab's nodes; write {naive_nodes: {node: ...}}."""
    hosts, lab_vars = _lab_hosts(bench)
    with open(bench.inventory) as handle:
        inventory = yaml.safe_load(handle)
    group_vars = inventory["all"]["children"]["l3ha_network_nodes"]["vars"]
    nodes = dict((name, {"tunnel_ip": host["l3ha_tunnel_ip"], "availability_zone": None,
                         "reachable": True, "drained": False, "in_group": True})
                 for name, host in hosts.items())
    options = {"max_nodes_per_router": group_vars["l3ha_max_nodes_per_router"],
               "min_nodes_per_router": group_vars["l3ha_min_nodes_per_router"],
               "vxlan_remote_vteps": lab_vars["l3ha_vxlan_remote_vteps"]}
    planned = plan(group_vars["l3ha_routers"], group_vars["l3ha_networks"], nodes, {}, options)
    if planned["errors"]:
        raise BenchError("planner errors: %s" % planned["errors"][:5])
    result = {}
    for node, entry in planned["nodes"].items():
        segments = entry["segments"]
        vxlans = [{"bridge": s["bridge"], "device": s["device"], "vni": s["vni"], "mtu": s["mtu"],
                   "remotes": s["remotes"]} for s in segments.values() if s["type"] == "vxlan"]
        result[node] = {"local_ip": hosts[node]["l3ha_tunnel_ip"], "vxlans": vxlans,
                        "routers": [_router(r, segments, advert_int) for r in entry["routers"]]}
    with open(path, "w") as handle:
        json.dump({"naive_nodes": result}, handle)
    return path
