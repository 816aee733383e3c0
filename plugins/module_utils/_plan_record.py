# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner: the cluster record, what the cluster knows beyond the nodes this run sees.

Pure Python, no I/O. Every run that applies a plan writes one record to every node it
reaches (modules/cluster_record.py): per router its nodes, VRID, HA segment, HA
addresses and MACs; per node whether it was drained; a generation and a checksum.
The planner starts from the newest record among the nodes, and merges it with the
router facts of the nodes this run sees: facts win on the node they describe, the
record stands in for every node without facts (outside --limit or a job slice, or
unreachable). See docs/planner.md, "What the cluster knows, and where".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

RECORD_FORMAT = 1
# What a record's checksum covers; generation, time and author are about the write.
CONTENT_KEYS = ("routers", "nodes")


def content_checksum(record):
    content = dict((key, record.get(key) or {}) for key in CONTENT_KEYS)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def valid(record):
    """Whether `record` is a record this planner can read."""
    return (isinstance(record, dict) and record.get("format") == RECORD_FORMAT
            and isinstance(record.get("generation"), int) and not isinstance(record.get("generation"), bool)
            and isinstance(record.get("routers"), dict) and isinstance(record.get("nodes"), dict))


def stamp(record):
    """(generation, checksum) of a record as a node holds it; (0, None) for none."""
    if not valid(record):
        return (0, None)
    return (record["generation"], record.get("checksum"))


def newest(records):
    """(record or None, warnings) from {node: record or None}: the highest generation.

    Two different records of one generation come from two runs that raced (the loser
    puts its nodes back); the later write wins and the operator is told.
    """
    found = [(node, rec) for node, rec in sorted(records.items()) if valid(rec)]
    if not found:
        return None, []
    top = max(rec["generation"] for _node, rec in found)
    best = [(node, rec) for node, rec in found if rec["generation"] == top]
    best.sort(key=lambda item: (str(item[1].get("applied_at") or ""), str(item[1].get("checksum"))))
    warnings = []
    if len(set(rec.get("checksum") for _node, rec in best)) > 1:
        warnings.append("cluster record: generation %d differs between nodes %s; using the one written at %s"
                        % (top, ", ".join(node for node, _rec in best), best[-1][1].get("applied_at")))
    return best[-1][1], warnings


class RecordView:
    """Read access to one record (or none) for the placer and the allocators."""

    def __init__(self, record):
        self.record = record if valid(record) else None
        self.routers = self.record["routers"] if self.record else {}
        self.nodes = self.record["nodes"] if self.record else {}

    @property
    def generation(self):
        return self.record["generation"] if self.record else 0

    def knows(self, node):
        return node in self.nodes

    def drained(self, node):
        return bool((self.nodes.get(node) or {}).get("drained"))

    def placed(self, router):
        """The nodes the record places a present router on (pending ones included)."""
        entry = self.routers.get(router) or {}
        if entry.get("absent"):
            return set()
        return set(entry.get("replicas") or {})

    def pending(self, router):
        return set((self.routers.get(router) or {}).get("pending") or ())

    def facts_for(self, node):
        """Router facts standing in for a node without facts: what the record says it holds."""
        facts = {}
        for name, entry in self.routers.items():
            replicas = entry.get("replicas") or {}
            leaving = entry.get("leaving") or {}
            if node not in replicas and node not in leaving:
                continue
            if node in (entry.get("pending") or ()):
                continue  # planned there, not configured yet: nothing runs there
            ha_macs = entry.get("ha_macs") or {}
            macs = dict(entry.get("macs") or {})
            if ha_macs.get(node):
                macs["ha"] = ha_macs[node]
            address = replicas.get(node) if node in replicas else leaving.get(node)
            facts[name] = {"from_record": True, "metadata": {
                "tenant": entry.get("tenant"), "ha": entry.get("ha"), "vrid": entry.get("vrid"),
                "segment": entry.get("segment"), "segment_vni": entry.get("segment_vni"),
                "ha_address": address, "replicas": dict(replicas), "macs": macs,
            }}
        return facts


