"""The benchmark scenarios: converge at scale, the naive baseline, drain and crash failover.

Each returns plain data for results.json; the numbers come from real runs in the lab.
"""

import json
import os
import statistics
import subprocess
import time

import naive
from benchlab import BenchError, BenchLab
from l3ha_lab.testing import WaitTimeout  # benchlab put lab/ on sys.path

SITE = "l3ha.routers.site"
DRAIN = "l3ha.routers.drain"
UNDRAIN = "l3ha.routers.undrain"


def spread(values):
    values = list(values)
    if not values:
        return None
    found = {"min": round(min(values), 4), "median": round(statistics.median(values), 4),
             "max": round(max(values), 4), "count": len(values)}
    if len(values) >= 2:
        found["p95"] = round(statistics.quantiles(values, n=20, method="inclusive")[18], 4)
    return found


def transition_counts(info):
    """{(node, router): number of logged transitions}."""
    return dict(((node, router), len(entry["transitions"]))
                for node, data in info.items() for router, entry in data["routers"].items())


def converge_spurious(info, routers, established_after):
    """Spurious transitions while the routers first came up, from all replicas' logs.

    Returns (spurious, first-election collisions, examples). The initial election (every
    replica BACKUP, one of them then MASTER) is not spurious. A master is *established*
    once it has been master for `established_after` seconds (3 adverts: every peer
    that is up has heard it). Spurious is: a master on another node while an established
    master exists, and an established master leaving MASTER without a fault. The same
    before the first master is established is a *collision* of the first election: two
    replicas whose timers ran out within one advert's delivery time of each other both
    claimed the router (VRRP lets the lower address yield at once); it is counted apart
    (a collision counts 2, like a dual master). Faults are listed but not counted.
    """
    extra, collisions, examples = 0, 0, []
    for router in routers:
        events = sorted((at, node, word) for node, data in info.items() for at, word in _logged(data, router))
        masters, master_since, last_master, previous = set(), {}, None, {}
        for at, node, word in events:
            found = None  # (what, whether an established master was concerned)
            if word == "master":
                if last_master is not None and (masters - {node} or last_master != node):
                    found = ("master also/again on %s" % node,
                             any(at - master_since[m] >= established_after for m in masters - {node}))
                masters.add(node)
                master_since[node] = at
                last_master = node
            else:
                if word == "backup" and previous.get(node) == "master":
                    found = ("%s left master without a fault" % node,
                             at - master_since.get(node, at) >= established_after)
                if word == "fault":
                    examples.append("%s: fault on %s at %.3f" % (router, node, at))
                masters.discard(node)
            previous[node] = word
            if found:
                what, established = found
                if established:
                    extra += 1
                else:
                    collisions += 1
                if len(examples) < 20:
                    examples.append("%s: %s%s at %.3f (%s)" % (router, what, "" if established else
                                                               " (first-election collision)", at, _timeline(events)))
    return extra, collisions, examples


def joined_under_a_master(info, routers):
    """Replicas that started (first BACKUP) while another replica was already master.

    These are the starts that risk a second master if the adverts do not reach the new
    replica at once; a count > 0 with 0 spurious transitions shows the risk was met.
    """
    count = 0
    for router in routers:
        first_master = min((at for data in info.values() for at, word in _logged(data, router)
                            if word == "master"), default=None)
        for data in info.values():
            entry = data["routers"].get(router, {})
            times = entry.get("transition_times", [])
            if first_master is not None and times and entry["transitions"][0] == "backup" \
                    and times[0] > first_master:
                count += 1
    return count


def _logged(data, router):
    """[(time, state word)] of one replica's logged transitions (nodeinfo's data of its node)."""
    entry = data["routers"].get(router, {})
    return list(zip(entry.get("transition_times", []), entry.get("transitions", [])))


def _timeline(events):
    start = events[0][0]
    return ", ".join("%s %s +%.3f" % (node, word, at - start) for at, node, word in events)


