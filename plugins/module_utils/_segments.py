# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L2 segments in the node's root namespace: the bridges the router ports plug into.

- `bridge`: the operator's bridge; it must exist, nothing is changed on it.
- `vxlan`: a managed bridge plus a vxlan device (VNI, local tunnel IP, UDP 4789,
  learning on) with all-zero FDB entries to every remote VTEP (head-end replication),
  or a multicast `group`.
- `vlan`: a managed bridge plus an 802.1Q device on `physical_device`. Not lab-tested:
  the test kernel has no 802.1Q support.

Links created here carry ifalias `l3ha:<segment>`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._changes import Unrecorded
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import NetlinkError
from ansible_collections.l3ha.routers.plugins.module_utils._ports import ensure_link_sysctls
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import LINK_MARKER, VLAN_ID_MAX, VLAN_ID_MIN
from ansible_collections.l3ha.routers.plugins.module_utils._validate import (
    ifname_problem, int_range_problem, ip_problem, mtu_problem, vni_problem,
)

VXLAN_PORT = 4789
ZERO_MAC = '00:00:00:00:00:00'
AF_BRIDGE = 7


def marker(owner):
    return LINK_MARKER + owner


def validate_segments(segments, local_ip, root, errors):
    """Check every segment; `root` is the node's root namespace (for operator bridges)."""
    vnis = {}
    for name in sorted(segments):
        seg = segments[name] or {}
        if seg.get('type') == 'vxlan' and seg.get('vni') is not None:
            key = (str(seg.get('vni')), seg.get('dstport') or VXLAN_PORT)
            if key in vnis:
                errors.add('segment %s' % name, 'vni', 'VNI %s is also used by segment %s' % (key[0], vnis[key]))
            vnis.setdefault(key, name)
    for name in sorted(segments):
        seg = segments[name] or {}
        owner = 'segment %s' % name
        kind = seg.get('type')
        if kind not in ('bridge', 'vxlan', 'vlan'):
            errors.add(owner, 'type', '%r is not one of bridge, vxlan, vlan' % (kind,))
            continue
        errors.check(owner, 'bridge', ifname_problem(seg.get('bridge')))
        if seg.get('mtu') is not None:
            errors.check(owner, 'mtu', mtu_problem(seg.get('mtu')))
        if kind == 'bridge':
            link = root.link(seg.get('bridge')) if seg.get('bridge') else None
            if link is None or link.kind != 'bridge':
                errors.add(owner, 'bridge', 'bridge %r does not exist on this node' % (seg.get('bridge'),))
            continue
        errors.check(owner, 'device', ifname_problem(seg.get('device')))
        for field in ('bridge', 'device'):
            existing = root.link(seg.get(field)) if isinstance(seg.get(field), str) else None
            if existing is not None and existing.alias != marker(name):
                errors.add(owner, field, '%r exists and is not managed by l3ha (ifalias %r)'
                           % (seg.get(field), existing.alias))
        if kind == 'vxlan':
            errors.check(owner, 'vni', vni_problem(seg.get('vni')))
            if not local_ip:
                errors.add(owner, 'local_ip', 'a vxlan segment needs the local tunnel IP (l3ha_tunnel_ip)')
            elif ip_problem(local_ip):
                errors.add(owner, 'local_ip', ip_problem(local_ip))
            for i, remote in enumerate(seg.get('remotes') or []):
                errors.check(owner, 'remotes[%d]' % i, ip_problem(remote))
            if seg.get('group') is not None:
                errors.check(owner, 'group', ip_problem(seg.get('group')))
        else:
            errors.check(owner, 'vlan_id', int_range_problem(seg.get('vlan_id'), VLAN_ID_MIN, VLAN_ID_MAX, 'VLAN id'))
            errors.check(owner, 'physical_device', ifname_problem(seg.get('physical_device')))
            parent = seg.get('physical_device')
            if isinstance(parent, str) and root.link(parent) is None:
                errors.add(owner, 'physical_device', 'device %r does not exist on this node' % parent)


def vxlan_identity(seg, local_ip):
    """The vxlan attributes that cannot change on a live device (it is recreated instead)."""
    identity = {
        'IFLA_VXLAN_ID': int(seg['vni']),
        'IFLA_VXLAN_PORT': int(seg.get('dstport') or VXLAN_PORT),
        'IFLA_VXLAN_LEARNING': 1,
    }
    if seg.get('group'):
        identity['IFLA_VXLAN_GROUP'] = seg['group']
    else:
        identity['IFLA_VXLAN_LOCAL'] = local_ip
    return identity


def _create_attrs(kind, identity, root, seg):
    if kind == 'vxlan':
        attrs = {'vxlan_id': identity['IFLA_VXLAN_ID'], 'vxlan_port': identity['IFLA_VXLAN_PORT'],
                 'vxlan_learning': 1}
        if 'IFLA_VXLAN_GROUP' in identity:
            attrs['vxlan_group'] = identity['IFLA_VXLAN_GROUP']
        else:
            attrs['vxlan_local'] = identity['IFLA_VXLAN_LOCAL']
        return attrs
    if kind == 'vlan':
        return {'vlan_id': identity['IFLA_VLAN_ID'], 'link': root.link(seg['physical_device']).index}
    return {}


