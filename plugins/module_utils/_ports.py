# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""veth pairs: one end in a namespace, the peer elsewhere (usually on a bridge).

Used by the `veth` module and by the node reconciler. One code path for check and
apply: differences are always computed and recorded with their mutations in a
`Changes`, whose `commit` is the one place that check mode skips.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._changes import Unrecorded
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import (
    Namespace, is_ipv6_link_local, netns_path, normalize_cidr, write_sysctls,
)


class VethSpec(object):
    """The wanted state of a pair. None for an attribute means 'leave it as it is'."""

    def __init__(self, name, peer, namespace=None, peer_namespace=None, mac=None, peer_mac=None,
                 mtu=None, up=True, addresses=None, peer_addresses=None, exclusive_addresses=False,
                 peer_master=None, alias=None, peer_alias=None, sysctls=None, peer_sysctls=None):
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
        # sysctls of the end, set before it goes up: {'net/ipv6/conf/{dev}/addr_gen_mode': '1'};
        # of the peer, set when the pair is created and checked on every run
        self.sysctls = sysctls or {}
        self.peer_sysctls = peer_sysctls or {}


class NewNamespace(object):
    """A namespace that this run creates: empty (no links, addresses, routes) until `open`,
    called by the mutation that created it; from then on it is that `Namespace`.

    The changes inside it are computed against what its creation makes, in check and
    apply mode alike.
    """

    def __init__(self, name):
        self.name = name
        self._space = None

    def open(self):
        self._space = Namespace(self.name)

    def close(self):
        if self._space is not None:
            self._space.close()

    def __getattr__(self, attr):
        # writes and the rest of Namespace, once it exists
        if attr.startswith('_') or self._space is None:
            raise AttributeError(attr)
        return getattr(self._space, attr)

    def links(self):
        return self._space.links() if self._space is not None else {}

    def link(self, name):
        return self._space.link(name) if self._space is not None else None

    def addresses(self, name):
        return self._space.addresses(name) if self._space is not None else []

    def routes(self):
        return self._space.routes() if self._space is not None else []


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


def ensure_veth(end_space, peer_space, root_space, spec, changes):
    """Find how the pair differs from `spec`, recording each difference and its mutation in `changes`.

    Returns True when the pair is to be created (or recreated).
    """
    prefix = spec.name
    end = end_space.link(spec.name)
    peer = peer_space.link(spec.peer)
    misplaced_space, misplaced = (None, None)
    if end is None:
        misplaced_space, misplaced = _find_misplaced(spec.name, end_space, [peer_space, root_space])

    if not _paired(end or misplaced, peer):
        if end is None and misplaced is None and peer is None:
            field, before, after = prefix, None, 'created'
        elif peer is None or (end is None and misplaced is None):
            field, before, after = prefix, 'half of a pair', 'recreated'
        else:
            field, before, after = prefix + '.peer', 'not ' + spec.peer, spec.peer
        changes.add(field, before, after, apply=partial(_recreate_pair, end_space, misplaced_space, peer_space, spec))
        return True

    view = end_space
    if misplaced is not None:
        changes.add(prefix + '.namespace', _where(misplaced_space), _where(end_space),
                    apply=partial(_move_link, misplaced_space, end_space, spec.name))
        # compared where it is now, changed where it goes
        view = _Overlay(end_space, spec.name, misplaced)
    _ensure_attributes(view, end_space, peer_space, spec, changes)
    return False


def _recreate_pair(end_space, misplaced_space, peer_space, spec):
    for space, name in ((end_space, spec.name), (misplaced_space, spec.name), (peer_space, spec.peer)):
        if space is not None:
            space.delete_link(name)
    create_pair(end_space, peer_space, spec)
    if spec.peer_sysctls:
        # before the peer joins its bridge (and goes up): it never sends a frame with IPv6
        write_sysctls(peer_space.name, [(key.format(dev=spec.peer), value)
                                        for key, value in sorted(spec.peer_sysctls.items())])
    # attributes set right after creation are part of 'created', not separate changes
    details = Unrecorded()
    _ensure_attributes(end_space, end_space, peer_space, spec, details)
    details.apply()


