"""The plan belongs to the cluster (issue 14): --limit, job slices, unreachable nodes and
concurrent runs never move, duplicate or collide a router. Real keepalived on 4 lab nodes
(tests/lab/cluster_inventory.yml: max 2, min 1 replicas; t1-legacy has no HA).

Every check reads what the nodes hold: router.json of every router on every node, the
cluster record in the state directory, and the addresses in the router namespaces.
"""

import json
import threading
from pathlib import Path

import pytest
import yaml

from l3ha_lab.testing import masters_by_router, node_sh, node_states, probing, run_playbook, wait_settled
from lab_helpers import record_measurement, vip_holders

INVENTORY = str(Path(__file__).with_name("cluster_inventory.yml"))
NODES = ("net1", "net2", "net3", "net4")
with open(INVENTORY) as _handle:
    BASE = yaml.safe_load(_handle)["all"]["children"]["l3ha_network_nodes"]["vars"]["l3ha_routers"]
HA_ROUTERS = [r["name"] for r in BASE if r.get("ha", True)]
GATEWAY = dict((r["name"], r["gateway"]["address"].split("/")[0]) for r in BASE)
UPSTREAM = "203.0.113.1"
CONFLICT = "another run applied generation"


def extra_router(name, tenant, slot):
    return {"name": name, "tenant": tenant,
            "gateway": {"network": "ext", "address": "203.0.113.%d/24" % (100 + slot), "gateway_ip": UPSTREAM}}


def site(lab, routers=None, **kwargs):
    extra = dict(kwargs.pop("extra_vars", {}), l3ha_routers=routers if routers is not None else BASE)
    return run_playbook(lab, inventories=[INVENTORY], extra_vars=extra, **kwargs)


def must(run):
    assert run.returncode == 0, run.tail()
    return run


@pytest.fixture(scope="module")
def lab_inventory():
    return [INVENTORY]


@pytest.fixture
def cluster(lab):
    """The base inventory converged on all four nodes, before and after each case."""
    def reset():
        for entry in lab.status()["nodes"]:
            if not entry["alive"]:
                lab.boot(entry["name"])
        must(site(lab))
        wait_settled(lab, NODES, HA_ROUTERS)
    reset()
    yield lab
    reset()


def node_routers(lab, nodes=NODES):
    """{node: {router: router.json}} read on every live node."""
    script = ("cd /etc/l3ha/routers 2>/dev/null || { echo '{}'; exit 0; }; python3 -c '"
              "import json, os; print(json.dumps(dict((n, json.load(open(os.path.join(n, \"router.json\")))) "
              "for n in sorted(os.listdir(\".\")) if os.path.exists(os.path.join(n, \"router.json\")))))'")
    alive = set(e["name"] for e in lab.status()["nodes"] if e["alive"])
    return dict((node, json.loads(node_sh(lab, node, script))) for node in nodes if node in alive)


def cluster_record(lab, node):
    return json.loads(node_sh(lab, node, "cat /var/lib/l3ha/cluster.json"))


def assert_no_collision(held):
    """Every (segment, VRID) and every HA address on a segment belongs to one router."""
    vrids, addresses = {}, {}
    for node, routers in held.items():
        for name, entry in routers.items():
            meta = entry.get("metadata") or {}
            if not meta.get("ha"):
                continue
            key = (meta["segment"], meta["vrid"])
            assert vrids.setdefault(key, name) == name, "%s and %s share %s" % (vrids[key], name, key)
            address = (meta["segment"], meta["ha_address"])
            owner = addresses.setdefault(address, (name, node))
            assert owner == (name, node), "%s on %s and %s on %s share %s" % (owner + (name, node, address))


def assert_where_planned(held, record):
    """No router runs on a node the cluster record does not place it on."""
    for node, routers in held.items():
        for name in routers:
            entry = record["routers"].get(name)
            assert entry is not None and not entry.get("absent"), "%s on %s is not in the record" % (name, node)
            assert node in entry["replicas"], "%s runs on %s, planned on %s" % (name, node, sorted(entry["replicas"]))


