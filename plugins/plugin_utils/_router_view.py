# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router view: the values the templates need, derived from one plan entry, so that
templates need no IP arithmetic.

Private to the collection (the leading underscore): the ha_routers action plugin and the
tests use it. It lives in ``plugin_utils`` because it is controller-only code (it imports
Ansible's controller API) that never runs on a node.
"""

from __future__ import annotations

import ipaddress
import math

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import HEALTH_CHECK, RENDER_SETTINGS
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    CONNTRACKD_CONF, VRRP_STATES, as_list as _as_list,
)

CONNTRACKD_FILE = CONNTRACKD_CONF
MANAGED = "Managed by Ansible (l3ha.routers); local changes are overwritten."
RENDER_DEFAULTS = RENDER_SETTINGS
# conntrackd's sync port on the HA network (its documented default) and cache sizes.
CONNTRACKD_PORT = 3780
CONNTRACKD_HASH_SIZE = 8192
CONNTRACKD_HASH_LIMIT = 131072
CONNTRACKD_PURGE_TIMEOUT = 15
CHECK_DEFAULTS = HEALTH_CHECK
HOOK_STATES = VRRP_STATES


class RenderError(ValueError):
    """Bad input for rendering; the message names the router and the field."""


def _interface(text, router, field):
    try:
        return ipaddress.ip_interface(str(text))
    except ValueError:
        raise RenderError("router %s: %s: %r is not an address with prefix" % (router, field, text))


def _address(text, router, field):
    try:
        return ipaddress.ip_address(str(text))
    except ValueError:
        raise RenderError("router %s: %s: %r is not an IP address" % (router, field, text))


def link_local(mac):
    """The EUI-64 link-local address the kernel would derive from ``mac``."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = ["%02x%02x" % (eui[i], eui[i + 1]) for i in range(0, 8, 2)]
    return ipaddress.ip_interface("fe80::%s/64" % ":".join(groups))


def _ports_by_kind(router):
    ports = {}
    for port in router.get("ports") or []:
        ports.setdefault(port.get("kind"), []).append(port)
    return ports


def _port_name(port):
    if isinstance(port, dict):
        return port.get("name")
    return port


def _gateway(router, ports):
    gateway = router.get("gateway") or None
    if not gateway:
        return None, None
    port = _port_name(gateway.get("port"))
    port_entry = None
    for candidate in ports.get("gateway", []):
        if port is None or candidate.get("name") == port:
            port_entry = candidate
            break
    if port is None and port_entry is not None:
        port = port_entry.get("name")
    if not port:
        raise RenderError("router %s: gateway.port: the plan has no gateway port" % router["name"])
    return gateway, (port, port_entry)


def _internal_ports(router, ports):
    """[(port name, port entry, [ip_interface])] for each internal network."""
    by_segment = {}
    for port in ports.get("internal", []):
        by_segment[port.get("network") or port.get("segment")] = port
    result = []
    for index, interface in enumerate(router.get("interfaces") or []):
        field = "interfaces[%d]" % index
        port = _port_name(interface.get("port"))
        entry = by_segment.get(interface.get("network"))
        if port is None and entry is not None:
            port = entry.get("name")
        if not port:
            raise RenderError("router %s: %s.port: no internal port for network %r"
                              % (router["name"], field, interface.get("network")))
        texts = _as_list(interface.get("addresses")) + _as_list(interface.get("address"))
        addresses = [_interface(text, router["name"], field + ".addresses") for text in texts]
        result.append((port, entry, addresses))
    return result


def _check(render, gateway_port, gateway_v4, gateway_ip_v4):
    check = render.get("check")
    if not check or not gateway_port:
        return None
    settings = dict(CHECK_DEFAULTS)
    if isinstance(check, dict):
        settings.update(check)
    view = {key: settings[key] for key in ("interval", "timeout", "fall", "rise")}
    view["gateway_ip"] = None
    view["source_ip"] = None
    if settings.get("gateway") and gateway_v4 is not None and gateway_ip_v4 is not None:
        view["gateway_ip"] = str(gateway_ip_v4)
        view["source_ip"] = str(gateway_v4.ip)
    return view


def _hooks(render, name):
    hooks = render.get("hooks") or {}
    unknown = sorted(set(hooks) - set(HOOK_STATES))
    if unknown:
        raise RenderError("router %s: l3ha_notify_hooks: unknown state(s) %s (use %s)"
                          % (name, ", ".join(unknown), ", ".join(HOOK_STATES)))
    return {state: [str(command) for command in _as_list(hooks.get(state))] for state in HOOK_STATES}


def _conntrackd(router, settings, ha_port, own, peers, config, run):
    """conntrackd settings of one router, or None when it does not sync connections.

    ``own`` is the router's HA address, ``config``/``run`` its config and run directories.
    """
    name = router["name"]
    field, wanted = "conntrackd", router.get("conntrackd")
    if wanted is None:
        field, wanted = "l3ha_conntrackd", settings.get("conntrackd")
    try:
        wanted = boolean(wanted, strict=True)
    except TypeError:
        raise RenderError("router %s: %s: %r is not a boolean" % (name, field, wanted))
    if not wanted:
        return None
    if ha_port is None:
        raise RenderError("router %s: conntrackd: needs an HA router (ha is false)" % name)
    if not peers:
        return None  # a single replica has nobody to sync with
    if len(peers) > 1:
        raise RenderError("router %s: conntrackd: syncs exactly two replicas over unicast UDP, this router "
                          "has %d peers (%s); set its max_nodes to 2" % (name, len(peers), ", ".join(peers)))
    return {
        "command": str(settings["conntrackd_command"]),
        "address": own,
        "peer": peers[0],
        "port": CONNTRACKD_PORT,
        "interface": ha_port,
        "hash_size": CONNTRACKD_HASH_SIZE,
        "hash_limit": CONNTRACKD_HASH_LIMIT,
        "purge_timeout": CONNTRACKD_PURGE_TIMEOUT,
        # Loopback, the HA addresses (VRRP and the sync itself) and the VRRP VIP.
        "ignore_addresses": ["127.0.0.1", "::1", own] + list(peers) + (
            [str(_interface(router["ha_vip"], name, "ha_vip").ip)] if router.get("ha_vip") else []),
        "paths": {
            "config": config + "/" + CONNTRACKD_FILE,
            "lock": run + "/conntrackd.lock",
            "socket": run + "/conntrackd.ctl",
            "log": run + "/conntrackd.log",
        },
    }


def router_view(router, render=None):
    """Values derived from one plan entry, for the templates. Pure; raises RenderError."""
    settings = dict(RENDER_DEFAULTS)
    settings.update({key: value for key, value in (render or {}).items() if value is not None})
    name = router["name"]
    ports = _ports_by_kind(router)
    ha = bool(router.get("ha", True))
    ha_ports = ports.get("ha", [])
    if ha and not ha_ports:
        raise RenderError("router %s: ports: the plan has no ha port" % name)
    ha_port = ha_ports[0]["name"] if ha else None

    excluded = []
    routes = []
    gateway, gateway_port_info = _gateway(router, ports)
    gateway_port = gateway_port_info[0] if gateway_port_info else None
    gateway_v4 = gateway_ip_v4 = None
    has_v6_gateway_address = has_v6_gateway_ip = False
    if gateway:
        port_name, port_entry = gateway_port_info
        addresses = [_interface(text, name, "gateway.addresses")
                     for text in _as_list(gateway.get("addresses")) + _as_list(gateway.get("address"))]
        gateway_ips = [_address(text, name, "gateway.gateway_ips")
                       for text in _as_list(gateway.get("gateway_ips")) + _as_list(gateway.get("gateway_ip"))]
        if any(address.version == 6 for address in addresses) and port_entry and port_entry.get("mac"):
            excluded.append({"cidr": str(link_local(port_entry["mac"])), "dev": port_name})
        for address in addresses:
            excluded.append({"cidr": str(address), "dev": port_name})
            if address.version == 4 and gateway_v4 is None:
                gateway_v4 = address
            has_v6_gateway_address = has_v6_gateway_address or address.version == 6
        for gateway_ip in gateway_ips:
            default = "0.0.0.0/0" if gateway_ip.version == 4 else "::/0"
            routes.append({"destination": default, "nexthop": str(gateway_ip), "dev": port_name})
            if gateway_ip.version == 4 and gateway_ip_v4 is None:
                gateway_ip_v4 = gateway_ip
            has_v6_gateway_ip = has_v6_gateway_ip or gateway_ip.version == 6

    internal = _internal_ports(router, ports)
    for port_name, port_entry, addresses in internal:
        if any(address.version == 6 for address in addresses) and port_entry and port_entry.get("mac"):
            excluded.append({"cidr": str(link_local(port_entry["mac"])), "dev": port_name})
        for address in addresses:
            excluded.append({"cidr": str(address), "dev": port_name})

    floating_ips = []
    for index, fip in enumerate(router.get("floating_ips") or []):
        field = "floating_ips[%d]" % index
        external = _address(fip.get("external"), name, field + ".external")
        internal_ip = _address(fip.get("internal"), name, field + ".internal")
        if not gateway_port:
            raise RenderError("router %s: %s: a floating IP needs a gateway" % (name, field))
        if external.version != 4 or internal_ip.version != 4:
            raise RenderError("router %s: %s: floating IPs are IPv4 (1:1 NAT)" % (name, field))
        floating_ips.append({"external": str(external), "internal": str(internal_ip), "port": gateway_port})
        excluded.append({"cidr": "%s/32" % external, "dev": gateway_port})

    for index, route in enumerate(router.get("routes") or []):
        field = "routes[%d]" % index
        destination = _interface(route.get("destination"), name, field + ".destination").network
        nexthop = _address(route.get("nexthop"), name, field + ".nexthop")
        dev = _port_name(route.get("port"))
        if dev is None:
            for port_name, _entry, addresses in internal:
                if any(nexthop in address.network for address in addresses):
                    dev = port_name
                    break
        routes.append({"destination": str(destination), "nexthop": str(nexthop), "dev": dev})

    subnets = router.get("internal_subnets")
    if subnets is None:
        subnets = [str(address.network) for _port, _entry, addresses in internal for address in addresses]
    networks = set(_interface(subnet, name, "internal_subnets").network for subnet in subnets)
    subnets_v4 = [str(network) for network in sorted(n for n in networks if n.version == 4)]
    snat = None
    if gateway and gateway.get("snat", True) and gateway_v4 is not None and subnets_v4:
        snat = {"port": gateway_port, "address": str(gateway_v4.ip), "subnets": subnets_v4}

    auth_pass = settings.get("auth_pass") or None
    global_version = int(settings["vrrp_version"])
    version = 2 if auth_pass else global_version
    advert_int = float(settings["advert_int"])
    if version == 2:
        advert_int = max(1, int(math.ceil(advert_int)))
    elif advert_int == int(advert_int):
        advert_int = int(advert_int)

    run = "%s/routers/%s" % (settings["run_dir"].rstrip("/"), name)
    config = "%s/routers/%s" % (settings["config_dir"].rstrip("/"), name)
    peers = [str(_address(peer, name, "peers")) for peer in router.get("peers") or []]
    own = str(_interface(router["ha_address"], name, "ha_address").ip) if ha else None
    return {
        "managed": MANAGED,
        "ha_port": ha_port,
        "gateway_port": gateway_port,
        # Ports whose loss must fail the router over, besides the HA port (tracked anyway).
        "track_interfaces": _as_list(settings.get("track_ports")),
        "ha": ha,
        "unicast_src_ip": own,
        "peers": peers,
        "vrrp_version": version,
        "global_vrrp_version": global_version,
        "advert_int": advert_int,
        "auth": str(auth_pass)[:8] if auth_pass else None,
        "garp_repeat": int(settings["garp_repeat"]),
        "garp_delay": int(settings["garp_delay"]),
        "excluded_addresses": excluded,
        "routes": routes,
        "floating_ips": floating_ips,
        "snat": snat,
        "master_accept_ra": 2 if has_v6_gateway_address and not has_v6_gateway_ip else 0,
        "check": _check(settings, gateway_port, gateway_v4, gateway_ip_v4),
        "hooks": _hooks(settings, name),
        "log_max_bytes": int(settings["log_max_bytes"]),
        "conntrackd": _conntrackd(router, settings, ha_port, own, peers, config, run),
        "paths": {
            "config": config + "/keepalived.conf",
            "script": config + "/notify.sh",
            "run": run,
            "fifo": run + "/notify.fifo",
        },
    }