def merge(current, view, nodes, errors, warnings):
    """The router facts the planner works from: the seen nodes' own, the record for the rest.

    `nodes` are the node specs: a node is seen when it is reachable and in this run.
    Returns (facts, seen nodes).
    A node outside the run that no record describes cannot be planned around: with no
    record at all that is an error (run the whole group once); a node the record does not
    know yet (added to the group since) just gets nothing new this run.
    """
    seen = set(name for name, node in nodes.items() if node.in_group and node.reachable and not node.outside_run)
    facts = dict((name, current.get(name) or {}) for name in seen)
    strangers = []
    for name in sorted(nodes):
        node = nodes[name]
        if name in seen or not node.in_group:
            continue
        if view.knows(name):
            facts[name] = view.facts_for(name)
        elif name in current:
            facts[name] = current[name]
            if node.outside_run:
                node.drained = view.drained(name)
        elif node.outside_run:
            strangers.append(name)
            node.reachable = False  # nothing known there: nothing new goes there either
    gone = {}
    for name, entry in sorted(view.routers.items()):
        for node in sorted(set(entry.get("replicas") or {}) | set(entry.get("leaving") or {})):
            if node not in nodes or not nodes[node].in_group:
                gone.setdefault(node, []).append(name)
    for node, routers in sorted(gone.items()):
        if node in nodes:
            continue  # being retired by this run
        warnings.append("node %s: not in the node group, but the cluster record (generation %d) has routers there "
                        "(%s); it keeps running them with the shared addresses: retire it with l3ha.routers.retire "
                        "-e l3ha_retire_node=%s while it is still in the group" % (node, view.generation, ", ".join(routers), node))
    if strangers and view.record is None:
        errors.append("nodes %s: outside this run (--limit or a job slice) and no cluster record describes them; "
                      "run l3ha.routers.site over the whole node group once" % ", ".join(strangers))
    elif strangers:
        warnings.append("nodes %s: outside this run and not in the cluster record (generation %d); "
                        "nothing is planned on them until a run includes them" % (", ".join(strangers), view.generation))
    return facts, seen


def contradictions(current, view, seen):
    """What the seen nodes hold that the record says otherwise, one line each (reported, not hidden)."""
    found = []
    if view.record is None:
        return found
    for node in sorted(seen):
        held = current.get(node) or {}
        for name in sorted(view.routers):
            entry = view.routers[name]
            if entry.get("absent") or node not in (entry.get("replicas") or {}):
                continue
            if node in (entry.get("pending") or ()):
                continue
            if name not in held:
                found.append("node %s: router %s is missing, although the cluster record (generation %d) places it here"
                             % (node, name, view.generation))
        for name in sorted(held):
            entry = view.routers.get(name)
            meta = (held[name] or {}).get("metadata") or {}
            if entry is None or entry.get("absent"):
                continue
            if node not in (entry.get("replicas") or {}):
                found.append("node %s: router %s runs here, but the cluster record (generation %d) places it on %s"
                             % (node, name, view.generation, ", ".join(sorted(entry.get("replicas") or {})) or "no node"))
            elif entry.get("ha") and (meta.get("vrid"), meta.get("segment")) != (entry.get("vrid"), entry.get("segment")):
                found.append("node %s: router %s has vrid %s on %s here, the cluster record says vrid %s on %s"
                             % (node, name, meta.get("vrid"), meta.get("segment"), entry.get("vrid"), entry.get("segment")))
    return found


