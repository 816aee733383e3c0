"""`make bench`: converge at scale, the naive baseline, drain and crash failover.

Brings up one lab per scenario (each in its own directory under /run), measures, tears
it down, and writes results.json, results.md and PNG plots to the output directory
(default bench/results/<UTC time>/). See docs/benchmarks.md.
"""

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import time
import traceback

import measure
import report
from benchlab import REPO


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])
    keepalived = subprocess.run(["keepalived", "--version"], capture_output=True, text=True, check=False)
    version = (keepalived.stderr or keepalived.stdout).splitlines()[:1]
    load = os.getloadavg()
    info = {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 1048576.0, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "keepalived": version[0] if version else "unknown",
            "load_at_start": [round(v, 2) for v in load]}
    info["summary"] = "%d x %s, %.0f GiB RAM, Linux %s, %s, load at start %.2f" % (
        info["cpus"], cpu, info["memory_gib"], info["kernel"], info["keepalived"], load[0])
    return info


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    # 1000 is not in the default: at advert 0.1 s (the default, and that of the failover
    # runs) 2000 keepalived instances take most of the 2-core lab machine; the 1000-router
    # figures in docs/benchmarks.md are from `--routers 10,100,300,1000 --advert-int 0.5`
    # (the role's `large` profile).
    parser.add_argument("--routers", default="10,100,300",
                        help="comma-separated N for the converge runs (default 10,100,300)")
    parser.add_argument("--nodes", type=int, default=3, help="network nodes for the converge runs")
    parser.add_argument("--failover-routers", type=int, default=100,
                        help="routers (all masters on one node) for the drain and crash runs")
    parser.add_argument("--crash-runs", type=int, default=3)
    parser.add_argument("--naive-routers", type=int, default=100,
                        help="N for the naive baseline (0: skip); compared to the converge run of the same N")
    parser.add_argument("--noop-runs", type=int, default=2, help="no-op re-runs and --check runs per N")
    parser.add_argument("--interval", type=float, default=0.01, help="probe interval (s)")
    parser.add_argument("--advert-int", type=float, default=0.1, help="l3ha_advert_int for every run")
    parser.add_argument("--priority", type=int,
                        help="l3ha_vrrp_priority for every run (default: the role's default)")
    parser.add_argument("--only", default="scaling,naive,failover",
                        help="comma-separated subset of scaling,naive,failover,peers,large (peers: crash "
                             "and uplink outages of ours, ours with the per-router check instead of the "
                             "uplink monitor, and Neutron's defaults, side by side; large: the large "
                             "profile's crash failover and monitor CPU at --large-routers per node; "
                             "neither is in the default)")
    parser.add_argument("--probe-sample", type=int, default=0,
                        help="peers part: probe this many of the routers that move (0: all); one "
                             "prober probing 100 routers every 10 ms stalls itself during a failover")
    parser.add_argument("--large-routers", type=int, default=1000,
                        help="routers per node (x 2 replicas on 2 nodes) for the large part")
    parser.add_argument("--large-sample", type=int, default=50,
                        help="routers probed during the large part's crash")
    parser.add_argument("--large-profile", default="large", choices=["standard", "large"],
                        help="l3ha_profile of the large part (standard: the N=300 analysis)")
    parser.add_argument("--large-event", default="crash", choices=["crash", "isolate"],
                        help="large part: SIGKILL the node, or cut it from the underlay and the external "
                             "network (alive: no namespace cleanup of a dead node in the kernel meanwhile)")
    parser.add_argument("--forks", default="",
                        help="comma-separated forks values: one more no-op re-run per N with each "
                             "(Ansible's per-host overhead, e.g. 5,20 on 20 nodes)")
    parser.add_argument("--out", help="output directory (default bench/results/<UTC time>)")
    parser.add_argument("--lab-prefix",
                        help="lab directories are PREFIX-<scenario> (default /run/l3ha-bench-<pid>)")
    parser.add_argument("--smoke", action="store_true",
                        help="small and quick: N=20 on 2 nodes, 1 crash run, naive N=2, every part")
    args = parser.parse_args(argv)
    if args.smoke:
        args.routers, args.nodes, args.failover_routers = "20", 2, 20
        args.crash_runs, args.naive_routers, args.noop_runs = 1, 2, 1
        args.forks = args.forks or "1,2"
        args.large_routers, args.large_sample = 20, 5
        if args.only == parser.get_default("only"):
            args.only = "scaling,naive,failover,peers,large"
    args.router_counts = [int(n) for n in args.routers.split(",") if n.strip()]
    args.fork_counts = [int(n) for n in args.forks.split(",") if n.strip()]
    args.parts = set(p.strip() for p in args.only.split(",") if p.strip())
    unknown = args.parts - {"scaling", "naive", "failover", "peers", "large"}
    if unknown:
        parser.error("--only: unknown part(s) %s" % ", ".join(sorted(unknown)))
    if args.naive_routers and {"scaling", "naive"} <= args.parts and args.naive_routers not in args.router_counts:
        args.router_counts.append(args.naive_routers)  # the collection's side of the ratio
    args.router_counts.sort()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    args.out = os.path.abspath(args.out or os.path.join(REPO, "bench", "results", stamp))
    args.work_dir = os.path.join(args.out, "work")
    args.extra_vars = {"l3ha_advert_int": args.advert_int}
    if args.priority is not None:
        # The skew time a backup waits after a priority-0 advert is (256 - priority) / 256
        # of the advert interval: the lever for the drain outage.
        args.extra_vars["l3ha_vrrp_priority"] = args.priority
    args.baseline_s = 1.0
    prefix = args.lab_prefix or "/run/l3ha-bench-%d" % os.getpid()
    args.lab_dir = lambda label: "%s-%s" % (prefix, label)
    return args