def new_transitions(before, after):
    extra, examples = 0, []
    for key, count in sorted(after.items()):
        delta = count - before.get(key, 0)
        if delta:
            extra += delta
            if len(examples) < 10:
                examples.append("%s on %s: %+d" % (key[1], key[0], delta))
    return extra, examples


def memory_per_replica(info):
    per_replica = []
    processes = []
    for data in info.values():
        for usage in data.get("memory", {}).values():
            per_replica.append(usage["pss_kib"] / 1024.0)
            processes.append(usage["processes"])
    return {"pss_mib": spread(per_replica), "processes_per_replica": spread(processes)}


def scaling(options, count, log):
    """Cold converge, no-op re-runs, --check; spurious transitions; memory."""
    bench = BenchLab("n%d" % count, options.work_dir, count, options.nodes,
                     extra_vars=options.extra_vars, lab_dir=options.lab_dir("n%d" % count), log=log)
    try:
        bench.up()
        cold = bench.playbook(SITE)
        info = bench.wait_one_master_each(timeout=max(60.0, count * 0.3))
        settled = time.monotonic()
        spurious_converge, collisions, converge_examples = converge_spurious(
            info, bench.routers, established_after=3 * options.advert_int)
        late_replicas = joined_under_a_master(info, bench.routers)
        before = transition_counts(info)
        noop = [bench.playbook(SITE) for _run in range(options.noop_runs)]
        check = [bench.playbook(SITE, check=True) for _run in range(options.noop_runs)]
        by_forks = [(forks, bench.playbook(SITE, "--forks", str(forks))) for forks in options.fork_counts]
        # Let any flap the re-runs might have caused show up in the logs.
        time.sleep(max(0.0, 2.0 - (time.monotonic() - settled)))
        info = bench.info(memory=True)
        spurious_noop, noop_examples = new_transitions(before, transition_counts(info))
        masters = bench.masters(info)
        reachable = bench.reachable()
        per_node = dict((node, len(data["routers"])) for node, data in info.items())
        return {
            "routers": count, "nodes": options.nodes, "replicas": bench.replicas,
            "replicas_per_node": per_node,
            "cold_converge_s": cold["seconds"], "cold_changed": cold["changed"],
            "noop_s": [r["seconds"] for r in noop], "noop_changed": [r["changed"] for r in noop],
            "check_s": [r["seconds"] for r in check], "check_changed": [r["changed"] for r in check],
            "noop_by_forks": [{"forks": forks, "seconds": r["seconds"], "changed": r["changed"]}
                              for forks, r in by_forks],
            "spurious_transitions_converge": spurious_converge,
            "first_election_collisions": collisions,
            "spurious_transitions_noop": spurious_noop,
            "replicas_started_under_a_master": late_replicas,
            "spurious_examples": converge_examples + noop_examples,
            "routers_with_one_master": sum(1 for m in masters.values() if len(m) == 1),
            "routers_answering": len(reachable),
            "memory": memory_per_replica(info),
        }
    finally:
        bench.close()


def naive_baseline(options, count, log):
    """The hand-written playbook (bench/naive) on a fresh lab of the same shape."""
    bench = BenchLab("naive%d" % count, options.work_dir, count, options.nodes,
                     extra_vars=options.extra_vars, lab_dir=options.lab_dir("naive%d" % count), log=log)
    try:
        bench.up()
        vars_file = naive.write_vars(bench, os.path.join(options.work_dir, "naive-vars.json"),
                                     options.advert_int)
        run = bench.playbook(naive.PLAYBOOK, "-e", "@" + vars_file)
        reachable = bench.reachable()
        return {"routers": count, "nodes": options.nodes, "converge_s": run["seconds"],
                "routers_answering": len(reachable)}
    finally:
        bench.close()


# How long after the event's call returned its effect may still begin: a crashed lab
# node's router namespaces forward on until the kernel's asynchronous namespace cleanup
# deletes their links (seen: 88 ms after the kill returned, at light load).
EVENT_TAIL_S = 0.5


