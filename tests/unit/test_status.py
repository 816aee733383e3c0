"""The status report: flags from plan + facts + drift, and the table text."""
import pytest

from ansible_collections.l3ha.routers.plugins.filter.status_report import status_report

NOW = 1764100100.0


def plan(**routers):
    return {"errors": [], "routers": {name: dict({"tenant": "demo", "vrid": index + 1, "ha": True}, **info)
                                      for index, (name, info) in enumerate(sorted(routers.items()))}}


def fact(state, since=NOW - 30, alive=True):
    return {"state": state, "since": since, "keepalived_alive": alive, "tenant": "demo"}


def node(facts, drained=False, drift=None):
    hostvars = {"l3ha_router_facts": facts, "l3ha_node": {"drained": drained}}
    if drift is not None:
        hostvars["l3ha_drift"] = drift
    return hostvars


def report(the_plan, hostvars):
    return status_report(the_plan, hostvars, sorted(hostvars), now=NOW)


def by_name(result):
    return {router["name"]: router for router in result["routers"]}


def test_healthy_router_has_no_flags_and_one_master():
    result = report(plan(r1={"replicas": ["net1", "net2"]}),
                    {"net1": node({"r1": fact("master")}), "net2": node({"r1": fact("backup")})})
    router = by_name(result)["r1"]
    assert router["flags"] == [] and router["masters"] == ["net1"]
    assert result["nodes"]["net1"]["masters"] == 1 and result["nodes"]["net2"]["masters"] == 0
    assert result["flagged"]["NO MASTER"] == []
    assert "r1" in result["table"][1] and result["table"][1].rstrip().endswith("ok")


@pytest.mark.parametrize("hostvars,flags", [
    ({"net1": node({"r1": fact("backup")}), "net2": node({"r1": fact("backup")})}, ["NO MASTER"]),
    ({"net1": node({"r1": fact("master")}), "net2": node({"r1": fact("master")})}, ["SPLIT BRAIN"]),
    ({"net1": node({"r1": fact("master")}), "net2": node({"r1": fact("stop", alive=False)})},
     ["UNDER-REPLICATED", "KEEPALIVED DOWN"]),
    ({"net1": node({"r1": fact("master")}), "net2": {}}, ["UNDER-REPLICATED"]),
    ({"net1": node({"r1": fact("master")}), "net2": node({})}, ["UNDER-REPLICATED"]),
    ({"net1": node({"r1": fact("master")}),
      "net2": node({"r1": fact("backup")}, drift={"routers": {"r1": {"changed": True, "changes": ["file notify.sh"]}}})},
     ["DRIFT"]),
    ({"net1": node({"r1": fact("master")}), "net2": node({"r1": fact("stop", alive=False)}, drained=True)},
     ["UNDER-REPLICATED"]),
], ids=["no-master", "split-brain", "keepalived-down", "unreachable", "missing", "drift", "drained"])
def test_flags(hostvars, flags):
    result = report(plan(r1={"replicas": ["net1", "net2"]}), hostvars)
    assert by_name(result)["r1"]["flags"] == flags
    for flag in flags:
        assert result["flagged"][flag] == ["r1"]


def test_unreachable_node_is_shown_as_such():
    result = report(plan(r1={"replicas": ["net1", "net2"]}), {"net1": node({"r1": fact("master")}), "net2": {}})
    assert result["nodes"]["net2"]["reachable"] is False
    assert "net2: UNREACHABLE" in result["table"][1]
    assert "net2 UNREACHABLE, 0 masters" in result["table"][-2]


def test_router_on_a_node_but_not_in_the_plan_is_drift():
    result = report(plan(r1={"replicas": ["net1"]}),
                    {"net1": node({"r1": fact("master"), "old": fact("master")}, drift={"purged": ["old"]})})
    old = by_name(result)["old"]
    assert old["planned"] == [] and "DRIFT" in old["flags"]
    assert "[not planned]" in next(line for line in result["table"] if line.startswith("old"))


def test_names_that_are_prefixes_do_not_mix():
    result = report(plan(r1={"replicas": ["net1"]}, r10={"replicas": ["net1"]}),
                    {"net1": node({"r1": fact("master"), "r10": fact("backup")})})
    routers = by_name(result)
    assert routers["r1"]["masters"] == ["net1"] and routers["r10"]["masters"] == []
    assert routers["r10"]["flags"] == ["NO MASTER"]


def test_since_column_shows_clock_and_age():
    result = report(plan(r1={"replicas": ["net1"]}), {"net1": node({"r1": fact("master", since=NOW - 125)})})
    assert "net1: master since 19:46:15 (2m)" in result["table"][1]


def test_plan_errors_are_listed():
    the_plan = {"errors": ["router r1: gateway.address: bad"], "routers": {}}
    result = report(the_plan, {"net1": node({})})
    assert result["errors"] == ["router r1: gateway.address: bad"]
    assert result["table"][-1] == "plan error: router r1: gateway.address: bad"


def test_script_result_takes_the_marked_line_and_ignores_noise():
    from ansible_collections.l3ha.routers.plugins.filter.script_result import ScriptResultError, script_result
    lines = ["sudo: unable to resolve host n1: Name or service not known", "Welcome to Debian",
             "", "l3ha-drain-result {\"r1\": 1764100000.5}\r"]
    assert script_result(lines, "l3ha-drain-result") == {"r1": 1764100000.5}
    assert script_result(["{\"r1\": 1}"], "l3ha-drain-result") == {}
    try:
        script_result(["l3ha-drain-result {oops"], "l3ha-drain-result")
    except ScriptResultError as exc:
        assert "not JSON" in str(exc)
    else:
        raise AssertionError("a broken result line must not pass")