def _interrupted(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)  # unwinds through every lab's down()


def main(argv=None):
    signal.signal(signal.SIGTERM, _interrupted)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.makedirs(args.work_dir, exist_ok=True)
    log_path = os.path.join(args.out, "bench.log")

    def log(message):
        line = "%s %s" % (time.strftime("%H:%M:%S"), message)
        print(line, flush=True)
        with open(log_path, "a") as handle:
            handle.write(line + "\n")

    started = time.monotonic()
    results = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "arguments": " ".join(sys.argv[1:] if argv is None else argv) or "(defaults)",
               "machine": machine(), "advert_int_s": args.advert_int,
               "vrrp_priority": args.priority, "probe_sample": args.probe_sample, "scaling": [], "errors": []}
    json_path = os.path.join(args.out, "results.json")
    log("bench: results in %s" % args.out)

    def attempt(label, func, *func_args):
        log("bench: %s" % label)
        try:
            return func(*func_args)
        except Exception as exc:  # record it, go on with the next measurement
            log("bench: %s FAILED: %s" % (label, exc))
            with open(log_path, "a") as handle:
                traceback.print_exc(file=handle)
            results["errors"].append("%s: %s" % (label, exc))
            return None
        finally:
            results["wall_s"] = round(time.monotonic() - started, 1)
            measure.write_json(json_path, results)

    if "scaling" in args.parts:
        for count in args.router_counts:
            row = attempt("converge N=%d on %d nodes" % (count, args.nodes), measure.scaling, args, count, log)
            if row:
                results["scaling"].append(row)
    if "naive" in args.parts and args.naive_routers:
        results["naive"] = attempt("naive baseline N=%d" % args.naive_routers, measure.naive_baseline,
                                   args, args.naive_routers, log)
    if "failover" in args.parts:
        results["failover"] = attempt("failover N=%d" % args.failover_routers, measure.failover, args, log)
    if "peers" in args.parts:
        results["peers"] = attempt("peer baselines N=%d" % args.failover_routers, measure.peers, args, log)
    if "large" in args.parts:
        results["large"] = attempt("large profile at %d routers per node" % args.large_routers, measure.large,
                                   args, log)
    results["wall_s"] = round(time.monotonic() - started, 1)
    measure.write_json(json_path, results)
    md, plots = report.write_all(results, args.out)
    log("bench: wrote %s, %s, %s" % (json_path, md, ", ".join(plots)))
    with open(md) as handle:
        print(handle.read())
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
