# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner input: checks the inventory data and turns it into small spec objects.

Pure Python, no I/O. Every problem becomes one error string that names the router
(or network, node, option) and the field; nothing stops at the first error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import netaddr
except ImportError:  # reported by plan(), so the import sanity test passes
    netaddr = None

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import PLAN_OPTIONS
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    BRIDGE_NAME_RE, NETWORK_NAME_RE, PLANNED_VRID_MAX, ROUTER_NAME_MAX, ROUTER_NAME_RE, TENANT_NAME_RE, VNI_MAX,
    VNI_MIN, VRID_MIN, as_list,
)

NETWORK_TYPES = ("bridge", "vxlan", "vlan")
VXLAN_OVERHEAD = 50
# keepalived's primary VIP per router lives here (169.254.0.<vrid>/24), as in Neutron.
HA_VIP_NET = "169.254.0.0/24"

OPTION_DEFAULTS = PLAN_OPTIONS

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class Invalid(Exception):
    """A bad value; the message says what is wrong, the caller adds who and where."""


def to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise Invalid("%r is not a boolean" % (value,))


def to_int(value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Invalid("%r is not an integer" % (value,))
    try:
        number = int(value)
    except ValueError:
        raise Invalid("%r is not an integer" % (value,))
    if (low is not None and number < low) or (high is not None and number > high):
        raise Invalid("%s is out of range %s..%s" % (number, low, high))
    return number


def parse_ip(value):
    """A plain address, no prefix."""
    if not isinstance(value, str) or "/" in value:
        raise Invalid("%r is not an IP address" % (value,))
    try:
        return netaddr.IPAddress(value)
    except (netaddr.AddrFormatError, ValueError):
        raise Invalid("%r is not an IP address" % (value,))


def _with_prefix(value, what):
    if not isinstance(value, str) or "/" not in value:
        raise Invalid("%r is not %s" % (value, what))
    try:
        return netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError):
        raise Invalid("%r is not %s" % (value, what))


def parse_network(value):
    """A subnet in CIDR form; host bits must be zero."""
    net = _with_prefix(value, "a CIDR (address/prefix)")
    if net.value != net.first:
        raise Invalid("%s has host bits set (the network is %s)" % (value, net.cidr))
    return net


def parse_interface(value):
    """An address with its prefix, e.g. 10.0.0.1/24; not the subnet's own address."""
    net = _with_prefix(value, "an address with a prefix (e.g. 10.0.0.1/24)")
    single = 31 if net.version == 4 else 127
    if net.prefixlen < single:
        if net.value == net.first:
            raise Invalid("%s is the network address of %s" % (value, net.cidr))
        if net.version == 4 and net.value == net.last:
            raise Invalid("%s is the broadcast address of %s" % (value, net.cidr))
    return net


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


class Gateway:
    def __init__(self, network):
        self.network = network
        self.addresses = []  # IPNetwork, one per family
        self.gateway_ips = []  # IPAddress
        self.snat = True


class Router:
    def __init__(self, name):
        self.name = name
        self.tenant = "default"
        self.ha = True
        self.min_nodes = 1
        self.max_nodes = 0
        self.zones = None  # None = any zone
        self.vrid = None
        self.gateway = None
        self.interfaces = []  # [(network, [IPNetwork, ...])], one entry per network
        self.routes = []  # [(IPNetwork, IPAddress)]
        self.floating_ips = []  # [(IPAddress external, IPAddress internal)]
        self.conntrackd = None  # None = the role's l3ha_conntrackd decides


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
    _read_routers(inputs, routers or [])
    _check_tunnel_ips(inputs)
    return inputs


def _field(errors, prefix, field, parse, value):
    """Run parse(value); on failure record `<prefix>: <field> <why>` and return None."""
    try:
        return parse(value)
    except Invalid as exc:
        errors.append("%s: %s %s" % (prefix, field, exc))
        return None


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


def _parse_bridge(value):
    if not isinstance(value, str) or not BRIDGE_NAME_RE.fullmatch(value):
        raise Invalid("%r is not a device name (at most 15 characters: letters, digits, _ . -)" % (value,))
    return value


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
            net.vlan_id = _field(errors, where, "vlan_id", lambda v: to_int(v, 1, 4094), spec.get("vlan_id"))
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
                                   ("in_group", "in_group", True)):
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