def assert_one_gateway_holder(lab, routers, nodes=NODES):
    alive = [e["name"] for e in lab.status()["nodes"] if e["alive"] and e["name"] in nodes]
    for name in routers:
        holders = vip_holders(lab, alive, name, GATEWAY[name])
        assert len(holders) <= 1, "%s's gateway address %s is on %s" % (name, GATEWAY[name], holders)


def test_limit_to_a_node_adds_a_router_and_moves_none(cluster):
    lab = cluster
    held = node_routers(lab)
    t2_nodes = [n for n, routers in held.items() if any(e["tenant"] == "t2" for e in routers.values())]
    lonely = next(n for n in NODES if n not in t2_nodes)
    routers = BASE + [extra_router("t2-r9", "t2", 9)]
    before = masters_by_router(node_states(lab, NODES))
    with probing(lab, "limit-t1", "client-t1-net", UPSTREAM) as t1, \
            probing(lab, "limit-t2", "client-t2-net", UPSTREAM) as t2:
        limited = must(site(lab, routers, args=["--limit", lonely]))
    assert "pending" in limited.stdout
    record_measurement("site --limit with a new router", t1_gap=t1["longest_gap"], t2_gap=t2["longest_gap"])
    assert t1["received"] > 0 and t2["received"] > 0
    assert max(t1["longest_gap"], t2["longest_gap"]) <= 0.1, (t1, t2)
    after = masters_by_router(node_states(lab, NODES))
    assert dict((r, after[r]) for r in HA_ROUTERS) == dict((r, before[r]) for r in HA_ROUTERS), "a master moved"
    held = node_routers(lab)
    record = cluster_record(lab, lonely)
    assert all(cluster_record(lab, n)["checksum"] == record["checksum"] for n in NODES)
    assert_no_collision(held)
    assert_where_planned(held, record)
    for name in ("t1-r1", "t1-r2", "t2-r1", "t1-legacy"):
        assert sorted(n for n in held if name in held[n]) == sorted(record["routers"][name]["replicas"])
    new = record["routers"]["t2-r9"]
    assert new["pending"] == sorted(n for n in new["replicas"] if n != lonely)
    assert_one_gateway_holder(lab, GATEWAY)

    must(site(lab, routers))
    held = node_routers(lab)
    assert sorted(n for n in held if "t2-r9" in held[n]) == sorted(new["replicas"])
    assert cluster_record(lab, lonely)["routers"]["t2-r9"]["pending"] == []
    assert must(site(lab, routers)).changed == 0


def test_slices_in_turn_end_where_one_unsliced_run_ends(cluster):
    lab = cluster
    routers = BASE + [extra_router("t1-s%d" % i, "t1", 20 + i) for i in range(3)] + [extra_router("t3-s", "t3", 30)]
    for part in (["net1"], ["net2", "net3"], ["net4"]):
        must(site(lab, routers, args=["--limit", ",".join(part)]))
        assert_no_collision(node_routers(lab))
    sliced = node_routers(lab)
    record = cluster_record(lab, "net1")
    assert all(not entry["pending"] for entry in record["routers"].values())
    assert_where_planned(sliced, record)
    # The unsliced run from here changes nothing: the slices left what it would leave.
    assert must(site(lab, routers)).changed == 0
    assert node_routers(lab) == sliced


