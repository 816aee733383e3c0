# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status report of l3ha.routers.status: where each router's master is, and what is wrong."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping

DOCUMENTATION = r"""
name: status_report
short_description: Build the status report of every HA router from the plan and the nodes' facts
version_added: 1.0.0
author: l3ha.routers contributors
description:
  - Combines the plan (from M(l3ha.routers.plan)), the router facts of every network node
    (from M(l3ha.routers.router_facts)) and, optionally, the reconciler's check-mode result
    per node (drift), into one report.
  - Per router it lists the tenant, the VRID and each replica node with its VRRP state
    (master, backup, fault, stop) and since when, and flags C(NO MASTER), C(SPLIT BRAIN) (two
    or more masters), C(UNDER-REPLICATED) (fewer running replicas than planned),
    C(DRIFT) (the node differs from the plan) and C(KEEPALIVED DOWN) (a reachable, undrained
    replica without a running keepalived).
  - Routers found on nodes but absent from the plan are listed with C(DRIFT).
  - A node without facts is reported as unreachable; its routers are where the cluster record puts
    them (the plan keeps them there), so they show as C(UNREACHABLE) on that node, never as
    missing elsewhere. A replica planned on a node outside the run that made the plan shows as C(pending).
positional: hostvars, nodes
options:
  _input:
    description: The plan, as returned in C(plan) by M(l3ha.routers.plan).
    type: dict
    required: true
  hostvars:
    description: C(hostvars); each node's C(l3ha_router_facts) and C(l3ha_node) are read from it.
    type: dict
    required: true
  nodes:
    description: The network nodes (the hosts of the node group).
    type: list
    elements: str
    required: true
  drift_var:
    description: Name of the host variable holding the registered check-mode result of M(l3ha.routers.ha_routers).
    type: str
    default: l3ha_drift
  now:
    description: The current time (epoch seconds), for the "since" column; default the controller's clock.
    type: float
"""

EXAMPLES = r"""
- name: Build the status report once
  ansible.builtin.set_fact:
    l3ha_status: "{{ l3ha_plan_result.plan | l3ha.routers.status_report(hostvars, groups['l3ha_network_nodes']) }}"
  run_once: true

- name: Print the table
  ansible.builtin.debug:
    msg: "{{ l3ha_status.table }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    generated_at:
      description: Epoch seconds of the report.
      type: float
    nodes:
      description: Per node, C(reachable), C(drained) and C(masters) (how many routers it is master of).
      type: dict
    routers:
      description:
        - One entry per router, sorted by name, with C(name), C(tenant), C(vrid), C(ha),
          C(planned) (replica nodes), C(pending) (planned on nodes outside the run that made the
          plan, not configured yet), C(replicas) (per node C(state), C(since), C(keepalived_alive), C(services),
          C(reachable), C(drift)), C(masters) and C(flags).
      type: list
      elements: dict
    flagged:
      description: Per flag, the routers that carry it.
      type: dict
    table:
      description: The report as text lines, for display.
      type: list
      elements: str
"""

FLAGS = ("NO MASTER", "SPLIT BRAIN", "UNDER-REPLICATED", "DRIFT", "KEEPALIVED DOWN")


def _get(mapping, key, default=None):
    if isinstance(mapping, Mapping):
        try:
            value = mapping.get(key, default)
        except Exception:  # hostvars may raise on undefined templated values
            return default
        return default if value is None else value
    return default


def _node_view(hostvars, node, drift_var):
    hvars = _get(hostvars, node, {})
    facts = _get(hvars, "l3ha_router_facts")
    if facts is None:
        facts = _get(_get(hvars, "ansible_facts", {}), "l3ha_router_facts")
    drift = _get(hvars, drift_var)
    drifted = {}
    if isinstance(drift, Mapping) and not drift.get("unreachable") and not drift.get("skipped"):
        for name, outcome in (_get(drift, "routers", {}) or {}).items():
            if _get(outcome, "changed"):
                drifted[name] = list(_get(outcome, "changes", []) or []) or ["differs"]
        for name in _get(drift, "purged", []) or []:
            drifted[name] = ["would be removed"]
    return {
        "reachable": facts is not None and not (isinstance(drift, Mapping) and drift.get("unreachable")),
        "drained": bool(_get(_get(hvars, "l3ha_node", {}), "drained", False)),
        "facts": dict(facts or {}),
        "drift": drifted,
    }


def _replica(node, view, name):
    fact = view["facts"].get(name)
    entry = {"node": node, "reachable": view["reachable"], "drained": view["drained"],
             "present": fact is not None, "state": None, "since": None, "keepalived_alive": False,
             "drift": view["drift"].get(name, [])}
    if fact:
        entry.update(state=_get(fact, "state"), since=_get(fact, "since"),
                     keepalived_alive=bool(_get(fact, "keepalived_alive", False)),
                     services=dict(_get(fact, "services") or {}))
    return entry


