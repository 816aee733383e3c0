"""The lab's topology, computed from an inventory: pure data, no I/O except reading it.

`load_inventory` runs `ansible-inventory --list` (so YAML, INI and JSON all work);
`build_topology` turns that into nodes, networks and endpoints with their addresses.
"""

import ipaddress
import json
import os
import re
import subprocess
import sys

from l3ha_lab.collection import defaults, vocabulary

as_list = vocabulary.as_list

UNDERLAY = ipaddress.ip_network("192.0.2.0/24")
# A tunnel IP outside UNDERLAY is used as it is, on the same switch: its /24 (IPv4) or
# /64 (IPv6) is on-link on every underlay NIC of the lab.
MAPPED_PREFIXLEN = {4: 24, 6: 64}
RESERVED_IFNAMES = ("lo", "ul0")  # and uplink<N>: the node's ports
UNDERLAY_NAME = "ha"          # `link NODE ha down` cuts the underlay
FIRST_NODE_HOST = 11          # nodes get 192.0.2.11, .12, ...
FIRST_VTEP_HOST = 201         # endpoints on vxlan networks get 192.0.2.201, .202, ...
VXLAN_PORT = 4789
VXLAN_MTU = 1450
DEFAULT_GROUP = defaults.NODES_GROUP
DEFAULT_CONFIG_DIR = defaults.CONFIG_DIR
DEFAULT_STATE_DIR = defaults.STATE_DIR
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")


class LabError(Exception):
    """A problem the user can fix (bad inventory, unknown node, ...)."""


def load_inventory(paths):
    """Return the `ansible-inventory --list` JSON of the given inventory sources."""
    if not paths:
        raise LabError("no inventory given (use -i INVENTORY)")
    tool = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    if not os.path.exists(tool):
        tool = "ansible-inventory"
    argv = [tool, "--list"]
    for path in paths:
        if not os.path.exists(path):
            raise LabError("inventory %s: no such file" % path)
        argv += ["-i", path]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError("ansible-inventory failed: %s" % proc.stderr.strip())
    return json.loads(proc.stdout)


def _group_hosts(listing, group, seen=None):
    """Hosts of a group and its children, in inventory order, without duplicates."""
    seen = set() if seen is None else seen
    hosts = []
    if group in seen:
        return hosts
    seen.add(group)
    entry = listing.get(group) or {}
    for host in entry.get("hosts", []):
        if host not in hosts:
            hosts.append(host)
    for child in entry.get("children", []):
        for host in _group_hosts(listing, child, seen):
            if host not in hosts:
                hosts.append(host)
    return hosts


def _ip(text):
    """An address from 'a.b.c.d' or 'a.b.c.d/nn', or None when it is not one."""
    try:
        return ipaddress.ip_interface(str(text)).ip
    except ValueError:
        return None


