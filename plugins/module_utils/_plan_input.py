# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner input: checks the inventory data and turns it into small spec objects.

Pure Python, no I/O. Options, networks and nodes are read here; the routers in
_plan_router_input.py, the value parsers in _plan_values.py. Every problem becomes one error string that names the router
(or network, node, option) and the field; nothing stops at the first error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import netaddr
except ImportError:  # reported by plan(), so the import sanity test passes
    netaddr = None

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import PLAN_OPTIONS
from ansible_collections.l3ha.routers.plugins.module_utils._plan_router_input import read_routers, router_networks
from ansible_collections.l3ha.routers.plugins.module_utils._plan_values import (
    Invalid, field as _field, parse_device_name as _parse_bridge, parse_ip, parse_network, to_bool, to_int,
)
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    NETWORK_NAME_RE, VLAN_ID_MAX, VLAN_ID_MIN, VNI_MAX, VNI_MIN, as_list,
)

NETWORK_TYPES = ("bridge", "vxlan", "vlan")
VXLAN_OVERHEAD = 50
# keepalived's primary VIP per router lives here (169.254.0.<vrid>/24), as in Neutron.
HA_VIP_NET = "169.254.0.0/24"

OPTION_DEFAULTS = PLAN_OPTIONS


class Options:
    """The planner's options, parsed by _read_options; these start values are OPTION_DEFAULTS."""

    def __init__(self):
        self.default_ha = OPTION_DEFAULTS["default_ha"]
        self.max_nodes = OPTION_DEFAULTS["max_nodes_per_router"]
        self.min_nodes = OPTION_DEFAULTS["min_nodes_per_router"]
        self.ha_cidr = None
        self.ha_type = OPTION_DEFAULTS["ha_network_type"]
        self.ha_bridge = OPTION_DEFAULTS["ha_bridge"]
        self.vni_low, self.vni_high = OPTION_DEFAULTS["ha_vni_range"]
        self.reschedule_unreachable = OPTION_DEFAULTS["reschedule_unreachable"]
        self.vteps_all = []  # extra VTEPs for every vxlan network
        self.vteps_by_network = {}
        self.priority = OPTION_DEFAULTS["priority"]
        self.underlay_mtu = OPTION_DEFAULTS["underlay_mtu"]


class Network:
    def __init__(self, name, kind):
        self.name = name
        self.kind = kind
        self.bridge = None
        self.vni = None
        self.vlan_id = None
        self.physical_device = None
        self.cidrs = []
        self.mtu = None
        self.external = False


class Node:
    def __init__(self, name):
        self.name = name
        self.tunnel_ip = None  # str, normalised
        self.zone = ""
        self.reachable = True
        self.drained = False
        self.in_group = True
        self.outside_run = False  # outside --limit or a job slice: the cluster record speaks for it


class Inputs:
    """Everything plan() needs, checked. Only valid routers are in `routers`."""

    def __init__(self):
        self.errors = []
        self.options = Options()
        self.networks = {}
        self.nodes = {}
        self.routers = []
        self.absent = []
        self.global_ok = True  # options, networks and nodes are usable


def read_inputs(routers, networks, nodes, options):
    inputs = Inputs()
    _read_options(inputs, options or {})
    _read_nodes(inputs, nodes or {})
    inputs.global_ok = not inputs.errors  # placement needs sane options and some nodes
    _read_networks(inputs, networks or {})
    _check_vtep_networks(inputs)
    read_routers(inputs, routers or [])
    _check_tunnel_ips(inputs)
    return inputs


# --- options -----------------------------------------------------------------------

