# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner: what the nodes report today, and where each router's replicas go.

Pure Python, no I/O. Stability first: every move is an outage, so replicas stay where
they are unless their node left the group, is outside the router's zones, or (only
with reschedule_unreachable) cannot be reached.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import Counter


def _metadata(facts):
    """The planned values a node reports for a router (router.json), or None."""
    if not isinstance(facts, dict):
        return None
    meta = facts.get("metadata")
    meta = dict(meta) if isinstance(meta, dict) else {}
    for key in ("tenant", "vrid", "segment", "ha_address"):
        if meta.get(key) is None and facts.get(key) is not None:
            meta[key] = facts[key]
    return meta


class Existing:
    """Index of the router facts of every node, by router name.

    A node hosts a router when it reports it, or when another replica's metadata lists
    it (that is how the replicas of an unreachable node, which reports nothing, stay).
    """

    def __init__(self, current, record=None):
        self.record = record  # a _plan_record.RecordView, or None
        self._reports = {}  # router -> [(node, metadata)], nodes in name order
        self._macs = {}  # router -> ({port key: mac}, {node: ha mac})
        if not isinstance(current, dict):
            return
        for node in sorted(current, key=str):
            facts = current[node]
            if not isinstance(facts, dict):
                continue
            for router, router_facts in facts.items():
                meta = _metadata(router_facts)
                if meta is not None:
                    self._reports.setdefault(router, []).append((str(node), meta))

    def reports(self, router):
        return self._reports.get(router, ())

    def votes(self, router):
        """{node: how many reports name it as a replica}."""
        votes = Counter()
        for node, meta in self.reports(router):
            replicas = meta.get("replicas")
            if isinstance(replicas, dict) and replicas:
                votes.update(str(n) for n in replicas)
            else:
                votes[node] += 1
        return votes

    def recorded(self, router, node):
        """Whether the cluster record places the router on the node (True without a record)."""
        if self.record is None or self.record.record is None or router not in self.record.routers:
            return True
        return node in self.record.placed(router)

    def claim(self, router):
        """(tenant, segment, vrid) most replicas agree on, or None."""
        claims = Counter()
        for _node, meta in self.reports(router):
            if meta.get("vrid") is not None and meta.get("segment"):
                claims[(meta.get("tenant"), meta["segment"], meta["vrid"])] += 1
        return claims.most_common(1)[0][0] if claims else None

    def segment_vnis(self):
        """{segment: the VNI most reports give it}."""
        claims = {}
        for reports in self._reports.values():
            for _node, meta in reports:
                if meta.get("segment") and meta.get("segment_vni") is not None:
                    claims.setdefault(meta["segment"], Counter())[meta["segment_vni"]] += 1
        return dict((segment, votes.most_common(1)[0][0]) for segment, votes in claims.items())

    def ha_address(self, router, node):
        """The HA address this node had, from its own report or a peer's replica map."""
        fallback = None
        for reporter, meta in self.reports(router):
            if reporter == node and meta.get("ha_address"):
                return meta["ha_address"]
            replicas = meta.get("replicas")
            if fallback is None and isinstance(replicas, dict) and replicas.get(node):
                fallback = replicas[node]
        return fallback

    def macs(self, router, node):
        """{port key: mac}: shared ports from any replica, the ha port from this node."""
        if router not in self._macs:
            shared, ha = {}, {}
            for reporter, meta in self.reports(router):
                macs = meta.get("macs")
                if isinstance(macs, dict):
                    for key, mac in macs.items():
                        if key == "ha":
                            ha[reporter] = mac
                        else:
                            shared.setdefault(key, mac)
            self._macs[router] = (shared, ha)
        shared, ha = self._macs[router]
        if node in ha:
            return dict(shared, ha=ha[node])
        return shared


class Placer:
    """Replicas per router: keep, drop the surplus, add the missing, deterministically."""

    def __init__(self, inputs, existing):
        self.nodes = inputs.nodes
        self.options = inputs.options
        self.errors = inputs.errors
        self.existing = existing
        self.group = sorted(name for name, node in self.nodes.items() if node.in_group)
        self.load = Counter()

    def _zone_ok(self, router, name):
        return router.zones is None or self.nodes[name].zone in router.zones

    def _keepable(self, router, name):
        node = self.nodes.get(name)
        if node is None or not node.in_group or not self._zone_ok(router, name):
            return False
        return node.reachable or not self.options.reschedule_unreachable

    def _open(self, router, name):
        node = self.nodes[name]
        return node.reachable and not node.drained and self._zone_ok(router, name)

    def _limit(self, router):
        if not router.ha:
            return 1
        return router.max_nodes or len(self.group)

    def place(self, routers):
        """{router name: sorted replica nodes}; routers that cannot be placed get an error."""
        zones = set(self.nodes[n].zone for n in self.group)
        unknown = dict((r.name, sorted(set(r.zones) - zones)) for r in routers if r.zones)
        for router in routers:
            if unknown.get(router.name):
                self.errors.append("router %r: availability_zones %s have no node in the group (zones: %s)"
                                   % (router.name, ", ".join(unknown[router.name]),
                                      ", ".join(sorted(zones)) or "none"))
        routers = [r for r in routers if not unknown.get(r.name)]
        votes, kept = {}, {}
        for router in routers:
            votes[router.name] = self.existing.votes(router.name)
            kept[router.name] = sorted(n for n in votes[router.name] if self._keepable(router, n))
            self.load.update(kept[router.name])
        for router in routers:
            self._drop_surplus(router, kept[router.name], votes[router.name])
        placement = {}
        for router in routers:
            replicas = self._fill(router, kept[router.name])
            if replicas is not None:
                placement[router.name] = sorted(replicas)
        return placement

    def _drop_surplus(self, router, replicas, votes):
        # First go: unreachable, drained, not where the cluster record puts it (a stale copy
        # on a node that came back), stale (fewer replicas name it), doubled zone, busiest.
        while len(replicas) > self._limit(router):
            zones = Counter(self.nodes[n].zone for n in replicas)
            worst = max(replicas, key=lambda n: (not self.nodes[n].reachable, self.nodes[n].drained,
                                                 not self.existing.recorded(router.name, n),
                                                 -votes[n], zones[self.nodes[n].zone], self.load[n], n))
            replicas.remove(worst)
            self.load[worst] -= 1

    def _fill(self, router, replicas):
        candidates = [n for n in self.group if n not in replicas and self._open(router, n)]
        target = min(self._limit(router), len(replicas) + len(candidates))
        if target < router.min_nodes:
            self._not_enough(router, replicas + candidates)
            for name in replicas:
                self.load[name] -= 1
            return None
        zones = Counter(self.nodes[n].zone for n in replicas)
        while len(replicas) < target:
            # Spread over zones first, then the least loaded node, then the name.
            best = min(candidates, key=lambda n: (zones[self.nodes[n].zone], self.load[n], n))
            candidates.remove(best)
            replicas.append(best)
            zones[self.nodes[best].zone] += 1
            self.load[best] += 1
        return replicas

    def _not_enough(self, router, available):
        reasons = []
        for name in self.group:
            if name in available:
                continue
            node = self.nodes[name]
            if not self._zone_ok(router, name):
                why = "zone %r not in availability_zones" % node.zone
            elif not node.reachable:
                why = "unreachable"
            else:
                why = "drained"
            reasons.append("%s (%s)" % (name, why))
        self.errors.append(
            "router %r: min_nodes %d but only %d node(s) available: %s%s"
            % (router.name, router.min_nodes, len(available), ", ".join(sorted(available)) or "none",
               "; not available: " + ", ".join(reasons) if reasons else ""))
