# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inside a router's namespace: its sysctls, the spec of each port, the static routes of a
router without keepalived, and what a dead keepalived left behind.

Private to the collection; the reconciler's per-router steps over the namespace's
content (the ports themselves are made by `_ports.ensure_veth`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._netlink import (
    RT_PROTO_KERNEL, RT_TABLE_LOCAL, Route, is_ipv6_link_local, normalize_cidr,
)
from ansible_collections.l3ha.routers.plugins.module_utils._ports import VethSpec
from ansible_collections.l3ha.routers.plugins.module_utils._segments import ROOT_LINK_SYSCTLS, marker
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import namespace_of

# Router-wide sysctls, checked on every run (Neutron learned each through a bug):
# forwarding; binding VIPs before they arrive (nonlocal_bind); answering ARP only for
# addresses of the asked interface (arp_ignore/announce); keeping the other addresses of
# a subnet when keepalived removes the primary one (promote_secondaries); no routes
# from router advertisements (keepalived owns the routes).
NAMESPACE_SYSCTLS = (
    ('net/ipv4/ip_forward', '1'),
    ('net/ipv4/ip_nonlocal_bind', '1'),
    ('net/ipv6/ip_nonlocal_bind', '1'),
    ('net/ipv4/conf/all/arp_ignore', '1'),
    ('net/ipv4/conf/all/arp_announce', '2'),
    ('net/ipv4/conf/all/promote_secondaries', '1'),
    ('net/ipv4/conf/default/promote_secondaries', '1'),
    ('net/ipv6/conf/all/accept_ra', '0'),
    ('net/ipv6/conf/default/accept_ra', '0'),
)
# IPv6 forwarding is switched by the notify script on transitions: set only at creation.
CREATION_SYSCTLS = (('net/ipv6/conf/all/forwarding', '0'),)
NON_HA_SYSCTLS = (('net/ipv6/conf/all/forwarding', '1'),)
# qg/qr ports share their MAC between replicas: no kernel-made link-local address, so
# backups stay silent (keepalived adds the link-local address on the master).
SHARED_MAC_PORT_SYSCTLS = {'net/ipv6/conf/{dev}/addr_gen_mode': '1',
                           'net/ipv6/conf/{dev}/accept_ra': '0'}
# A master whose first ARP for a peer went out before the peer's port existed retries
# only after retrans_time (1 s by default); meanwhile the new peer hears no adverts and
# becomes a second master (3 adverts + skew = 0.38 s at advert 0.1 s). Retry sooner.
HA_PORT_SYSCTLS = {'net/ipv4/neigh/{dev}/retrans_time_ms': '100'}


def port_spec(router, port, segments):
    namespace = namespace_of(router['name'])
    is_ha = port['kind'] == 'ha'
    if not router.get('ha', True):
        # no keepalived: every address of the router is ours
        addresses, exclusive = list(port.get('addresses') or []), True
    elif is_ha and router.get('ha_address'):
        # only the ha address is ours; VIPs on any port belong to keepalived
        addresses, exclusive = [router['ha_address']], False
    else:
        addresses, exclusive = None, False
    return VethSpec(
        name=port['name'], peer=port['peer'], namespace=namespace, peer_namespace=None,
        mac=port.get('mac'), mtu=port.get('mtu'), up=True,
        addresses=addresses, exclusive_addresses=exclusive,
        peer_master=segments[port['segment']]['bridge'],
        alias=marker(router['name']) if is_ha else None,
        peer_alias=marker(router['name']),
        sysctls=HA_PORT_SYSCTLS if is_ha else SHARED_MAC_PORT_SYSCTLS,
        peer_sysctls=ROOT_LINK_SYSCTLS,
    )


def static_routes(router):
    """Routes of a router without keepalived: default routes via the gateway, then its routes."""
    gateway = router.get('gateway') or {}
    wanted = []
    for nexthop in gateway.get('gateway_ips') or []:
        default = '::/0' if ':' in nexthop else '0.0.0.0/0'
        wanted.append(Route(default, nexthop, gateway.get('port')))
    for route in router.get('routes') or []:
        wanted.append(Route(route['destination'], route['nexthop'], route.get('port')))
    return wanted


def _same_route(planned, actual):
    return (planned.destination == actual.destination and planned.nexthop == actual.nexthop
            and planned.device in (None, actual.device))


def ensure_static_routes(space, router, changes, replaced=()):
    """Routes of a router without keepalived; those through `replaced` ports go with them (no
    longer current: the ports are deleted or recreated in this run)."""
    wanted = static_routes(router)
    current = [route for route in space.routes() if route.device not in replaced]
    missing = [r for r in wanted if not any(_same_route(r, a) for a in current)]
    extra = [a for a in current if not any(_same_route(r, a) for r in wanted)]
    if not missing and not extra:
        return
    changes.add('routes', sorted(repr(r) for r in current),
                sorted(repr(r) for r in current if r not in extra) + sorted(repr(r) for r in missing),
                apply=partial(_set_routes, space, extra, missing))


def _set_routes(space, extra, missing):
    for route in extra:
        space.delete_route(route)
    for route in missing:
        space.add_route(route)


def clear_leftovers(space, router):
    """Drop what a dead keepalived left behind, so a new one starts as a clean backup.

    Keeps the ha address and the ha port's link-local address; qg/qr ports have no
    kernel link-local address (addr_gen_mode=1), so any address there is a VIP.
    """
    keep = set()
    if router.get('ha_address'):
        keep.add(normalize_cidr(router['ha_address']))
    for port in router.get('ports') or []:
        for cidr in space.addresses(port['name']):
            if cidr in keep or (port['kind'] == 'ha' and is_ipv6_link_local(cidr)):
                continue
            space.delete_address(port['name'], cidr)
    space.route.flush_routes(
        match=lambda msg: msg['proto'] != RT_PROTO_KERNEL and msg.get_attr('RTA_TABLE') != RT_TABLE_LOCAL)
