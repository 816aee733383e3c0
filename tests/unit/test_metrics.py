"""Prometheus metrics (issue 17): the node's file from the reconciler (apply mode only, a
failed run too, purged routers' files removed), each router's file from its notify.sh
(run here on a file of keepalived's FIFO lines, in a private network namespace), both
parsed with the official text parser; and the example rules and dashboard in
examples/prometheus (their schema; `promtool check rules` and `promtool test rules` where
promtool is installed; only metric names the collection writes)."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.l3ha.routers.plugins.module_utils import _reconciler
from ansible_collections.l3ha.routers.plugins.module_utils._defaults import RENDER_SETTINGS
from ansible_collections.l3ha.routers.plugins.module_utils._metrics import NODE_METRICS, node_metrics_text
from ansible_collections.l3ha.routers.plugins.module_utils._uplink_monitor import UPLINK_METRICS
from ansible_collections.l3ha.routers.plugins.module_utils._validate import ValidationError
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import METRICS_NODE_FILE
from test_templates import bare_router, full_router, render

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "prometheus"
RULES = EXAMPLES / "l3ha-rules.yml"
NOTIFY = ROOT / "roles" / "l3ha" / "templates" / "notify.sh.j2"
PROMTOOL = shutil.which("promtool")
ROUTER_METRICS = tuple(re.findall(r"^\s*metric (l3ha_\w+) ", NOTIFY.read_text(), re.M))


def samples(text):
    """{(name, frozenset(labels)): value} of a textfile, through prometheus_client's parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def families(text):
    return {family.name: family.type for family in text_string_to_metric_families(text)}


# ---------------------------------------------------------------- the node's file

def test_node_metrics_text_parses_with_every_gauge():
    text = node_metrics_text(3, True, 1764100000.5, False)
    assert families(text) == dict((name, "gauge") for name, _help in NODE_METRICS)
    assert samples(text) == {("l3ha_node_routers", frozenset()): 3, ("l3ha_node_drained", frozenset()): 1,
                             ("l3ha_node_last_converge_timestamp_seconds", frozenset()): 1764100000.5,
                             ("l3ha_node_last_converge_success", frozenset()): 0}


def reconciler(tmp_path, check_mode=False, **params):
    base = {"routers": [{"name": "r1"}, {"name": "r2"}], "config_dir": str(tmp_path / "config"),
            "run_dir": str(tmp_path / "run"), "state_dir": str(tmp_path / "state"),
            "metrics_dir": str(tmp_path / "metrics")}
    base.update(params)
    return _reconciler.NodeReconciler(base, check_mode)


def node_file(tmp_path):
    return tmp_path / "metrics" / METRICS_NODE_FILE


def test_an_applied_run_writes_the_node_file_atomically_and_readable(tmp_path, monkeypatch):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "drained").write_text("drained\n")
    run = reconciler(tmp_path)
    monkeypatch.setattr(run, "_run", lambda: {"failures": []})
    assert "warnings" not in run.run()
    found = samples(node_file(tmp_path).read_text())
    assert (found[("l3ha_node_routers", frozenset())], found[("l3ha_node_drained", frozenset())],
            found[("l3ha_node_last_converge_success", frozenset())]) == (2, 1, 1)
    assert os.stat(node_file(tmp_path)).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path / "metrics") == [METRICS_NODE_FILE]  # no temporary file left


def test_a_failed_run_says_so_and_check_mode_writes_nothing(tmp_path, monkeypatch):
    checked = reconciler(tmp_path, check_mode=True)
    monkeypatch.setattr(checked, "_run", lambda: {"failures": []})
    checked.run()
    assert not (tmp_path / "metrics").exists()  # check mode makes nothing, not even the directory

    failed = reconciler(tmp_path)
    monkeypatch.setattr(failed, "_run", lambda: {"failures": ["router r1: boom"]})
    failed.run()
    assert samples(node_file(tmp_path).read_text())[("l3ha_node_last_converge_success", frozenset())] == 0

    def crash():
        raise OSError("disk full")
    crashed = reconciler(tmp_path)
    monkeypatch.setattr(crashed, "_run", crash)
    node_file(tmp_path).unlink()
    with pytest.raises(OSError):
        crashed.run()
    assert samples(node_file(tmp_path).read_text())[("l3ha_node_last_converge_success", frozenset())] == 0


def test_input_rejected_before_any_change_leaves_the_metrics_alone(tmp_path, monkeypatch):
    def rejected():
        raise ValidationError(["router r1: keepalived.conf does not pass keepalived -t (validated on the node)"])
    run = reconciler(tmp_path)
    monkeypatch.setattr(run, "_run", rejected)
    with pytest.raises(ValidationError):
        run.run()
    assert not (tmp_path / "metrics").exists()