def _outages(probe, routers, event=None):
    """Per router: the longest reply gap, and whether it overlaps the event.

    `event` is (start, end): the crash takes effect somewhere between the call and its
    return, which on a loaded machine can take tens of milliseconds, or up to
    EVENT_TAIL_S later.
    """
    rows = {}
    for router in routers:
        entry = probe[router]
        start, gap = entry["gap_start"], entry["longest_gap"]
        rows[router] = {"outage_s": gap, "gap_start": start, "received": entry["received"],
                        "sent": entry["sent"],
                        "spans_event": None if event is None else
                        start - EVENT_TAIL_S <= event[1] and event[0] <= start + gap + 0.05}
    return rows


def failover(options, log):
    """Drain outage, then crash runs: the node holding every master is SIGKILLed."""
    count = options.failover_routers
    bench = BenchLab("failover", options.work_dir, count, 2, extra_vars=options.extra_vars,
                     lab_dir=options.lab_dir("failover"), log=log)
    result = {"routers": count, "nodes": 2, "interval_s": options.interval, "crash_runs": []}
    try:
        bench.up()
        bench.playbook(SITE)
        masters = bench.masters(bench.wait_one_master_each(timeout=max(60.0, count * 0.3)))
        # Drain the node holding more masters: more handovers measured in one go.
        second = max(bench.nodes, key=lambda node: sum(1 for m in masters.values() if m == [node]))
        first = [node for node in bench.nodes if node != second][0]
        moving = sorted(r for r, m in masters.items() if m == [second])
        log("  [failover] drain %s: %d masters move to %s" % (second, len(moving), first))
        prober = bench.start_prober("drain", interval=options.interval)
        drain = bench.playbook(DRAIN, "-e", "l3ha_drain_node=%s" % second)
        bench.wait_one_master_each(timeout=60.0, on=first)
        probe, stall = bench.stop_prober(prober)
        rows = _outages(probe, moving)
        result["drain"] = {"playbook_s": drain["seconds"], "routers_moved": len(moving),
                           "prober_send_stall_s": stall,
                           "outage_s": spread(r["outage_s"] for r in rows.values()),
                           "per_router": rows,
                           "others_outage_s": spread(probe[r]["longest_gap"] for r in bench.routers
                                                     if r not in rows)}
        result["drain"]["muted"] = bench.drain_muted(second)
        bench.playbook(UNDRAIN, "-e", "l3ha_drain_node=%s" % second)
        bench.wait_states(second, "backup")
        result["drain"]["muted_after_undrain"] = bench.drain_muted(second)
        victim, survivor = first, second
        for run in range(options.crash_runs):
            bench.wait_one_master_each(timeout=60.0, on=victim)
            result["crash_runs"].append(_crash_run(bench, run, victim, survivor, options, log))
            bench.lab.boot(victim)
            bench.playbook(SITE)
            bench.wait_states(victim, "backup")
            victim, survivor = survivor, victim
        all_outages = [row["outage_s"] for run in result["crash_runs"]
                       for row in run["per_router"].values()]
        result["crash_outage_s"] = spread(all_outages)
        result["crash_run_medians_s"] = spread(run["outage_s"]["median"] for run in result["crash_runs"])
        result["crash_run_max_s"] = spread(run["outage_s"]["max"] for run in result["crash_runs"])
        return result
    finally:
        bench.close()


