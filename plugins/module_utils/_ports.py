# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""veth pairs: one end in a namespace, the peer elsewhere (usually on a bridge).

Used by the `veth` module and by the node reconciler. One code path for check and
apply: differences are always computed and recorded; only the writes are skipped in
check mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.l3ha.routers.plugins.module_utils._netlink import (
    entered, is_ipv6_link_local, netns_path, normalize_cidr, read_sysctl, write_sysctl,
)


class VethSpec(object):
    """The wanted state of a pair. None for an attribute means 'leave it as it is'."""

    def __init__(self, name, peer, namespace=None, peer_namespace=None, mac=None, peer_mac=None,
                 mtu=None, up=True, addresses=None, peer_addresses=None, exclusive_addresses=False,
                 peer_master=None, alias=None, peer_alias=None, sysctls=None):
        self.name = name
        self.peer = peer
        self.namespace = namespace
        self.peer_namespace = peer_namespace
        self.mac = mac
        self.peer_mac = peer_mac
        self.mtu = mtu
        self.up = up
        self.addresses = addresses
        self.peer_addresses = peer_addresses
        self.exclusive_addresses = exclusive_addresses
        self.peer_master = peer_master
        self.alias = alias
        self.peer_alias = peer_alias
        # sysctls of the end, set before it goes up: {'net/ipv6/conf/{dev}/addr_gen_mode': '1'}
        self.sysctls = sysctls or {}


class AbsentSpace(object):
    """Stands for a namespace that does not exist yet (check mode): it has no links."""

    def __init__(self, name):
        self.name = name

    def links(self):
        return {}

    def link(self, name):
        return None

    def addresses(self, name):
        return []


def _where(space):
    return space.name or 'root'


def _open_ns_fd(name):
    return os.open(netns_path(name) if name else '/proc/thread-self/ns/net', os.O_RDONLY)


def _paired(end, peer):
    return (end is not None and peer is not None and end.kind == 'veth' and peer.kind == 'veth'
            and end.peer_index == peer.index and peer.peer_index == end.index)


def _find_misplaced(name, end_space, others):
    for space in others:
        if space is end_space or space.name == end_space.name:
            continue
        link = space.link(name)
        if link is not None and link.kind == 'veth':
            return space, link
    return None, None


def create_pair(end_space, peer_space, spec):
    attrs = {'ifname': spec.peer, 'kind': 'veth'}
    end = {'ifname': spec.name}
    if spec.mtu:
        attrs['mtu'] = end['mtu'] = int(spec.mtu)
    if spec.peer_mac:
        attrs['address'] = spec.peer_mac.lower()
    if spec.mac:
        end['address'] = spec.mac.lower()
    fd = None
    if end_space.name != peer_space.name:
        fd = _open_ns_fd(end_space.name)
        end['net_ns_fd'] = fd
    try:
        peer_space.route.link('add', peer=end, **attrs)
    finally:
        if fd is not None:
            os.close(fd)
    end_space.refresh(spec.name)
    peer_space.refresh(spec.peer)


def ensure_veth(end_space, peer_space, root_space, spec, changes, check_mode):
    """Make the pair match `spec`, recording every difference in `changes`.

    Returns True when the pair was (or, in check mode, would be) created.
    """
    prefix = spec.name
    end = end_space.link(spec.name)
    peer = peer_space.link(spec.peer)
    misplaced_space, misplaced = (None, None)
    if end is None:
        misplaced_space, misplaced = _find_misplaced(spec.name, end_space, [peer_space, root_space])

    if not _paired(end or misplaced, peer):
        if end is None and misplaced is None and peer is None:
            changes.add(prefix, None, 'created')
        elif peer is None or (end is None and misplaced is None):
            changes.add(prefix, 'half of a pair', 'recreated')
        else:
            changes.add(prefix + '.peer', 'not ' + spec.peer, spec.peer)
        if not check_mode:
            for space, name in ((end_space, spec.name), (misplaced_space, spec.name),
                                (peer_space, spec.peer)):
                if space is not None:
                    space.delete_link(name)
            create_pair(end_space, peer_space, spec)
            # attributes set right after creation are part of 'created', not separate changes
            _ensure_attributes(end_space, peer_space, spec, _Silent(), check_mode)
        return True

    if misplaced is not None:
        changes.add(prefix + '.namespace', _where(misplaced_space), _where(end_space))
        if not check_mode:
            fd = _open_ns_fd(end_space.name)
            try:
                misplaced_space.route.link('set', index=misplaced.index, net_ns_fd=fd)
            finally:
                os.close(fd)
            misplaced_space.forget(spec.name)
            end_space.refresh(spec.name)
        else:
            # compare the attributes of the link where it is now
            end_space = _Overlay(end_space, spec.name, misplaced)
    _ensure_attributes(end_space, peer_space, spec, changes, check_mode)
    return False