def router_networks(router):
    """The networks a router has a port on: the gateway's first, then the internal ones."""
    found = [router.gateway.network] if router.gateway is not None else []
    return found + [network for network, _addresses in router.interfaces]


# --- routers -----------------------------------------------------------------------

def _read_routers(inputs, raw):
    errors = inputs.errors
    if not isinstance(raw, list):
        errors.append("routers: must be a list, got %r" % (raw,))
        return
    names = {}
    owners = {}  # (network, ip) -> router name, to catch addresses used twice
    for index, spec in enumerate(raw):
        if not isinstance(spec, dict):
            errors.append("router #%d: must be a dict, got %r" % (index, spec))
            continue
        name = spec.get("name")
        if not isinstance(name, str) or not ROUTER_NAME_RE.fullmatch(name) or len(name) > ROUTER_NAME_MAX:
            errors.append("router #%d: name %r must match %s and have at most %d characters"
                          % (index, name, ROUTER_NAME_RE.pattern, ROUTER_NAME_MAX))
            continue
        if name in names:
            errors.append("router %r: name is defined twice (entries #%d and #%d)" % (name, names[name], index))
            continue
        names[name] = index
        state = spec.get("state", "present")
        if state not in ("present", "absent"):
            errors.append("router %r: state %r is not one of present, absent" % (name, state))
            continue
        if state == "absent":
            inputs.absent.append(name)
            continue
        before = len(errors)
        router = _read_router(inputs, name, spec)
        if len(errors) == before:
            _claim_addresses(errors, router, owners)
        if len(errors) == before:
            inputs.routers.append(router)
    inputs.routers.sort(key=lambda r: r.name)
    inputs.absent.sort()


_ROUTER_KEYS = frozenset(("name", "tenant", "ha", "min_nodes", "max_nodes", "availability_zones", "vrid",
                          "gateway", "interfaces", "routes", "floating_ips", "state", "conntrackd"))


def _read_router(inputs, name, spec):
    errors, opts = inputs.errors, inputs.options
    where = "router %r" % name
    router = Router(name)
    for key in sorted(set(spec) - _ROUTER_KEYS, key=str):
        errors.append("%s: %s is not a known field" % (where, key))
    tenant = spec.get("tenant", "default")
    if not isinstance(tenant, str) or not TENANT_NAME_RE.fullmatch(tenant) or len(tenant) > ROUTER_NAME_MAX:
        errors.append("%s: tenant %r must match %s and have at most %d characters"
                      % (where, tenant, TENANT_NAME_RE.pattern, ROUTER_NAME_MAX))
    router.tenant = tenant
    ha = spec.get("ha")
    router.ha = opts.default_ha if ha is None else _field(errors, where, "ha", to_bool, ha)
    _read_counts(inputs, where, router, spec)
    zones = spec.get("availability_zones")
    if zones not in (None, []):
        router.zones = _field(errors, where, "availability_zones", _parse_zones, zones)
    if spec.get("vrid") is not None:
        router.vrid = _field(errors, where, "vrid", lambda v: to_int(v, VRID_MIN, PLANNED_VRID_MAX), spec.get("vrid"))
        if router.ha is False:
            errors.append("%s: vrid is set but ha is false (only HA routers use VRRP)" % where)
    if spec.get("gateway") is not None:
        router.gateway = _read_gateway(inputs, where, spec.get("gateway"))
    _read_interfaces(inputs, where, router, spec.get("interfaces"))
    _check_overlaps(errors, where, router)
    _read_routes(errors, where, router, spec.get("routes"))
    _read_floating_ips(errors, where, router, spec.get("floating_ips"))
    if spec.get("conntrackd") is not None:
        router.conntrackd = _field(errors, where, "conntrackd", to_bool, spec.get("conntrackd"))
        if router.conntrackd and router.ha is False:
            errors.append("%s: conntrackd is true but ha is false (it syncs HA replicas)" % where)
    return router


def _parse_zones(value):
    zones = as_list(value)
    if not all(isinstance(z, str) and z for z in zones):
        raise Invalid("%r is not a list of zone names" % (value,))
    return sorted(set(zones))


