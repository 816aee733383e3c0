# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the plan: what this run sees of the node group, and its record.

From the hostvars (the facts of the nodes in the play) and the records read from the
group's hosts outside the play, it builds the planner's node specs and picks the
newest cluster record; after planning it stamps the next record and lists the nodes
it must be committed to. Ansible-free, so it is unit-tested like the planner.
"""

from __future__ import annotations

import datetime
import getpass
import socket
import uuid
from collections.abc import Mapping

from ansible_collections.l3ha.routers.plugins.module_utils._plan_record import newest, stamp


def plain(value):
    """Turn Ansible's lazy/tagged containers into plain dicts and lists."""
    if isinstance(value, Mapping):
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _facts(hvars, name):
    value = hvars.get(name)
    if value is None:
        value = (hvars.get("ansible_facts") or {}).get(name)
    return value


def outside_reads(results):
    """{host: (reached, record)} from the registered loop of cluster_record reads."""
    found = {}
    for result in results or ():
        if not isinstance(result, Mapping) or "item" not in result:
            continue
        reached = not (result.get("unreachable") or result.get("failed") or result.get("skipped"))
        found[str(result["item"])] = (reached, plain(result.get("record")) if reached else None)
    return found


def node_inputs(hosts, hostvars, play_hosts_all=None, play_hosts=None, outside=None, retiring=None):
    """(nodes, current, records) for plan() from the hostvars of the group's hosts.

    A host of this play without gathered l3ha_router_facts is unreachable, and so is one
    that dropped out of the play (its facts may be stale, e.g. from a fact cache). A host
    outside the play (--limit, a job slice) is outside the run: the cluster record speaks
    for it, and it counts as reachable when its record could be read. The host being
    retired (l3ha.routers.retire) is seen but leaves the group: its replicas move.
    """
    outside = outside or {}
    nodes, current, records = {}, {}, {}
    for host in hosts:
        hvars = hostvars[host]
        in_run = play_hosts_all is None or host in play_hosts_all
        node = hvars.get("l3ha_node") or {}
        spec = {
            "tunnel_ip": hvars.get("l3ha_tunnel_ip"),
            "availability_zone": hvars.get("l3ha_availability_zone"),
            "in_group": host != retiring,
        }
        if in_run:
            facts = _facts(hvars, "l3ha_router_facts")
            dropped = play_hosts_all is not None and host not in (play_hosts or ())
            spec.update(reachable=facts is not None and not dropped, outside_run=False,
                        drained=bool(node.get("drained")) if isinstance(node, Mapping) else False)
            if facts is not None and not dropped:
                current[host] = plain(facts)
                records[host] = plain(_facts(hvars, "l3ha_cluster_record"))
        else:
            reached, record = outside.get(host, (False, None))
            spec.update(reachable=reached, outside_run=True, drained=False)
            if reached:
                records[host] = record
        nodes[host] = spec
    return plain(nodes), current, records


def starting_record(records):
    """(the newest record among the nodes read, warnings)."""
    return newest(records)


def finish_record(planned, records, controller=None, now=None, run_id=None):
    """Stamp the plan's next record with who and when, and list the nodes to write it to.

    Returns the sorted nodes whose record differs from the next one: none on a run that
    changes nothing (its no-op stays a no-op), every reached node when the plan moved on.
    """
    record = planned["record"]
    record["run_id"] = run_id or uuid.uuid4().hex
    record["controller"] = controller or "%s@%s" % (getpass.getuser(), socket.gethostname())
    now = now or datetime.datetime.now(datetime.timezone.utc)
    record["applied_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    wanted = stamp(record)
    return sorted(node for node, held in records.items() if stamp(held) != wanted)
