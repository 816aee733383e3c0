"""SSH to systemd machine nodes against nsenter to namespace nodes, side by side (issue 15).

The same scenario (N HA routers, 2 replicas, 3 nodes) on both kinds of lab node, one
after the other in one run: cold converge, no-op, --check, and on machine nodes the
time from `lab reboot` of the node with the most masters until all its replicas are
back as backups (restored by the node itself, no controller run).

    .venv/bin/python bench/bench_ssh.py [--routers 100] [--work-dir DIR]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

from benchlab import BenchLab

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lab"))
from l3ha_lab.testing import busiest, node_states, wait_until  # noqa: E402

SITE = "l3ha.routers.site"


def measure(kind, routers, work_dir):
    bench = BenchLab(kind, work_dir, routers, 3, kind=kind, lab_dir="/run/l3ha-bench-ssh-%s" % kind)
    result = {"kind": kind, "routers": routers, "nodes": 3}
    try:
        started = time.monotonic()
        bench.up()
        result["lab_up_s"] = round(time.monotonic() - started, 1)
        result["cold_converge_s"] = bench.playbook(SITE)["seconds"]
        noop = bench.playbook(SITE)
        result["noop_s"], result["noop_changed"] = noop["seconds"], noop["changed"]
        check = bench.playbook(SITE, check=True)
        result["check_s"], result["check_changed"] = check["seconds"], check["changed"]
        if kind == "machine":
            states = wait_until(lambda: node_states(bench.lab, bench.nodes), 120, "every router settled",
                                ok=lambda s: all(v is not None and len(v) >= 1 for v in s.values()))
            node = busiest(states)
            held = sorted(states[node])
            started = time.monotonic()
            bench.lab.reboot(node)
            wait_until(lambda: node_states(bench.lab, [node])[node], 180, "%s's replicas back as backups" % node,
                       interval=0.2, ok=lambda s: s is not None and all(s.get(r) == "backup" for r in held))
            result["reboot_to_all_backups_s"] = round(time.monotonic() - started, 2)
            result["rebooted_replicas"] = len(held)
    finally:
        bench.close()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench_ssh.py")
    parser.add_argument("--routers", type=int, default=100)
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="l3ha-bench-ssh-")
    rows = [measure(kind, args.routers, work_dir) for kind in ("namespace", "machine")]
    ratio = dict((key, round(rows[1][key] / rows[0][key], 2)) for key in ("cold_converge_s", "noop_s", "check_s"))
    report = {"machine": "%s, %d cores, load %.1f" % (platform.platform(), os.cpu_count(), os.getloadavg()[0]),
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows, "ssh_over_nsenter": ratio}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
