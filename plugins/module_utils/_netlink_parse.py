# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the node side reads from netlink: the `Link` it compares, and a lean parser of
link, address and FDB dump messages.

Private to the collection; standard library only (pyroute2's messages are read by
`Link.from_message`, the raw dumps by `_netlink.Namespace`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import struct

IFF_UP = 0x1


class Link(object):
    """The fields of a link that the collection compares."""

    __slots__ = ('index', 'name', 'kind', 'mac', 'mtu', 'up', 'master', 'alias',
                 'peer_index', 'info')

    def __init__(self, index, name, kind=None, mac=None, mtu=None, up=False, master=None,
                 alias=None, peer_index=None, info=None):
        self.index = index
        self.name = name
        self.kind = kind
        self.mac = mac
        self.mtu = mtu
        self.up = up
        self.master = master
        self.alias = alias
        self.peer_index = peer_index
        self.info = info or {}

    @classmethod
    def from_message(cls, msg):
        linkinfo = msg.get_attr('IFLA_LINKINFO')
        kind = None
        info = {}
        if linkinfo is not None:
            kind = linkinfo.get_attr('IFLA_INFO_KIND')
            data = linkinfo.get_attr('IFLA_INFO_DATA')
            if data is not None and hasattr(data, 'get_attr'):
                info = dict((k, v) for k, v in data['attrs'] if k != 'UNKNOWN')
        return cls(
            index=msg['index'],
            name=msg.get_attr('IFLA_IFNAME'),
            kind=kind,
            mac=msg.get_attr('IFLA_ADDRESS'),
            mtu=msg.get_attr('IFLA_MTU'),
            up=bool(msg['flags'] & IFF_UP),
            master=msg.get_attr('IFLA_MASTER'),
            alias=msg.get_attr('IFLA_IFALIAS'),
            peer_index=msg.get_attr('IFLA_LINK'),
            info=info,
        )


# ---------------------------------------------------------------- lean dumps
# pyroute2 decodes every attribute of every message (statistics included), about 0.5 ms
# per link; the reconciler reads the links and addresses of 1000 namespaces on every run.
# Dumps are therefore read here, with a parser of just the attributes compared.
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 1
NLM_F_DUMP = 0x300
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLMSGHDR = struct.Struct('=IHHII')
_NLATTR = struct.Struct('=HH')
IFINFOMSG = struct.Struct('=BBHiII')
IFADDRMSG = struct.Struct('=BBBBI')
NDMSG = struct.Struct('=BBHiHBB')
RTMSG = struct.Struct('=BBBBBBBBI')
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS = 1, 3, 4, 5, 10, 18, 20
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFA_ADDRESS, IFA_LOCAL = 1, 2
NDA_DST, NDA_LLADDR = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
# (attribute, name, decoder) of the link kinds whose identity the segments compare
_INFO_FIELDS = {
    'vxlan': ((1, 'IFLA_VXLAN_ID', 'u32'), (2, 'IFLA_VXLAN_GROUP', 'ip'), (4, 'IFLA_VXLAN_LOCAL', 'ip'),
              (7, 'IFLA_VXLAN_LEARNING', 'u8'), (15, 'IFLA_VXLAN_PORT', 'be16')),
    'vlan': ((1, 'IFLA_VLAN_ID', 'u16'),),
}
COMPARED_INFO = frozenset(name for fields in _INFO_FIELDS.values() for _attr, name, _how in fields)


def _attributes(data, offset=0):
    """{attribute type: payload} of a run of netlink attributes (nested flag dropped)."""
    attrs = {}
    end = len(data)
    while offset + 4 <= end:
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < 4:
            break
        attrs[kind & 0x3fff] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


def _decode(value, how):
    if value is None:
        return None
    if how == 'u32':
        return struct.unpack('=I', value[:4])[0]
    if how == 'i32':
        return struct.unpack('=i', value[:4])[0]
    if how == 'u8':
        return bytearray(value)[0]
    if how == 'u16':
        return struct.unpack('=H', value[:2])[0]
    if how == 'be16':
        return struct.unpack('>H', value[:2])[0]
    if how == 'ip':
        return str(ipaddress.ip_address(bytes(value)))
    if how == 'mac':
        return ':'.join('%02x' % octet for octet in bytearray(value))
    return value.split(b'\0', 1)[0].decode('utf-8', 'replace')  # 'text'


def parse_link(payload):
    """A Link from the payload of an RTM_NEWLINK message."""
    _family, _pad, _type, index, flags, _change = IFINFOMSG.unpack_from(payload)
    attrs = _attributes(payload, IFINFOMSG.size)
    kind, info = None, {}
    if IFLA_LINKINFO in attrs:
        linkinfo = _attributes(attrs[IFLA_LINKINFO])
        kind = _decode(linkinfo.get(IFLA_INFO_KIND), 'text')
        data = _attributes(linkinfo[IFLA_INFO_DATA]) if IFLA_INFO_DATA in linkinfo else {}
        for attr, name, how in _INFO_FIELDS.get(kind, ()):
            if attr in data:
                info[name] = _decode(data[attr], how)
    return Link(index=index, name=_decode(attrs.get(IFLA_IFNAME), 'text'), kind=kind,
                mac=_decode(attrs.get(IFLA_ADDRESS), 'mac'), mtu=_decode(attrs.get(IFLA_MTU), 'u32'),
                up=bool(flags & IFF_UP), master=_decode(attrs.get(IFLA_MASTER), 'u32'),
                alias=_decode(attrs.get(IFLA_IFALIAS), 'text'), peer_index=_decode(attrs.get(IFLA_LINK), 'i32'),
                info=info)


def parse_address(payload):
    """(link index, 'ip/prefix') from the payload of an RTM_NEWADDR message."""
    _family, prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(payload)
    attrs = _attributes(payload, IFADDRMSG.size)
    address = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    return index, '%s/%d' % (_decode(address, 'ip'), prefixlen)


def parse_fdb_entry(payload):
    """(link index, MAC, destination IP or None) from an AF_BRIDGE RTM_NEWNEIGH payload."""
    index = NDMSG.unpack_from(payload)[3]
    attrs = _attributes(payload, NDMSG.size)
    return index, _decode(attrs.get(NDA_LLADDR), 'mac'), _decode(attrs.get(NDA_DST), 'ip')


def parse_route(payload):
    """(table, protocol, 'destination/len' or None for a default, gateway or None, output
    link index or None) from the payload of an RTM_NEWROUTE message."""
    family, dst_len, _src_len, _tos, table, protocol = RTMSG.unpack_from(payload)[:6]
    attrs = _attributes(payload, RTMSG.size)
    if RTA_TABLE in attrs:
        table = _decode(attrs[RTA_TABLE], 'u32')
    destination = _decode(attrs.get(RTA_DST), 'ip') or ('0.0.0.0' if family == 2 else '::')
    return (table, protocol, '%s/%d' % (destination, dst_len), _decode(attrs.get(RTA_GATEWAY), 'ip'),
            _decode(attrs.get(RTA_OIF), 'u32'))
