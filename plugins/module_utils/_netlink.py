# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin wrappers around pyroute2 for network namespaces, links and addresses.

Everything runs in this process: entering a namespace is a setns(2) of the calling
thread, so one module call can visit 1000 namespaces without forking. Links, addresses
and FDB entries are read from raw dumps with the lean parser of `_netlink_parse.py`.
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

from ansible_collections.l3ha.routers.plugins.module_utils._netlink_parse import (
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH, RTM_GETROUTE, Link,
    IFADDRMSG, IFINFOMSG, NDMSG, NLMSGHDR, RTMSG, parse_address, parse_fdb_entry, parse_link, parse_route,
)

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
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 2

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


def dump(sock, msg_type, header):
    """Payloads of the messages of one netlink dump on a raw NETLINK_ROUTE socket."""
    sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(header), msg_type, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + header)
    payloads = []
    while True:
        data = sock.recv(1 << 17)
        offset = 0
        while offset + NLMSGHDR.size <= len(data):
            length, kind = NLMSGHDR.unpack_from(data, offset)[:2]
            if kind == NLMSG_DONE:
                return payloads
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from('=i', data, offset + NLMSGHDR.size)[0]
                if code:
                    raise NetlinkError(code, os.strerror(code))
                return payloads
            payloads.append(data[offset + NLMSGHDR.size:offset + length])
            offset += (length + 3) & ~3


class Namespace(object):
    """Links and addresses of one namespace, read once and kept current by our writes.

    `name` None is the namespace the module runs in (the node's root namespace).
    """

    def __init__(self, name=None, route=None):
        self.name = name
        self._route = route
        self._links = None
        self._addresses = None  # {link name: addresses}, from one dump, until the next write
        self._dumps = None  # raw socket for the lean dumps, opened on first use
        self._sysctl_dirs = {}  # open /proc/sys top directories of this namespace
        self.floods = None  # FDB flood entries, filled by _segments.flood_table

    @property
    def route(self):
        """The pyroute2 socket for writes, opened on first use (a no-op run reads only, over
        the lean dumps, and opens none). Every write goes through it, so taking it drops
        the cached address dump."""
        if self._route is None:
            self._route = open_route(self.name)
        self._addresses = None
        return self._route

    def close(self):
        if self._route is not None:
            self._route.close()
        if self._dumps is not None:
            self._dumps.close()
        close_sysctl_dirs(self._sysctl_dirs)

    def sysctls(self, keys):
        """read_sysctls in this namespace, its top directories kept open until close()."""
        return read_sysctls(self.name, keys, self._sysctl_dirs)

    def dump(self, msg_type, header):
        if self._dumps is None:
            with entered(self.name):
                self._dumps = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
            try:  # the kernel then honours the header's filters (the route dump's table)
                self._dumps.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            except OSError:  # before Linux 4.20: everything comes, filtered here as well
                pass
        return dump(self._dumps, msg_type, header)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # links
    def links(self):
        if self._links is None:
            header = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0)
            self._links = dict((link.name, link) for link in
                               (parse_link(payload) for payload in self.dump(RTM_GETLINK, header)))
        return self._links

    def link(self, name):
        return self.links().get(name)

    def reload(self):
        self._links = None
        self._addresses = None

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
        self._addresses = None

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
        return self.addresses_by_link().get(name, [])

    def addresses_by_link(self):
        """{link name: addresses} of the namespace, from one dump (kept until a write)."""
        if self._addresses is None:
            names = dict((link.index, link.name) for link in self.links().values())
            found = {}
            header = IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
            for index, cidr in (parse_address(payload) for payload in self.dump(RTM_GETADDR, header)):
                if index in names:  # parse_address's 'ip/prefix' is already normalized
                    found.setdefault(names[index], []).append(cidr)
            self._addresses = found
        return self._addresses

    def fdb(self):
        """[(link index, MAC, destination IP or None)] of every bridge and vxlan FDB entry."""
        header = NDMSG.pack(socket.AF_BRIDGE, 0, 0, 0, 0, 0, 0)
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
    header = RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, RT_TABLE_MAIN, 0, 0, 0, 0)
    for table, protocol, destination, gateway, index in (parse_route(payload) for payload in
                                                         space.dump(RTM_GETROUTE, header)):
        if protocol == RT_PROTO_KERNEL or table != RT_TABLE_MAIN:
            continue
        found.append(Route(destination, gateway, names.get(index)))
    return found