def _read_counts(inputs, where, router, spec):
    errors, opts = inputs.errors, inputs.options
    raw_min, raw_max = spec.get("min_nodes"), spec.get("max_nodes")
    if raw_min is not None:
        router.min_nodes = _field(errors, where, "min_nodes", lambda v: to_int(v, 1), raw_min)
    if raw_max is not None:
        router.max_nodes = _field(errors, where, "max_nodes", lambda v: to_int(v, 0), raw_max)
    if router.ha is False:
        if router.min_nodes is not None and router.min_nodes > 1:
            errors.append("%s: min_nodes %s is above 1 but ha is false (a non-HA router has one node)"
                          % (where, router.min_nodes))
        router.min_nodes, router.max_nodes = 1, 1
        return
    if raw_min is None:
        router.min_nodes = opts.min_nodes or 1
    if raw_max is None:
        router.max_nodes = opts.max_nodes or 0
    if router.min_nodes and router.max_nodes and router.min_nodes > router.max_nodes:
        errors.append("%s: min_nodes %s is above max_nodes %s" % (where, router.min_nodes, router.max_nodes))


def _network_of(inputs, where, field, name):
    """The Network, or None after recording why it cannot be used."""
    if name not in inputs.networks:
        known = ", ".join(sorted(n for n in inputs.networks)) or "none"
        inputs.errors.append("%s: %s %r is not in l3ha_networks (known: %s)" % (where, field, name, known))
        return None
    if inputs.networks[name] is None:
        inputs.errors.append("%s: %s %r is invalid (see its own error)" % (where, field, name))
    return inputs.networks[name]


def _in_network_cidrs(errors, where, field, net, address):
    if net.cidrs and not any(inside(address.value, address.version, cidr) for cidr in net.cidrs):
        errors.append("%s: %s %s is outside network %r (%s)"
                      % (where, field, address, net.name, ", ".join(str(c) for c in net.cidrs)))


def _one_per_family(errors, where, field, items):
    seen = set()
    for item in items:
        if item.version in seen:
            errors.append("%s: %s has two IPv%d entries; give one per family" % (where, field, item.version))
        seen.add(item.version)


def _read_gateway(inputs, where, spec):
    errors = inputs.errors
    if not isinstance(spec, dict):
        errors.append("%s: gateway must be a dict with network and address, got %r" % (where, spec))
        return None
    net = _network_of(inputs, where, "gateway.network", spec.get("network"))
    gateway = Gateway(spec.get("network"))
    if not as_list(spec.get("address")):
        errors.append("%s: gateway.address is required" % where)
    for text in as_list(spec.get("address")):
        address = _field(errors, where, "gateway.address", parse_interface, text)
        if address is not None:
            gateway.addresses.append(address)
            if net is not None:
                _in_network_cidrs(errors, where, "gateway.address", net, address)
    _one_per_family(errors, where, "gateway.address", gateway.addresses)
    for text in as_list(spec.get("gateway_ip")):
        ip = _field(errors, where, "gateway.gateway_ip", parse_ip, text)
        if ip is None:
            continue
        subnets = [a for a in gateway.addresses if a.version == ip.version]
        if not subnets:
            errors.append("%s: gateway.gateway_ip %s has no gateway.address of its family" % (where, ip))
        elif not inside(int(ip), ip.version, subnets[0]):
            errors.append("%s: gateway.gateway_ip %s is outside %s" % (where, ip, subnets[0].cidr))
        elif int(ip) == subnets[0].value:
            errors.append("%s: gateway.gateway_ip %s is the router's own gateway.address" % (where, ip))
        gateway.gateway_ips.append(ip)
    _one_per_family(errors, where, "gateway.gateway_ip", gateway.gateway_ips)
    if spec.get("snat") is not None:
        gateway.snat = _field(errors, where, "gateway.snat", to_bool, spec.get("snat"))
    return gateway


def _read_interfaces(inputs, where, router, raw):
    errors = inputs.errors
    if raw is None:
        return
    if not isinstance(raw, list):
        errors.append("%s: interfaces must be a list, got %r" % (where, raw))
        return
    grouped = {}
    for index, spec in enumerate(raw):
        field = "interfaces[%d]" % index
        if not isinstance(spec, dict):
            errors.append("%s: %s must be a dict with network and address, got %r" % (where, field, spec))
            continue
        network = spec.get("network")
        net = _network_of(inputs, where, field + ".network", network)
        if router.gateway is not None and network == router.gateway.network:
            errors.append("%s: %s.network %r is already the gateway network" % (where, field, network))
        address = _field(errors, where, field + ".address", parse_interface, spec.get("address"))
        if address is None:
            continue
        if net is not None:
            _in_network_cidrs(errors, where, field + ".address", net, address)
        if network not in grouped:
            grouped[network] = []
            router.interfaces.append((network, grouped[network]))
        grouped[network].append(address)


