"""The collection run through AWX's engine: ansible-runner with a private data directory,
as AWX and Tower run jobs. Each play's status, the set_stats artifacts (status report,
drain handovers) and a converged --check with changed=0, against the real lab."""

import signal

import pytest

from l3ha_lab.testing import job_stats, masters, runner_job, wait_one_master, wait_settled

NODES = ["net1", "net2"]
ROUTER = "r1"


@pytest.fixture(scope="module")
def jobs(lab, tmp_path_factory):
    root = tmp_path_factory.mktemp("awx")
    done = {}

    def job(label, playbook, **kwargs):
        runner = runner_job(lab, playbook, root / label, **kwargs)
        done[label] = runner
        return runner
    return job


def _changed(runner):
    return sum((runner.stats or {}).get("changed", {}).values())


def test_site_converges_and_publishes_the_plan(lab, jobs):
    handlers = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    runner = jobs("site", "site")
    # the session must still stop (and tear its labs down) on SIGTERM and Ctrl-C
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    assert (runner.status, runner.rc) == ("successful", 0), runner.stdout.read()[-3000:]
    assert sorted((runner.stats or {}).get("ok", {})) == NODES
    summary = job_stats(runner)["l3ha_plan_summary"]
    assert sorted(summary) == [ROUTER] and sorted(summary[ROUTER]["replicas"]) == NODES
    wait_settled(lab, NODES, [ROUTER])


def test_check_through_the_runner_reports_no_change(lab, jobs):
    runner = jobs("check", "site", check=True)
    assert (runner.status, runner.rc) == ("successful", 0), runner.stdout.read()[-3000:]
    assert _changed(runner) == 0, runner.stats


def test_status_report_arrives_as_an_artifact(lab, jobs):
    master = wait_one_master(lab, NODES, ROUTER)
    runner = jobs("status", "status")
    assert (runner.status, runner.rc) == ("successful", 0), runner.stdout.read()[-3000:]
    report = job_stats(runner)["l3ha_status"]
    (router,) = [entry for entry in report["routers"] if entry["name"] == ROUTER]
    assert router["masters"] == [master]
    assert router["flags"] == []
    assert sorted(replica["node"] for replica in router["replicas"]) == NODES
    assert {node: info["masters"] for node, info in report["nodes"].items()} == {
        node: int(node == master) for node in NODES}
    assert not any(info["drained"] for info in report["nodes"].values())


def test_drain_and_undrain_report_the_handover(lab, jobs):
    master = wait_one_master(lab, NODES, ROUTER)
    other = [node for node in NODES if node != master][0]
    runner = jobs("drain", "drain", extra_vars={"l3ha_drain_node": master})
    try:
        assert (runner.status, runner.rc) == ("successful", 0), runner.stdout.read()[-3000:]
        handover = job_stats(runner)["l3ha_drain"]
        assert handover["node"] == master
        assert sorted(handover["routers"]) == [ROUTER]
        assert handover["routers"][ROUTER]["master"] == other
        assert masters(lab, NODES, ROUTER) == [other]
        status = job_stats(jobs("status-drained", "status"))["l3ha_status"]
        assert status["nodes"][master]["drained"] is True
    finally:
        undrain = jobs("undrain", "undrain", extra_vars={"l3ha_drain_node": master})
    assert (undrain.status, undrain.rc) == ("successful", 0), undrain.stdout.read()[-3000:]
    wait_settled(lab, NODES, [ROUTER])
    # nopreempt: the router stays on the node it moved to
    assert masters(lab, NODES, ROUTER) == [other]