def _crash_run(bench, run, victim, survivor, options, log):
    prober = bench.start_prober("crash%d" % run, interval=options.interval)
    time.sleep(options.baseline_s)  # traffic before the crash, so the gap has a start
    crashed_at = time.time()
    bench.lab.crash(victim)
    kill_returned = time.time()
    bench.wait_states(survivor, "master", timeout=60.0)
    time.sleep(options.baseline_s)  # traffic after the recovery, so the gap has an end
    probe, stall = bench.stop_prober(prober)
    rows = _outages(probe, bench.routers, (crashed_at, kill_returned))
    outages = [r["outage_s"] for r in rows.values()]
    not_spanning = sorted(r for r, row in rows.items() if not row["spans_event"])
    log("  [failover] crash %d of %s: outage median %.3f s, max %.3f s"
        % (run + 1, victim, statistics.median(outages), max(outages)))
    if not_spanning:
        log("  [failover] warning: %d routers' longest gap is not the crash: %s"
            % (len(not_spanning), ", ".join(not_spanning[:5])))
    return {"run": run + 1, "crashed": victim, "new_master": survivor,
            "crashed_at": crashed_at, "kill_s": round(kill_returned - crashed_at, 3),
            "outage_s": spread(outages), "gaps_not_at_crash": not_spanning,
            "prober_send_stall_s": stall,
            "per_router": rows}


# Neutron's keepalived defaults (neutron/agent/l3/ha.py and keepalived.py): VRRPv2 (no
# vrrp_version line), advert_int 2 (ha_vrrp_advert_int), every replica priority 50,
# garp_master_delay 60, no health check (ha_vrrp_health_check_interval 0), and of course
# no uplink monitor.
NEUTRON_DEFAULTS = {"l3ha_advert_int": 2, "l3ha_vrrp_version": 2, "l3ha_vrrp_priority": 50,
                    "l3ha_garp_master_delay": 60, "l3ha_health_check": False, "l3ha_uplink_monitor": False}
UPLINK_WAIT_S = 30.0
# While traffic is measured, the end of an event is looked for this seldom: each look
# starts a Python process in every node, which competes with the failover it waits for.
EVENT_POLL_S = 1.0
# The steady-state CPU window of each profile (a measuring window, not a wait).
CPU_WINDOW_S = 10.0
UPLINK_PROGRAM = "l3ha-uplink"


def peer_profiles(options):
    """(label, extra vars) of the side-by-side runs: ours as the run is configured (the
    uplink monitor on, its default), ours with the per-router health check instead of the
    monitor (what 1.x did), and Neutron's defaults."""
    return [("l3ha.routers", dict(options.extra_vars)),
            ("l3ha.routers, per-router check instead of the monitor",
             dict(options.extra_vars, l3ha_health_check=True, l3ha_uplink_monitor=False)),
            ("Neutron defaults", dict(options.extra_vars, **NEUTRON_DEFAULTS))]