def _check_overlaps(errors, where, router):
    """Connected subnets of one router must not overlap: routing would be ambiguous."""
    subnets = []
    if router.gateway is not None:
        subnets.extend(("gateway.address", a) for a in router.gateway.addresses)
    for network, addresses in router.interfaces:
        subnets.extend(("interfaces (network %r) address" % network, a) for a in addresses)
    for i, (field, address) in enumerate(subnets):
        for other_field, other in subnets[:i]:
            if address.version == other.version and address.first <= other.last and other.first <= address.last:
                errors.append("%s: %s %s overlaps %s %s" % (where, field, address, other_field, other))


def inside(value, version, net):
    """Whether the address (as int and IP version) is inside the subnet of `net`."""
    return net.version == version and net.first <= value <= net.last


def _connected(router, ip):
    networks = list(router.gateway.addresses) if router.gateway is not None else []
    for _network, addresses in router.interfaces:
        networks.extend(addresses)
    value = int(ip)
    return any(inside(value, ip.version, a) for a in networks)


def _pairs(errors, where, raw, list_name, keys, parsers):
    """Yield (field, first, second) for each well-formed two-field entry of a list."""
    for index, spec in enumerate(as_list(raw)):
        field = "%s[%d]" % (list_name, index)
        if not isinstance(spec, dict):
            errors.append("%s: %s must be a dict with %s and %s, got %r" % (where, field, keys[0], keys[1], spec))
            continue
        values = [_field(errors, where, "%s.%s" % (field, key), parse, spec.get(key))
                  for key, parse in zip(keys, parsers)]
        if None not in values:
            yield field, values[0], values[1]


def _read_routes(errors, where, router, raw):
    for field, destination, nexthop in _pairs(errors, where, raw, "routes", ("destination", "nexthop"),
                                              (parse_network, parse_ip)):
        if destination.version != nexthop.version:
            errors.append("%s: %s.nexthop %s is not of the destination's family" % (where, field, nexthop))
        elif not _connected(router, nexthop):
            errors.append("%s: %s.nexthop %s is not in a subnet of the router" % (where, field, nexthop))
        router.routes.append((destination, nexthop))


def _read_floating_ips(errors, where, router, raw):
    for field, external, internal in _pairs(errors, where, raw, "floating_ips", ("external", "internal"),
                                            (parse_ip, parse_ip)):
        if router.gateway is None:
            errors.append("%s: %s needs a gateway" % (where, field))
            continue
        if external.version != internal.version:
            errors.append("%s: %s.internal %s is not of the external address's family" % (where, field, internal))
            continue
        subnets = [a for a in router.gateway.addresses if a.version == external.version]
        if not subnets or not inside(int(external), external.version, subnets[0]):
            errors.append("%s: %s.external %s is outside the external subnet %s"
                          % (where, field, external, subnets[0].cidr if subnets else "(none of its family)"))
        elif int(external) == subnets[0].value or external in router.gateway.gateway_ips:
            errors.append("%s: %s.external %s is the gateway's own address or gateway_ip" % (where, field, external))
        value = int(internal)
        if not any(inside(value, internal.version, a) for _network, addresses in router.interfaces for a in addresses):
            errors.append("%s: %s.internal %s is not in an internal subnet of the router" % (where, field, internal))
        router.floating_ips.append((external, internal))


def _claim_addresses(errors, router, owners):
    """Gateway, interface and floating addresses are unique per network across routers."""
    claims = []
    if router.gateway is not None:
        network = router.gateway.network
        claims.extend((network, a.value, a.version, "gateway.address") for a in router.gateway.addresses)
        claims.extend((network, int(ext), ext.version, "floating_ips[%d].external" % i)
                      for i, (ext, _internal) in enumerate(router.floating_ips))
    for network, addresses in router.interfaces:
        claims.extend((network, a.value, a.version, "interfaces address") for a in addresses)
    for network, value, version, field in claims:
        key = (network, value, version)
        owner = owners.get(key)
        if owner is not None:
            errors.append("router %r: %s %s on network %r is already used by %s"
                          % (router.name, field, netaddr.IPAddress(value, version), network, owner))
        else:
            owners[key] = "router %r (%s)" % (router.name, field)
