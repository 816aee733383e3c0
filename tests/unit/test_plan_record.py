"""The cluster record's merge rules: record vs facts, newest generation, contradictions,
and the everyday partial runs of issue 14 (--limit, unreachable nodes, job slices)."""
import copy

from ansible_collections.l3ha.routers.plugins.module_utils._plan_record import content_checksum, newest
from ansible_collections.l3ha.routers.plugins.module_utils._planner import plan

from test_planner_helpers import NETWORKS, facts_of, nodes, router

FOUR = nodes("az1", "az1", "az1", "az1")
OPTIONS = {"max_nodes_per_router": 2, "min_nodes_per_router": 1}


def _plan(routers, node_map, current, record=None, **options):
    merged = dict(OPTIONS, **options)
    result = plan(routers, NETWORKS, node_map, current, merged, record)
    return result


def _ok(*args, **kwargs):
    result = _plan(*args, **kwargs)
    assert result["errors"] == [], result["errors"]
    return result


def _only(node_map, seen, **flags):
    """The node map of a run that reaches only `seen`; the others are outside it (--limit)."""
    found = copy.deepcopy(node_map)
    for name, spec in found.items():
        if name not in seen:
            spec.update(flags or {"outside_run": True})
    return found


def _ha_addresses(result):
    """[(segment, address)] of every replica in the plan."""
    return [(r["segment"], r["ha_address"]) for entry in result["nodes"].values() for r in entry["routers"] if r["ha"]]


def _first(routers):
    first = _ok(routers, FOUR, {})
    return first, facts_of(first)


def test_limit_keeps_routers_where_the_record_puts_them_and_allocates_around_them():
    routers = [router("a1", 1, tenant="t2"), router("b1", 2, tenant="t1"), router("b2", 3, tenant="t1")]
    first, facts = _first(routers)
    held = first["routers"]["a1"]["replicas"]
    limited = next(n for n in sorted(FOUR) if n not in held)
    second = _ok(routers + [router("a3", 4, tenant="t2")], _only(FOUR, [limited]),
                 {limited: facts.get(limited, {})}, first["record"])
    assert second["routers"]["a1"]["replicas"] == held
    addresses = _ha_addresses(second)
    assert len(addresses) == len(set(addresses))
    vrids = [(r["segment"], r["vrid"]) for r in second["routers"].values()]
    assert len(vrids) == len(set(vrids))
    for name in ("a1", "b1", "b2"):
        assert second["routers"][name]["pending"] == []
    a3 = second["routers"]["a3"]
    assert a3["pending"] == [n for n in a3["replicas"] if n != limited]
    assert second["record"]["generation"] == first["record"]["generation"] + 1


def test_limit_without_a_record_is_refused_not_guessed():
    routers = [router("a1", 1)]
    first, facts = _first(routers)
    result = _plan(routers, _only(FOUR, ["net3"]), {"net3": facts.get("net3", {})})
    assert result["nodes"] == {}
    assert any("outside this run" in e and "no cluster record" in e for e in result["errors"]), result["errors"]


def test_unreachable_legacy_router_stays_unless_rescheduling_and_its_stale_copy_is_purged():
    routers = [router("acme-r10", 1, ha=False)]
    first, facts = _first(routers)
    (home,) = first["routers"]["acme-r10"]["replicas"]
    down = _only(FOUR, [n for n in FOUR if n != home], reachable=False)
    seen = dict((n, f) for n, f in facts.items() if n != home)
    kept = _ok(routers, down, seen, first["record"])
    assert kept["routers"]["acme-r10"]["replicas"] == [home]
    assert kept["routers"]["acme-r10"]["pending"] == []
    moved = _ok(routers, down, seen, first["record"], reschedule_unreachable=True)
    (new_home,) = moved["routers"]["acme-r10"]["replicas"]
    assert new_home != home
    # The old node comes back with its stale copy: the record wins, it is purged there.
    back = _ok(routers, FOUR, dict(facts_of(moved), **{home: facts[home]}), moved["record"])
    assert back["routers"]["acme-r10"]["replicas"] == [new_home]
    assert any("acme-r10 runs here" in w for w in back["warnings"]), back["warnings"]


def test_slices_in_turn_end_where_one_unsliced_run_ends():
    routers = [router("r%d" % i, i) for i in range(1, 9)]
    whole = _ok(routers, FOUR, {})
    record, facts = None, {}
    first = _ok(routers[:2], FOUR, {})
    record, facts = first["record"], facts_of(first)
    unsliced = _ok(routers, FOUR, facts, record)
    for part in (["net1"], ["net2", "net3"], ["net4"]):
        result = _ok(routers, _only(FOUR, part), dict((n, facts.get(n, {})) for n in part), record)
        record = result["record"]
        for node in part:
            facts[node] = facts_of(result)[node] if node in facts_of(result) else {}
    final = _ok(routers, FOUR, facts, record)
    assert final["nodes"] == unsliced["nodes"]
    assert all(r["pending"] == [] for r in final["routers"].values())
    assert whole["routers"].keys() == final["routers"].keys()


