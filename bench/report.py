"""results.json -> results.md (tables against the targets of issue 6) and PNG plots."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def _fmt(value, unit="s", digits=3):
    if value is None:
        return "not measured"
    return ("%.*f %s" % (digits, value, unit)).strip()


def _spread(spread, unit="s", digits=3):
    if not spread:
        return "not measured"
    return "%s / %s / %s (n=%d)" % (_fmt(spread["min"], unit, digits), _fmt(spread["median"], unit, digits),
                                    _fmt(spread["max"], unit, digits), spread["count"])


def _largest(scaling):
    return max(scaling, key=lambda row: row["routers"]) if scaling else None


def _memory_row(scaling, wanted=500):
    rows = [r for r in scaling if r["memory"]["pss_mib"]]
    if not rows:
        return None
    return min(rows, key=lambda r: abs(r["routers"] - wanted))


def summary_rows(results):
    """(metric, target, measured, verdict) rows."""
    rows = []
    failover = results.get("failover") or {}
    crash = failover.get("crash_outage_s")
    if crash:
        ok = crash["median"] <= 0.5 and crash["max"] <= 1.0
        rows.append(("crash failover outage, %d masters on the crashed node (min / median / max "
                     "over %d runs x %d routers)" % (failover["routers"], len(failover["crash_runs"]),
                                                     failover["routers"]),
                     "median <= 0.5 s, max <= 1 s", _spread(crash), "met" if ok else "NOT met"))
    drain = (failover.get("drain") or {}).get("outage_s")
    if drain:
        rows.append(("graceful drain outage per router (%d routers moved)"
                     % failover["drain"]["routers_moved"], "<= 0.1 s", _spread(drain),
                     "met" if drain["max"] <= 0.1 else ("median met" if drain["median"] <= 0.1
                                                        else "NOT met")))
    scaling = results.get("scaling") or []
    largest = _largest(scaling)
    if largest:
        per_node = max(largest["replicas_per_node"].values())
        stable = (largest["routers_with_one_master"] == largest["routers"]
                  and largest["spurious_transitions_noop"] == 0)
        rows.append(("routers per node, converged and stable", "1000",
                     "%d replicas on the busiest node (%d routers x %d on %d nodes)%s"
                     % (per_node, largest["routers"], largest["replicas"], largest["nodes"],
                        "" if stable else ", NOT stable"),
                     "met" if per_node >= 1000 and stable else "NOT met"))
        cold = largest["cold_converge_s"]
        rows.append(("cold converge: %d HA routers x %d replicas on %d nodes"
                     % (largest["routers"], largest["replicas"], largest["nodes"]), "<= 120 s (1000 routers)",
                     _fmt(cold), "met" if cold <= 120 and largest["routers"] >= 1000 else
                     ("met at this N" if cold <= 120 else "NOT met")))
        for key, label in (("noop_s", "no-op re-run"), ("check_s", "--check")):
            worst = max(largest[key])
            rows.append(("%s at %d routers" % (label, largest["routers"]), "<= 20 s",
                         ", ".join(_fmt(v) for v in largest[key]),
                         "met" if worst <= 20 else "NOT met"))
    naive = results.get("naive")
    ours = [r for r in scaling if naive and r["routers"] == naive["routers"]]
    if naive and ours:
        ratio = naive["converge_s"] / ours[0]["cold_converge_s"]
        rows.append(("speed against the naive playbook, N=%d (cold converge)" % naive["routers"], ">= 20x",
                     "%.1fx (naive %.1f s, collection %.1f s)" % (ratio, naive["converge_s"],
                                                                  ours[0]["cold_converge_s"]),
                     "met" if ratio >= 20 else "NOT met"))
    memory = _memory_row(scaling)
    if memory:
        pss = memory["memory"]["pss_mib"]
        rows.append(("memory per router replica (PSS of its processes) at N=%d" % memory["routers"],
                     "<= 3 MiB (at N=500)", _spread(pss, "MiB", 2),
                     "met" if pss["max"] <= 3 else ("median met" if pss["median"] <= 3 else "NOT met")))
    if scaling:
        converge = sum(r["spurious_transitions_converge"] for r in scaling)
        noop = sum(r["spurious_transitions_noop"] for r in scaling)
        collisions = sum(r.get("first_election_collisions", 0) for r in scaling)
        rows.append(("spurious VRRP transitions (converge / no-op re-runs, all N)", "0",
                     "%d / %d (besides: %d first-election collisions)" % (converge, noop, collisions),
                     "met" if converge == noop == 0 else "NOT met"))
    return rows


def markdown(results):
    lines = ["# l3ha.routers benchmark results", "",
             "Run %s on %s; arguments: `%s`." % (results["started"], results["machine"]["summary"],
                                                 results["arguments"]),
             "VRRP advert interval %s s, priority %s. Total wall time %.0f s." % (
                 results.get("advert_int_s"), results.get("vrrp_priority") or "the role default",
                 results.get("wall_s", 0)), "",
             "| metric | target | measured (min / median / max) | verdict |", "|---|---|---|---|"]
    for row in summary_rows(results):
        lines.append("| %s | %s | %s | %s |" % row)
    scaling = results.get("scaling") or []
    if scaling:
        lines += ["", "## Converge time against N (%d nodes, %d replicas per router)"
                  % (scaling[0]["nodes"], scaling[0]["replicas"]), "",
                  "| routers | replicas on busiest node | cold converge | no-op re-runs | --check runs "
                  "| changed (no-op / check) | spurious (converge / no-op; first-election collisions; "
                  "replicas started under a master) "
                  "| one master | answering "
                  "| PSS per replica (min / median / max) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in scaling:
            lines.append("| %d | %d | %.1f s | %s | %s | %s / %s | %d / %d; %s; %s | %d | %d | %s |" % (
                r["routers"], max(r["replicas_per_node"].values()), r["cold_converge_s"],
                ", ".join("%.1f s" % v for v in r["noop_s"]), ", ".join("%.1f s" % v for v in r["check_s"]),
                r["noop_changed"], r["check_changed"], r["spurious_transitions_converge"],
                r["spurious_transitions_noop"], r.get("first_election_collisions", "-"),
                r.get("replicas_started_under_a_master", "-"),
                r["routers_with_one_master"], r["routers_answering"],
                _spread(r["memory"]["pss_mib"], "MiB", 2)))
    forked = [r for r in scaling if r.get("noop_by_forks")]
    if forked:
        lines += ["", "## No-op re-run against Ansible's forks", "",
                  "| routers | nodes | " + " | ".join("forks %d" % f["forks"] for f in forked[0]["noop_by_forks"])
                  + " |", "|---|---|" + "---|" * len(forked[0]["noop_by_forks"])]
        for r in forked:
            lines.append("| %d | %d | %s |" % (r["routers"], r["nodes"], " | ".join(
                "%.1f s (changed=%d)" % (f["seconds"], f["changed"]) for f in r["noop_by_forks"])))
    peer_rows = results.get("peers")
    if peer_rows:
        lines += ["", "## Side by side: ours and Neutron's defaults (%d routers on 2 nodes%s)" % (
                  peer_rows[0]["routers"], ", probes to %d of the routers that move" % results["probe_sample"]
                  if results.get("probe_sample") else ""),
                  "", "| profile | crash of the node holding most masters | external link cut on the node "
                  "with every master | steady-state CPU: machine / uplink monitors (cores) |", "|---|---|---|---|"]
        for row in peer_rows:
            cpu = row.get("cpu")
            lines.append("| %s | %s | %s | %s |" % (
                row["profile"] + (" (failed: %s)" % row["error"] if row.get("error") else ""),
                row["crash"]["summary"], row["uplink"]["summary"],
                "%.2f / %.4f (load %.1f)" % (cpu["machine_cores"], cpu["monitor_cores"], cpu["load_average"])
                if cpu else "-"))
    large = results.get("large")
    if large and large.get("cpu"):
        cpu, crash = large["cpu"], large["crash"]
        lines += ["", "## The %s profile at %d routers per node (%d x 2 replicas on 2 nodes)"
                  % (large.get("profile", "large"), large["routers_per_node"], large["routers"]), "",
                  "Cold converge %.1f s. Steady state: machine %.2f cores, uplink monitors %.4f cores (load %.1f)."
                  % (large["converge_s"], cpu["machine_cores"], cpu["monitor_cores"], cpu["load_average"]),
                  "%s of %s (master of %d routers), %d of them probed: outage %s (p95 %s); "
                  "the machine used %s cores from the crash to the end of the traffic after it."
                  % ({"crash": "Crash", "isolate": "Isolation"}.get(large.get("event"), "Crash"),
                     large["crashed"], large["masters_on_crashed"], large["probed"],
                     _spread(crash["outage_s"]) if crash.get("outage_s") else crash["summary"],
                     _fmt((crash.get("outage_s") or {}).get("p95")), crash.get("machine_cores", "?"))]
        lines.append("The prober's own longest send stall: %s." % _fmt(crash.get("prober_send_stall_s")))
        if crash.get("recovery_unconfirmed"):
            lines.append("Every router master on the other node was not confirmed: %s." % crash["recovery_unconfirmed"])
    failover = results.get("failover")
    if failover:
        lines += ["", "## Failover (%d routers on 2 nodes, probes every %.0f ms from upstream to "
                  "every gateway address)" % (failover["routers"], failover["interval_s"] * 1000), "",
                  "| event | outage per router (min / median / max) | note |", "|---|---|---|"]
        drain = failover.get("drain")
        if drain:
            lines.append("| drain (SIGTERM, priority-0 advert) | %s | %d routers moved; playbook %.1f s; "
                         "routers that did not move: %s; prober send stall %s |"
                         % (_spread(drain["outage_s"]), drain["routers_moved"], drain["playbook_s"],
                            _spread(drain["others_outage_s"]), _fmt(drain.get("prober_send_stall_s"))))
        for run in failover["crash_runs"]:
            lines.append("| crash %d: SIGKILL of %s (all %d masters) | %s | gaps not at the crash: %d; "
                         "prober send stall %s |" % (
                             run["run"], run["crashed"], failover["routers"], _spread(run["outage_s"]),
                             len(run["gaps_not_at_crash"]), _fmt(run.get("prober_send_stall_s"))))
    naive = results.get("naive")
    if naive:
        lines += ["", "## Naive baseline", "",
                  "bench/naive/site.yml, %d routers on %d nodes: %.1f s (%.2f s per router); routers "
                  "answering afterwards: %d."
                  % (naive["routers"], naive["nodes"], naive["converge_s"], naive["converge_s"] / naive["routers"],
                     naive["routers_answering"])]
    if results.get("errors"):
        lines += ["", "## Errors", ""] + ["- %s" % e for e in results["errors"]]
    return "\n".join(lines) + "\n"


def plot_outages(results, path):
    failover = results.get("failover")
    if not failover or not failover.get("crash_runs"):
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in failover["crash_runs"]:
        values = sorted(row["outage_s"] * 1000 for row in run["per_router"].values())
        ax.plot(range(1, len(values) + 1), values, marker=".", linewidth=1,
                label="crash %d (%s)" % (run["run"], run["crashed"]))
    drain = failover.get("drain")
    if drain and drain["per_router"]:
        values = sorted(row["outage_s"] * 1000 for row in drain["per_router"].values())
        ax.plot(range(1, len(values) + 1), values, marker="x", linewidth=1, label="drain")
    ax.axhline(500, color="grey", linestyle="--", linewidth=0.8, label="target median 500 ms")
    ax.axhline(1000, color="red", linestyle="--", linewidth=0.8, label="target max 1 s")
    return _save(fig, ax, path, "routers, sorted by outage", "outage: longest gap between answered probes (ms)",
                 "Outage per router: %d masters on the crashed node, probes every %.0f ms"
                 % (failover["routers"], failover["interval_s"] * 1000))


def _save(fig, ax, path, xlabel, ylabel, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, linewidth=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_converge(results, path):
    scaling = sorted(results.get("scaling") or [], key=lambda r: r["routers"])
    if not scaling:
        return None
    counts = [r["routers"] for r in scaling]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(counts, [r["cold_converge_s"] for r in scaling], marker="o", label="cold converge")
    ax.plot(counts, [max(r["noop_s"]) for r in scaling], marker="s", label="no-op re-run (worst)")
    ax.plot(counts, [max(r["check_s"]) for r in scaling], marker="^", label="--check (worst)")
    naive = results.get("naive")
    if naive:
        ax.plot([naive["routers"]], [naive["converge_s"]], marker="*", markersize=12, linestyle="",
                color="red", label="naive playbook, cold")
    return _save(fig, ax, path, "HA routers (x%d replicas on %d nodes)" % (scaling[0]["replicas"], scaling[0]["nodes"]),
                 "wall time of ansible-playbook (s)", "Converge time against N")


def write_all(results, out_dir):
    md = os.path.join(out_dir, "results.md")
    with open(md, "w") as handle:
        handle.write(markdown(results))
    plots = [plot_outages(results, os.path.join(out_dir, "outage_per_router.png")),
             plot_converge(results, os.path.join(out_dir, "converge_vs_n.png"))]
    return md, [p for p in plots if p]