def _read_options(inputs, raw):
    errors, opts = inputs.errors, inputs.options
    if not isinstance(raw, dict):
        errors.append("options: must be a dict, got %r" % (raw,))
        raw = {}
    for key in sorted(set(raw) - set(OPTION_DEFAULTS)):
        errors.append("option %s: unknown option" % key)
    value = dict(OPTION_DEFAULTS)
    value.update((k, v) for k, v in raw.items() if v is not None and k in OPTION_DEFAULTS)

    def option(name, parse):
        return _field(errors, "option " + name, "value", parse, value[name])

    opts.default_ha = option("default_ha", to_bool)
    opts.max_nodes = option("max_nodes_per_router", lambda v: to_int(v, 0))
    opts.min_nodes = option("min_nodes_per_router", lambda v: to_int(v, 1))
    opts.reschedule_unreachable = option("reschedule_unreachable", to_bool)
    opts.priority = option("priority", lambda v: to_int(v, 1, 254))
    opts.underlay_mtu = option("underlay_mtu", lambda v: to_int(v, 68 + VXLAN_OVERHEAD, 65535))
    opts.ha_cidr = option("ha_network_cidr", _parse_ha_cidr)
    opts.ha_type = value["ha_network_type"]
    if opts.ha_type not in ("vxlan", "bridge"):
        errors.append("option ha_network_type: value %r is not one of vxlan, bridge" % (opts.ha_type,))
    elif opts.ha_type == "bridge":
        opts.ha_bridge = _field(errors, "option ha_bridge", "value", _parse_bridge, value["ha_bridge"])
    vni_range = as_list(value["ha_vni_range"])
    if len(vni_range) != 2:
        errors.append("option ha_vni_range: value %r is not a [first, last] pair" % (value["ha_vni_range"],))
    else:
        low = option("ha_vni_range", lambda v: to_int(v[0], VNI_MIN, VNI_MAX))
        high = option("ha_vni_range", lambda v: to_int(v[1], VNI_MIN, VNI_MAX))
        if low is not None and high is not None:
            if low > high:
                errors.append("option ha_vni_range: first %s is above last %s" % (low, high))
            opts.vni_low, opts.vni_high = low, high
    if opts.max_nodes and opts.min_nodes and opts.min_nodes > opts.max_nodes:
        errors.append("option min_nodes_per_router: %s is above max_nodes_per_router %s"
                      % (opts.min_nodes, opts.max_nodes))
    _read_vteps(inputs, value["vxlan_remote_vteps"])


def _parse_ha_cidr(value):
    net = parse_network(value)
    if net.version != 4 or net.prefixlen > 30:
        raise Invalid("%s must be an IPv4 subnet of /30 or larger" % value)
    if net in netaddr.IPNetwork(HA_VIP_NET) or netaddr.IPNetwork(HA_VIP_NET) in net:
        raise Invalid("%s overlaps %s, where the routers' VIPs live" % (value, HA_VIP_NET))
    return net


def _parse_vtep_list(value):
    return [str(parse_ip(item)) for item in as_list(value)]


def _read_vteps(inputs, raw):
    if isinstance(raw, dict):
        for network, ips in sorted(raw.items()):
            parsed = _field(inputs.errors, "option vxlan_remote_vteps", "[%s]" % network, _parse_vtep_list, ips)
            inputs.options.vteps_by_network[network] = parsed or []
    else:
        parsed = _field(inputs.errors, "option vxlan_remote_vteps", "value", _parse_vtep_list, raw)
        inputs.options.vteps_all = parsed or []


# --- networks ----------------------------------------------------------------------