def test_a_router_removed_during_a_limited_run_keeps_its_vrid_and_addresses_reserved():
    routers = [router("a1", 1), router("a2", 2)]
    first, facts = _first(routers)
    held = set(first["routers"]["a1"]["replicas"])
    others = [n for n in sorted(FOUR) if n not in held]
    second = _ok([router("a2", 2), router("a9", 9)], _only(FOUR, others),
                 dict((n, facts.get(n, {})) for n in others), first["record"])
    a1 = first["routers"]["a1"]
    assert (second["routers"]["a9"]["segment"], second["routers"]["a9"]["vrid"]) != (a1["segment"], a1["vrid"])
    taken = set(r["ha_address"] for n in held for r in first["nodes"][n]["routers"] if r["name"] == "a1")
    assert not taken & set(r["ha_address"] for e in second["nodes"].values() for r in e["routers"])
    assert second["record"]["routers"]["a1"]["absent"] is True


def test_upgrade_builds_the_first_record_from_facts_and_changes_no_router():
    routers = [router("r1", 1), router("r2", 2)]
    first, facts = _first(routers)
    again = _ok(routers, FOUR, facts, None)
    assert again["nodes"] == first["nodes"]
    assert again["record_base"] == {"generation": 0, "checksum": None}
    assert again["record"]["generation"] == 1
    assert again["record"]["checksum"] == content_checksum(again["record"])


def test_a_converged_cluster_keeps_its_generation():
    routers = [router("r1", 1)]
    first, facts = _first(routers)
    again = _ok(routers, FOUR, facts, first["record"])
    assert again["record"]["generation"] == first["record"]["generation"]
    assert again["record"]["checksum"] == first["record"]["checksum"]


def test_newest_generation_wins_and_a_tie_of_two_contents_is_reported():
    routers = [router("r1", 1)]
    first, _facts = _first(routers)
    older = dict(first["record"], generation=1)
    newer = dict(first["record"], generation=2)
    assert newest({"net1": older, "net2": newer, "net3": None})[0] is newer
    twin = dict(newer, checksum="other", applied_at="2026-01-01T00:00:00Z")
    chosen, warnings = newest({"net1": newer, "net2": twin})
    assert chosen is twin and warnings and "generation 2 differs" in warnings[0]
    assert newest({"net1": {"format": 99}})[0] is None


def test_facts_win_on_their_node_and_contradictions_are_reported():
    routers = [router("r1", 1), router("r2", 2)]
    first, facts = _first(routers)
    (node, *_rest) = first["routers"]["r1"]["replicas"]
    missing = copy.deepcopy(facts)
    del missing[node]["r1"]
    result = _ok(routers, FOUR, missing, first["record"])
    assert any("node %s: router r1 is missing" % node in w for w in result["warnings"]), result["warnings"]
    assert node in result["routers"]["r1"]["replicas"]
    changed = copy.deepcopy(facts)
    changed[node]["r1"]["metadata"]["vrid"] = 77
    result = _ok(routers, FOUR, changed, first["record"])
    assert any("router r1 has vrid 77" in w for w in result["warnings"]), result["warnings"]


def test_retiring_a_node_moves_its_replicas_and_a_node_gone_from_the_group_is_named():
    routers = [router("r%d" % i, i) for i in range(1, 5)]
    first, facts = _first(routers)
    retiring = copy.deepcopy(FOUR)
    retiring["net1"]["in_group"] = False
    moved = _ok(routers, retiring, facts, first["record"])
    assert "net1" not in moved["nodes"]
    assert all("net1" not in r["replicas"] for r in moved["routers"].values())
    assert "net1" not in moved["record"]["nodes"]
    assert not any("net1" in (e.get("leaving") or {}) for e in moved["record"]["routers"].values())
    # Taken out of the inventory without retire: the record still has routers there.
    three = dict((n, s) for n, s in FOUR.items() if n != "net1")
    held = [name for name, r in first["routers"].items() if "net1" in r["replicas"]]
    result = _ok(routers, three, dict((n, f) for n, f in facts.items() if n != "net1"), first["record"])
    warning = [w for w in result["warnings"] if w.startswith("node net1: not in the node group")]
    assert warning and "l3ha_retire_node=net1" in warning[0] and all(name in warning[0] for name in held)


def test_retiring_fails_before_anything_when_the_others_cannot_take_the_replicas():
    routers = [router("r1", 1)]
    two = nodes("az1", "az1")
    first = plan(routers, NETWORKS, two, {}, {"max_nodes_per_router": 2, "min_nodes_per_router": 2}, None)
    retiring = copy.deepcopy(two)
    retiring["net2"]["in_group"] = False
    result = plan(routers, NETWORKS, retiring, facts_of(first), {"max_nodes_per_router": 2, "min_nodes_per_router": 2},
                  first["record"])
    assert result["nodes"] == {} and any("min_nodes 2" in e for e in result["errors"]), result["errors"]
