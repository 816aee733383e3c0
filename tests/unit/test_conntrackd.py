"""conntrackd per router: the planner field, the derived view, conntrackd.conf and the
notify.sh/keepalived.conf additions, rendered as the ha_routers action plugin renders them.
Routers without conntrackd must render exactly as before (no file, no extra text)."""
import contextlib
import copy
import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import pytest
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import TEMPLATES as DEFAULT_TEMPLATES
from ansible_collections.l3ha.routers.plugins.module_utils._keepalived_test import find_keepalived
from ansible_collections.l3ha.routers.plugins.plugin_utils._render import (
    make_renderer, read_sources, render_router_files,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._router_view import RenderError, router_view
from ansible_collections.l3ha.routers.plugins.module_utils import _processes, _reconciler
from ansible_collections.l3ha.routers.plugins.module_utils._changes import Changes
from test_planner_helpers import ok, router, run
from test_templates import TEMPLATES, full_router, keepalived_test, render, single_router

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "lab"))
from l3ha_lab.testing import PrivateNode  # noqa: E402  (needs the sys.path entry above)

CONNTRACKD = shutil.which("conntrackd") or "/usr/sbin/conntrackd"
needs_conntrackd = pytest.mark.skipif(not pathlib.Path(CONNTRACKD).exists() or os.geteuid() != 0,
                                      reason="needs conntrackd and root (a private network namespace)")


def pair_router(**fields):
    """full_router with two replicas (one peer), as conntrackd needs."""
    spec = full_router()
    spec["peers"] = ["169.254.192.2"]
    spec.update(fields)
    return spec


# --- planner ------------------------------------------------------------------------

def test_planner_passes_the_router_field_through_and_omits_it_when_unset():
    result = ok([router("r1", 1, conntrackd=True), router("r2", 2, conntrackd="no"), router("r3", 3)])
    wanted = {"r1": True, "r2": False, "r3": None}
    seen = 0
    for node, planned in result["nodes"].items():
        for spec in planned["routers"]:
            assert spec.get("conntrackd", None) is wanted[spec["name"]], (node, spec["name"])
            assert wanted[spec["name"]] is not None or "conntrackd" not in spec
            seen += 1
    assert seen == 6  # two replicas each


@pytest.mark.parametrize("fields,expected", [
    ({"conntrackd": "maybe"}, "router 'r1': conntrackd 'maybe' is not a boolean"),
    ({"conntrackd": True, "ha": False}, "router 'r1': conntrackd is true but ha is false"),
])
def test_planner_rejects_bad_conntrackd_values(fields, expected):
    errors = run([router("r1", 1, **fields)])["errors"]
    assert any(expected in error for error in errors), errors


# --- the view -----------------------------------------------------------------------

def test_off_by_default_and_the_router_field_overrides_the_setting():
    assert router_view(pair_router())["conntrackd"] is None
    assert router_view(pair_router(), {"conntrackd": True})["conntrackd"] is not None
    assert router_view(pair_router(conntrackd=False), {"conntrackd": True})["conntrackd"] is None
    assert router_view(pair_router(conntrackd=True), {"conntrackd": False})["conntrackd"] is not None
    assert router_view(pair_router(), {"conntrackd": "false"})["conntrackd"] is None
    with pytest.raises(RenderError, match="router demo-r1: l3ha_conntrackd: 'maybe' is not a boolean"):
        router_view(pair_router(), {"conntrackd": "maybe"})


def test_view_syncs_from_the_ha_address_to_the_peer_on_the_ha_port():
    view = router_view(pair_router(conntrackd=True), {"run_dir": "/run/x", "config_dir": "/etc/x"})
    sync = view["conntrackd"]
    assert (sync["address"], sync["peer"], sync["interface"]) == ("169.254.192.1", "169.254.192.2", "ha-1a2b3c4d")
    assert sync["paths"] == {"config": "/etc/x/routers/demo-r1/conntrackd.conf",
                             "lock": "/run/x/routers/demo-r1/conntrackd.lock",
                             "socket": "/run/x/routers/demo-r1/conntrackd.ctl",
                             "log": "/run/x/routers/demo-r1/conntrackd.log"}
    # VRRP and the sync itself are never synced.
    assert {"169.254.192.1", "169.254.192.2", "169.254.0.7"} <= set(sync["ignore_addresses"])


def test_a_single_replica_has_nobody_to_sync_with():
    assert router_view(pair_router(conntrackd=True, peers=[]))["conntrackd"] is None


