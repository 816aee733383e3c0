# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner input, the routers: checks each router entry and turns it into a Router spec.

Pure Python, no I/O. Part of read_inputs() (_plan_input.py), which reads options,
networks and nodes first; every problem is one error naming the router and the field.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import netaddr
except ImportError:  # reported by plan(), so the import sanity test passes
    netaddr = None

from ansible_collections.l3ha.routers.plugins.module_utils._plan_values import (
    Invalid, field as _field, inside, parse_interface, parse_ip, parse_network, to_bool, to_int,
)
from ansible_collections.l3ha.routers.plugins.module_utils._services import ServiceError, parse_services
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    PLANNED_VRID_MAX, ROUTER_NAME_MAX, ROUTER_NAME_RE, TENANT_NAME_RE, VRID_MIN, as_list,
)


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
        self.master_services = []  # its own, besides the role's l3ha_master_services


def router_networks(router):
    """The networks a router has a port on: the gateway's first, then the internal ones."""
    found = [router.gateway.network] if router.gateway is not None else []
    return found + [network for network, _addresses in router.interfaces]


def read_routers(inputs, raw):
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
                          "gateway", "interfaces", "routes", "floating_ips", "state", "conntrackd",
                          "master_services"))


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
    try:
        router.master_services = parse_services(spec.get("master_services"), "master_services")
    except ServiceError as exc:
        errors.append("%s: %s" % (where, exc))
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
