"""Self-restore at boot (_restore.py): what is kept, what is restored, and the log."""
import json
import os

from ansible_collections.l3ha.routers.plugins.module_utils import _restore
from ansible_collections.l3ha.routers.plugins.module_utils._router_files import router_files
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import DESIRED_STATE, RESTORE_LAUNCHER


def _router(name, ha=True):
    return {"name": name, "ha": ha, "tenant": "demo", "files": {"keepalived.conf": "conf of %s\n" % name}}


def _node(tmp_path, routers, **state):
    config_dir = tmp_path / "etc"
    for router in routers:
        directory = config_dir / "routers" / router["name"]
        directory.mkdir(parents=True)
        for fname, text in router_files(router).items():
            (directory / fname).write_text(text)
    params = dict({"config_dir": str(config_dir), "run_dir": str(tmp_path / "run"), "state_dir": str(tmp_path),
                   "segments": {"ha-demo-0": {"type": "vxlan", "remotes": ["192.0.2.12"]}},
                   "supervisor": "systemd", "restore_non_ha": True}, **state)
    params["routers"] = routers
    (tmp_path / DESIRED_STATE).write_text(_restore.desired_text(params))
    return params


def test_the_desired_state_keeps_everything_but_the_file_texts(tmp_path):
    params = _node(tmp_path, [_router("r1")])
    kept = json.loads((tmp_path / DESIRED_STATE).read_text())
    assert kept["routers"] == [{"name": "r1", "ha": True, "tenant": "demo"}]
    assert kept["segments"] == params["segments"]


def test_the_program_is_the_loaded_code_with_a_launcher(tmp_path):
    files = _restore.program_files(str(tmp_path))
    launcher = files[os.path.join(str(tmp_path), RESTORE_LAUNCHER)]
    assert "_restore import main" in launcher and repr(str(tmp_path)) in launcher
    path = os.path.join(str(tmp_path), "ansible_collections", "l3ha", "routers", "plugins", "module_utils", "_restore.py")
    with open(_restore.__file__) as handle:
        assert files[path] == handle.read()


def test_restore_rebuilds_as_written_routers_and_logs_one_line_each(tmp_path):
    _node(tmp_path, [_router("r1"), _router("r2"), _router("legacy", ha=False)], restore_non_ha=False)
    (tmp_path / "etc" / "routers" / "r2" / "keepalived.conf").write_text("edited by hand\n")
    seen, lines = {}, []

    def reconcile(params, check_mode):
        seen.update(params=params, check_mode=check_mode)
        return {"routers": {"r1": {"changed": True}}, "failures": []}

    code = _restore.restore(str(tmp_path), log=lines.append, reconcile=reconcile, ping=lambda ip: ip == "192.0.2.12")
    assert code == 0 and seen["check_mode"] is False and seen["params"]["purge"] is False
    assert [r["name"] for r in seen["params"]["routers"]] == ["r1"]
    assert seen["params"]["routers"][0]["files"]["keepalived.conf"] == "conf of r1\n"
    assert "router r1: restored (changed)" in lines
    assert any(line.startswith("router r2: not restored: its files are not as") for line in lines)
    assert any(line.startswith("router legacy: not restored: no HA") for line in lines)
    assert lines[-1].startswith("l3ha-restore: 1 router(s) restored, 0 failed, 2 left for the next run")


def test_one_failing_router_is_named_and_the_exit_code_says_so(tmp_path):
    _node(tmp_path, [_router("r1"), _router("r2")])
    lines = []

    def reconcile(params, check_mode):
        return {"routers": {}, "failures": ["router r2: keepalived did not start"]}

    assert _restore.restore(str(tmp_path), log=lines.append, reconcile=reconcile, ping=lambda ip: True) == 1
    assert "router r2: FAILED: keepalived did not start" in lines and "router r1: restored (already in place)" in lines


def test_no_peer_answering_is_logged_and_the_restore_goes_on(tmp_path):
    lines = []
    assert _restore.wait_for_a_peer(["192.0.2.12"], lines.append, deadline=0.3, ping=lambda ip: False) is False
    assert lines and "no peer answered" in lines[0]
    assert _restore.restore(str(tmp_path / "none"), log=lines.append) == 0
