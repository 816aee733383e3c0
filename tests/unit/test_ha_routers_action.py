"""The ha_routers action's flow, with the module call replaced by a fake node: which
routers are rendered and sent with files, the second call for routers the node asks to
re-render, bad input, masking of the VRRP secret, and the deprecated option name."""
import copy
import pathlib
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar

from ansible_collections.l3ha.routers.plugins.action.ha_routers import ActionModule
from test_templates import ROLE_DEFAULT_VARS, full_router

ROLE = pathlib.Path(__file__).resolve().parents[2] / "roles" / "l3ha"


class FakeNode:
    """Stands in for the module: records what it was sent; answers ``render`` (routers
    whose files it cannot keep) with the names given, one list per call."""

    def __init__(self, stale=()):
        self.calls = []
        self.stale = list(stale)

    def __call__(self, module_name, module_args, task_vars):
        self.calls.append(copy.deepcopy(module_args["routers"]))
        result = {"changed": True, "routers": {}, "invocation": {"module_args": copy.deepcopy(module_args)},
                  "diff": [{"before": "    auth_pass old-pass\n", "after": ""}]}
        if self.stale:
            result["rerender"] = self.stale.pop(0)
        return result


def routers():
    one, two = full_router(), full_router()
    two.update(name="demo-r2", namespace="qrouter-demo-r2", vrid=8)
    return [one, two]


def run(args, node, facts=None):
    task = mock.MagicMock(args=args, async_val=0)
    task.get_search_path.return_value = [str(ROLE)]
    loader = DataLoader()
    action = ActionModule(task, mock.MagicMock(), PlayContext(), loader, Templar(loader=loader), None)
    action._execute_module = node
    task_vars = dict(ROLE_DEFAULT_VARS, l3ha_router_facts=facts or {})
    return action.run(task_vars=task_vars)


def facts_of(sent):
    """What router_facts would report after the node wrote these routers."""
    return {router["name"]: {"inputs_checksum": router["inputs_checksum"]} for router in sent}


def test_every_router_is_rendered_then_none_while_the_node_has_its_files():
    node = FakeNode()
    first = run({"routers": routers(), "validate": False}, node)
    assert first["rendered"] == ["demo-r1", "demo-r2"]
    sent = node.calls[0]
    # both have an IPv6 subnet inside: they send router advertisements (radvd)
    assert all(sorted(router["files"]) == ["keepalived.conf", "nftables.nft", "notify.sh", "radvd.conf"]
               for router in sent)
    assert [router["service_names"] for router in sent] == [["radvd"], ["radvd"]]
    assert all(router["inputs_checksum"] for router in sent)
    second = run({"routers": routers(), "validate": False}, node, facts=facts_of(sent))
    assert second["rendered"] == []
    assert [("files" in router, router["inputs_checksum"]) for router in node.calls[1]] == [
        (False, router["inputs_checksum"]) for router in sent]


def test_a_changed_setting_renders_every_router_again():
    node = FakeNode()
    run({"routers": routers(), "validate": False}, node)
    again = run({"routers": routers(), "validate": False, "template_settings": {"garp_repeat": 5}}, node,
                facts=facts_of(node.calls[0]))
    assert again["rendered"] == ["demo-r1", "demo-r2"]
    assert "vrrp_garp_master_repeat 5" in node.calls[1][0]["files"]["keepalived.conf"]


def test_routers_the_node_cannot_keep_are_rendered_and_sent_again():
    node = FakeNode()
    run({"routers": routers(), "validate": False}, node)
    facts = facts_of(node.calls[0])
    node = FakeNode(stale=[["demo-r2"]])
    result = run({"routers": routers(), "validate": False}, node, facts=facts)
    assert "failed" not in result and result["rendered"] == ["demo-r2"]
    assert [["files" in router for router in call] for call in node.calls] == [[False, False], [False, True]]


def test_routers_that_stay_stale_fail_the_task():
    node = FakeNode()
    run({"routers": routers(), "validate": False}, node)
    facts = facts_of(node.calls[0])
    node = FakeNode(stale=[["demo-r2"], ["demo-r2"]])
    result = run({"routers": routers(), "validate": False}, node, facts=facts)
    assert result["failed"] is True
    assert result["msg"].startswith("routers demo-r2: their files changed on the node")


def test_bad_input_fails_before_the_module_runs():
    node = FakeNode()
    bad = routers()
    bad[1]["routes"][0]["nexthop"] = "10.0.2"
    result = run({"routers": bad, "validate": False}, node)
    assert result["failed"] is True and node.calls == []
    assert result["errors"] == ["router demo-r2: routes[0].nexthop: '10.0.2' is not an IP address"]


def test_unknown_template_files_are_refused():
    with pytest.raises(AnsibleActionFail, match="templates: unknown file"):
        run({"routers": routers(), "templates": {"dhcpd.conf": "x.j2"}}, FakeNode())


def test_the_vrrp_secret_is_kept_out_of_the_result():
    node = FakeNode()
    result = run({"routers": routers(), "validate": False, "template_settings": {"auth_pass": "s3cret-and-more"}}, node)
    assert "auth_pass s3cret-a" in node.calls[0][0]["files"]["keepalived.conf"]
    assert "invocation" not in result
    assert "s3cret" not in repr(result)
    # without a password now, an old one in a diff is masked as well
    assert "old-pass" not in repr(run({"routers": routers(), "validate": False}, FakeNode()))


def test_the_old_option_name_still_works():
    old, new = FakeNode(), FakeNode()
    with mock.patch("ansible_collections.l3ha.routers.plugins.action.ha_routers.display") as display:
        run({"routers": routers(), "validate": False, "render": {"garp_repeat": 5}}, old)
    assert display.deprecated.call_count == 1
    run({"routers": routers(), "validate": False, "template_settings": {"garp_repeat": 5}}, new)
    assert old.calls == new.calls