@pytest.mark.parametrize("mutate,problem", [
    (lambda r: r.update(peers=["169.254.192.2", "169.254.192.3"]), "syncs exactly two replicas"),
    (lambda r: r.update(copy.deepcopy(single_router()), conntrackd=True), "needs an HA router"),
])
def test_unsupported_routers_are_errors_naming_router_and_field(mutate, problem):
    spec = pair_router(conntrackd=True)
    mutate(spec)
    with pytest.raises(RenderError) as error:
        router_view(spec)
    assert str(error.value).startswith("router %s: conntrackd: " % spec["name"])
    assert problem in str(error.value)


# --- rendered files -----------------------------------------------------------------

def test_without_conntrackd_there_is_no_file_and_no_trace_in_the_others():
    files, _view = render(pair_router())
    assert "conntrackd.conf" not in files
    for name, text in files.items():
        assert "conntrackd" not in text.lower(), name


def test_conntrackd_conf_is_ftfw_over_unicast_udp():
    files, _view = render(pair_router(conntrackd=True))
    conf = files["conntrackd.conf"]
    lines = [line.strip() for line in conf.splitlines()]
    assert "Mode FTFW {" in lines
    assert "IPv4_address 169.254.192.1" in lines
    assert "IPv4_Destination_Address 169.254.192.2" in lines
    assert "Interface ha-1a2b3c4d" in lines
    assert "Port 3780" in lines
    assert "LockFile /run/l3ha/routers/demo-r1/conntrackd.lock" in lines
    assert "Path /run/l3ha/routers/demo-r1/conntrackd.ctl" in lines
    assert "Multicast {" not in lines


def transition_body(script):
    lines = script.splitlines()
    start = lines.index("transition() {")
    return lines[start:lines.index("}", start)]


def sync_case(script, state):
    """The conntrackd calls of one state in sync_connections(), in order."""
    lines = [line.strip() for line in script.splitlines()]
    start = lines.index("sync_connections() {")
    case = next(i for i in range(start, len(lines)) if lines[i].startswith(state) and lines[i].endswith(")"))
    end = next(i for i in range(case, len(lines)) if lines[i] == ";;")
    return [" ".join(line.split()[1:]) for line in lines[case + 1:end] if line.startswith("conntrackd_call")]


def test_notify_commits_on_master_and_resyncs_on_backup_before_recording_the_state():
    files, _view = render(pair_router(conntrackd=True))
    script = files["notify.sh"]
    assert "CONNTRACKD_CONFIG=/etc/l3ha/routers/demo-r1/conntrackd.conf" in script
    assert sync_case(script, "master") == ["-c", "-f internal", "-R", "-B"]
    assert sync_case(script, "backup") == ["-t", "-f internal", "-f external", "-n"]
    assert sync_case(script, "fault|stop") == ["-t"]
    body = [line.strip() for line in transition_body(script)]
    assert body.index('sync_connections "$1"') < body.index('record_state "$1" "$at"')


def test_notify_with_conntrackd_is_valid_posix_sh(tmp_path):
    files, _view = render(pair_router(conntrackd=True))
    script = tmp_path / "notify.sh"
    script.write_text(files["notify.sh"])
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_switching_conntrackd_changes_keepalived_conf_so_the_reader_is_reloaded():
    without, _view = render(pair_router())
    with_sync, view = render(pair_router(conntrackd=True))
    assert without["keepalived.conf"] != with_sync["keepalived.conf"]
    if find_keepalived():
        assert keepalived_test(with_sync, view) is None


@needs_conntrackd
def test_conntrackd_accepts_the_rendered_config(tmp_path):
    """The daemon parses the file and starts (in a throwaway namespace, then stopped)."""
    files, _view = render(pair_router(conntrackd=True), {"run_dir": str(tmp_path / "run")})
    run_dir = tmp_path / "run" / "routers" / "demo-r1"
    run_dir.mkdir(parents=True)
    config = tmp_path / "conntrackd.conf"
    config.write_text(files["conntrackd.conf"])
    namespace = "l3ha-ct-%s" % uuid.uuid4().hex[:8]
    # A scratch node with its own /run: `ip netns add` in the host would leave a
    # /run/netns mount there. Closing it ends conntrackd with everything else inside.
    node = PrivateNode()
    try:
        node.sh("ip netns add %s" % namespace)

        def in_ns(*argv):
            return node.run(["ip", "netns", "exec", namespace] + list(argv), timeout=30)
        assert in_ns("ip", "link", "add", "ha-1a2b3c4d", "type", "veth", "peer", "name", "vha1a2b3c4d").returncode == 0
        assert in_ns("ip", "addr", "add", "169.254.192.1/18", "dev", "ha-1a2b3c4d").returncode == 0
        assert in_ns("ip", "link", "set", "ha-1a2b3c4d", "up").returncode == 0
        started = in_ns(CONNTRACKD, "-d", "-C", str(config))
        assert started.returncode == 0, started.stdout + started.stderr
        stats = in_ns(CONNTRACKD, "-C", str(config), "-s")
        assert stats.returncode == 0 and "cache internal" in stats.stdout, stats.stdout + stats.stderr
        assert in_ns(CONNTRACKD, "-C", str(config), "-k").returncode == 0
    finally:
        node.close()