class _Silent(object):
    def add(self, *args):
        pass


class _Overlay(object):
    """A namespace view with one extra link (a misplaced end, in check mode)."""

    def __init__(self, space, name, link):
        self._space = space
        self.name = space.name
        self._name = name
        self._link = link

    def link(self, name):
        return self._link if name == self._name else self._space.link(name)

    def addresses(self, name):
        return []


def _ensure_attributes(end_space, peer_space, spec, changes, check_mode):
    peer_master_index = None
    if spec.peer_master:
        bridge = peer_space.link(spec.peer_master)
        peer_master_index = bridge.index if bridge is not None else -1
    sides = (
        (end_space, spec.name, spec.mac, spec.alias, None, spec.addresses, spec.sysctls),
        (peer_space, spec.peer, spec.peer_mac, spec.peer_alias, peer_master_index,
         spec.peer_addresses, {}),
    )
    for space, name, mac, alias, master, addresses, sysctls in sides:
        link = space.link(name)
        if link is None:
            continue
        wanted = {}
        if mac and link.mac != mac.lower():
            changes.add(name + '.mac', link.mac, mac.lower())
            wanted['address'] = mac.lower()
        if spec.mtu and link.mtu != int(spec.mtu):
            changes.add(name + '.mtu', link.mtu, int(spec.mtu))
            wanted['mtu'] = int(spec.mtu)
        if alias is not None and link.alias != alias:
            changes.add(name + '.alias', link.alias, alias)
            wanted['ifalias'] = alias
        if master is not None and link.master != master:
            current = space.link_by_index(link.master) if link.master else None
            changes.add(name + '.master', current.name if current else None, spec.peer_master)
            wanted['master'] = master
        if spec.up is not None and link.up != bool(spec.up):
            changes.add(name + '.up', link.up, bool(spec.up))
            state = 'up' if spec.up else 'down'
        else:
            state = None
        if sysctls:
            # sysctls such as addr_gen_mode must be in place before the link goes up
            if wanted and not check_mode:
                space.set_link(name, **wanted)
            wanted = {}
            _ensure_sysctls(space, name, sysctls, changes, check_mode)
        if state:
            wanted['state'] = state
        if wanted and not check_mode:
            space.set_link(name, **wanted)
        if addresses is not None:
            ensure_addresses(space, name, addresses, spec.exclusive_addresses, changes, check_mode)


def _ensure_sysctls(space, name, sysctls, changes, check_mode):
    if not sysctls:
        return
    with entered(space.name):
        for template, value in sorted(sysctls.items()):
            key = template.format(dev=name)
            current = read_sysctl(key)
            if current != str(value):
                changes.add(name + '.sysctl ' + key.split('/', 1)[1], current, str(value))
                if not check_mode:
                    write_sysctl(key, value)


def ensure_addresses(space, name, addresses, exclusive, changes, check_mode):
    """Add the missing addresses; with `exclusive`, remove every other one except IPv6 link-local."""
    current = space.addresses(name)
    wanted = [normalize_cidr(a) for a in addresses]
    missing = [a for a in wanted if a not in current]
    extra = [a for a in current if a not in wanted and not is_ipv6_link_local(a)] if exclusive else []
    if missing or extra:
        changes.add(name + '.addresses', sorted(current), sorted(set(current) - set(extra) | set(wanted)))
        if not check_mode:
            for cidr in extra:
                space.delete_address(name, cidr)
            for cidr in missing:
                space.add_address(name, cidr)
