"""The l3ha.routers.plan action: hostvars in, one plan or one failure listing every error."""
import json
import os
import pathlib
import subprocess

import yaml

from ansible_collections.l3ha.routers.plugins.plugin_utils._cluster_view import finish_record, node_inputs, outside_reads

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_node_inputs_reads_hostvars_and_marks_unreachable():
    hostvars = {
        "net1": {"l3ha_tunnel_ip": "192.0.2.11", "l3ha_availability_zone": "az1",
                 "l3ha_router_facts": {"r1": {"vrid": 1}}, "l3ha_node": {"name": "net1", "drained": True}},
        "net2": {"l3ha_tunnel_ip": "192.0.2.12"},  # no facts gathered
        "net3": {"ansible_facts": {"l3ha_router_facts": {}}},  # facts only under ansible_facts
        "net4": {"l3ha_router_facts": {}},  # dropped out of the play: its facts may be stale
    }
    nodes, current, records = node_inputs(["net1", "net2", "net3", "net4"], hostvars,
                                          play_hosts_all=["net1", "net2", "net3", "net4"], play_hosts=["net1", "net3"])
    assert nodes["net1"] == {"tunnel_ip": "192.0.2.11", "availability_zone": "az1", "reachable": True,
                             "drained": True, "in_group": True, "outside_run": False}
    assert [nodes[n]["reachable"] for n in ("net2", "net3", "net4")] == [False, True, False]
    assert current == {"net1": {"r1": {"vrid": 1}}, "net3": {}}
    assert sorted(records) == ["net1", "net3"]


def test_hosts_outside_the_play_are_outside_the_run_and_reachable_when_their_record_was_read():
    record = {"format": 1, "generation": 4, "checksum": "c", "routers": {}, "nodes": {}}
    hostvars = {"net1": {"l3ha_router_facts": {}, "l3ha_cluster_record": None},
                "net2": {"l3ha_router_facts": {"stale": {}}},  # a fact cache: ignored outside the run
                "net3": {}}
    reads = outside_reads([{"item": "net2", "record": record}, {"item": "net3", "unreachable": True},
                           {"skipped": True}])
    nodes, current, records = node_inputs(["net1", "net2", "net3"], hostvars, ["net1"], ["net1"], reads)
    assert [nodes[n]["outside_run"] for n in ("net1", "net2", "net3")] == [False, True, True]
    assert [nodes[n]["reachable"] for n in ("net1", "net2", "net3")] == [True, True, False]
    assert current == {"net1": {}}
    assert records == {"net1": None, "net2": record}
    planned = {"record": dict(record, generation=5, checksum="d")}
    assert finish_record(planned, records, controller="ctl", run_id="r") == ["net1", "net2"]
    assert planned["record"]["controller"] == "ctl" and planned["record"]["run_id"] == "r"
    same = {"record": dict(record)}
    assert finish_record(same, records) == ["net1"]


def _playbook(tmp_path, routers, **options):
    inventory = {"all": {"children": {"l3ha_network_nodes": {
        "hosts": {"net1": {"l3ha_tunnel_ip": "192.0.2.11", "l3ha_availability_zone": "az1"},
                  "net2": {"l3ha_tunnel_ip": "192.0.2.12", "l3ha_availability_zone": "az2"},
                  "net3": {"l3ha_tunnel_ip": "192.0.2.13", "l3ha_availability_zone": "az2"}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": str(ROOT / ".venv/bin/python")}}}}}
    play = [{"hosts": "l3ha_network_nodes", "gather_facts": False, "tasks": [
        # net3 gathers nothing: it counts as unreachable
        {"ansible.builtin.set_fact": {"l3ha_router_facts": {}}, "when": "inventory_hostname != 'net3'"},
        {"l3ha.routers.plan": {"routers": routers, "networks": {"ext": {"type": "bridge", "bridge": "br-ex"}},
                               "max_nodes_per_router": 2, "min_nodes_per_router": 2, **options},
         "run_once": True, "register": "result"},
        {"ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(tmp_path / "result.json")},
         "run_once": True, "delegate_to": "localhost"},
    ]}]
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json")
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)


def test_action_plans_the_group_once(tmp_path):
    routers = [{"name": "r1", "gateway": {"network": "ext", "address": "203.0.113.10/24", "gateway_ip": "203.0.113.1"}}]
    done = _playbook(tmp_path, routers)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["changed"] is False
    plan = result["plan"]
    assert plan["routers"]["r1"]["replicas"] == ["net1", "net2"]  # net3 is unreachable: no new replica
    assert sorted(plan["nodes"]) == ["net1", "net2", "net3"]


def test_action_fails_once_with_every_error(tmp_path):
    routers = [{"name": "r1", "gateway": {"network": "ext", "address": "203.0.113.10/24", "gateway_ip": "203.0.114.1"}},
               {"name": "R2"}]
    done = _playbook(tmp_path, routers)
    assert done.returncode != 0
    failure = [task for play in json.loads(done.stdout)["plays"] for task in play["tasks"]
               if task["task"]["name"] == "l3ha.routers.plan"][0]
    (host_result,) = [r for r in failure["hosts"].values() if r.get("failed")]
    assert host_result["msg"].startswith("l3ha plan failed: 2 error(s)")
    assert host_result["errors"] == [
        "router 'r1': gateway.gateway_ip 203.0.114.1 is outside 203.0.113.0/24",
        "router #1: name 'R2' must match ^[a-z0-9][a-z0-9-]*$ and have at most 48 characters"]
    assert not (tmp_path / "result.json").exists()


def test_action_fails_on_bad_uplink_monitor_settings_with_the_routers_errors(tmp_path):
    routers = [{"name": "R2"}]
    done = _playbook(tmp_path, routers, uplink_monitor={"interval": 0, "fall": 3, "rise": 3, "port": 7079})
    assert done.returncode != 0
    failure = [task for play in json.loads(done.stdout)["plays"] for task in play["tasks"]
               if task["task"]["name"] == "l3ha.routers.plan"][0]
    (host_result,) = [r for r in failure["hosts"].values() if r.get("failed")]
    assert host_result["errors"][0] == "uplink_monitor: interval: must be a number from 0.01 to 60, got 0"
    assert len(host_result["errors"]) == 2  # and the router's own
