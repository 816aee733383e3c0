# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Handover times of drained routers (used by the drain playbook)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: handover_report
short_description: Which stopped routers have a new master, where, and how long the handover took
version_added: 1.0.0
author: l3ha.routers contributors
description:
  - Takes the C(routers) of a R(status_report,ansible_collections.l3ha.routers.status_report_filter) over the
    other nodes and the time each router's keepalived was stopped, and reports, per router, the
    new master and the handover time (the new master's state file timestamp minus the stop time).
  - A router whose master is still unknown is listed in C(pending).
positional: stopped_at
options:
  _input:
    description: The C(routers) list of a status report.
    type: list
    elements: dict
    required: true
  stopped_at:
    description: Router name to the epoch seconds when its keepalived was stopped.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Handover of the routers stopped by the drain
  ansible.builtin.debug:
    msg: "{{ (({} | l3ha.routers.status_report(hostvars, others)).routers | l3ha.routers.handover_report(stopped)).lines }}"
"""

RETURN = r"""
_value:
  description: The handover report.
  type: dict
  contains:
    pending:
      description: Stopped routers without a master elsewhere yet.
      type: list
      elements: str
    routers:
      description: Per router, C(master) (the new master node) and C(seconds) (handover time).
      type: dict
    lines:
      description: One line per stopped router, for display.
      type: list
      elements: str
"""


def handover_report(routers, stopped_at):
    by_name = dict((router["name"], router) for router in routers or [])
    pending, result, lines = [], {}, []
    for name in sorted(stopped_at or {}):
        stopped = float(stopped_at[name])
        router = by_name.get(name) or {}
        masters = list(router.get("masters") or [])
        if not masters:
            pending.append(name)
            lines.append("%s: no master elsewhere yet" % name)
            continue
        master = masters[0]
        since = next((replica.get("since") for replica in router.get("replicas") or []
                      if replica.get("node") == master), None)
        seconds = round(max(0.0, float(since) - stopped), 3) if since is not None else None
        result[name] = {"master": master, "seconds": seconds}
        lines.append("%s: master on %s after %s" % (name, master, "%.3f s" % seconds if seconds is not None else "?"))
    return {"pending": pending, "routers": result, "lines": lines}


class FilterModule:
    def filters(self):
        return {"handover_report": handover_report}
