"""The demo's failover: crash the node holding the most masters while traffic flows.

Reads the status JSON written by l3ha.routers.status, starts one lab probe per router
(its first internal network's client -> upstream, every 10 ms), crashes the busiest
node, waits until every probed router answers again, then prints each router's outage:
the longest gap between two replies, measured from traffic.
"""
import json
import subprocess
import sys
import time

LAB = "lab/l3ha-lab"


def lab(*args):
    return subprocess.run([LAB, *args], check=True, capture_output=True, text=True).stdout


def inventory_routers(inventories):
    argv = ["ansible-inventory", "--list"]
    for path in inventories:
        argv += ["-i", path]
    hostvars = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
    hostvars = hostvars["_meta"]["hostvars"]
    for host in hostvars.values():
        if "l3ha_routers" in host:
            return host["l3ha_routers"]
    return []


def first_ipv4(value):
    values = value if isinstance(value, list) else [value]
    return next((v for v in values if ":" not in v), None)


def probe_paths(routers):
    """(router, client endpoint, upstream IPv4) for routers with a client to send from."""
    paths = []
    for router in routers:
        gateway = router.get("gateway") or {}
        upstream = first_ipv4(gateway.get("gateway_ip", []))
        ipv4_networks = [i["network"] for i in router.get("interfaces", []) if ":" not in i["address"]]
        if upstream and ipv4_networks and router.get("state", "present") == "present":
            paths.append((router["name"], "client-" + ipv4_networks[0], upstream))
    return paths


def wait_until_answering(path, deadline):
    router, client, upstream = path
    while time.monotonic() < deadline:
        check = subprocess.run([LAB, "exec", client, "--", "ping", "-c1", "-W1", upstream],
                               capture_output=True, check=False)
        if check.returncode == 0:
            return True
    print(f"  {router}: no traffic through it after the crash", file=sys.stderr)
    return False


def main(status_json, *inventories):
    with open(status_json) as handle:
        status = json.load(handle)
    busiest = max(status["nodes"], key=lambda node: status["nodes"][node]["masters"])
    paths = probe_paths(inventory_routers(inventories))
    print(f"demo: crashing {busiest} (master of {status['nodes'][busiest]['masters']} routers) "
          f"while probing {len(paths)} routers every 10 ms")
    for router, client, upstream in paths:
        lab("probe", "start", "--from", client, "--to", upstream, "--interval", "0.01",
            "--max-seconds", "120", f"demo-{router}")
    time.sleep(1)  # a second of normal traffic before the crash, so the gap is around it
    lab("crash", busiest)
    deadline = time.monotonic() + 30
    answering = [wait_until_answering(path, deadline) for path in paths]  # wait for every router
    healthy = all(answering)
    time.sleep(1)  # traffic after recovery closes the last gap
    print(f"{'router':<12} {'client':<20} outage (longest gap between replies)")
    for router, client, _upstream in paths:
        result = json.loads(lab("probe", "stop", f"demo-{router}"))
        print(f"{router:<12} {client:<20} {result['longest_gap']:.3f} s")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
