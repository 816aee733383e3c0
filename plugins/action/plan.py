# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of l3ha.routers.plan: collect the node group's hostvars, run the
planner once, fail once with every error. The logic lives in module_utils/_planner.py."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import NODES_GROUP, PLAN_OPTIONS
from ansible_collections.l3ha.routers.plugins.module_utils._planner import plan
from ansible_collections.l3ha.routers.plugins.module_utils._uplink import validate_uplink
from ansible_collections.l3ha.routers.plugins.module_utils._validate import Errors
from ansible_collections.l3ha.routers.plugins.plugin_utils._cluster_view import (
    finish_record, node_inputs, outside_reads, plain, starting_record)

PLAN_ARGS = frozenset(("routers", "networks", "nodes_group", "outside_records", "retire", "uplink_monitor"))


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
        outside = outside_reads(args.pop("outside_records", None))
        retiring = args.pop("retire", None) or None
        # checked here, so that bad settings stop the run before the cluster record is committed
        uplink = Errors()
        validate_uplink(args.pop("uplink_monitor", None), {}, uplink)
        hosts = (task_vars.get("groups") or {}).get(group) or []
        nodes, current, records = node_inputs(hosts, task_vars.get("hostvars") or {},
                                              task_vars.get("ansible_play_hosts_all"),
                                              task_vars.get("ansible_play_hosts"), outside, retiring)
        record, warnings = starting_record(records)
        planned = plan(routers, networks, nodes, current, args, record)
        planned["errors"] = uplink.messages + planned["errors"]
        if planned["errors"]:
            result.update(failed=True, changed=False, errors=planned["errors"],
                          msg="l3ha plan failed: %d error(s) (node group %r):\n- %s"
                              % (len(planned["errors"]), group, "\n- ".join(planned["errors"])))
            return result
        planned["record_targets"] = finish_record(planned, records)
        warnings += planned["warnings"]
        if warnings:
            result["warnings"] = warnings
        result.update(changed=False, plan=planned)
        return result