def ensure_link(root, name, kind, identity, seg, owner, master, changes):
    """A managed root-namespace link of `kind`: present, marked, right MTU/master, up.

    Returns True when it is to be created (or recreated: an identity that cannot change
    on a live device differs).
    """
    link = root.link(name)
    mismatched = []
    if link is not None:
        if link.kind != kind:
            mismatched.append(('kind', link.kind, kind))
        for key, value in sorted(identity.items()):
            if link.info.get(key) != value:
                mismatched.append((key.replace('IFLA_', '').lower(), link.info.get(key), value))
    if link is None or mismatched:
        if link is None:
            changes.add(name, None, 'created')
        for field, before, after in mismatched:
            changes.add('%s.%s' % (name, field), before, after)
        changes.then(partial(_create_link, root, name, kind, identity, seg, owner, master))
        return True
    _ensure_link_attributes(root, link, seg, owner, master, changes)
    return False


def _create_link(root, name, kind, identity, seg, owner, master):
    if root.link(name) is not None:
        root.delete_link(name)
    attrs = _create_attrs(kind, identity, root, seg)
    if seg.get('mtu'):
        attrs['mtu'] = int(seg['mtu'])
    root.route.link('add', ifname=name, kind=kind, ifalias=marker(owner), **attrs)
    # what is set right after creation is part of 'created'
    details = Unrecorded()
    _ensure_link_attributes(root, root.refresh(name), seg, owner, master, details)
    details.apply()


# The node's own links on tenant segments (bridges, VXLAN devices, router port peers)
# carry the tenants' frames and need no IP: without IPv6 the node neither takes a default
# route and an address from a tenant router's advertisements nor sends MLD/DAD/RS there.
ROOT_LINK_SYSCTLS = {'net/ipv6/conf/{dev}/disable_ipv6': '1'}


def _ensure_link_attributes(root, link, seg, owner, master, changes):
    ensure_link_sysctls(root, link.name, ROOT_LINK_SYSCTLS, changes)
    wanted = {}
    if link.alias != marker(owner):
        changes.add(link.name + '.alias', link.alias, marker(owner))
        wanted['ifalias'] = marker(owner)
    if seg.get('mtu') and link.mtu != int(seg['mtu']):
        changes.add(link.name + '.mtu', link.mtu, int(seg['mtu']))
        wanted['mtu'] = int(seg['mtu'])
    bridge = None
    if master is not None:
        # a bridge created in this run exists once its creation is applied
        bridge = root.link(master)
        if bridge is None or link.master != bridge.index:
            current = root.link_by_index(link.master) if link.master else None
            changes.add(link.name + '.master', current.name if current else None, master)
        else:
            master = None
    if not link.up:
        changes.add(link.name + '.up', False, True)
        wanted['state'] = 'up'
    if wanted or master is not None:
        changes.then(partial(_set_link, root, link.name, wanted, master))


def _set_link(root, name, wanted, master):
    if master is not None:
        wanted = dict(wanted, master=root.link(master).index)
    root.set_link(name, **wanted)


def flood_table(root):
    """{vxlan ifindex: [remote VTEPs]} of the all-zero FDB entries, from one dump per call.

    The bridge FDB holds an entry per port MAC as well; one dump (instead of one per
    device) keeps this linear in the number of ports.
    """
    if getattr(root, 'floods', None) is None:
        table = {}
        for index, mac, dst in root.fdb():
            if mac == ZERO_MAC and dst:
                table.setdefault(index, set()).add(dst)
        root.floods = dict((index, sorted(dsts)) for index, dsts in table.items())
    return root.floods


def flood_entries(root, device):
    """Remote VTEPs of the all-zero FDB entries on a vxlan device."""
    link = root.link(device)
    if link is None:
        return []
    return flood_table(root).get(link.index, [])


def ensure_flood(root, device, remotes, changes, created=False):
    """All-zero FDB entries to the remote VTEPs; a device `created` in this run has none yet."""
    current = [] if created else flood_entries(root, device)
    wanted = sorted(set(remotes))
    if current == wanted:
        return
    changes.add(device + '.flood', current, wanted, apply=partial(_set_flood, root, device, current, wanted))


def _set_flood(root, device, current, wanted):
    index = root.link(device).index
    flood_table(root)[index] = wanted
    for dst in current:
        if dst not in wanted:
            root.route.fdb('del', ifindex=index, lladdr=ZERO_MAC, dst=dst)
    for dst in wanted:
        if dst not in current:
            try:
                root.route.fdb('append', ifindex=index, lladdr=ZERO_MAC, dst=dst)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise


def ensure_segment(root, name, seg, local_ip, changes):
    """Find how one segment differs (`root`: the Namespace of the node); changes queued in `changes`."""
    kind = seg['type']
    if kind == 'bridge':
        return
    bridge = seg['bridge']
    ensure_link(root, bridge, 'bridge', {}, seg, name, None, changes)
    if kind == 'vxlan':
        identity = vxlan_identity(seg, local_ip)
    else:
        identity = {'IFLA_VLAN_ID': int(seg['vlan_id'])}
    created = ensure_link(root, seg['device'], kind, identity, seg, name, bridge, changes)
    if kind == 'vxlan' and not seg.get('group'):
        ensure_flood(root, seg['device'], seg.get('remotes') or [], changes, created)


def segment_links(segments):
    """Root-namespace link names the segments own (for purge)."""
    names = set()
    for seg in segments.values():
        if seg.get('type') in ('vxlan', 'vlan'):
            names.add(seg['bridge'])
            names.add(seg['device'])
    return names
