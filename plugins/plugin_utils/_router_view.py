# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router view: the values the templates need, derived from one plan entry, so that
templates need no IP arithmetic.

One small builder per section of a router's keepalived/nftables/conntrackd configuration
(HA, gateway, internal ports, floating IPs, routes, SNAT, VRRP settings, health check,
uplink track files, hooks, paths, conntrackd). Each validates its own input and raises ``RenderError`` naming
the router and the field; ``router_view`` composes them into the dict the templates see
as ``view``.

Private to the collection (the leading underscore): the ha_routers action plugin and the
tests use it. It lives in ``plugin_utils`` because it is controller-only code (it imports
Ansible's controller API) that never runs on a node.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import HEALTH_CHECK, RENDER_SETTINGS
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    CONNTRACKD_CONF, CONNTRACKD_LOCK, CONNTRACKD_LOG, CONNTRACKD_SOCKET, KEEPALIVED_CONF, NOTIFY_FIFO,
    NOTIFY_SCRIPT, VRRP_STATES, as_list, router_config_dir, router_metrics_file, router_run_dir,
    uplink_track_file, uplink_track_name,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._services_view import (
    RenderError, service_names, services_section,
)

MANAGED = "Managed by Ansible (l3ha.routers); local changes are overwritten."
# conntrackd's sync port on the HA network (its documented default) and cache sizes.
CONNTRACKD_PORT = 3780
CONNTRACKD_HASH_SIZE = 8192
CONNTRACKD_HASH_LIMIT = 131072
CONNTRACKD_PURGE_TIMEOUT = 15


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


def _port_name(port):
    if isinstance(port, dict):
        return port.get("name")
    return port


def ports_by_kind(router):
    """The plan entry's ports by kind (ha, gateway, internal), in plan order."""
    ports = {}
    for port in router.get("ports") or []:
        ports.setdefault(port.get("kind"), []).append(port)
    return ports


def _first(items, version):
    """The first address (or interface) of IP ``version`` in ``items``, or None."""
    return next((item for item in items if item.version == version), None)


@dataclasses.dataclass
class Port:
    """A router port that carries addresses keepalived adds on a master."""

    name: str
    mac: str | None
    addresses: list  # ipaddress interfaces

    def excluded_addresses(self):
        """Its ``virtual_ipaddress_excluded`` entries: when it has IPv6 addresses, the
        EUI-64 link-local address of its MAC first; then its addresses."""
        excluded = []
        if _first(self.addresses, 6) is not None and self.mac:
            excluded.append({"cidr": str(link_local(self.mac)), "dev": self.name})
        excluded.extend({"cidr": str(address), "dev": self.name} for address in self.addresses)
        return excluded


@dataclasses.dataclass
class Gateway(Port):
    """The gateway port, with the upstream gateway IPs and whether the router SNATs."""

    gateway_ips: list  # ipaddress addresses
    snat: bool
    network: str | None = None

    @property
    def address_v4(self):
        return _first(self.addresses, 4)

    @property
    def gateway_ip_v4(self):
        return _first(self.gateway_ips, 4)

    def default_routes(self):
        return [{"destination": "0.0.0.0/0" if gateway_ip.version == 4 else "::/0", "nexthop": str(gateway_ip),
                 "dev": self.name} for gateway_ip in self.gateway_ips]

    def master_accept_ra(self):
        """2 (accept router advertisements while forwarding) with an IPv6 gateway address
        and no IPv6 gateway IP, whose default route then comes from advertisements; else 0."""
        return 2 if _first(self.addresses, 6) is not None and _first(self.gateway_ips, 6) is None else 0


def ha_section(router, ports):
    """The VRRP instance's own side: whether the router is HA, its HA port, its own HA
    address (``unicast_src_ip``) and its peers' HA addresses."""
    name = router["name"]
    ha = bool(router.get("ha", True))
    ha_ports = ports.get("ha", [])
    if ha and not ha_ports:
        raise RenderError("router %s: ports: the plan has no ha port" % name)
    peers = [str(_address(peer, name, "peers")) for peer in router.get("peers") or []]
    return {
        "ha": ha,
        "ha_port": ha_ports[0]["name"] if ha else None,
        "unicast_src_ip": str(_interface(router["ha_address"], name, "ha_address").ip) if ha else None,
        "peers": peers,
    }


def gateway_section(router, ports):
    """The gateway ``Gateway``, or None for a router without one. The port is the plan's
    gateway port when the entry does not name it."""
    gateway = router.get("gateway") or None
    if not gateway:
        return None
    name = router["name"]
    port = _port_name(gateway.get("port"))
    entry = next((candidate for candidate in ports.get("gateway", [])
                  if port is None or candidate.get("name") == port), None)
    if port is None and entry is not None:
        port = entry.get("name")
    if not port:
        raise RenderError("router %s: gateway.port: the plan has no gateway port" % name)
    addresses = [_interface(text, name, "gateway.addresses")
                 for text in as_list(gateway.get("addresses")) + as_list(gateway.get("address"))]
    gateway_ips = [_address(text, name, "gateway.gateway_ips")
                   for text in as_list(gateway.get("gateway_ips")) + as_list(gateway.get("gateway_ip"))]
    return Gateway(port, (entry or {}).get("mac"), addresses, gateway_ips, gateway.get("snat", True),
                   gateway.get("network"))


def internal_section(router, ports):
    """A ``Port`` per internal network (``interfaces``); the port is the plan's port on
    that network when the entry does not name it."""
    by_network = {}
    for port in ports.get("internal", []):
        by_network[port.get("network") or port.get("segment")] = port
    result = []
    for index, interface in enumerate(router.get("interfaces") or []):
        field = "interfaces[%d]" % index
        port = _port_name(interface.get("port"))
        entry = by_network.get(interface.get("network"))
        if port is None and entry is not None:
            port = entry.get("name")
        if not port:
            raise RenderError("router %s: %s.port: no internal port for network %r"
                              % (router["name"], field, interface.get("network")))
        texts = as_list(interface.get("addresses")) + as_list(interface.get("address"))
        addresses = [_interface(text, router["name"], field + ".addresses") for text in texts]
        result.append(Port(port, (entry or {}).get("mac"), addresses))
    return result


def floating_ips_section(router, gateway):
    """The floating IPs: 1:1 IPv4 NAT on the gateway port."""
    name = router["name"]
    floating_ips = []
    for index, fip in enumerate(router.get("floating_ips") or []):
        field = "floating_ips[%d]" % index
        external = _address(fip.get("external"), name, field + ".external")
        internal = _address(fip.get("internal"), name, field + ".internal")
        if gateway is None:
            raise RenderError("router %s: %s: a floating IP needs a gateway" % (name, field))
        if external.version != 4 or internal.version != 4:
            raise RenderError("router %s: %s: floating IPs are IPv4 (1:1 NAT)" % (name, field))
        floating_ips.append({"external": str(external), "internal": str(internal), "port": gateway.name})
    return floating_ips


def excluded_addresses(gateway, internal, floating_ips):
    """``virtual_ipaddress_excluded``: the addresses of the gateway and internal ports,
    then every floating IP as a /32 on the gateway port."""
    excluded = gateway.excluded_addresses() if gateway else []
    for port in internal:
        excluded.extend(port.excluded_addresses())
    excluded.extend({"cidr": "%s/32" % fip["external"], "dev": fip["port"]} for fip in floating_ips)
    return excluded


def routes_section(router, gateway, internal):
    """``virtual_routes``: a default route per gateway IP, then the entry's routes, each on
    its port or, when it names none, on the internal port whose subnet holds the nexthop."""
    name = router["name"]
    routes = gateway.default_routes() if gateway else []
    for index, route in enumerate(router.get("routes") or []):
        field = "routes[%d]" % index
        destination = _interface(route.get("destination"), name, field + ".destination").network
        nexthop = _address(route.get("nexthop"), name, field + ".nexthop")
        dev = _port_name(route.get("port"))
        if dev is None:
            dev = next((port.name for port in internal
                        if any(nexthop in address.network for address in port.addresses)), None)
        routes.append({"destination": str(destination), "nexthop": str(nexthop), "dev": dev})
    return routes


def snat_section(router, gateway, internal):
    """SNAT of the IPv4 internal subnets (``internal_subnets``, by default those of the
    internal ports) to the gateway's first IPv4 address, or None."""
    subnets = router.get("internal_subnets")
    if subnets is None:
        subnets = [str(address.network) for port in internal for address in port.addresses]
    networks = set(_interface(subnet, router["name"], "internal_subnets").network for subnet in subnets)
    subnets_v4 = [str(network) for network in sorted(n for n in networks if n.version == 4)]
    if gateway and gateway.snat and gateway.address_v4 is not None and subnets_v4:
        return {"port": gateway.name, "address": str(gateway.address_v4.ip), "subnets": subnets_v4}
    return None


def vrrp_section(settings):
    """VRRP version, advert interval, password and gratuitous ARPs of the instance.

    VRRPv3 has no authentication: with a password the instance speaks VRRPv2, whose advert
    interval is whole seconds (rounded up). A PASS password is 8 characters at most.
    """
    auth_pass = settings.get("auth_pass") or None
    global_version = int(settings["vrrp_version"])
    version = 2 if auth_pass else global_version
    advert_int = float(settings["advert_int"])
    if version == 2:
        advert_int = max(1, int(math.ceil(advert_int)))
    elif advert_int == int(advert_int):
        advert_int = int(advert_int)
    return {
        "vrrp_version": version,
        "global_vrrp_version": global_version,
        "advert_int": advert_int,
        "auth": str(auth_pass)[:8] if auth_pass else None,
        "garp_repeat": int(settings["garp_repeat"]),
        "garp_delay": int(settings["garp_delay"]),
    }


def auth_warning(settings):
    """What VRRP authentication costs, as a warning for the run (None without a password).

    A backup takes over after about three adverts (master down interval); VRRPv2 rounds
    the advert interval up to whole seconds, so the sub-second failover is gone.
    """
    if not settings.get("auth_pass"):
        return None
    settings = dict(RENDER_SETTINGS, **dict((k, v) for k, v in settings.items() if v is not None))
    wanted = float(settings["advert_int"])
    used = vrrp_section(settings)["advert_int"]
    return ("l3ha_vrrp_auth_pass is set: keepalived then speaks VRRPv2 (VRRPv3 has no authentication), "
            "so the advert interval %g s is rounded up to %d s and a crash failover takes about %g s "
            "instead of about %g s. To keep sub-second failover, leave the password empty and isolate the "
            "HA segments instead (docs/reliability.md, 'VRRP authentication')" % (wanted, used, 3 * used, 3 * wanted))


def health_check_section(settings, gateway):
    """The health check (``track_script``) settings, or None when it is off or the router
    has no gateway. It pings the IPv4 gateway IP from the IPv4 gateway address when
    ``gateway`` is set and both exist."""
    check = settings.get("check")
    if not check or gateway is None:
        return None
    merged = dict(HEALTH_CHECK)
    if isinstance(check, dict):
        merged.update(check)
    view = {key: merged[key] for key in ("interval", "timeout", "fall", "rise")}
    view["gateway_ip"] = None
    view["source_ip"] = None
    if merged.get("gateway") and gateway.address_v4 is not None and gateway.gateway_ip_v4 is not None:
        view["gateway_ip"] = str(gateway.gateway_ip_v4)
        view["source_ip"] = str(gateway.address_v4.ip)
    return view


def uplink_section(settings, gateway, ha):
    """The keepalived track files of the router's gateways, written by the node's uplink
    monitor (``l3ha_uplink_monitor``): [{name, file}], empty when it is off, or the router
    has no gateway or no HA."""
    try:
        wanted = boolean(settings.get("uplink_monitor"), strict=True)
    except TypeError:
        raise RenderError("l3ha_uplink_monitor: %r is not a boolean" % (settings.get("uplink_monitor"),))
    if not wanted or gateway is None or ha["ha_port"] is None:
        return []
    run_dir = settings["run_dir"].rstrip("/") or "/"
    return [{"name": uplink_track_name(str(ip)), "gateway": str(ip),
             "file": uplink_track_file(run_dir, gateway.network, str(ip))} for ip in gateway.gateway_ips]


def hooks_section(settings, name):
    """The commands notify.sh runs on each VRRP state, a list per state."""
    hooks = settings.get("hooks") or {}
    unknown = sorted(set(hooks) - set(VRRP_STATES))
    if unknown:
        raise RenderError("router %s: l3ha_notify_hooks: unknown state(s) %s (use %s)"
                          % (name, ", ".join(unknown), ", ".join(VRRP_STATES)))
    return {state: [str(command) for command in as_list(hooks.get(state))] for state in VRRP_STATES}


def _router_dirs(settings, name):
    """(config directory, run directory) of the router on the node."""
    return (router_config_dir(settings["config_dir"].rstrip("/") or "/", name),
            router_run_dir(settings["run_dir"].rstrip("/") or "/", name))


def paths_section(settings, name):
    """Paths on the node that keepalived.conf and notify.sh name."""
    config, run = _router_dirs(settings, name)
    return {
        "config": os.path.join(config, KEEPALIVED_CONF),
        "script": os.path.join(config, NOTIFY_SCRIPT),
        "run": run,
        "fifo": os.path.join(run, NOTIFY_FIFO),
    }


def metrics_section(router, settings):
    """Where notify.sh writes the router's metrics (node_exporter's textfile format) and
    the labels of its series, or None when ``metrics_dir`` is empty. Router and tenant
    names match patterns without quotes or backslashes: the labels need no escaping."""
    metrics_dir = str(settings.get("metrics_dir") or "").rstrip("/")
    if not metrics_dir:
        return None
    if not metrics_dir.startswith("/"):
        raise RenderError("router %s: l3ha_metrics_dir: %r is not an absolute path" % (router["name"], metrics_dir))
    return {
        "file": router_metrics_file(metrics_dir, router["name"]),
        "labels": 'router="%s",tenant="%s"' % (router["name"], router.get("tenant") or ""),
    }


def conntrackd_section(router, settings, ha):
    """conntrackd settings of one router, or None when it does not sync connections.

    ``ha`` is the router's ``ha_section``. The router's ``conntrackd`` wins over the
    ``conntrackd`` setting (``l3ha_conntrackd``).
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
    if ha["ha_port"] is None:
        raise RenderError("router %s: conntrackd: needs an HA router (ha is false)" % name)
    own, peers = ha["unicast_src_ip"], ha["peers"]
    if not peers:
        return None  # a single replica has nobody to sync with
    if len(peers) > 1:
        raise RenderError("router %s: conntrackd: syncs exactly two replicas over unicast UDP, this router "
                          "has %d peers (%s); set its max_nodes to 2" % (name, len(peers), ", ".join(peers)))
    config, run = _router_dirs(settings, name)
    return {
        "command": str(settings["conntrackd_command"]),
        "address": own,
        "peer": peers[0],
        "port": CONNTRACKD_PORT,
        "interface": ha["ha_port"],
        "hash_size": CONNTRACKD_HASH_SIZE,
        "hash_limit": CONNTRACKD_HASH_LIMIT,
        "purge_timeout": CONNTRACKD_PURGE_TIMEOUT,
        # Loopback, the HA addresses (VRRP and the sync itself) and the VRRP VIP.
        "ignore_addresses": ["127.0.0.1", "::1", own] + list(peers) + (
            [str(_interface(router["ha_vip"], name, "ha_vip").ip)] if router.get("ha_vip") else []),
        "paths": {
            "config": os.path.join(config, CONNTRACKD_CONF),
            "lock": os.path.join(run, CONNTRACKD_LOCK),
            "socket": os.path.join(run, CONNTRACKD_SOCKET),
            "log": os.path.join(run, CONNTRACKD_LOG),
        },
    }


def router_view(router, settings=None):
    """Values derived from one plan entry, for the templates (``view``): the sections
    composed. ``settings`` are the template settings (``RENDER_SETTINGS`` where None or
    missing). Pure; raises RenderError."""
    merged = dict(RENDER_SETTINGS)
    merged.update({key: value for key, value in (settings or {}).items() if value is not None})
    name = router["name"]
    ports = ports_by_kind(router)
    ha = ha_section(router, ports)
    gateway = gateway_section(router, ports)
    internal = internal_section(router, ports)
    floating_ips = floating_ips_section(router, gateway)
    routes = routes_section(router, gateway, internal)
    snat = snat_section(router, gateway, internal)
    view = {
        "managed": MANAGED,
        "gateway_port": gateway.name if gateway else None,
        # Ports whose loss must fail the router over, besides the HA port (tracked anyway).
        "track_interfaces": as_list(merged.get("track_ports")),
    }
    view.update(ha)
    view.update(vrrp_section(merged))
    view.update({
        "excluded_addresses": excluded_addresses(gateway, internal, floating_ips),
        "routes": routes,
        "floating_ips": floating_ips,
        "snat": snat,
        "master_accept_ra": gateway.master_accept_ra() if gateway else 0,
        "check": health_check_section(merged, gateway),
        "uplink_tracks": uplink_section(merged, gateway, ha),
        "hooks": hooks_section(merged, name),
        "log_max_bytes": int(merged["log_max_bytes"]),
        "conntrackd": conntrackd_section(router, merged, ha),
        "paths": paths_section(merged, name),
    })
    view["metrics"] = metrics_section(router, merged)
    view.update(services_section(router, internal, merged, view["paths"]["run"]))
    return view


def router_service_names(router, settings=None):
    """The master-only services of one plan entry, by name, without the rest of the view."""
    merged = dict(RENDER_SETTINGS)
    merged.update({key: value for key, value in (settings or {}).items() if value is not None})
    internal = internal_section(router, ports_by_kind(router))
    return service_names(router, internal, merged, paths_section(merged, router["name"])["run"])
