# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side planner: inventory data and router facts in, per-node plan out.

plan() is pure (no I/O, no Ansible imports) and deterministic: the same input gives
the same plan, and feeding a plan back as the nodes' facts gives the same plan again.
See docs/planner.md for the rules and docs/architecture.md for the output contract.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc

try:
    import netaddr
except ImportError:  # the plan then holds one error saying so
    netaddr = None

from ansible_collections.l3ha.routers.plugins.module_utils._plan_alloc import (
    IdBook, MacBook, assign_ha_addresses, assign_vnis, assign_vrids, mac_for)
from ansible_collections.l3ha.routers.plugins.module_utils._plan_input import VXLAN_OVERHEAD, read_inputs, router_networks
from ansible_collections.l3ha.routers.plugins.module_utils._plan_place import Existing, Placer
from ansible_collections.l3ha.routers.plugins.module_utils._plan_record import (
    RecordView, build, contradictions, merge, pending_by_node, reserved)
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import namespace_of


def plan(routers, networks, nodes, current, options=None, record=None):
    """Plan every node. Returns a JSON-serialisable dict:

    {"errors": [...], "nodes": {node: {"segments": {...}, "routers": [...]}},
     "routers": {name: {"tenant", "vrid", "segment", "replicas", "ha", "pending"}}, "absent": [...],
     "record": the cluster record this plan leaves, "record_base": {"generation", "checksum"}
     of the record it started from, "pending": {node: [routers]}, "warnings": [...]}

    `current` holds the router facts of the nodes this run sees; `record` is the newest
    cluster record found (_plan_record.py), which stands in for the other nodes.
    When "errors" is not empty, "nodes" and "routers" are empty: nothing may change.
    """
    if netaddr is None:
        return _failed(["the planner needs the Python library netaddr on the controller"], [])
    # The plan is many small, acyclic objects: cyclic GC passes over them only cost time
    # (about 40 % of a 5000-router plan).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(routers, networks, nodes, current, options, record)
    finally:
        if collecting:
            gc.enable()


def _plan(routers, networks, nodes, current, options, record):
    inputs = read_inputs(routers, networks, nodes, options)
    if not inputs.global_ok:
        return _failed(inputs.errors, inputs.absent)
    view = RecordView(record)
    current = current if isinstance(current, dict) else {}
    warnings = []
    facts, seen = merge(current, view, inputs.nodes, inputs.errors, warnings)
    if inputs.errors:
        return _failed(inputs.errors, inputs.absent)
    existing = Existing(facts, view)
    placement = Placer(inputs, existing).place(inputs.routers)
    present = set(r.name for r in inputs.routers)
    result = _Builder(inputs, existing, placement, reserved(view, present, seen)).build()
    if inputs.errors:
        return _failed(inputs.errors, inputs.absent)
    result["absent"] = list(inputs.absent)
    result["record"] = build(view, result, seen, inputs.nodes, present)
    result["record_base"] = {"generation": view.generation, "checksum": (view.record or {}).get("checksum")}
    result["pending"] = pending_by_node(result["record"])
    for name, summary in result["routers"].items():
        summary["pending"] = list(result["record"]["routers"][name]["pending"])
    result["warnings"] = warnings + contradictions(current, view, seen)
    return result


def _failed(errors, absent):
    return {"errors": list(errors), "nodes": {}, "routers": {}, "absent": list(absent)}


def _ip_sort_key(text):
    ip = netaddr.IPAddress(text)
    return (ip.version, int(ip))


def _unique(items):
    seen, found = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            found.append(item)
    return found