def test_no_file_when_metrics_are_off_or_the_controller_renders_again(tmp_path, monkeypatch):
    off = reconciler(tmp_path, metrics_dir="")
    monkeypatch.setattr(off, "_run", lambda: {"failures": []})
    off.run()
    assert not (tmp_path / "metrics").exists()
    rerender = reconciler(tmp_path)
    monkeypatch.setattr(rerender, "_run", lambda: {"failures": [], "rerender": ["r1"]})
    rerender.run()
    assert not (tmp_path / "metrics").exists()


def test_an_unwritable_directory_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    (tmp_path / "metrics").write_text("not a directory\n")
    run = reconciler(tmp_path)
    monkeypatch.setattr(run, "_run", lambda: {"failures": []})
    assert run.run()["warnings"][0].startswith("metrics in %s not written" % (tmp_path / "metrics"))


def test_purge_removes_the_metrics_of_routers_not_held_and_nothing_else(tmp_path, monkeypatch):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name in ("l3ha_router_r1.prom", "l3ha_router_r10.prom", "l3ha_router_old.prom", "node_other.prom"):
        (metrics / name).write_text("")
    kept = reconciler(tmp_path)  # purge off: routers of others may live here
    monkeypatch.setattr(kept, "_run", lambda: {"failures": []})
    kept.run()
    assert len(os.listdir(metrics)) == 5
    purging = reconciler(tmp_path, purge=True)
    monkeypatch.setattr(purging, "_run", lambda: {"failures": []})
    purging.run()
    assert sorted(os.listdir(metrics)) == [METRICS_NODE_FILE, "l3ha_router_r1.prom", "node_other.prom"]


def test_removing_a_router_removes_its_metrics_file(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "l3ha_router_gone.prom").write_text("")
    (tmp_path / "metrics" / "l3ha_router_gone2.prom").write_text("")
    reconciler(tmp_path).remove_router("gone", "qrouter-gone", present=False)
    assert os.listdir(tmp_path / "metrics") == ["l3ha_router_gone2.prom"]


# ---------------------------------------------------------------- a router's file, from notify.sh

def notify_files(tmp_path, router, lines):
    """The router's notify.sh rendered with run and metrics directories under tmp_path, and
    `lines` as keepalived's FIFO lines: (script, events file, run directory)."""
    settings = {"run_dir": str(tmp_path / "run"), "config_dir": str(tmp_path / "config"),
                "metrics_dir": str(tmp_path / "metrics")}
    files, view = render(router, settings)
    run = pathlib.Path(view["paths"]["run"])
    run.mkdir(parents=True, exist_ok=True)
    (tmp_path / "metrics").mkdir(exist_ok=True)
    script = tmp_path / "notify.sh"
    script.write_text(files["notify.sh"])
    events = tmp_path / "events"
    events.write_text("".join("INSTANCE %s %s 254\n" % (router["name"], state) for state in lines))
    return script, events, run


def run_notify(tmp_path, router, lines, *argv):
    """Run the router's notify.sh (in a new network namespace: it writes IPv6 sysctls) on
    `lines` as its FIFO."""
    script, events, run = notify_files(tmp_path, router, lines)
    command = ["sh", str(script)] + (list(argv) or ["fifo", str(events)])
    subprocess.run(["unshare", "--net"] + command, check=True, timeout=60, capture_output=True)
    return run, tmp_path / "metrics" / ("l3ha_router_%s.prom" % router["name"])


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare (a private network namespace)")


def state_of(found, router="bare", tenant="demo"):
    return dict((state, found[("l3ha_router_state", frozenset({"router": router, "tenant": tenant,
                                                               "state": state}.items()))])
                for state in ("master", "backup", "fault", "stop"))


@needs_root
def test_notify_writes_the_state_the_count_and_the_time_of_each_transition(tmp_path):
    run, prom = run_notify(tmp_path, bare_router(), ["BACKUP", "MASTER", "BACKUP", "MASTER"])
    text = prom.read_text()
    assert families(text) == {"l3ha_router_state": "gauge", "l3ha_router_ha": "gauge",
                              "l3ha_router_transitions": "counter",
                              "l3ha_router_last_transition_timestamp_seconds": "gauge"}
    found = samples(text)
    labels = frozenset({"router": "bare", "tenant": "demo"}.items())
    assert state_of(found) == {"master": 1, "backup": 0, "fault": 0, "stop": 0}
    assert found[("l3ha_router_transitions_total", labels)] == 4
    assert found[("l3ha_router_ha", labels)] == 1
    since = float((run / "state").read_text().split()[1])
    assert found[("l3ha_router_last_transition_timestamp_seconds", labels)] == since
    assert sorted(os.listdir(prom.parent)) == [prom.name]  # only the renamed file
    assert os.stat(prom).st_mode & 0o777 == 0o644
    # the counter goes on in the run directory (tmpfs: from 0 after a reboot)
    run_notify(tmp_path, bare_router(), ["FAULT"])
    found = samples(prom.read_text())
    assert found[("l3ha_router_transitions_total", labels)] == 5
    assert state_of(found) == {"master": 0, "backup": 0, "fault": 1, "stop": 0}