# --- the reconciler (processes replaced by fakes) -----------------------------------

class FakeDaemons(object):
    """Stands in for the process side of _supervisor: which namespaces run conntrackd."""

    def __init__(self, monkeypatch, running=()):
        self.running = set(running)
        self.scans = 0
        self.calls = []
        monkeypatch.setattr(_processes, "namespace_inode", lambda namespace: namespace)
        monkeypatch.setattr(_processes, "conntrackd_namespaces", self.scan)
        monkeypatch.setattr(_processes, "start_conntrackd", self.start)
        monkeypatch.setattr(_processes, "stop_conntrackd", self.stop)

    def scan(self):
        self.scans += 1
        return {namespace: [1000] for namespace in self.running}

    def start(self, namespace, argv):
        self.calls.append(("start", namespace, argv))
        self.running.add(namespace)

    def stop(self, namespace, run_dir, name):
        self.calls.append(("stop", namespace))
        self.running.discard(namespace)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(run_dir, "routers", name, "conntrackd.sha256"))


def reconcile_conntrackd(tmp_path, files, check_mode=False, created=False):
    reconciler = _reconciler.NodeReconciler({"config_dir": str(tmp_path / "etc"), "run_dir": str(tmp_path / "run"),
                                             "state_dir": str(tmp_path / "state"), "conntrackd_bin": "/opt/ctd"},
                                            check_mode=check_mode)
    changes = Changes("router r1")
    reconciler._ensure_conntrackd({"name": "r1", "files": files}, created, changes)
    changes.commit(check_mode)
    return changes.lines()


def test_reconciler_starts_once_restarts_on_change_and_stops_when_the_file_goes(tmp_path, monkeypatch):
    daemons = FakeDaemons(monkeypatch)
    assert reconcile_conntrackd(tmp_path, {"conntrackd.conf": "one"}, check_mode=True)
    assert daemons.calls == []
    assert reconcile_conntrackd(tmp_path, {"conntrackd.conf": "one"}, created=True)
    assert daemons.calls == [("stop", "qrouter-r1"),
                             ("start", "qrouter-r1", ["/opt/ctd", "-d", "-C",
                                                      str(tmp_path / "etc/routers/r1/conntrackd.conf")])]
    assert reconcile_conntrackd(tmp_path, {"conntrackd.conf": "one"}) == []  # idempotent
    changed = reconcile_conntrackd(tmp_path, {"conntrackd.conf": "two"})
    assert any("conntrackd.config" in line for line in changed), changed
    assert [call[0] for call in daemons.calls] == ["stop", "start", "stop", "start"]
    assert reconcile_conntrackd(tmp_path, {}) and daemons.running == set()
    assert reconcile_conntrackd(tmp_path, {}) == []


def test_reconciler_looks_for_no_daemon_of_a_router_that_never_had_one(tmp_path, monkeypatch):
    daemons = FakeDaemons(monkeypatch, running=["qrouter-r1"])
    assert reconcile_conntrackd(tmp_path, {"keepalived.conf": "x"}) == []
    assert daemons.scans == 0 and daemons.calls == []


def test_a_dead_daemon_is_started_again(tmp_path, monkeypatch):
    daemons = FakeDaemons(monkeypatch)
    reconcile_conntrackd(tmp_path, {"conntrackd.conf": "one"}, created=True)
    daemons.running.clear()  # killed
    changed = reconcile_conntrackd(tmp_path, {"conntrackd.conf": "one"})
    assert any("conntrackd" in line and "running" in line for line in changed), changed
    assert daemons.running == {"qrouter-r1"}


def test_a_router_with_conntrackd_needs_the_template():
    """Callers that pass only the three classic templates still render other routers."""
    paths = {name: str(TEMPLATES / path) for name, path in DEFAULT_TEMPLATES.items()
             if name not in ("conntrackd.conf", "radvd.conf")}
    renderer = make_renderer(Templar(loader=DataLoader()), read_sources(paths), {})
    files, _view = render_router_files(renderer, pair_router(), {"radvd": False})
    assert sorted(files) == ["keepalived.conf", "nftables.nft", "notify.sh"]
    with pytest.raises(AnsibleError, match="no template for conntrackd.conf"):
        render_router_files(renderer, pair_router(conntrackd=True), {"radvd": False})