def _flags(planned, replicas, pending=()):
    masters = [r["node"] for r in replicas if r["reachable"] and r["state"] == "master"]
    running = [r for r in replicas if r["reachable"] and r["keepalived_alive"]]
    flags = []
    if not masters:
        flags.append("NO MASTER")
    if len(masters) > 1:
        flags.append("SPLIT BRAIN")
    if len(running) < len([n for n in planned if n not in pending]):
        flags.append("UNDER-REPLICATED")
    if any(r["drift"] for r in replicas) or not planned:
        flags.append("DRIFT")
    if any(r["reachable"] and r["present"] and not r["drained"] and not r["keepalived_alive"] for r in replicas):
        flags.append("KEEPALIVED DOWN")
    return masters, flags


def status_report(plan, hostvars, nodes, drift_var="l3ha_drift", now=None):
    now = time.time() if now is None else float(now)
    plan = plan or {}
    summary = dict(_get(plan, "routers", {}) or {})
    views = dict((node, _node_view(hostvars, node, drift_var)) for node in nodes)
    names = set(summary)
    for view in views.values():
        names.update(view["facts"])
        names.update(view["drift"])
    routers = []
    for name in sorted(names):
        planned = list(_get(summary.get(name), "replicas", []) or [])
        pending = list(_get(summary.get(name), "pending", []) or [])
        hosting = [node for node in nodes if node in planned or name in views[node]["facts"]
                   or name in views[node]["drift"]]
        replicas = [_replica(node, views[node], name) for node in hosting]
        for replica in replicas:
            replica["planned"] = replica["node"] in planned
            replica["pending"] = replica["node"] in pending
        masters, flags = _flags(planned, replicas, pending)
        fact = next((views[n]["facts"][name] for n in hosting if name in views[n]["facts"]), {})
        info = summary.get(name) or {}
        routers.append({
            "name": name,
            "tenant": _get(info, "tenant") or _get(fact, "tenant"),
            "vrid": _get(info, "vrid") if info else _get(fact, "vrid"),
            "ha": bool(_get(info, "ha", True)),
            "planned": planned,
            "pending": pending,
            "replicas": replicas,
            "masters": masters,
            "flags": flags,
        })
    node_report = {}
    for node in nodes:
        node_report[node] = {
            "reachable": views[node]["reachable"],
            "drained": views[node]["drained"],
            "masters": sum(1 for router in routers if node in router["masters"]),
        }
    flagged = dict((flag, [r["name"] for r in routers if flag in r["flags"]]) for flag in FLAGS)
    report = {"generated_at": now, "nodes": node_report, "routers": routers, "flagged": flagged,
              "errors": list(_get(plan, "errors", []) or [])}
    report["table"] = format_table(report, now)
    return report


def _clock(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%H:%M:%S")


def _age(seconds):
    seconds = max(0, int(seconds))
    if seconds < 120:
        return "%ds" % seconds
    if seconds < 7200:
        return "%dm" % (seconds // 60)
    if seconds < 172800:
        return "%dh" % (seconds // 3600)
    return "%dd" % (seconds // 86400)


def _cell(replica, now):
    if replica.get("pending") and not replica["present"]:
        return "%s: pending" % replica["node"]
    if not replica["reachable"]:
        return "%s: UNREACHABLE" % replica["node"]
    if not replica["present"]:
        return "%s: missing" % replica["node"]
    state = replica["state"] or "unknown"
    if not replica["keepalived_alive"]:
        state = "stop (drained)" if replica["drained"] else "DOWN"
    text = "%s: %s" % (replica["node"], state)
    if replica["since"] and replica["keepalived_alive"]:
        text += " since %s (%s)" % (_clock(replica["since"]), _age(now - replica["since"]))
    services = replica.get("services") or {}
    if services:  # master-only services that ran here: up on the master, nowhere else
        text += " services: " + ", ".join("%s %s" % (name, "up" if up else "DOWN")
                                          for name, up in sorted(services.items()))
    if not replica["planned"]:
        text += " [not planned]"
    return text


def format_table(report, now):
    """The report as aligned text lines."""
    header = ("ROUTER", "TENANT", "VRID", "REPLICAS", "FLAGS")
    rows = []
    for router in report["routers"]:
        cells = [_cell(replica, now) for replica in router["replicas"]] or ["-"]
        vrid = "-" if not router["ha"] or router["vrid"] is None else str(router["vrid"])
        rows.append((router["name"], str(router["tenant"] or "-"), vrid, "; ".join(cells),
                     ", ".join(router["flags"]) or "ok"))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in [header] + rows]
    nodes = []
    for node, info in sorted(report["nodes"].items()):
        state = "UNREACHABLE" if not info["reachable"] else "drained" if info["drained"] else "up"
        nodes.append("%s %s, %d master%s" % (node, state, info["masters"], "" if info["masters"] == 1 else "s"))
    lines.append("nodes: " + "; ".join(nodes))
    problems = ["%s: %s" % (flag, ", ".join(names)) for flag, names in report["flagged"].items() if names]
    lines.append("flags: " + ("; ".join(problems) if problems else "none"))
    for error in report.get("errors") or []:
        lines.append("plan error: " + error)
    return lines


class FilterModule:
    def filters(self):
        return {"status_report": status_report}
