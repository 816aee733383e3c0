"""A lab for one benchmark scenario: inventory, playbook runs, node state, the prober.

Wraps the lab's Python API (lab/l3ha_lab) and its test driver (l3ha_lab.testing: waits,
playbook runs, recaps); everything it starts is stopped in `close()`.
"""

import json
import os
import signal
import subprocess
import sys
import time

import scenario

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
LAB_PACKAGE = os.path.join(REPO, "lab")
# Real-time priority of the prober (chrt --fifo): above every lab process, below the
# kernel threads that run at 50.
PROBER_RT_PRIORITY = 10
sys.path.insert(0, LAB_PACKAGE)

from l3ha_lab import Lab, kernel  # noqa: E402  (needs the sys.path entry above)
from l3ha_lab.collection import vocabulary  # noqa: E402
from l3ha_lab.testing import PYTHON, run_playbook, wait_until  # noqa: E402


class BenchError(Exception):
    pass


class BenchLab:
    def __init__(self, label, work_dir, routers, nodes, replicas=2, extra_vars=None,
                 lab_dir=None, log=print, kind="namespace"):
        self.label = label
        self.work_dir = work_dir
        self.router_count = routers
        self.node_count = nodes
        self.replicas = replicas
        self.log = log
        os.makedirs(work_dir, exist_ok=True)
        self.inventory = scenario.write_inventory(
            os.path.join(work_dir, "inventory-%s.yml" % label), routers, nodes, replicas, extra_vars)
        self.lab = Lab(lab_dir or "/run/l3ha-bench-%d-%s" % (os.getpid(), label))
        self.nodes = scenario.node_names(nodes)
        self.routers = [scenario.router_name(i) for i in range(routers)]
        self.gateways = dict((scenario.router_name(i), str(scenario.gateway_address(i)))
                             for i in range(routers))
        self._probers = []
        self._runs = 0
        self.kind = kind
        # machine nodes are reached as the admin user: become, as on real hosts
        become = [os.path.join(REPO, "examples", "become.yml")] if kind == "machine" else []
        self.inventories = [self.inventory] + become

    # ---- lifecycle ------------------------------------------------------------------
    def up(self):
        start = time.monotonic()
        self.lab.up([self.inventory], nodes=self.kind)
        self.log("  [%s] lab up: %d nodes, %d routers (%.1f s)"
                 % (self.label, self.node_count, self.router_count, time.monotonic() - start))

    def close(self):
        for proc in self._probers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.lab.down()

    # ---- ansible --------------------------------------------------------------------
    def playbook(self, playbook, *args, check=False):
        """Run a playbook against the lab; returns {seconds, changed, log}."""
        self._runs += 1
        log_path = os.path.join(self.work_dir, "%s-%02d-%s%s.log" % (
            self.label, self._runs, os.path.basename(playbook).replace(".yml", ""),
            "-check" if check else ""))
        run = run_playbook(self.lab, playbook, inventories=self.inventories, args=args, check=check, timeout=None,
                           log_path=log_path)
        if run.returncode != 0:
            raise BenchError("%s failed (exit %d), see %s" % (playbook, run.returncode, log_path))
        mode = " --check" if check else ""
        self.log("  [%s] %s%s: %.1f s, changed=%d" % (self.label, playbook, mode, run.seconds, run.changed))
        return {"seconds": round(run.seconds, 3), "changed": run.changed, "log": log_path}

    # ---- node state -----------------------------------------------------------------
    def alive_nodes(self):
        return [n["name"] for n in self.lab.status()["nodes"] if n["alive"]]

    def node_info(self, node, memory=False):
        argv = [PYTHON, os.path.join(BENCH, "nodeinfo.py")] + (["--memory"] if memory else [])
        proc = self.lab.run(node, argv, timeout=120)
        if proc.returncode != 0:
            raise BenchError("nodeinfo on %s failed: %s" % (node, proc.stderr.strip()))
        return json.loads(proc.stdout)

    def info(self, memory=False, nodes=None):
        return dict((node, self.node_info(node, memory)) for node in (nodes or self.alive_nodes()))

    def masters(self, info=None):
        """{router: [nodes where it is master]} over the given (or alive) nodes."""
        info = info or self.info()
        result = dict((router, []) for router in self.routers)
        for node, data in info.items():
            for router, entry in data["routers"].items():
                if entry["state"] == "master" and router in result:
                    result[router].append(node)
        return result

    def wait_one_master_each(self, timeout=120.0, on=None):
        """Wait until every router has exactly one master (on node `on`, if given)."""
        def settled():
            info = self.info()
            masters = self.masters(info)
            ok = all(len(m) == 1 and (on is None or m == [on]) for m in masters.values())
            # notify.sh records the state before it logs the transition: wait for the log
            # too, or a late line would be counted in the next measurement
            logged = all((entry.get("transitions") or [None])[-1] == entry["state"]
                         for data in info.values() for entry in data["routers"].values())
            return info if ok and logged else None
        return wait_until(settled, timeout, "one master per router%s" % (" on " + on if on else ""), interval=0.2)

    def wait_states(self, node, state, timeout=120.0, interval=0.2):
        """Wait until every router on `node` is in `state` (each look is a Python process in
        the node: during a measured event, look seldom)."""
        def settled():
            routers = self.node_info(node)["routers"]
            ok = set(routers) >= set(self.routers) and all(
                routers[r]["state"] == state for r in self.routers)
            return routers if ok else None
        return wait_until(settled, timeout, "every router %s on %s" % (state, node), interval=interval)

    def process_cpu(self, comm):
        """(CPU seconds used so far, how many) of the processes named `comm` in every alive node."""
        script = "for p in $(pgrep -x %s); do cat /proc/$p/stat 2>/dev/null; done; true" % comm
        ticks, count = 0, 0
        for node in self.alive_nodes():
            for line in self.lab.run(node, ["sh", "-c", script], timeout=60).stdout.splitlines():
                fields = line.rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
                count += 1
        return ticks / float(os.sysconf("SC_CLK_TCK")), count

    def drain_muted(self, node):
        """Routers on `node` whose namespace holds the drain's MLD-dropping table."""
        script = ('for ns in $(ip netns list | sed -n "s/^\\({prefix}[a-z0-9-]*\\).*/\\1/p"); do '
                  'ip netns exec "$ns" nft list table inet l3ha_drain >/dev/null 2>&1 && echo "${{ns#{prefix}}}"; '
                  'done; true').format(prefix=vocabulary.NAMESPACE_PREFIX)
        proc = self.lab.run(node, ["sh", "-c", script], timeout=120)
        if proc.returncode != 0:
            raise BenchError("listing the drain tables on %s failed: %s" % (node, proc.stderr.strip()))
        return sorted(proc.stdout.split())

    # ---- traffic --------------------------------------------------------------------
    def start_prober(self, name, routers=None, interval=0.01):
        routers = routers or self.routers
        targets = os.path.join(self.work_dir, "%s-%s.targets" % (self.label, name))
        with open(targets, "w") as handle:
            handle.write("".join(self.gateways[r] + "\n" for r in routers))
        out = os.path.join(self.work_dir, "%s-%s.probe.json" % (self.label, name))
        for stale in (out, out + ".running"):
            if os.path.exists(stale):
                os.unlink(stale)
        # The prober is the instrument, and on real nodes the traffic comes from elsewhere:
        # real-time (SCHED_FIFO) here, or hundreds of runnable keepalived and notify.sh in a
        # mass failover starve it, whatever its nice value, and it reports its own stall as
        # the routers' outage (measured, docs/benchmarks.md). Its send stall is reported.
        argv = ["chrt", "--fifo", str(PROBER_RT_PRIORITY)] + kernel.nsenter_argv(self.lab.box_pid("upstream"), net_only=True) + [
            PYTHON, os.path.join(BENCH, "prober.py"), "--targets-file", targets,
            "--interval", str(interval), "--out", out]
        env = dict(os.environ, PYTHONPATH=LAB_PACKAGE)
        with open(out + ".log", "w") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        self._probers.append(proc)
        wait_until(lambda: os.path.exists(out + ".running") or proc.poll() is not None, 10.0,
                   "prober %s to start" % name, interval=0.01)
        if proc.poll() is not None:
            raise BenchError("prober %s exited at once (log: %s.log)" % (name, out))
        return {"proc": proc, "out": out, "routers": list(routers)}

    def stop_prober(self, prober):
        """Stop a prober; returns ({router: summarize() dict}, longest send stall in s)."""
        proc = prober["proc"]
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BenchError("prober did not stop (log: %s.log)" % prober["out"])
        if not os.path.exists(prober["out"]):
            raise BenchError("prober wrote no result (log: %s.log)" % prober["out"])
        with open(prober["out"]) as handle:
            result = json.load(handle)
        per_router = dict((r, result["targets"][self.gateways[r]]) for r in prober["routers"])
        return per_router, result["longest_send_stall"]

    def reachable(self, timeout=30.0, window=1.0, interval=0.05):
        """Routers whose gateway address answered, probing in windows of `window` s until
        every router has answered or `timeout` s have passed (the first probes to 1000
        gateways wait for ARP)."""
        answered = set()
        deadline = time.monotonic() + timeout
        while len(answered) < len(self.routers) and time.monotonic() < deadline:
            prober = self.start_prober("reach", interval=interval)
            time.sleep(window)  # the probing window itself, not a wait for a condition
            result, _stall = self.stop_prober(prober)
            answered.update(r for r, entry in result.items() if entry["received"] > 0)
        return sorted(answered)
