# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin wrappers around pyroute2 for network namespaces, links and addresses.

Everything runs in this process: entering a namespace is a setns(2) of the calling
thread, so one module call can visit 1000 namespaces without forking.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import ctypes
import ctypes.util
import errno
import ipaddress
import os
import socket
import struct

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the target host
    IPRoute = None
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

    class NetlinkError(Exception):
        code = 0

NETNS_RUN_DIR = '/run/netns'
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 2
IFF_UP = 0x1

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    return _libc


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def netns_path(name):
    return os.path.join(NETNS_RUN_DIR, name)


def list_namespaces():
    """Names of the named network namespaces (exact names, no pattern matching)."""
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise


def namespace_exists(name):
    return name in list_namespaces()


def _setns(fd):
    _check(libc().setns(fd, CLONE_NEWNET), 'setns')


@contextlib.contextmanager
def entered(name):
    """Run the block with this thread inside namespace `name` (None: stay where we are)."""
    if name is None:
        yield
        return
    home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        target = os.open(netns_path(name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def _share_netns_dir():
    # As iproute2 does: /run/netns is a shared mount so the namespace bind mounts
    # propagate to every mount namespace that sees it.
    if not os.path.isdir(NETNS_RUN_DIR):
        os.makedirs(NETNS_RUN_DIR, 0o755)
    lib = libc()
    if lib.mount(b'', NETNS_RUN_DIR.encode(), b'none', MS_SHARED | MS_REC, None) == 0:
        return
    _check(lib.mount(NETNS_RUN_DIR.encode(), NETNS_RUN_DIR.encode(), b'none', MS_BIND | MS_REC, None),
           'bind mount %s' % NETNS_RUN_DIR)
    _check(lib.mount(b'', NETNS_RUN_DIR.encode(), b'none', MS_SHARED | MS_REC, None),
           'share %s' % NETNS_RUN_DIR)


def create_namespace(name):
    """Create the named namespace like `ip netns add`, without forking."""
    _share_netns_dir()
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        try:
            _check(libc().unshare(CLONE_NEWNET), 'unshare')
            try:
                _check(libc().mount(b'/proc/thread-self/ns/net', path.encode(), b'none', MS_BIND, None),
                       'bind mount %s' % path)
            finally:
                _setns(home)
        except Exception:
            os.unlink(path)
            raise
    finally:
        os.close(home)


def delete_namespace(name):
    path = netns_path(name)
    libc().umount2(path.encode(), MNT_DETACH)
    os.unlink(path)


def namespace_inode(name):
    """(dev, inode) of a named namespace, to recognise processes living in it."""
    st = os.stat(netns_path(name))
    return (st.st_dev, st.st_ino)


def process_namespace_inode(pid):
    st = os.stat('/proc/%d/ns/net' % pid)
    return (st.st_dev, st.st_ino)


def open_route(name=None):
    """An IPRoute socket bound to namespace `name` (None: the current one)."""
    with entered(name):
        return IPRoute()


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
_NLMSGHDR = struct.Struct('=IHHII')
_NLATTR = struct.Struct('=HH')
_IFINFOMSG = struct.Struct('=BBHiII')
_IFADDRMSG = struct.Struct('=BBBBI')
_NDMSG = struct.Struct('=BBHiHBB')
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS = 1, 3, 4, 5, 10, 18, 20
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFA_ADDRESS, IFA_LOCAL = 1, 2
NDA_DST, NDA_LLADDR = 1, 2
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


def dump(sock, msg_type, header):
    """Payloads of the messages of one netlink dump on a raw NETLINK_ROUTE socket."""
    sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(header), msg_type, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + header)
    payloads = []
    while True:
        data = sock.recv(1 << 17)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind = _NLMSGHDR.unpack_from(data, offset)[:2]
            if kind == NLMSG_DONE:
                return payloads
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from('=i', data, offset + _NLMSGHDR.size)[0]
                if code:
                    raise NetlinkError(code, os.strerror(code))
                return payloads
            payloads.append(data[offset + _NLMSGHDR.size:offset + length])
            offset += (length + 3) & ~3


def parse_link(payload):
    """A Link from the payload of an RTM_NEWLINK message."""
    _family, _pad, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
    attrs = _attributes(payload, _IFINFOMSG.size)
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
    _family, prefixlen, _flags, _scope, index = _IFADDRMSG.unpack_from(payload)
    attrs = _attributes(payload, _IFADDRMSG.size)
    address = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    return index, '%s/%d' % (_decode(address, 'ip'), prefixlen)


def parse_fdb_entry(payload):
    """(link index, MAC, destination IP or None) from an AF_BRIDGE RTM_NEWNEIGH payload."""
    index = _NDMSG.unpack_from(payload)[3]
    attrs = _attributes(payload, _NDMSG.size)
    return index, _decode(attrs.get(NDA_LLADDR), 'mac'), _decode(attrs.get(NDA_DST), 'ip')


class Namespace(object):
    """Links and addresses of one namespace, read once and kept current by our writes.

    `name` None is the namespace the module runs in (the node's root namespace).
    """

    def __init__(self, name=None, route=None):
        self.name = name
        self.route = route if route is not None else open_route(name)
        self._links = None
        self._dumps = None  # raw socket for the lean dumps, opened on first use
        self.floods = None  # FDB flood entries, filled by _segments.flood_table

    def close(self):
        self.route.close()
        if self._dumps is not None:
            self._dumps.close()

    def dump(self, msg_type, header):
        if self._dumps is None:
            with entered(self.name):
                self._dumps = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        return dump(self._dumps, msg_type, header)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # links
    def links(self):
        if self._links is None:
            header = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0)
            self._links = dict((link.name, link) for link in
                               (parse_link(payload) for payload in self.dump(RTM_GETLINK, header)))
        return self._links

    def link(self, name):
        return self.links().get(name)

    def reload(self):
        self._links = None

    def link_by_index(self, index):
        for link in self.links().values():
            if link.index == index:
                return link
        return None

    def refresh(self, name):
        """Re-read one link after a change (or drop it when it is gone)."""
        links = self.links()
        try:
            msg = self.route.link('get', ifname=name)[0]
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                links.pop(name, None)
                return None
            raise
        links[name] = Link.from_message(msg)
        return links[name]

    def forget(self, name):
        self.links().pop(name, None)

    def set_link(self, name, **attrs):
        """Change a link and update the cached copy (no re-read: 1000s of links per call)."""
        link = self.link(name)
        self.route.link('set', index=link.index, **attrs)
        for attr, field in (('mtu', 'mtu'), ('ifalias', 'alias'), ('master', 'master')):
            if attr in attrs:
                setattr(link, field, attrs[attr])
        if 'address' in attrs:
            link.mac = attrs['address']
        if 'state' in attrs:
            link.up = attrs['state'] == 'up'
        return link

    def delete_link(self, name):
        link = self.link(name)
        if link is not None:
            try:
                self.route.link('del', index=link.index)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise
        self.forget(name)

    # addresses
    def addresses(self, name):
        """Addresses on a link as 'ip/prefix' strings (IPv6 compressed)."""
        link = self.link(name)
        if link is None:
            return []
        header = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        return [normalize_cidr(cidr) for index, cidr in
                (parse_address(payload) for payload in self.dump(RTM_GETADDR, header)) if index == link.index]

    def fdb(self):
        """[(link index, MAC, destination IP or None)] of every bridge and vxlan FDB entry."""
        header = _NDMSG.pack(socket.AF_BRIDGE, 0, 0, 0, 0, 0, 0)
        return [parse_fdb_entry(payload) for payload in self.dump(RTM_GETNEIGH, header)]

    def add_address(self, name, cidr):
        iface = ipaddress.ip_interface(cidr)
        self.route.addr('add', index=self.link(name).index, address=str(iface.ip),
                        prefixlen=iface.network.prefixlen)

    # routes (main table, not kernel-made)
    def routes(self):
        return _routes_of(self)

    def add_route(self, route):
        attrs = {'dst': route.destination}
        if route.nexthop:
            attrs['gateway'] = route.nexthop
        if route.device:
            attrs['oif'] = self.link(route.device).index
        self.route.route('add', **attrs)

    def delete_route(self, route):
        attrs = {'dst': route.destination, 'table': RT_TABLE_MAIN}
        if route.nexthop:
            attrs['gateway'] = route.nexthop
        self.route.route('del', **attrs)

    def delete_address(self, name, cidr):
        iface = ipaddress.ip_interface(cidr)
        self.route.addr('del', index=self.link(name).index, address=str(iface.ip),
                        prefixlen=iface.network.prefixlen)


