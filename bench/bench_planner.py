"""How long the planner takes: 5000 routers on 10 nodes (target: under 2 s).

Plans from scratch, then again with the first plan fed back as the nodes' facts (the
steady state of every converge), and checks the second plan equals the first.
Usage: .venv/bin/python bench/bench_planner.py [--routers N] [--nodes N] [--repeat N]
"""
import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / ".build" / "collections"))

from ansible_collections.l3ha.routers.plugins.module_utils._planner import plan  # noqa: E402

ROUTERS_PER_TENANT = 100


def inventory(router_count, node_count):
    nodes = dict(("net%02d" % i, {"tunnel_ip": "192.0.2.%d" % (10 + i), "availability_zone": "az%d" % (i % 3)})
                 for i in range(node_count))
    networks = {"ext": {"type": "bridge", "bridge": "br-ex", "cidr": "10.128.0.0/15", "external": True}}
    routers = []
    for index in range(router_count):
        tenant = index // ROUTERS_PER_TENANT
        network = "t%d-net" % tenant
        networks.setdefault(network, {"type": "vxlan", "vni": 1000 + tenant, "cidr": "10.%d.0.0/16" % (tenant + 1)})
        slot = index % ROUTERS_PER_TENANT
        routers.append({
            "name": "r%05d" % index,
            "tenant": "t%d" % tenant,
            "gateway": {"network": "ext", "address": "10.128.%d.%d/15" % (index // 250, index % 250 + 2),
                        "gateway_ip": "10.129.255.254", "snat": True},
            "interfaces": [{"network": network, "address": "10.%d.%d.1/24" % (tenant + 1, slot)}],
            "routes": [{"destination": "10.200.%d.0/24" % slot, "nexthop": "10.%d.%d.254" % (tenant + 1, slot)}],
            "floating_ips": [{"external": "10.129.%d.%d" % (index // 250, index % 250 + 2),
                              "internal": "10.%d.%d.5" % (tenant + 1, slot)}],
        })
    options = {"max_nodes_per_router": 3, "min_nodes_per_router": 2, "ha_vni_range": [5000, 5999]}
    return routers, networks, nodes, options


def as_facts(result):
    return dict((node, dict((r["name"], {"metadata": r["metadata"]}) for r in entry["routers"]))
                for node, entry in result["nodes"].items())


def timed(*args):
    """(plan, (wall seconds, CPU seconds)): CPU time is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = plan(*args)
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    routers, networks, nodes, options = inventory(args.routers, args.nodes)
    fresh, steady, result = [], [], None
    for _round in range(args.repeat):
        result, took = timed(routers, networks, nodes, {}, options)
        fresh.append(took)
        if result["errors"]:
            sys.exit("planner errors: %s" % result["errors"][:5])
        again, took = timed(routers, networks, nodes, as_facts(result), options)
        steady.append(took)
        if again != result:
            sys.exit("re-plan with the plan fed back differs")
    replicas = sum(len(e["routers"]) for e in result["nodes"].values())
    print("planner: %d routers, %d nodes, %d replicas" % (args.routers, args.nodes, replicas))
    for label, runs in (("fresh plan: ", fresh), ("steady plan:", steady)):
        print("  %s wall best %.2f s, worst %.2f s; CPU best %.2f s (load average %.1f)"
              % (label, min(w for w, _c in runs), max(w for w, _c in runs), min(c for _w, c in runs), os.getloadavg()[0]))
    print("  (steady: the plan fed back as the nodes' facts gives the identical plan)")


if __name__ == "__main__":
    main()