class _Builder:
    """Turns placement into the per-node reconciler input (docs/architecture.md)."""

    def __init__(self, inputs, existing, placement, reserved=()):
        self.inputs = inputs
        self.reserved = reserved
        self.opts = inputs.options
        self.errors = inputs.errors
        self.existing = existing
        self.routers = [r for r in inputs.routers if r.name in placement]
        self.placement = placement
        self.ids = IdBook(self.errors)
        self.macs = MacBook()
        self.segments = {}  # key -> segment dict without remotes
        self.scopes = {}  # key -> L2 scope, for MAC uniqueness
        self.extra_vteps = {}  # key -> remote VTEPs outside the group
        self.carriers = {}  # key -> set of nodes

    def build(self):
        ha_routers = [r for r in self.routers if r.ha]
        vrids = assign_vrids(ha_routers, self.existing, self.errors, self.reserved)
        self._define_network_segments()
        self._define_ha_segments(sorted(set(seg for seg, _vrid in vrids.values()), key=_segment_order))
        ha_replicas = dict((r.name, self.placement[r.name]) for r in ha_routers if r.name in vrids)
        ha_segments = dict((name, vrids[name][0]) for name in ha_replicas)
        ha_addresses = assign_ha_addresses(ha_replicas, ha_segments, self.scopes, self.existing,
                                           self.opts, self.errors, self.reserved)
        shared = {}
        for router in self.routers:
            if router.ha and router.name not in vrids:
                continue  # its error is recorded
            shared[router.name] = self._shared(router, vrids.get(router.name, (None, None)))
        self._allocate_macs(shared)
        nodes = dict((name, {"segments": {}, "routers": []})
                     for name in sorted(self.inputs.nodes) if self.inputs.nodes[name].in_group)
        summary = {}
        for router in self.routers:
            if router.name not in shared:
                continue
            replicas = self.placement[router.name]
            addresses = dict((n, ha_addresses.get((router.name, n))) for n in replicas)
            for node in replicas:
                nodes[node]["routers"].append(self._node_router(shared[router.name], node, addresses))
            base = shared[router.name]
            summary[router.name] = {"tenant": router.tenant, "vrid": base["vrid"], "segment": base["segment"],
                                    "replicas": list(replicas), "ha": router.ha}
        self._node_segments(nodes)
        self._uplink_peers(nodes)
        return {"errors": [], "nodes": nodes, "routers": summary}

    # --- segments ----------------------------------------------------------------

    def _define_network_segments(self):
        underlay = self.opts.underlay_mtu
        for name in sorted(n for n, net in self.inputs.networks.items() if net is not None):
            net = self.inputs.networks[name]
            who = "network %r" % name
            if net.kind == "bridge":
                segment = {"type": "bridge", "bridge": net.bridge, "mtu": net.mtu or underlay}
                scope = ("bridge", net.bridge)
            else:
                ident = self.ids.id_for("brq-", name, who)
                segment = {"type": net.kind, "bridge": "brq-" + ident}
                if net.kind == "vxlan":
                    segment.update(vni=net.vni, device="vx-" + ident, mtu=net.mtu or underlay - VXLAN_OVERHEAD)
                    scope = ("vxlan", net.vni)
                    vteps = self.opts.vteps_by_network.get(name, self.opts.vteps_all)
                    self.extra_vteps[name] = vteps
                else:
                    segment.update(vlan_id=net.vlan_id, physical_device=net.physical_device, device="vl-" + ident,
                                   mtu=net.mtu or underlay)
                    scope = ("vlan", net.physical_device, net.vlan_id)
            self.segments[name] = segment
            self.scopes[name] = scope

    def _define_ha_segments(self, keys):
        if self.opts.ha_type == "bridge":
            for key in keys:
                self.segments[key] = {"type": "bridge", "bridge": self.opts.ha_bridge, "mtu": self.opts.underlay_mtu}
                self.scopes[key] = ("bridge", self.opts.ha_bridge)
            return
        vnis = assign_vnis(keys, self.existing, self.opts, self.errors)
        for key in keys:
            ident = self.ids.id_for("brq-", key, "HA segment %r" % key)
            self.segments[key] = {"type": "vxlan", "vni": vnis.get(key), "bridge": "brq-" + ident,
                                  "device": "vx-" + ident, "mtu": self.opts.underlay_mtu - VXLAN_OVERHEAD}
            self.scopes[key] = ("vxlan", vnis.get(key))

    def _node_segments(self, nodes):
        tunnel = dict((n, node.tunnel_ip) for n, node in self.inputs.nodes.items())
        for node, entry in nodes.items():
            used = set()
            for router in entry["routers"]:
                used.update(port["segment"] for port in router["ports"])
            for key in sorted(used):
                segment = dict(self.segments[key])
                if segment["type"] == "vxlan":
                    others = [tunnel[n] for n in self.carriers[key] if n != node and tunnel[n]]
                    remotes = _unique(others + [ip for ip in self.extra_vteps.get(key, []) if ip != tunnel[node]])
                    segment["remotes"] = sorted(remotes, key=_ip_sort_key)
                entry["segments"][key] = segment

    def _uplink_peers(self, nodes):
        """Per node and gateway network: the tunnel addresses of the other nodes holding
        replicas of its HA routers there (the uplink monitor's peers)."""
        tunnel = dict((n, node.tunnel_ip) for n, node in self.inputs.nodes.items())
        for node, entry in nodes.items():
            found = {}
            for router in entry["routers"]:
                if router["ha"] and router["gateway"] is not None:
                    others = found.setdefault(router["gateway"]["network"], set())
                    others.update(n for n in self.placement[router["name"]] if n != node and tunnel.get(n))
            entry["uplink_peers"] = dict((network, sorted((tunnel[n] for n in others), key=_ip_sort_key))
                                         for network, others in sorted(found.items()))

    # --- routers -----------------------------------------------------------------

    def _shared(self, router, vrid_segment):
        """What every replica of a router has in common (MACs are filled in later)."""
        name = router.name
        segment, vrid = vrid_segment
        who = "router %r" % name
        for key in ([segment] if segment else []) + router_networks(router):
            self.carriers.setdefault(key, set()).update(self.placement[name])
        ports = []
        if router.ha:
            ident = self.ids.id_for("ha-", name + "/ha", who)
            ports.append(self._port("ha", "ha-" + ident, segment, "ha"))
        gateway = None
        if router.gateway is not None:
            gw = router.gateway
            ident = self.ids.id_for("qg-", name + "/gw", who)
            port = self._port("gateway", "qg-" + ident, gw.network, "gw")
            ports.append(port)
            gateway = {"network": gw.network, "port": port["name"],
                       "addresses": [str(a) for a in gw.addresses],
                       "gateway_ips": [str(ip) for ip in gw.gateway_ips], "snat": gw.snat,
                       "subnets": [str(a.cidr) for a in gw.addresses]}
            if not router.ha:  # no keepalived: the reconciler sets the addresses itself
                port["addresses"] = gateway["addresses"] + [
                    "%s/%d" % (ext, 32 if ext.version == 4 else 128) for ext, _internal in router.floating_ips]
        interfaces = []
        for network, addresses in router.interfaces:
            ident = self.ids.id_for("qr-", "%s/net/%s" % (name, network), who)
            port = self._port("internal", "qr-" + ident, network, "net/" + network)
            ports.append(port)
            texts = [str(a) for a in addresses]
            if not router.ha:
                port["addresses"] = list(texts)
            interfaces.append({"network": network, "port": port["name"], "addresses": texts,
                               "subnets": _unique(str(a.cidr) for a in addresses)})
        shared = {
            "name": name, "tenant": router.tenant, "namespace": namespace_of(name), "ha": router.ha,
            "vrid": vrid, "segment": segment,
            "ha_vip": "169.254.0.%d/24" % vrid if vrid else None,
            "priority": self.opts.priority if router.ha else None,
            "ports": ports, "gateway": gateway, "interfaces": interfaces,
            "routes": [{"destination": str(d), "nexthop": str(n)} for d, n in router.routes],
            "floating_ips": [{"external": str(e), "internal": str(i)} for e, i in router.floating_ips],
            "internal_subnets": _unique(s for i in interfaces for s in i["subnets"]),
            "segment_vni": self.segments[segment].get("vni") if segment else None,
        }
        if router.conntrackd is not None:  # else the role's l3ha_conntrackd decides
            shared["conntrackd"] = router.conntrackd
        if router.master_services:
            shared["master_services"] = router.master_services
        return shared

    def _port(self, kind, name, segment, mac_key):
        return {"kind": kind, "name": name, "peer": "v" + name.replace("-", ""), "segment": segment,
                "mac": None, "mtu": self.segments[segment]["mtu"], "addresses": [], "mac_key": mac_key}

    def _allocate_macs(self, shared):
        """Reported MACs first (all routers), then new ones, so existing MACs never move."""
        for fill in (self._keep_mac, self._new_mac):
            for name in sorted(shared):
                base = shared[name]
                for port in base["ports"]:
                    if port["kind"] == "ha":
                        macs = base.setdefault("ha_macs", {})
                        for node in self.placement[name]:
                            if node not in macs:
                                owner = "%s/ha/%s" % (name, node)
                                mac = fill(name, node, port, owner)
                                if mac:
                                    macs[node] = mac
                    elif port["mac"] is None:
                        port["mac"] = fill(name, None, port, "%s/%s" % (name, port["mac_key"]))

    def _keep_mac(self, router, node, port, owner):
        nodes = [node] if node else self.placement[router]
        for reporter in nodes:
            mac = self.existing.macs(router, reporter).get(port["mac_key"])
            if mac is not None and self.macs.keep(self.scopes[port["segment"]], mac, owner):
                return mac
        return None

    def _new_mac(self, router, node, port, owner):
        scope = self.scopes[port["segment"]]
        preferred = mac_for(owner)  # the documented hash, unless another port already has it
        if self.macs.keep(scope, preferred, owner):
            return preferred
        return self.macs.allocate(scope, owner)

    def _node_router(self, base, node, addresses):
        """One replica: the shared values plus this node's HA port, address and peers."""
        entry = base.copy()
        for private in ("ha_macs", "segment_vni"):
            entry.pop(private, None)
        ha_address = addresses.get(node)
        entry["ha_address"] = ha_address
        entry["peers"] = [addresses[n].split("/")[0] for n in sorted(addresses) if n != node and addresses[n]]
        macs = {}
        ports = []
        for port in base["ports"]:
            copy = port.copy()
            del copy["mac_key"]
            copy["addresses"] = list(port["addresses"])
            if port["kind"] == "ha":
                copy["mac"] = base["ha_macs"][node]
                copy["addresses"] = [ha_address]
            macs[port["mac_key"]] = copy["mac"]
            ports.append(copy)
        entry["ports"] = ports
        # Fresh copies, so no two nodes' plans share an object (YAML output would show aliases).
        if base["gateway"] is not None:
            entry["gateway"] = _copy_lists(base["gateway"])
        entry["interfaces"] = [_copy_lists(i) for i in base["interfaces"]]
        entry["routes"] = [r.copy() for r in base["routes"]]
        entry["floating_ips"] = [f.copy() for f in base["floating_ips"]]
        entry["internal_subnets"] = list(base["internal_subnets"])
        entry["metadata"] = {
            "tenant": base["tenant"], "ha": base["ha"], "vrid": base["vrid"], "segment": base["segment"],
            "segment_vni": base["segment_vni"], "ha_address": ha_address,
            "replicas": dict(addresses), "macs": macs,
        }
        return entry


def _copy_lists(flat):
    """Copy of a dict whose values are scalars or lists of scalars."""
    copy = flat.copy()
    for key, value in copy.items():
        if isinstance(value, list):
            copy[key] = list(value)
    return copy


def _segment_order(key):
    tenant, index = key[3:].rsplit("-", 1)
    return (tenant, int(index))