def normalize_cidr(cidr):
    iface = ipaddress.ip_interface(cidr)
    return '%s/%d' % (iface.ip, iface.network.prefixlen)


def is_ipv6_link_local(cidr):
    ip = ipaddress.ip_interface(cidr).ip
    return ip.version == 6 and ip.is_link_local


NETLINK_NETFILTER = 12
NFT_MSG_GETGEN = (10 << 8) | 16    # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN
NFTA_GEN_ID = 1


def nftables_generation(namespace):
    """The nftables generation of a namespace: the kernel counts every committed ruleset
    change, per namespace, so an unchanged number means an unchanged ruleset (no fork)."""
    with entered(namespace):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.send(NLMSGHDR.pack(NLMSGHDR.size + 4, NFT_MSG_GETGEN, NLM_F_REQUEST, 1, 0) + struct.pack('=BBH', 0, 0, 0))
        data = sock.recv(4096)
    finally:
        sock.close()
    length, kind = NLMSGHDR.unpack_from(data)[:2]
    if kind == NLMSG_ERROR:
        code = -struct.unpack_from('=i', data, NLMSGHDR.size)[0]
        raise NetlinkError(code, os.strerror(code))
    offset = NLMSGHDR.size + 4
    while offset + 4 <= length:
        size, attr = struct.unpack_from('=HH', data, offset)
        if attr & 0x3fff == NFTA_GEN_ID:
            return struct.unpack_from('>I', data, offset + 4)[0]
        offset += max(4, (size + 3) & ~3)
    return None


def sysctl_path(key):
    # keys use slashes ('net/ipv4/ip_forward'): device names may contain dots
    return '/proc/sys/' + key


def read_sysctl(key, dir_fd=None):
    """Read a sysctl of the namespace this thread is in (None when it does not exist);
    with `dir_fd` (an open directory under /proc/sys) `key` is the path from there."""
    try:
        if dir_fd is None:
            handle = os.open(sysctl_path(key), os.O_RDONLY)
        else:
            handle = os.open(key, os.O_RDONLY, dir_fd=dir_fd)
        try:
            return os.read(handle, 4096).decode('ascii', 'replace').strip()
        finally:
            os.close(handle)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def read_sysctls(namespace, keys, tops=None):
    """{key: value or None} of sysctls inside `namespace` (None: this thread's).

    Each key is looked up from its open top directory (net/ipv4, net/ipv6): with 1000
    namespaces the kernel takes 40-90 us to find a namespace's own `ipv4` under the shared
    `net` (measured), and about 5 us for the rest of the path; so once per directory,
    not once per key. `tops`: a dict that keeps those directories open for later calls in
    the same namespace (the caller closes them with close_sysctl_dirs)."""
    found = {}
    keep = tops is not None
    tops = {} if tops is None else tops
    with entered(namespace):
        try:
            for key in keys:
                parts = key.split('/', 2)
                if len(parts) < 3:
                    found[key] = read_sysctl(key)
                    continue
                top = '/'.join(parts[:2])
                if top not in tops:
                    try:
                        tops[top] = os.open(sysctl_path(top), os.O_RDONLY | os.O_DIRECTORY)
                    except OSError as exc:
                        if exc.errno != errno.ENOENT:
                            raise
                        tops[top] = None  # IPv6 off at boot: none of its keys exist
                found[key] = read_sysctl(parts[2], tops[top]) if tops[top] is not None else None
        finally:
            if not keep:
                close_sysctl_dirs(tops)
    return found


def close_sysctl_dirs(tops):
    for handle in tops.values():
        if handle is not None:
            os.close(handle)
    tops.clear()


def write_sysctl(key, value):
    with open(sysctl_path(key), 'w') as handle:
        handle.write(str(value))


def write_sysctls(namespace, values):
    """Write (key, value) sysctls inside `namespace` (None: the one this thread is in)."""
    with entered(namespace):
        for key, value in values:
            write_sysctl(key, value)