RT_PROTO_KERNEL = 2
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255


def _route_table(msg):
    return msg.get_attr('RTA_TABLE') or msg['table']


class Route(object):
    """A route as (destination, nexthop, device) strings, comparable with planned routes."""

    def __init__(self, destination, nexthop=None, device=None):
        self.destination = normalize_network(destination)
        self.nexthop = nexthop
        self.device = device

    def key(self):
        return (self.destination, self.nexthop, self.device)

    def __eq__(self, other):
        return self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        text = self.destination
        if self.nexthop:
            text += ' via ' + self.nexthop
        if self.device:
            text += ' dev ' + self.device
        return text


def normalize_network(cidr):
    return str(ipaddress.ip_network(cidr, strict=False))


def _routes_of(space):
    """Non-kernel routes of the main table (the ones a reconciler or keepalived adds)."""
    names = dict((link.index, link.name) for link in space.links().values())
    found = []
    for msg in space.route.get_routes(table=RT_TABLE_MAIN):
        if msg['proto'] == RT_PROTO_KERNEL or _route_table(msg) != RT_TABLE_MAIN:
            continue
        family_any = '0.0.0.0' if msg['family'] == socket.AF_INET else '::'
        dst = '%s/%d' % (msg.get_attr('RTA_DST') or family_any, msg['dst_len'])
        found.append(Route(dst, msg.get_attr('RTA_GATEWAY'), names.get(msg.get_attr('RTA_OIF'))))
    return found


def normalize_cidr(cidr):
    iface = ipaddress.ip_interface(cidr)
    return '%s/%d' % (iface.ip, iface.network.prefixlen)


def is_ipv6_link_local(cidr):
    ip = ipaddress.ip_interface(cidr).ip
    return ip.version == 6 and ip.is_link_local


def sysctl_path(key):
    # keys use slashes ('net/ipv4/ip_forward'): device names may contain dots
    return '/proc/sys/' + key


def read_sysctl(key):
    """Read a sysctl of the namespace this thread is in (None when it does not exist)."""
    try:
        with open(sysctl_path(key)) as handle:
            return handle.read().strip()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def write_sysctl(key, value):
    with open(sysctl_path(key), 'w') as handle:
        handle.write(str(value))


def write_sysctls(namespace, values):
    """Write (key, value) sysctls inside `namespace` (None: the one this thread is in)."""
    with entered(namespace):
        for key, value in values:
            write_sysctl(key, value)