def _move_link(from_space, to_space, name):
    fd = _open_ns_fd(to_space.name)
    try:
        from_space.route.link('set', index=from_space.link(name).index, net_ns_fd=fd)
    finally:
        os.close(fd)
    from_space.forget(name)
    to_space.refresh(name)


class _Overlay(object):
    """A namespace view with one extra link: an end that is still in another namespace."""

    def __init__(self, space, name, link):
        self._space = space
        self.name = space.name
        self._name = name
        self._link = link

    def link(self, name):
        return self._link if name == self._name else self._space.link(name)

    def addresses(self, name):
        return []  # a link that changes namespace loses its addresses

    def moving(self, name):
        return name == self._name

    def sysctls(self, keys):
        return self._space.sysctls(keys)


def _ensure_attributes(view, end_space, peer_space, spec, changes):
    """Compare both ends (the end as `view` shows it); changes are made in `end_space`/`peer_space`."""
    peer_master_index = None
    if spec.peer_master:
        bridge = peer_space.link(spec.peer_master)
        peer_master_index = bridge.index if bridge is not None else -1
    sides = (
        (view, end_space, spec.name, spec.mac, spec.alias, None, spec.addresses, spec.sysctls),
        (peer_space, peer_space, spec.peer, spec.peer_mac, spec.peer_alias, peer_master_index,
         spec.peer_addresses, spec.peer_sysctls),
    )
    for space, target, name, mac, alias, master, addresses, sysctls in sides:
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
            if wanted:
                changes.then(partial(_set_link, target, name, wanted))
            wanted = {}
            ensure_link_sysctls(space, name, sysctls, changes)
        if state:
            wanted['state'] = state
        if wanted:
            changes.then(partial(_set_link, target, name, wanted))
        if addresses is not None:
            ensure_addresses(space, name, addresses, spec.exclusive_addresses, changes, target)


def _set_link(space, name, attrs):
    space.set_link(name, **attrs)


def ensure_link_sysctls(space, name, sysctls, changes):
    """Queue the writes of a link's sysctls ({'net/ipv6/conf/{dev}/KEY': VALUE}) that differ."""
    if getattr(space, 'moving', None) and space.moving(name):
        current = {}  # not in that namespace yet: its sysctls there are the ones it gets on arrival
    else:
        current = space.sysctls([t.format(dev=name) for t in sysctls])
        # a sysctl this kernel does not have (IPv6 off at boot) is nothing to set
        sysctls = dict((t, v) for t, v in sysctls.items() if current[t.format(dev=name)] is not None)
    writes = []
    for template, value in sorted(sysctls.items()):
        key = template.format(dev=name)
        if current.get(key) != str(value):
            changes.add(name + '.sysctl ' + key.split('/', 1)[1], current.get(key), str(value))
            writes.append((key, value))
    if writes:
        changes.then(partial(write_sysctls, space.name, writes))


def ensure_addresses(space, name, addresses, exclusive, changes, target=None):
    """Add the missing addresses; with `exclusive`, remove every other one except IPv6 link-local.

    Compared in `space`, changed in `target` (default: the same namespace).
    """
    target = space if target is None else target
    current = space.addresses(name)
    wanted = [normalize_cidr(a) for a in addresses]
    missing = [a for a in wanted if a not in current]
    extra = [a for a in current if a not in wanted and not is_ipv6_link_local(a)] if exclusive else []
    if missing or extra:
        changes.add(name + '.addresses', sorted(current), sorted(set(current) - set(extra) | set(wanted)),
                    apply=partial(_set_addresses, target, name, extra, missing))


def _set_addresses(space, name, extra, missing):
    for cidr in extra:
        space.delete_address(name, cidr)
    for cidr in missing:
        space.add_address(name, cidr)