def _collect_addresses(value, found):
    """Every string anywhere in a router definition that is an IP address."""
    if isinstance(value, dict):
        for item in value.values():
            _collect_addresses(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_addresses(item, found)
    elif isinstance(value, str):
        address = _ip(value)
        if address is not None:
            found.add(address)


def _first_free(cidr, used):
    for address in cidr.hosts():
        if address not in used:
            return address
    raise LabError("no free address left in %s" % cidr)


def _vars_of_any_host(listing, hosts):
    hostvars = listing.get("_meta", {}).get("hostvars", {})
    for host in hosts:
        if host in hostvars:
            return hostvars[host]
    return {}


def build_topology(listing):
    """Compute the lab from an `ansible-inventory --list` result.

    Returns a dict: group, nodes (ordered list), networks, endpoints, config/state dirs.
    All errors are collected and raised together, each naming the item and the field.
    """
    errors = []
    hostvars = listing.get("_meta", {}).get("hostvars", {})
    all_hosts = _group_hosts(listing, "all")
    any_vars = _vars_of_any_host(listing, all_hosts)
    group = any_vars.get("l3ha_network_nodes_group", DEFAULT_GROUP)
    node_names = _group_hosts(listing, group)
    if not node_names:
        raise LabError("inventory: group %s has no hosts (the network nodes)" % group)
    common = hostvars.get(node_names[0], {})
    networks_in = common.get("l3ha_networks") or {}
    routers = common.get("l3ha_routers") or []
    if not isinstance(networks_in, dict):
        raise LabError("inventory: l3ha_networks must be a dict of network name -> settings")
    if not isinstance(routers, list):
        raise LabError("inventory: l3ha_routers must be a list")

    notes = []
    nodes = _build_nodes(node_names, hostvars, errors, notes)
    networks = _build_networks(networks_in, routers, errors, notes)
    if errors:
        raise LabError("inventory errors:\n  " + "\n  ".join(errors))
    _check_underlay_overlaps(nodes, networks, errors)
    endpoints = _build_endpoints(networks, routers, errors)
    if errors:
        raise LabError("inventory errors:\n  " + "\n  ".join(errors))
    _assign_vteps(endpoints, networks, nodes)
    underlay = underlay_prefixes([n["tunnel_cidr"] for n in nodes]
                                 + [e["vtep_cidr"] for e in endpoints if e["vtep_cidr"]])
    for endpoint in endpoints:
        endpoint["underlay"] = underlay if endpoint["vtep_ip"] else []
    return {
        "group": group,
        "nodes": nodes,
        "networks": networks,
        "endpoints": endpoints,
        "underlay": underlay,
        "notes": notes,
    }


def underlay_prefix(address):
    """The on-link prefix of an underlay address: UNDERLAY, or the /24 (/64) around it."""
    address = ipaddress.ip_address(address)
    if address in UNDERLAY:
        return UNDERLAY
    return ipaddress.ip_interface("%s/%d" % (address, MAPPED_PREFIXLEN[address.version])).network


def underlay_prefixes(cidrs):
    """The distinct on-link prefixes of these underlay addresses (with prefix), in order."""
    found = []
    for cidr in cidrs:
        network = str(ipaddress.ip_interface(cidr).network)
        if network not in found:
            found.append(network)
    return found


def _check_underlay_overlaps(nodes, networks, errors):
    """Client VTEPs hold a network's addresses and the underlay in one namespace."""
    prefixes = {}
    for node in nodes:
        prefix = underlay_prefix(node["tunnel_ip"])
        if prefix != UNDERLAY:  # checked with the cidrs, whoever uses it
            prefixes.setdefault(str(prefix), node["name"])
    for name, net in networks.items():
        for cidr in net["cidrs"]:
            parsed = ipaddress.ip_network(cidr)
            for prefix, node in prefixes.items():
                if parsed.overlaps(ipaddress.ip_network(prefix)):
                    errors.append("network %s: cidr %s overlaps the lab underlay %s (l3ha_tunnel_ip "
                                  "of node %s)" % (name, parsed, prefix, node))


def _build_nodes(node_names, hostvars, errors, notes):
    nodes = []
    taken = {}
    for name in node_names:
        hv = hostvars.get(name, {})
        if not HOSTNAME_RE.match(name):
            errors.append("node %s: the name is not a valid hostname" % name)
        for field in ("l3ha_config_dir", "l3ha_state_dir"):
            value = hv.get(field)
            if value is not None and not (isinstance(value, str) and value.startswith("/")
                                          and not value.startswith("/run")):
                errors.append("node %s: %s must be an absolute path outside /run, got %r"
                              % (name, field, value))
            elif value is not None and os.path.exists(value) and not os.path.isdir(value):
                errors.append("node %s: %s %s exists and is not a directory"
                              % (name, field, value))
        nodes.append({
            "name": name,
            "tunnel_ip": hv.get("l3ha_tunnel_ip"),
            "config_dir": os.path.normpath(hv.get("l3ha_config_dir") or DEFAULT_CONFIG_DIR),
            "state_dir": os.path.normpath(hv.get("l3ha_state_dir") or DEFAULT_STATE_DIR),
        })
    for node in nodes:
        if node["tunnel_ip"] is None:
            continue
        address = _ip(node["tunnel_ip"])
        if address is None or "/" in str(node["tunnel_ip"]):
            errors.append("node %s: l3ha_tunnel_ip %r must be an IP address"
                          % (node["name"], node["tunnel_ip"]))
            continue
        if address not in UNDERLAY:
            notes.append("node %s: l3ha_tunnel_ip %s is outside the lab underlay %s; the lab gives "
                         "it to the node's ul0 on its own switch (%s on-link)"
                         % (node["name"], address, UNDERLAY, underlay_prefix(address)))
        if str(address) in taken:
            errors.append("node %s: l3ha_tunnel_ip %s is also used by node %s"
                          % (node["name"], address, taken[str(address)]))
        taken[str(address)] = node["name"]
        node["tunnel_ip"] = str(address)
    next_host = FIRST_NODE_HOST
    for node in nodes:
        if node["tunnel_ip"] is not None:
            continue
        while str(UNDERLAY[next_host]) in taken:
            next_host += 1
        if next_host >= FIRST_VTEP_HOST:
            errors.append("node %s: no free underlay address left for l3ha_tunnel_ip" % node["name"])
            break
        node["tunnel_ip"] = str(UNDERLAY[next_host])
        taken[node["tunnel_ip"]] = node["name"]
        next_host += 1
    if not errors:
        for node in nodes:
            node["tunnel_cidr"] = "%s/%d" % (node["tunnel_ip"],
                                             underlay_prefix(node["tunnel_ip"]).prefixlen)
    return nodes


def _build_networks(networks_in, routers, errors, notes):
    gateway_networks = set()
    for index, router in enumerate(routers):
        gateway = (router or {}).get("gateway") or {}
        if gateway.get("network"):
            gateway_networks.add(gateway["network"])
    networks = {}
    for name, spec in networks_in.items():
        spec = spec or {}
        kind = spec.get("type")
        net = {"name": name, "type": kind, "cidrs": [],
               "external": bool(spec.get("external")) or name in gateway_networks}
        if kind == "bridge":
            bridge = spec.get("bridge")
            if not bridge or not IFNAME_RE.match(str(bridge)):
                errors.append("network %s: bridge must be an interface name (1-15 chars), got %r"
                              % (name, bridge))
            net["bridge"] = bridge
        elif kind == "vxlan":
            vni = spec.get("vni")
            if not isinstance(vni, int) or isinstance(vni, bool) or not 1 <= vni < 2 ** 24:
                errors.append("network %s: vni must be an integer 1..16777215, got %r" % (name, vni))
            net["vni"] = vni
        elif kind == "vlan":
            errors.append("network %s: type vlan is not supported by the lab (no 802.1Q here)" % name)
        else:
            errors.append("network %s: type must be bridge or vxlan, got %r" % (name, kind))
        if name == UNDERLAY_NAME:
            errors.append("network %s: the name is reserved for the lab's underlay" % name)
        cidrs = as_list(spec.get("cidr"))
        if not cidrs:
            cidrs = _router_subnets(name, routers)
            if cidrs:
                notes.append("network %s: no cidr in the inventory; the lab uses %s (the subnets "
                             "of the routers' addresses on it)" % (name, ", ".join(cidrs)))
        for cidr in cidrs:
            try:
                parsed = ipaddress.ip_network(str(cidr), strict=True)
            except ValueError as exc:
                errors.append("network %s: cidr %r is not a network (%s)" % (name, cidr, exc))
                continue
            if parsed.version == 4 and parsed.overlaps(UNDERLAY):
                errors.append("network %s: cidr %s overlaps the lab underlay %s"
                              % (name, parsed, UNDERLAY))
            net["cidrs"].append(str(parsed))
        networks[name] = net
    bridges = {}
    for name, net in networks.items():
        if net.get("bridge"):
            if net["bridge"] in bridges:
                errors.append("network %s: bridge %s is also the bridge of network %s"
                              % (name, net["bridge"], bridges[net["bridge"]]))
            elif net["bridge"] in RESERVED_IFNAMES or net["bridge"].startswith("uplink"):
                errors.append("network %s: bridge %s is a name the lab uses" % (name, net["bridge"]))
            bridges[net["bridge"]] = name
    for name in sorted(gateway_networks - set(networks)):
        errors.append("routers: gateway.network %s is not in l3ha_networks" % name)
    return networks


def _router_subnets(network, routers):
    """Subnets of the routers' addresses (with prefix) on a network, in order."""
    subnets = []
    for router in routers:
        router = router or {}
        gateway = router.get("gateway") or {}
        addresses = as_list(gateway.get("address")) if gateway.get("network") == network else []
        for interface in router.get("interfaces") or []:
            if (interface or {}).get("network") == network:
                addresses += as_list(interface.get("address"))
        for text in addresses:
            if "/" not in str(text):
                continue
            try:
                subnet = str(ipaddress.ip_interface(str(text)).network)
            except ValueError:
                continue  # the collection names the bad address; the lab needs none of it
            if subnet not in subnets:
                subnets.append(subnet)
    return subnets


def _router_label(index, router):
    return "router %s" % ((router or {}).get("name") or "#%d" % index)


def _build_endpoints(networks, routers, errors):
    used = set()
    for router in routers:
        _collect_addresses(router, used)
    endpoints = []
    upstream = {"name": "upstream", "kind": "upstream", "attachments": [], "routes": []}
    for name, net in networks.items():
        if not net["external"]:
            continue
        attachment = {"network": name, "addresses": [], "gateways": {}}
        for index, router in enumerate(routers):
            router = router or {}
            gateway = router.get("gateway") or {}
            if gateway.get("network") != name:
                continue
            for gw_ip in as_list(gateway.get("gateway_ip")):
                address = _ip(gw_ip)
                cidr = _cidr_of(net, address)
                if address is None or cidr is None or "/" in str(gw_ip):
                    errors.append("%s: gateway.gateway_ip %r is not an address in a cidr of network %s"
                                  % (_router_label(index, router), gw_ip, name))
                    continue
                text = "%s/%d" % (address, cidr.prefixlen)
                if text not in attachment["addresses"]:
                    attachment["addresses"].append(text)
            upstream["routes"] += _routes_back(index, router, networks, errors)
        upstream["attachments"].append(attachment)
    for name, net in networks.items():
        attachment = {"network": name, "addresses": [], "gateways": {}}
        cidrs = [ipaddress.ip_network(c) for c in net["cidrs"]]
        for cidr in cidrs:
            attachment["addresses"].append("%s/%d" % (_first_free(cidr, used), cidr.prefixlen))
        for router in routers:
            for fip in (router or {}).get("floating_ips") or []:
                internal = _ip((fip or {}).get("internal"))
                cidr = _cidr_of(net, internal)
                if cidr is not None:
                    text = "%s/%d" % (internal, cidr.prefixlen)
                    if text not in attachment["addresses"]:
                        attachment["addresses"].append(text)
        for router in routers:
            for interface in (router or {}).get("interfaces") or []:
                interface = interface or {}
                if interface.get("network") != name:
                    continue
                for address_text in as_list(interface.get("address")):
                    address = _ip(address_text)
                    if address is None:
                        continue
                    family = "ipv%d" % address.version
                    attachment["gateways"].setdefault(family, str(address))
        endpoints.append({"name": "client-%s" % name, "kind": "client",
                          "attachments": [attachment], "routes": []})
    if upstream["attachments"]:
        endpoints.append(upstream)
    return endpoints


def _cidr_of(net, address):
    if address is None:
        return None
    for text in net["cidrs"]:
        cidr = ipaddress.ip_network(text)
        if address.version == cidr.version and address in cidr:
            return cidr
    return None


def _routes_back(index, router, networks, errors):
    """Routes upstream needs to reach a router's internal subnets that are not NATed."""
    gateway = router.get("gateway") or {}
    via = {}
    for text in as_list(gateway.get("address")):
        address = _ip(text)
        if address is None:
            errors.append("%s: gateway.address %r is not an address" % (_router_label(index, router), text))
            continue
        via.setdefault(address.version, str(address))
    snat = gateway.get("snat", True)
    routes = []
    for interface in router.get("interfaces") or []:
        for text in as_list((interface or {}).get("address")):
            try:
                subnet = ipaddress.ip_interface(str(text)).network
            except ValueError:
                continue
            if subnet.version == 4 and snat:
                continue
            if subnet.version in via:
                route = {"destination": str(subnet), "via": via[subnet.version]}
                if route not in routes:
                    routes.append(route)
    return routes


def _assign_vteps(endpoints, networks, nodes):
    """Endpoints on vxlan networks are VTEPs on the underlay, like compute hosts: in the
    subnet of the first node's tunnel IP (UNDERLAY unless it was mapped), from .201 on."""
    prefix = underlay_prefix(nodes[0]["tunnel_ip"]) if nodes else UNDERLAY
    taken = {n["tunnel_ip"] for n in nodes}
    next_host = FIRST_VTEP_HOST
    for endpoint in endpoints:
        endpoint["vtep_ip"] = endpoint["vtep_cidr"] = None
        if any(networks[a["network"]]["type"] == "vxlan" for a in endpoint["attachments"]):
            while str(prefix[next_host]) in taken:
                next_host += 1
            endpoint["vtep_ip"] = str(prefix[next_host])
            endpoint["vtep_cidr"] = "%s/%d" % (endpoint["vtep_ip"], prefix.prefixlen)
            next_host += 1


def remote_vteps(topology):
    """{network: [VTEP IPs of lab endpoints on it]}, for the nodes' flood lists."""
    result = {}
    for name, net in topology["networks"].items():
        if net["type"] != "vxlan":
            continue
        result[name] = [e["vtep_ip"] for e in topology["endpoints"]
                        if any(a["network"] == name for a in e["attachments"])]
    return result