def reserved(view, present, seen):
    """Claims of routers that still run on nodes this run cannot change.

    [(router, tenant, segment, vrid or None, [ha addresses])]: a router gone from the
    inventory but still on unseen nodes (purged there by a later run) keeps its VRID and
    addresses; a present router keeps the old HA address of a replica that moved away
    from an unseen node. Nobody else may take them yet.
    """
    claims = []
    for name in sorted(view.routers):
        entry = view.routers[name]
        pending = entry.get("pending") or ()
        holders = dict((n, a) for n, a in (entry.get("leaving") or {}).items() if n not in seen)
        gone = name not in present or entry.get("absent")
        if gone:
            holders.update((n, a) for n, a in (entry.get("replicas") or {}).items()
                           if n not in seen and n not in pending)
        if holders:
            claims.append((name, entry.get("tenant"), entry.get("segment"),
                           entry.get("vrid") if gone else None, sorted(a for a in holders.values() if a)))
    return claims


def build(view, result, seen, nodes, present):
    """The record this plan leaves behind (generation and checksum included).

    result: the plan (routers summary and per-node entries); seen: the nodes with facts
    this run; present: names of the inventory's present routers.
    """
    routers = {}
    entries = {}
    for node, entry in result["nodes"].items():
        for router in entry["routers"]:
            entries.setdefault(router["name"], {})[node] = router
    for name, summary in result["routers"].items():
        by_node = entries.get(name, {})
        any_entry = next(iter(by_node.values()), None)
        meta = (any_entry or {}).get("metadata") or {}
        old_pending = view.pending(name)
        old_placed = view.placed(name)
        pending = sorted(n for n in summary["replicas"] if n not in seen and (n in old_pending or n not in old_placed))
        shared_macs = dict((k, v) for k, v in (meta.get("macs") or {}).items() if k != "ha")
        ha_macs = dict((n, ((e.get("metadata") or {}).get("macs") or {}).get("ha")) for n, e in by_node.items())
        old = view.routers.get(name) or {}
        grouped = set(n for n, spec in nodes.items() if spec.in_group)
        leaving = dict((n, a) for n, a in (old.get("replicas") or {}).items()
                       if n in grouped and n not in seen and n not in summary["replicas"]
                       and n not in (old.get("pending") or ()))
        leaving.update((n, a) for n, a in (old.get("leaving") or {}).items()
                       if n in grouped and n not in seen and n not in summary["replicas"])
        record_entry = {
            "tenant": summary["tenant"], "ha": summary["ha"], "vrid": summary["vrid"], "segment": summary["segment"],
            "segment_vni": meta.get("segment_vni"),
            "replicas": dict((n, (by_node.get(n) or {}).get("ha_address")) for n in summary["replicas"]),
            "macs": shared_macs, "ha_macs": dict((n, m) for n, m in ha_macs.items() if m),
            "pending": pending,
        }
        if leaving:
            record_entry["leaving"] = leaving
        routers[name] = record_entry
    for name, entry in view.routers.items():
        if name in routers or name in present:
            continue
        holders = dict((n, a) for n, a in (entry.get("replicas") or {}).items()
                       if n not in seen and n not in (entry.get("pending") or ()))
        holders.update((n, a) for n, a in (entry.get("leaving") or {}).items() if n not in seen)
        if holders:  # gone from the inventory, still running where this run did not reach
            routers[name] = dict(entry, absent=True, replicas={}, pending=[], leaving=holders)
    node_info = {}
    for name in sorted(nodes):
        node = nodes[name]
        if not node.in_group:
            continue
        if name in seen:
            node_info[name] = {"drained": bool(node.drained)}
        elif view.knows(name):
            node_info[name] = dict(view.nodes[name])
    record = {"format": RECORD_FORMAT, "routers": routers, "nodes": node_info}
    record["checksum"] = content_checksum(record)
    if view.record is not None and view.record.get("checksum") == record["checksum"]:
        record["generation"] = view.generation
    else:
        record["generation"] = view.generation + 1
    return record


def pending_by_node(record):
    """{node: [routers planned there, not configured yet]} for the run summary."""
    found = {}
    for name, entry in sorted(record["routers"].items()):
        for node in entry.get("pending") or ():
            found.setdefault(node, []).append(name)
    return found
