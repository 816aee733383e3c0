"""How long one ha_routers call takes for N routers on one node (default 200).

Runs in a private node (l3ha_lab.testing.PrivateNode: its own network and mount
namespace, own /run/netns), so nothing touches the machine. Times four module calls: create everything (namespaces,
3 ports each, files, nftables, keepalived), check mode with nothing to do, apply with
nothing to do, and check mode with one router drifted. Then removes everything.
Before the no-op calls every router's keepalived is master (its one peer does not exist),
and its state file and IPv6 forwarding say so, as notify.sh would: the runtime comparison
(addresses, routes, IPv6 forwarding, services) runs as on a real node.
``--collections DIR`` runs another checkout's module (side-by-side comparisons).
Needs root. Usage: .venv/bin/python bench/bench_reconciler.py [--routers N] [--collections DIR]
[--profile FILE]
"""
import argparse
import hashlib
import json
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))

from l3ha_lab.testing import PYTHON, PrivateNode  # noqa: E402  (needs the sys.path entry above)

BRIDGE = "ip link add br-ex type bridge && ip link set br-ex up"
KEEPALIVED = """global_defs {
  vrrp_version 3
  router_id %(name)s
}
vrrp_instance %(name)s {
  state BACKUP
  interface %(ha)s
  virtual_router_id %(vrid)d
  priority 50
  advert_int 1
  nopreempt
  unicast_src_ip %(address)s
  unicast_peer {
    169.254.255.250
  }
  virtual_ipaddress {
    169.254.0.1/24 dev %(ha)s
  }
}
"""


def short(key):
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def router(index, tenant):
    name = "r%04d" % index
    vrid = index % 250 + 1
    address = "169.254.%d.%d" % (192 + index // 250, index % 250 + 1)
    ports = [("ha", "ha-", "ha-%d" % tenant, 1450), ("gateway", "qg-", "ext", 1500),
             ("internal", "qr-", "net-%d" % tenant, 1450)]
    return {
        "name": name, "tenant": "t%d" % tenant, "ha": True, "vrid": vrid, "segment": "ha-%d" % tenant,
        "ha_address": address + "/18", "peers": ["169.254.255.250"], "priority": 50,
        "ports": [{"kind": kind, "name": prefix + short(name + kind), "peer": "v" + prefix[:2] + short(name + kind),
                   "segment": segment, "mac": "fa:16:3e:%02x:%02x:%02x" % (ord(prefix[1]), index // 256, index % 256),
                   "mtu": mtu, "addresses": [address + "/18"] if kind == "ha" else []}
                  for kind, prefix, segment, mtu in ports],
        "files": {"keepalived.conf": KEEPALIVED % dict(name=name, ha="ha-" + short(name + "ha"),
                                                       vrid=vrid, address=address),
                  "notify.sh": "#!/bin/sh\nexit 0\n",
                  "nftables.nft": "table inet l3ha\ndelete table inet l3ha\ntable inet l3ha {\n"
                                  "  chain post { type nat hook postrouting priority 100; }\n}\n"},
        "metadata": {"index": index},
    }


def arguments(work, count):
    tenants = max(1, count // 50)
    segments = {"ext": {"type": "bridge", "bridge": "br-ex"}}
    for tenant in range(tenants):
        for kind in ("ha", "net"):
            key = "%s-%d" % (kind, tenant)
            segments[key] = {"type": "vxlan", "vni": 2000 + tenant * 2 + (kind == "net"), "bridge": "brq-" + short(key),
                             "device": "vx-" + short(key), "mtu": 1450, "remotes": ["192.0.2.12", "192.0.2.13"]}
    return {"local_ip": "192.0.2.11", "purge": True, "config_dir": str(work / "etc"), "run_dir": str(work / "run"),
            "metrics_dir": str(work / "metrics"),  # the private node shares the host's /var/lib
            "state_dir": str(work / "state"), "segments": segments,
            "routers": [router(i, i % tenants) for i in range(count)]}


COLLECTIONS = ROOT / ".build" / "collections"


def call(node, work, args, check=False, profile=None):
    path = work / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}))
    start, cpu_start = time.time(), _children_cpu()
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    out = subprocess.run(node.argv(["env", "PYTHONPATH=%s" % COLLECTIONS, PYTHON, *profiler, "-m",
                                    "ansible_collections.l3ha.routers.plugins.modules.ha_routers", str(path)]),
                         capture_output=True, text=True, check=False)
    elapsed, cpu = time.time() - start, _children_cpu() - cpu_start
    result = json.loads(out.stdout)
    if result.get("failed"):
        raise SystemExit("module failed: %s" % result.get("msg"))
    drifted = sorted(name for name, entry in result["routers"].items() if entry["changed"])
    return elapsed, cpu, drifted


MASTER_ADDRESS = "169.254.0.1/24"   # the virtual_ipaddress of KEEPALIVED


def settle_as_masters(node, work, args, timeout=120):
    """Wait until every keepalived holds its VIP, then record master (60 s ago) and switch
    IPv6 forwarding on in each namespace, as notify.sh does on MASTER."""
    deadline = time.time() + timeout
    count = len(args["routers"])
    while True:
        held = node.sh("for ns in $(ls /run/netns); do ip -n $ns -4 -o addr show; done | grep -c ' %s ' || true"
                       % MASTER_ADDRESS).strip()
        if int(held or 0) >= count:
            break
        if time.time() > deadline:
            raise SystemExit("only %s of %d keepalived became master" % (held, count))
        time.sleep(1)
    node.sh("for ns in $(ls /run/netns); do ip netns exec $ns sysctl -qw net.ipv6.conf.all.forwarding=1; done")
    settled = "master %.3f\n" % (time.time() - 60)
    for entry in args["routers"]:
        (work / "run" / "routers" / entry["name"] / "state").write_text(settled)


def _children_cpu():
    """user+sys seconds of finished children (the module, and the nft/keepalived it waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=200)
    parser.add_argument("--collections", help="collections path of the checkout to run (default this one's)")
    parser.add_argument("--profile", help="write a cProfile of the apply no-op call to this file")
    options = parser.parse_args()
    global COLLECTIONS  # pylint: disable=global-statement
    COLLECTIONS = pathlib.Path(options.collections) if options.collections else COLLECTIONS
    work = pathlib.Path(tempfile.mkdtemp(prefix="l3ha-bench-"))
    node = PrivateNode(setup=BRIDGE)
    try:
        args = arguments(work, options.routers)
        with open("/proc/loadavg") as handle:
            load = " ".join(handle.read().split()[:3])
        rows = []
        rows.append(("create", *call(node, work, args)))
        settle_as_masters(node, work, args)
        rows.append(("check, no drift", *call(node, work, args, check=True)))
        rows.append(("apply, no drift", *call(node, work, args, profile=options.profile)))
        (work / "etc" / "routers" / "r0007" / "notify.sh").write_text("#!/bin/sh\n# edited\n")
        rows.append(("check, 1 drifted", *call(node, work, args, check=True)))
        print("%d routers, one ha_routers call each (incl. Python start); load average before: %s"
              % (options.routers, load))
        for label, elapsed, cpu, drifted in rows:
            print("  %-18s wall %6.2f s  cpu %6.2f s  changed routers: %d" % (label, elapsed, cpu, len(drifted)))
    finally:
        node.close()  # everything the modules started lives in the node
        shutil.rmtree(str(work), ignore_errors=True)


if __name__ == "__main__":
    main()