def _machine_busy():
    """CPU seconds the whole machine has spent busy (all but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / float(os.sysconf("SC_CLK_TCK"))


def cpu_window(bench, seconds=CPU_WINDOW_S):
    """Steady-state CPU over `seconds`: the whole machine's, and the uplink monitors' (every node)."""
    machine, (monitor, _count) = _machine_busy(), bench.process_cpu(UPLINK_PROGRAM)
    time.sleep(seconds)  # the measuring window
    busy, (monitor_after, count) = _machine_busy(), bench.process_cpu(UPLINK_PROGRAM)
    return {"window_s": seconds, "machine_cores": round((busy - machine) / seconds, 3),
            "monitor_cores": round((monitor_after - monitor) / seconds, 4), "monitor_processes": count,
            "load_average": round(os.getloadavg()[0], 2)}


def peers(options, log):
    """The same lab and routers under each peer profile: crash of the node holding half the
    masters, then loss of the external link on the node holding all of them. A profile
    that fails keeps what it measured, with the error; the next one runs."""
    rows = []
    for label, extra_vars in peer_profiles(options):
        name = "peer%d" % len(rows)
        row = {"profile": label, "extra_vars": extra_vars, "routers": options.failover_routers,
               "crash": {"summary": "not measured"}, "uplink": {"summary": "not measured"}}
        rows.append(row)
        bench = BenchLab(name, options.work_dir, options.failover_routers, 2, extra_vars=extra_vars,
                         lab_dir=options.lab_dir(name), log=log)
        try:
            bench.up()
            bench.playbook(SITE)
            try:
                masters = bench.masters(bench.wait_one_master_each(timeout=max(120.0, options.failover_routers)))
            except WaitTimeout:
                states = {}
                for data in bench.info().values():
                    for entry in data["routers"].values():
                        states[entry["state"]] = states.get(entry["state"], 0) + 1
                row["crash"]["summary"] = "never settled to one master per router (replica states: %s)" % ", ".join(
                    "%s %d" % item for item in sorted(states.items()))
                log("  [%s] %s" % (name, row["crash"]["summary"]))
                continue
            row["cpu"] = cpu_window(bench)
            log("  [%s] steady state: machine %.2f cores, uplink monitors %.4f cores"
                % (name, row["cpu"]["machine_cores"], row["cpu"]["monitor_cores"]))
            victim = max(bench.nodes, key=lambda node: sum(1 for m in masters.values() if m == [node]))
            survivor = [node for node in bench.nodes if node != victim][0]
            moving = sorted(r for r, m in masters.items() if m == [victim])
            row["crash"] = _moved_outages(bench, "crash", _sample(moving, options.probe_sample), options,
                                          lambda: bench.lab.crash(victim),
                                          lambda: bench.wait_states(survivor, "master", timeout=60.0,
                                                                    interval=EVENT_POLL_S),
                                          probe_all=not options.probe_sample)
            log("  [%s] crash: %s" % (name, row["crash"]["summary"]))
            bench.lab.boot(victim)
            bench.playbook(SITE)
            bench.wait_states(victim, "backup")

            def moved_back():
                try:
                    return bench.wait_states(victim, "master", timeout=UPLINK_WAIT_S, interval=EVENT_POLL_S)
                except WaitTimeout:
                    return None  # no failover: the outage lasts as long as the cut
            row["uplink"] = _moved_outages(bench, "uplink", _sample(list(bench.routers), options.probe_sample),
                                           options, lambda: bench.lab.link(survivor, "ext", False), moved_back,
                                           restore=lambda: bench.lab.link(survivor, "ext", True),
                                           probe_all=not options.probe_sample)
            log("  [%s] uplink cut: %s" % (name, row["uplink"]["summary"]))
        except (BenchError, WaitTimeout) as exc:  # the other profiles are still measured
            row["error"] = str(exc)
            log("  [%s] FAILED: %s" % (name, exc))
        finally:
            bench.close()
    return rows


def _moved_outages(bench, name, routers, options, cause, recovered, restore=None, probe_all=True):
    """Outage of `routers` (longest reply gap spanning the event) when `cause()` runs; waits
    for `recovered()` (None: they did not move), then `restore()`. The prober sends to
    every router, or with `probe_all` false to `routers` only (a sample)."""
    prober = bench.start_prober(name, routers=None if probe_all else routers, interval=options.interval)
    try:
        time.sleep(options.baseline_s)  # traffic before the event, so the gap has a start
        started = time.time()
        cause()
        returned = time.time()
        moved = recovered() is not None
        held = None if moved else _masters_per_node(bench)
        settled = True
        if restore is not None:
            restore()
            if not moved:
                try:
                    bench.wait_one_master_each(timeout=60.0)
                except WaitTimeout:
                    settled = False  # reported: the profile did not recover from the event
        time.sleep(options.baseline_s)  # traffic after the recovery, so the gap has an end
    finally:
        probe, stall = bench.stop_prober(prober)
    rows = _outages(probe, routers, (started, returned))
    outages = [r["outage_s"] for r in rows.values()]
    result = {"routers": len(routers), "failed_over": moved, "prober_send_stall_s": stall,
              "outage_s": spread(outages) if outages else None, "masters_per_node_when_given_up": held,
              "settled_after_restore": settled}
    if not moved:
        result["summary"] = "no failover within %.0f s (masters per node then: %s); traffic back only when " \
                            "the link was restored%s" % (
                                UPLINK_WAIT_S, ", ".join("%s %d" % item for item in sorted(held.items())),
                                "" if settled else ", and not one master per router 60 s after that")
    elif outages:
        result["summary"] = "outage median %.3f s, max %.3f s over %d routers" % (
            statistics.median(outages), max(outages), len(outages))
    else:
        result["summary"] = "no router moved"
    return result


def _sample(routers, size):
    """`size` of `routers`, spread over the list (all of them when size is 0)."""
    if not size:
        return list(routers)
    return list(routers)[::max(1, len(routers) // size)][:size]


def _masters_per_node(bench):
    found = {}
    for nodes in bench.masters().values():
        for node in nodes:
            found[node] = found.get(node, 0) + 1
    return found


def large(options, log):
    """The `large` profile at N routers per node (N routers x 2 replicas on 2 nodes): the
    uplink monitors' CPU, then a crash of the node holding the most masters, with traffic
    to a sample of the routers that move (probing all of them would load the machine
    more than the failover does)."""
    count = options.large_routers
    extra_vars = dict(options.extra_vars, l3ha_profile=options.large_profile)
    extra_vars.pop("l3ha_advert_int", None)  # the profile's own (large: 0.5 s)
    bench = BenchLab("large", options.work_dir, count, 2, extra_vars=extra_vars,
                     lab_dir=options.lab_dir("large"), log=log)
    try:
        bench.up()
        converge = bench.playbook(SITE)
        masters = bench.masters(bench.wait_one_master_each(timeout=max(120.0, count * 0.3)))
        cpu = cpu_window(bench)
        log("  [large] steady state: machine %.2f cores, uplink monitors %.4f cores, load %.1f"
            % (cpu["machine_cores"], cpu["monitor_cores"], cpu["load_average"]))
        victim = max(bench.nodes, key=lambda node: sum(1 for m in masters.values() if m == [node]))
        survivor = [node for node in bench.nodes if node != victim][0]
        moving = sorted(r for r, m in masters.items() if m == [victim])
        sample = _sample(moving, options.large_sample)
        busy_before, started = _machine_busy(), time.monotonic()
        if options.large_event == "isolate":
            # the node is cut from the underlay and the external network: it stays alive,
            # so the kernel has no namespaces of a dead node to clean up meanwhile
            def event():
                bench.lab.link(victim, "ha", False)
                bench.lab.link(victim, "ext", False)
        else:
            def event():
                bench.lab.crash(victim)
        unconfirmed = []

        def recovered():
            # A machine stalled by the failover can outlast the wait, or a single look at the
            # node: what the prober measured meanwhile is still the routers' outage.
            try:
                return bench.wait_states(survivor, "master", timeout=180.0, interval=EVENT_POLL_S)
            except (WaitTimeout, subprocess.TimeoutExpired) as exc:
                unconfirmed.append(str(exc))
                return unconfirmed
        crash = _moved_outages(bench, "crash", sample, options, event, recovered, probe_all=False)
        if unconfirmed:
            crash["recovery_unconfirmed"] = unconfirmed[0]
            crash["summary"] += " (every router master on %s not confirmed: %s)" % (survivor, unconfirmed[0])
        # the machine's CPU from the crash window's start to the end of the traffic after it
        crash["machine_cores"] = round((_machine_busy() - busy_before) / (time.monotonic() - started), 3)
        log("  [large] %s of %s (%d masters, %d probed): %s"
            % (options.large_event, victim, len(moving), len(sample), crash["summary"]))
        return {"routers": count, "nodes": 2, "routers_per_node": count, "extra_vars": extra_vars,
                "profile": options.large_profile, "event": options.large_event,
                "converge_s": converge["seconds"], "cpu": cpu, "crashed": victim,
                "masters_on_crashed": len(moving), "probed": len(sample), "crash": crash}
    finally:
        bench.close()


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.rename(tmp, path)


__all__ = ["BenchError", "scaling", "naive_baseline", "failover", "peers", "large", "spread", "write_json"]
