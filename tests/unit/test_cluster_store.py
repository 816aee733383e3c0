"""The node side of the cluster record: compare-and-swap and roll back, on real files."""
import pytest

from ansible_collections.l3ha.routers.plugins.module_utils import _cluster_store as store


def _record(generation, checksum, run_id="run"):
    return {"format": 1, "generation": generation, "checksum": checksum, "routers": {}, "nodes": {},
            "run_id": run_id, "applied_at": "2026-12-03T10:00:00Z", "controller": "ctl-" + run_id}


def test_first_commit_writes_and_the_same_record_again_changes_nothing(tmp_path):
    assert store.read(str(tmp_path)) is None
    new = _record(1, "a")
    assert store.commit(str(tmp_path), new, {"generation": 0, "checksum": None}, False) == (True, None)
    assert store.read(str(tmp_path)) == new
    assert store.commit(str(tmp_path), new, {"generation": 0, "checksum": None}, False) == (False, new)


def test_check_mode_reports_the_change_and_writes_nothing(tmp_path):
    changed, _held = store.commit(str(tmp_path), _record(1, "a"), {"generation": 0}, True)
    assert changed and store.read(str(tmp_path)) is None


def test_a_second_run_from_the_same_base_loses_with_who_and_when(tmp_path):
    base = {"generation": 3, "checksum": "base"}
    store.commit(str(tmp_path), _record(3, "base"), {"generation": 0}, False)
    store.commit(str(tmp_path), _record(4, "mine", "A"), base, False)
    with pytest.raises(store.Conflict) as caught:
        store.commit(str(tmp_path), _record(4, "theirs", "B"), base, False)
    assert str(caught.value) == "another run applied generation 4 at 2026-12-03T10:00:00Z from ctl-A; re-run"
    assert store.read(str(tmp_path))["checksum"] == "mine"


def test_a_node_that_missed_runs_takes_the_newer_record(tmp_path):
    store.commit(str(tmp_path), _record(1, "old"), {"generation": 0}, False)
    changed, _held = store.commit(str(tmp_path), _record(6, "new"), {"generation": 5, "checksum": "x"}, False)
    assert changed and store.read(str(tmp_path))["generation"] == 6


def test_roll_back_only_undoes_this_runs_write(tmp_path):
    previous = _record(3, "base")
    store.commit(str(tmp_path), previous, {"generation": 0}, False)
    store.commit(str(tmp_path), _record(4, "mine", "A"), {"generation": 3, "checksum": "base"}, False)
    assert store.roll_back(str(tmp_path), "B", previous, False) is False
    assert store.roll_back(str(tmp_path), "A", previous, False) is True
    assert store.read(str(tmp_path)) == previous
    store.commit(str(tmp_path), _record(4, "again", "C"), {"generation": 3, "checksum": "base"}, False)
    assert store.roll_back(str(tmp_path), "C", None, False) is True
    assert store.read(str(tmp_path)) is None


def test_an_unreadable_record_counts_as_none(tmp_path):
    (tmp_path / "cluster.json").write_text("{not json")
    assert store.read(str(tmp_path)) is None