def _read_networks(inputs, raw):
    errors = inputs.errors
    if not isinstance(raw, dict):
        errors.append("networks: must be a dict of name: {type, ...}, got %r" % (raw,))
        return
    vnis = {}
    for name in sorted(raw, key=str):
        spec = raw[name]
        where = "network %r" % (name,)
        if not isinstance(name, str) or not NETWORK_NAME_RE.fullmatch(name):
            errors.append("%s: name must match %s" % (where, NETWORK_NAME_RE.pattern))
            continue
        if name.startswith("ha-"):
            errors.append("%s: name: names starting with 'ha-' are reserved for HA segments" % where)
            continue
        if not isinstance(spec, dict):
            errors.append("%s: must be a dict with a type, got %r" % (where, spec))
            continue
        kind = spec.get("type")
        if kind not in NETWORK_TYPES:
            errors.append("%s: type %r is not one of %s" % (where, kind, ", ".join(NETWORK_TYPES)))
            continue
        net = Network(name, kind)
        before = len(errors)
        if kind == "bridge":
            net.bridge = _field(errors, where, "bridge", _parse_bridge, spec.get("bridge"))
        elif kind == "vxlan":
            net.vni = _field(errors, where, "vni", lambda v: to_int(v, VNI_MIN, VNI_MAX), spec.get("vni"))
        else:
            net.vlan_id = _field(errors, where, "vlan_id", lambda v: to_int(v, VLAN_ID_MIN, VLAN_ID_MAX), spec.get("vlan_id"))
            net.physical_device = _field(errors, where, "physical_device", _parse_bridge, spec.get("physical_device"))
        if net.vni is not None:
            if net.vni in vnis:
                errors.append("%s: vni %s is also used by network %r" % (where, net.vni, vnis[net.vni]))
            vnis[net.vni] = name
            opts = inputs.options
            if opts.vni_low <= net.vni <= opts.vni_high:
                errors.append("%s: vni %s is inside ha_vni_range %s..%s, kept for HA segments"
                              % (where, net.vni, opts.vni_low, opts.vni_high))
        net.cidrs = _field(errors, where, "cidr", lambda v: [parse_network(c) for c in as_list(v)],
                           spec.get("cidr")) or []
        if spec.get("mtu") is not None:
            net.mtu = _field(errors, where, "mtu", lambda v: to_int(v, 68, 65535), spec.get("mtu"))
            limit = (inputs.options.underlay_mtu or 1500) - (VXLAN_OVERHEAD if kind == "vxlan" else 0)
            if net.mtu is not None and net.mtu > limit:
                errors.append("%s: mtu %s is above %s (underlay_mtu%s)"
                              % (where, net.mtu, limit, " - 50 for vxlan" if kind == "vxlan" else ""))
        if spec.get("external") is not None:
            net.external = _field(errors, where, "external", to_bool, spec.get("external"))
        if len(errors) == before:
            inputs.networks[name] = net
        else:
            inputs.networks[name] = None  # known but broken: routers using it get no extra error


# --- nodes -------------------------------------------------------------------------

def _read_nodes(inputs, raw):
    errors = inputs.errors
    if not isinstance(raw, dict):
        errors.append("nodes: must be a dict of node name: {...}, got %r" % (raw,))
        return
    for name in sorted(raw, key=str):
        spec = raw[name] or {}
        where = "node %r" % (name,)
        node = Node(str(name))
        if spec.get("tunnel_ip") not in (None, ""):
            ip = _field(errors, where, "l3ha_tunnel_ip", parse_ip, spec.get("tunnel_ip"))
            node.tunnel_ip = None if ip is None else str(ip)
        zone = spec.get("availability_zone")
        node.zone = "" if zone is None else str(zone)
        for attr, key, default in (("reachable", "reachable", True), ("drained", "drained", False),
                                   ("in_group", "in_group", True), ("outside_run", "outside_run", False)):
            value = spec.get(key)
            if value is not None:
                value = _field(errors, where, key, to_bool, value)
            setattr(node, attr, default if value is None else value)
        inputs.nodes[node.name] = node
    if not any(node.in_group for node in inputs.nodes.values()):
        errors.append("nodes: there are no network nodes in the group")


def _check_vtep_networks(inputs):
    for network in sorted(inputs.options.vteps_by_network):
        net = inputs.networks.get(network)
        if net is None or net.kind != "vxlan":
            inputs.errors.append("option vxlan_remote_vteps: %r is not a vxlan network of l3ha_networks" % network)


def _check_tunnel_ips(inputs):
    """Only where vxlan is used: every node of the group needs its own tunnel IP."""
    opts = inputs.options
    uses_vxlan = any(r.ha for r in inputs.routers) and opts.ha_type == "vxlan"
    for router in inputs.routers:
        for network in router_networks(router):
            net = inputs.networks.get(network)
            uses_vxlan = uses_vxlan or (net is not None and net.kind == "vxlan")
    if not uses_vxlan:
        return
    seen = {}
    for name in sorted(inputs.nodes):
        node = inputs.nodes[name]
        if not node.in_group:
            continue
        if node.tunnel_ip is None:
            inputs.errors.append("node %r: l3ha_tunnel_ip is missing; vxlan segments need it" % name)
        elif node.tunnel_ip in seen:
            inputs.errors.append("node %r: l3ha_tunnel_ip %s is also used by node %r"
                                 % (name, node.tunnel_ip, seen[node.tunnel_ip]))
        else:
            seen[node.tunnel_ip] = name
