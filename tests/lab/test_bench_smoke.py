"""The smoke-sized benchmark (bench/run --smoke) end to end, checked for function only.

It must produce every metric, the crash must really have moved every master, and the
outages must come from traffic (probes lost around the crash). No timing is asserted:
the machines running tests are shared and noisy; numbers belong in docs/benchmarks.md.
"""

import glob
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab_helpers import LAB_DIR_PREFIX

REPO = Path(__file__).resolve().parents[2]
RUN = str(REPO / "bench" / "run")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, mounts)")
    out = tmp_path_factory.mktemp("bench")
    prefix = LAB_DIR_PREFIX + "bench"
    proc = subprocess.run([RUN, "--smoke", "--out", str(out), "--lab-prefix", prefix],
                          capture_output=True, text=True, timeout=900, check=False)
    leftovers = glob.glob(prefix + "-*")
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else None
    return {"proc": proc, "out": out, "results": results, "leftovers": leftovers}


def test_runs_without_errors_and_leaves_no_lab(smoke):
    proc = smoke["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert smoke["results"]["errors"] == []
    assert smoke["leftovers"] == []


def test_writes_markdown_and_plots(smoke):
    out = smoke["out"]
    table = (out / "results.md").read_text()
    for metric in ("crash failover outage", "graceful drain outage", "cold converge", "no-op re-run",
                   "--check", "naive playbook", "memory per router replica", "spurious VRRP transitions",
                   "against Ansible's forks", "Side by side", "profile at 20 routers per node"):
        assert metric in table
    for plot in ("outage_per_router.png", "converge_vs_n.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_converge_rows_have_every_metric(smoke):
    rows = {row["routers"]: row for row in smoke["results"]["scaling"]}
    assert set(rows) == {2, 20}  # 20 for the smoke, 2 as the naive run's counterpart
    for count, row in rows.items():
        assert row["cold_changed"] > 0
        assert row["noop_changed"] == [0] and row["check_changed"] == [0]
        # the smoke's no-op re-runs with forks 1 and 2 (the many-nodes benchmark's forks rows)
        assert [(f["forks"], f["changed"]) for f in row["noop_by_forks"]] == [(1, 0), (2, 0)]
        assert len(row["noop_s"]) == 1 and len(row["check_s"]) == 1
        assert row["routers_with_one_master"] == count
        assert row["routers_answering"] == count
        assert isinstance(row["spurious_transitions_converge"], int)
        assert row["spurious_transitions_noop"] == 0
        assert sum(row["replicas_per_node"].values()) == 2 * count
        memory = row["memory"]
        assert memory["pss_mib"]["count"] == 2 * count
        assert memory["pss_mib"]["min"] > 0
        # keepalived's parent, its VRRP child and the notify.sh reader
        assert memory["processes_per_replica"]["min"] == 3


def test_naive_baseline_built_working_routers(smoke):
    naive = smoke["results"]["naive"]
    assert naive["routers"] == 2
    assert naive["routers_answering"] == 2
    assert naive["converge_s"] > 0


def test_crash_moved_every_master_and_outage_came_from_traffic(smoke):
    failover = smoke["results"]["failover"]
    [run] = failover["crash_runs"]
    assert run["crashed"] != run["new_master"]
    assert len(run["per_router"]) == failover["routers"] == 20
    for router, row in run["per_router"].items():
        # probes were lost, and the longest gap between answers spans the crash
        assert row["received"] < row["sent"], router
        assert row["spans_event"] is True, router
        assert row["outage_s"] > failover["interval_s"], router
    assert run["gaps_not_at_crash"] == []
    assert failover["crash_outage_s"]["count"] == 20


def test_drain_moved_masters_and_measured_them(smoke):
    drain = smoke["results"]["failover"]["drain"]
    assert drain["routers_moved"] == len(drain["per_router"]) > 0
    for router, row in drain["per_router"].items():
        assert 0 < row["received"] <= row["sent"], router


def test_drain_muted_exactly_the_moved_routers_until_undrain(smoke):
    # The drained replicas must not send MLD reports (they carry the new master's MAC);
    # undrain must let them report again.
    drain = smoke["results"]["failover"]["drain"]
    assert drain["muted"] == sorted(drain["per_router"])
    assert drain["muted_after_undrain"] == []


def test_peers_side_by_side_only_ours_and_the_check_move_on_an_uplink_cut(smoke):
    rows = dict((row["profile"], row) for row in smoke["results"]["peers"])
    assert len(rows) == 3
    ours, neutron = rows["l3ha.routers"], rows["Neutron defaults"]
    check = [row for label, row in rows.items() if "per-router check" in label][0]
    for row in rows.values():
        assert row["crash"]["failed_over"] is True and row["crash"]["outage_s"]["count"] > 0
        assert row["cpu"]["machine_cores"] > 0
    # every router's master sat on the cut node: ours and the check move all 20, Neutron's defaults none
    assert ours["uplink"]["failed_over"] is True and ours["uplink"]["outage_s"]["count"] == 20
    assert check["uplink"]["failed_over"] is True
    assert neutron["uplink"]["failed_over"] is False
    # a supervisor and its monitor on each of the 2 nodes; none without the monitor
    assert ours["cpu"]["monitor_processes"] == 4
    assert check["cpu"]["monitor_processes"] == neutron["cpu"]["monitor_processes"] == 0


def test_large_profile_crash_is_measured_on_its_sample(smoke):
    large = smoke["results"]["large"]
    assert large["extra_vars"]["l3ha_profile"] == "large" and "l3ha_advert_int" not in large["extra_vars"]
    assert large["probed"] == min(5, large["masters_on_crashed"]) > 0
    assert large["crash"]["failed_over"] is True
    assert large["crash"]["outage_s"]["count"] == large["probed"]
    assert large["cpu"]["monitor_processes"] == 4


def _replica(*timed_states):
    return {"transitions": [state for _at, state in timed_states],
            "transition_times": [at for at, _state in timed_states]}


def test_spurious_counter_ignores_the_initial_election():
    measure = _bench_module("measure")
    info = {"net1": {"routers": {"r1": _replica((1.0, "backup"), (1.4, "master"))}},
            "net2": {"routers": {"r1": _replica((1.1, "backup"))}}}
    assert measure.converge_spurious(info, ["r1"], established_after=0.3) == (0, 0, [])


@pytest.mark.parametrize("net1, net2, counts, examples", [
    # net1 had been master for 0.5 s (established) when net2 claimed the router
    (((1.0, "backup"), (1.4, "master"), (1.95, "backup")), ((1.1, "backup"), (1.9, "master")),
     (2, 0), ["master also/again on net2", "net1 left master without a fault"]),
    # both timers ran out within 10 ms; net1 yields 30 ms later, no master was established
    (((1.0, "backup"), (1.40, "master"), (1.44, "backup")), ((1.0, "backup"), (1.41, "master")),
     (0, 2), ["first-election collision", "first-election collision"]),
], ids=["dual-master-counts-twice", "first-election-collision-is-not-spurious"])
def test_spurious_counter_tells_a_dual_master_from_a_first_election_collision(net1, net2, counts, examples):
    measure = _bench_module("measure")
    info = {"net1": {"routers": {"r1": _replica(*net1)}}, "net2": {"routers": {"r1": _replica(*net2)}}}
    spurious, collisions, found = measure.converge_spurious(info, ["r1"], established_after=0.3)
    assert (spurious, collisions) == counts
    assert len(found) == len(examples)
    for text, example in zip(examples, found):
        assert text in example


def _bench_module(name):
    for path in (str(REPO / "bench"), str(REPO / "lab")):
        if path not in sys.path:
            sys.path.insert(0, path)
    return importlib.import_module(name)
