# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the node reconciler's input: the routers of one node.

Private to the collection. Every problem is collected in an `Errors`, named by router
and field, before the reconciler changes anything (the segments are checked by
`_segments.validate_segments`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    KEEPALIVED_CONF, PORT_PREFIXES, ROUTER_FILES, VRID_MAX, VRID_MIN, namespace_of,
)
from ansible_collections.l3ha.routers.plugins.module_utils._validate import (
    cidr_problem, ifname_problem, int_range_problem, ip_problem, mac_problem, mtu_problem, network_problem,
    router_name_problem,
)


def validate_routers(routers, segments, errors):
    """Check every router of the node (`segments`: the segments it is given); adds to `errors`."""
    names = set()
    peers = {}
    for index, router in enumerate(routers):
        name = router.get('name')
        owner = 'router %s' % (name if isinstance(name, str) else '#%d' % index)
        problem = router_name_problem(name)
        if problem:
            errors.add(owner, 'name', problem)
            continue
        if name in names:
            errors.add(owner, 'name', 'listed twice')
        names.add(name)
        namespace = router.get('namespace') or namespace_of(name)
        if namespace != namespace_of(name):
            errors.add(owner, 'namespace', '%r must be %r' % (namespace, namespace_of(name)))
        if router.get('ha', True):
            errors.check(owner, 'vrid', int_range_problem(router.get('vrid'), VRID_MIN, VRID_MAX, 'VRID'))
            errors.check(owner, 'ha_address', cidr_problem(router.get('ha_address')))
            if router.get('segment') not in segments:
                errors.add(owner, 'segment', '%r is not in segments' % (router.get('segment'),))
        _validate_ports(router, owner, segments, peers, errors)
        # no files with unchanged inputs: the node's own files, or rendered in a second call
        if router.get('files') is not None or not router.get('inputs_checksum'):
            _validate_files(router, owner, errors)
        if router.get('metadata') is not None and not isinstance(router.get('metadata'), dict):
            errors.add(owner, 'metadata', 'must be a dictionary')
        if not router.get('ha', True):
            _validate_static_routes(router, owner, errors)


def _validate_files(router, owner, errors):
    files = router.get('files')
    if not isinstance(files, dict):
        errors.add(owner, 'files', 'must be a dictionary of file name to text')
    elif router.get('ha', True) and not isinstance(files.get(KEEPALIVED_CONF), str):
        errors.add(owner, 'files', '%s (text) is required for an HA router' % KEEPALIVED_CONF)
    else:
        for fname, content in sorted(files.items()):
            if fname not in ROUTER_FILES:
                errors.add(owner, 'files', '%r is not one of %s' % (fname, ', '.join(sorted(ROUTER_FILES))))
            elif not isinstance(content, str):
                errors.add(owner, 'files.%s' % fname, 'must be text')


def _validate_static_routes(router, owner, errors):
    """Routes the reconciler sets itself on a router without keepalived."""
    gateway = router.get('gateway') or {}
    for i, nexthop in enumerate(gateway.get('gateway_ips') or []):
        errors.check(owner, 'gateway.gateway_ips[%d]' % i, ip_problem(nexthop))
    if gateway.get('gateway_ips') and not gateway.get('port'):
        errors.add(owner, 'gateway.port', 'the gateway port name is required with gateway_ips')
    for i, route in enumerate(router.get('routes') or []):
        errors.check(owner, 'routes[%d].destination' % i, network_problem(route.get('destination')))
        errors.check(owner, 'routes[%d].nexthop' % i, ip_problem(route.get('nexthop')))


def _validate_ports(router, owner, segments, peers, errors):
    ports = router.get('ports') or []
    if not isinstance(ports, list):
        errors.add(owner, 'ports', 'must be a list')
        return
    seen = set()
    for i, port in enumerate(ports):
        field = 'ports[%d]' % i
        kind = port.get('kind')
        if kind not in PORT_PREFIXES:
            errors.add(owner, field + '.kind', '%r is not one of ha, gateway, internal' % (kind,))
            continue
        pname = port.get('name')
        problem = ifname_problem(pname)
        if problem:
            errors.add(owner, field + '.name', problem)
        elif not pname.startswith(PORT_PREFIXES[kind]):
            errors.add(owner, field + '.name', '%r: a %s port name starts with %r'
                       % (pname, kind, PORT_PREFIXES[kind]))
        elif pname in seen:
            errors.add(owner, field + '.name', '%r listed twice' % pname)
        seen.add(pname)
        peer = port.get('peer')
        problem = ifname_problem(peer)
        if problem:
            errors.add(owner, field + '.peer', problem)
        elif peer in peers:
            errors.add(owner, field + '.peer', '%r is also used by %s' % (peer, peers[peer]))
        else:
            peers[peer] = owner
        if port.get('segment') not in segments:
            errors.add(owner, field + '.segment', '%r is not in segments' % (port.get('segment'),))
        if port.get('mac') is not None:
            errors.check(owner, field + '.mac', mac_problem(port.get('mac')))
        if port.get('mtu') is not None:
            problem = mtu_problem(port.get('mtu'))
            errors.check(owner, field + '.mtu', problem)
            segment_mtu = (segments.get(port.get('segment')) or {}).get('mtu')
            # a bridge takes the smallest MTU of its ports: a smaller port would shrink the segment
            if not problem and segment_mtu and int(port['mtu']) != int(segment_mtu):
                errors.add(owner, field + '.mtu', '%s differs from the MTU %s of segment %s'
                           % (port['mtu'], segment_mtu, port.get('segment')))
        for j, cidr in enumerate(port.get('addresses') or []):
            errors.check(owner, '%s.addresses[%d]' % (field, j), cidr_problem(cidr))