def test_a_crashed_nodes_legacy_router_stays_and_moves_only_when_asked(cluster):
    lab = cluster
    held = node_routers(lab)
    (home,) = [n for n in held if "t1-legacy" in held[n]]
    others = [n for n in NODES if n != home]
    lab.crash(home)
    run = site(lab)
    assert run.recap[home]["unreachable"] == 1, run.tail()
    assert all(run.recap[n]["failed"] == 0 for n in others), run.tail()
    assert not [n for n, routers in node_routers(lab).items() if "t1-legacy" in routers], \
        "t1-legacy was created elsewhere while %s was unreachable" % home
    assert_one_gateway_holder(lab, ["t1-legacy"])

    status_json = "/tmp/l3ha-cluster-status.json"
    must(run_playbook(lab, playbook="l3ha.routers.status", inventories=[INVENTORY],
                      extra_vars={"l3ha_routers": BASE, "l3ha_status_json": status_json}))
    with open(status_json) as handle:
        report = json.load(handle)
    legacy = next(r for r in report["routers"] if r["name"] == "t1-legacy")
    assert legacy["planned"] == [home]  # the status plan places nothing new
    assert [(r["node"], r["reachable"]) for r in legacy["replicas"]] == [(home, False)]
    table = "\n".join(report["table"])
    assert "%s: UNREACHABLE" % home in table and "missing" not in table, table

    with probing(lab, "legacy-move", "client-t1-net", UPSTREAM) as probe:
        run = site(lab, extra_vars={"l3ha_reschedule_unreachable": True})
        assert all(run.recap[n]["failed"] == 0 for n in others), run.tail()
    record_measurement("t1-r1 traffic while rescheduling off a crashed node", gap=probe["longest_gap"])
    moved = [n for n, routers in node_routers(lab).items() if "t1-legacy" in routers]
    assert len(moved) == 1 and moved[0] != home
    assert vip_holders(lab, others, "t1-legacy", GATEWAY["t1-legacy"]) == moved

    lab.boot(home)
    # Back, with its old files: the stale copy holds no address and the next run purges it.
    assert vip_holders(lab, [home], "t1-legacy", GATEWAY["t1-legacy"]) == []
    back = must(site(lab))
    assert "t1-legacy runs here, but the cluster record" in back.stdout + back.stderr
    held = node_routers(lab)
    assert "t1-legacy" not in held[home]
    assert [n for n in held if "t1-legacy" in held[n]] == moved
    assert_one_gateway_holder(lab, GATEWAY)


def test_two_runs_at_once_never_collide(cluster):
    lab = cluster
    runs = {}

    def start(name, routers):
        runs[name] = site(lab, routers)

    threads = [threading.Thread(target=start, args=("a", BASE + [extra_router("t2-a", "t2", 40)])),
               threading.Thread(target=start, args=("b", BASE + [extra_router("t2-b", "t2", 41)]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = dict((name, run.returncode) for name, run in runs.items())
    failed = [name for name, code in outcomes.items() if code != 0]
    assert len(failed) <= 1, "%s\n%s" % (outcomes, "\n".join(runs[name].tail(3000) for name in failed))
    for name in failed:
        assert CONFLICT in runs[name].stdout + runs[name].stderr, runs[name].tail()
    record_measurement("two site runs at once", outcomes=outcomes)
    held = node_routers(lab)
    assert_no_collision(held)
    assert_where_planned(held, cluster_record(lab, "net1"))
    wait_settled(lab, NODES, [n for n in ("t2-a", "t2-b") if any(n in r for r in held.values())] + HA_ROUTERS)
    assert_one_gateway_holder(lab, GATEWAY)
    masters = masters_by_router(node_states(lab, NODES))
    assert all(len(masters.get(name, [])) == 1 for name in HA_ROUTERS), masters


def test_first_run_on_a_1x_cluster_writes_the_record_and_changes_no_router(cluster):
    lab = cluster
    for node in NODES:
        node_sh(lab, node, "rm -f /var/lib/l3ha/cluster.json")
    before = node_routers(lab)
    run = must(site(lab))
    after = node_routers(lab)
    assert after == before
    records = [cluster_record(lab, n) for n in NODES]
    assert len(set(r["checksum"] for r in records)) == 1
    assert must(site(lab)).changed == 0
    # --limit with no record anywhere is refused before anything changes.
    for node in NODES:
        node_sh(lab, node, "rm -f /var/lib/l3ha/cluster.json")
    refused = site(lab, BASE + [extra_router("t2-r9", "t2", 9)], args=["--limit", "net1"])
    assert refused.returncode != 0 and "no cluster record describes them" in refused.stdout + refused.stderr, refused.tail()
    assert node_routers(lab) == before
    assert run.changed > 0  # the first run wrote the record
