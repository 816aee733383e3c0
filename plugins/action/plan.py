# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of l3ha.routers.plan: collect the node group's hostvars, run the
planner once, fail once with every error. The logic lives in module_utils/_planner.py."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.plugins.action import ActionBase

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import NODES_GROUP, PLAN_OPTIONS
from ansible_collections.l3ha.routers.plugins.module_utils._planner import plan

PLAN_ARGS = frozenset(("routers", "networks", "nodes_group"))


def plain(value):
    """Turn Ansible's lazy/tagged containers into plain dicts and lists."""
    if isinstance(value, Mapping):
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def node_inputs(hosts, hostvars, play_hosts_all=None, play_hosts=None):
    """(nodes, current) for plan() from the hostvars of the group's hosts.

    A host without gathered l3ha_router_facts is unreachable, and so is a host of this
    play that dropped out of it (its facts may be stale, e.g. from a fact cache).
    """
    nodes, current = {}, {}
    for host in hosts:
        hvars = hostvars[host]
        facts = hvars.get("l3ha_router_facts")
        if facts is None:
            facts = (hvars.get("ansible_facts") or {}).get("l3ha_router_facts")
        dropped = play_hosts_all is not None and host in play_hosts_all and host not in (play_hosts or ())
        node = hvars.get("l3ha_node") or {}
        nodes[host] = {
            "tunnel_ip": hvars.get("l3ha_tunnel_ip"),
            "availability_zone": hvars.get("l3ha_availability_zone"),
            "reachable": facts is not None and not dropped,
            "drained": bool(node.get("drained")) if isinstance(node, Mapping) else False,
            "in_group": True,
        }
        if facts is not None:
            current[host] = plain(facts)
    return plain(nodes), current


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = PLAN_ARGS | frozenset(PLAN_OPTIONS)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = plain(self._task.args)
        group = args.pop("nodes_group", None) or NODES_GROUP
        routers = args.pop("routers", None) or []
        networks = args.pop("networks", None) or {}
        hosts = (task_vars.get("groups") or {}).get(group) or []
        nodes, current = node_inputs(hosts, task_vars.get("hostvars") or {},
                                     task_vars.get("ansible_play_hosts_all"), task_vars.get("ansible_play_hosts"))
        planned = plan(routers, networks, nodes, current, args)
        if planned["errors"]:
            result.update(failed=True, changed=False, errors=planned["errors"],
                          msg="l3ha plan failed: %d error(s) (node group %r):\n- %s"
                              % (len(planned["errors"]), group, "\n- ".join(planned["errors"])))
            return result
        result.update(changed=False, plan=planned)
        return result