def processes_started(tmp_path, states):
    """How many processes notify.sh starts for the transitions `states`: counted as the
    PIDs used in a fresh PID namespace (allocated one after another from 1)."""
    script, events, _run = notify_files(tmp_path, bare_router(), states)
    # PID 1 runs notify.sh (PID 2), then a shell that prints its own PID: all between are
    # the processes notify.sh started.
    done = subprocess.run(["unshare", "--net", "--pid", "--fork", "sh", "-c", 'sh "$0" fifo "$1"; sh -c \'echo $$\'',
                           str(script), str(events)], check=True, timeout=60, capture_output=True, text=True)
    return int(done.stdout.split()[-1]) - 3


@needs_root
def test_a_transition_starts_at_most_three_processes(tmp_path):
    # In a mass failover every router's reader runs at once; a dozen forks each stalled a
    # 2-core machine for 30-45 s at 300 routers (docs/benchmarks.md). date, and one mv
    # each for the state and the metrics files; the log is measured every 16th transition.
    # (the reader's start and end cost the same in both runs: the difference is 16 transitions)
    one = processes_started(tmp_path / "one", ["BACKUP"])
    seventeen = processes_started(tmp_path / "seventeen", ["MASTER", "BACKUP"] * 8 + ["MASTER"])
    assert 0 < seventeen - one <= 3 * 16 + 1


@needs_root
def test_the_log_is_rotated_past_its_limit_and_the_count_kept_in_the_state_file(tmp_path):
    run, _prom = run_notify(tmp_path, bare_router(), ["BACKUP"])
    log = run / "transitions.log"
    log.write_text("x" * (RENDER_SETTINGS["log_max_bytes"] + 1))
    run_notify(tmp_path, bare_router(), ["MASTER"] * 16)  # the 16th measures it
    assert (run / "transitions.log.1").stat().st_size > RENDER_SETTINGS["log_max_bytes"]
    assert log.read_text().split()[1:] == ["master", "(priority", "254)"]
    assert (run / "state").read_text().split()[::2] == ["master", "17"]


@needs_root
def test_services_report_down_when_stopped(tmp_path):
    router = full_router()  # radvd on its IPv6 subnet
    run, prom = run_notify(tmp_path, router, [], "services", "stop")
    found = samples(prom.read_text())
    assert found[("l3ha_service_up", frozenset({"router": "demo-r1", "tenant": "demo",
                                                "service": "radvd"}.items()))] == 0


def test_without_a_metrics_dir_notify_writes_no_metrics():
    files, view = render(bare_router(), {"metrics_dir": ""})
    assert view["metrics"] is None
    assert "METRICS_FILE" not in files["notify.sh"] and "write_metrics() { :; }" in files["notify.sh"]


# ---------------------------------------------------------------- examples/prometheus

DURATION = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")


def test_rules_file_has_the_schema_prometheus_loads():
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"} and document["groups"]
    names = set()
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"} and group["name"] not in names
        names.add(group["name"])
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule
            allowed = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"} if "alert" in rule \
                else {"record", "expr", "labels"}
            assert set(rule) <= allowed, rule
            if "for" in rule:
                assert DURATION.match(str(rule["for"])), rule["for"]
            for field in ("labels", "annotations"):
                values = rule.get(field) or {}
                assert isinstance(values, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in values.items()), (rule, field)


def test_the_issues_alerts_are_there():
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    alerts = dict((rule["alert"], rule) for rule in rules if "alert" in rule)
    assert {"L3haRouterWithoutMaster", "L3haRouterUnderReplicated", "L3haRouterSplitBrain",
            "L3haRouterFlapping"} <= set(alerts)
    assert alerts["L3haRouterWithoutMaster"]["for"] == "30s"
    assert [rule["record"] for rule in rules if "record" in rule] == ["instance:l3ha_node_masters:sum"]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt package prometheus)")
def test_promtool_checks_the_rules():
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt package prometheus)")
def test_the_alerts_fire_on_the_made_up_series_of_their_test_file():
    # split brain, no master, under-replicated (not a router without HA), flapping, failed converge
    tested = subprocess.run([PROMTOOL, "test", "rules", "l3ha-rules.test.yml"], cwd=EXAMPLES,
                            capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def expressions():
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]
    dashboard = json.loads((EXAMPLES / "l3ha-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield target["expr"]


def test_rules_and_dashboard_name_only_metrics_the_collection_writes():
    written = (set(ROUTER_METRICS) | set(name for name, _help in NODE_METRICS) | set(UPLINK_METRICS)
               | {"instance:l3ha_node_masters:sum"})
    assert {"l3ha_router_state", "l3ha_router_transitions_total", "l3ha_service_up"} <= written
    used = set()
    for expr in expressions():
        used.update(re.findall(r"\b(?:instance:)?l3ha_[a-z_:]+", expr))
    assert used and used <= written, used - written
    dashboard = json.loads((EXAMPLES / "l3ha-dashboard.json").read_text())
    assert dashboard["uid"] and len(set(panel["id"] for panel in dashboard["panels"])) == len(dashboard["panels"])
