# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The uplink monitor: one process per network node watches every external network.

Private to the collection. The reconciler (``_uplink.py``) copies this file to the node
as a program of its own and runs it (supervisor ``reconciler``) or has systemd run it
(``l3ha-uplink.service``); its configuration is a JSON file the reconciler writes. So it
imports nothing but the standard library.

Per external network it watches the carrier of the bridge's uplink ports (netlink link
events) and probes every distinct gateway of the routers there: an ARP request with
sender 0.0.0.0 (RFC 5227 probe, needs no address on the network), or for IPv6 a
neighbour solicitation from the unspecified address; the gateway answers both. A
gateway is down after `fall` probes in a row went unanswered (or at once when the
uplink loses carrier), and up again after `rise` answers in a row.

Each gateway has a keepalived track file (its path is in the configuration): ``1``
puts every router of this node that tracks it in FAULT, so a backup elsewhere takes
over, ``0`` releases them. The all-nodes rule: a down gateway fails the routers only
while a peer node has it up, with an answer newer than this node's first unanswered
probe. When the gateway (or the whole network) is gone for every node, no peer has it
up, so nobody fails (and a node that failed first is released when the last peer loses
it): the masters stay and keep routing between the internal networks; once any node
reaches the gateway again, the others fail over to it. Peers
report to each other over UDP on the underlay every interval (state and age of the last
answer, so no clock has to agree). A node with no peers configured fails on its own view.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_IFALIAS = 1, 3, 10, 20
RTMGRP_LINK = 1
LINK_MARKER = 'l3ha:'
BROADCAST = b'\xff' * 6
REPORT_VERSION = 1
# A peer's report counts this long after it arrived (in intervals, at least PEER_FRESH_MIN s).
PEER_FRESH_INTERVALS = 10
PEER_FRESH_MIN = 1.0
RESTART_DELAY = 0.5
# A probe unanswered after this share of the interval is a miss (answers take well under a
# millisecond): the third miss is counted half an interval after the third probe, not a
# whole one (measured: 0.05 s off the median uplink outage).
REPLY_TIMEOUT = 0.5
PR_SET_PDEATHSIG = 1
NICE = -10


# ---------------------------------------------------------------- the decision

class Gateway(object):
    """Probe state of one gateway on one network."""

    def __init__(self, ip, failed=False, now=0.0):
        self.ip = ip
        self.family = 6 if ':' in ip else 4
        # A restart finds the track file as it was: a failed gateway stays failed until it answers.
        self.state = 'down' if failed else 'up'
        self.down_since = now if failed else None  # send time of the first unanswered probe
        self.failed = failed
        self.misses = 0
        self.answers = 0
        self.outstanding = None  # send time of the probe not answered yet
        self.first_miss = None  # send time of the first probe of the current run of misses
        self.mac = None  # the gateway's MAC, from its last ARP reply
        self.last_answer = None
        self.lost = 0
        self.transitions = 0
        self.reason = None

    def probe_sent(self, now, fall):
        """A new probe goes out; the previous one, if still unanswered, is a miss. True when
        the state changed."""
        changed = self.expire(fall)
        self.outstanding = now
        return changed

    def expire(self, fall):
        """The outstanding probe's time is up: unanswered, it is a miss (a late answer no
        longer counts). True when the state changed."""
        if self.outstanding is None:
            return False
        self.lost += 1
        self.answers = 0
        if self.misses == 0:
            self.first_miss = self.outstanding
        self.misses += 1
        self.outstanding = None
        if self.state == 'up' and self.misses >= fall:
            return self._go('down', self.first_miss, 'probes')
        return False

    def answer(self, now, rise, carrier=True):
        """An answer to the outstanding probe. True when the state changed."""
        if self.outstanding is None:
            return False
        self.outstanding = None
        self.last_answer = now
        self.misses = 0
        self.answers += 1
        if self.state == 'down' and self.answers >= rise and carrier is not False:
            return self._go('up', None, 'probes')
        return False

    def carrier_lost(self, now):
        self.answers = 0
        if self.state == 'up':
            return self._go('down', now, 'carrier')
        return False

    def _go(self, state, since, reason):
        self.state = state
        self.down_since = since
        self.reason = reason
        self.transitions += 1
        return True

    def answer_age(self, now):
        return None if self.last_answer is None else max(0.0, now - self.last_answer)


def peer_reaches(reports, gateway_ip, since, now, fresh):
    """Whether a fresh peer report has `gateway_ip` up, answered later than `since`.

    `reports` is {peer: (received, {gateway: (state, age or None)})}, times in this
    process's monotonic clock; a peer's answer time is `received - age`. Both conditions:
    a peer that lost the gateway too goes on saying 'up' until its own `fall`, but its
    last answer is older than our loss; one that answered after our loss and lost it
    since is down now."""
    for received, gateways in reports.values():
        if now - received > fresh:
            continue
        entry = gateways.get(gateway_ip)
        if not entry or entry[0] != 'up' or entry[1] is None:
            continue
        if received - entry[1] > since:
            return True
    return False


def should_fail(gateway, reports, has_peers, now, fresh):
    """Whether the routers tracking `gateway` must go to FAULT on this node (the all-nodes rule)."""
    if gateway.state == 'up':
        return False
    if not has_peers:
        return True
    return peer_reaches(reports, gateway.ip, gateway.down_since, now, fresh)


# ---------------------------------------------------------------- packets

def arp_probe(mac, target, target_mac=None):
    """An ARP request for `target` with sender address 0.0.0.0 (RFC 5227 probe); sent to
    `target_mac` when given (the gateway's, once known: a broadcast is copied to every
    router port on the bridge, a thousand at 1000 routers), else broadcast."""
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac, b'\0' * 4, b'\0' * 6,
                      socket.inet_aton(target))
    return (target_mac or BROADCAST) + mac + struct.pack('!H', ETH_P_ARP) + arp


def arp_reply_from(frame, mac):
    """(sender address, sender MAC) of an ARP reply to `mac` in an Ethernet frame, else (None, None)."""
    if len(frame) < 42 or frame[12:14] != b'\x08\x06':
        return None, None
    op = struct.unpack('!H', frame[20:22])[0]
    if op != 2 or frame[32:38] != mac:
        return None, None
    return socket.inet_ntoa(frame[28:32]), frame[22:28]


def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def ns_probe(mac, target):
    """A neighbour solicitation for `target` from the unspecified address (as in DAD)."""
    tgt = socket.inet_pton(socket.AF_INET6, target)
    dst = socket.inet_pton(socket.AF_INET6, 'ff02::1:ff00:0')[:13] + tgt[13:]
    src = b'\0' * 16
    body = struct.pack('!BBHI16s', 135, 0, 0, 0, tgt)
    pseudo = src + dst + struct.pack('!I3xB', len(body), 58)
    body = body[:2] + struct.pack('!H', _checksum(pseudo + body)) + body[4:]
    ip6 = struct.pack('!IHBB16s16s', 6 << 28, len(body), 58, 255, src, dst)
    return b'\x33\x33' + dst[12:] + mac + struct.pack('!H', ETH_P_IPV6) + ip6 + body


def na_target(frame):
    """The target address of a neighbour advertisement in an Ethernet frame, else None."""
    if len(frame) < 14 + 40 + 24 or frame[12:14] != b'\x86\xdd' or frame[20] != 58 or frame[54] != 136:
        return None
    return socket.inet_ntop(socket.AF_INET6, frame[62:78])


# ---------------------------------------------------------------- netlink (carrier)

def _attributes(data, offset):
    found = {}
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from('HH', data, offset)
        if length < 4:
            break
        found[kind & 0x7fff] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def parse_links(data):
    """[(event, index, {name, flags, master, alias, mac})] of the link messages in `data`."""
    links = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from('IH', data, offset)
        if length < 16:
            break
        if kind in (RTM_NEWLINK, RTM_DELLINK) and length >= 32:
            _family, _type, index, flags, _change = struct.unpack_from('BxHiII', data, offset + 16)
            attrs = _attributes(data[offset:offset + length], 32)
            master = attrs.get(IFLA_MASTER)
            links.append((kind, index, {
                'name': attrs.get(IFLA_IFNAME, b'').rstrip(b'\0').decode('ascii', 'replace'),
                'flags': flags,
                'master': struct.unpack('I', master[:4])[0] if master else None,
                'alias': attrs.get(IFLA_IFALIAS, b'').rstrip(b'\0').decode('utf-8', 'replace'),
                'mac': attrs.get(IFLA_ADDRESS)}))
        offset += (length + 3) & ~3
    return links


def uplink_carrier(links, bridge_index):
    """True when an uplink port of the bridge (one not made by l3ha) has carrier, False when
    none has, None when the bridge has no such port (carrier unknown: probes decide)."""
    ports = [link for link in links.values()
             if link['master'] == bridge_index and not link['alias'].startswith(LINK_MARKER)]
    if not ports:
        return None
    return any(link['flags'] & IFF_UP and link['flags'] & IFF_LOWER_UP for link in ports)


# ---------------------------------------------------------------- files

def write_atomic(path, text, mode=0o644):
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w') as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def read_track(path):
    try:
        with open(path) as handle:
            return handle.read().strip() not in ('', '0')
    except (IOError, OSError):
        return False


def _label(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


# The monitor's series in node_exporter's textfile format: name -> (type, help).
UPLINK_METRICS = {
    'l3ha_uplink_up': ('gauge', 'Whether this node reaches the gateway of an external network (probes, carrier).'),
    'l3ha_uplink_routers_failed': ('gauge', 'Whether the routers tracking the gateway are held in FAULT here.'),
    'l3ha_uplink_carrier': ('gauge', 'Carrier of the external network\'s uplink ports (absent: no such port).'),
    'l3ha_uplink_lost_probes_total': ('counter', 'Probes of the gateway that went unanswered.'),
    'l3ha_uplink_transitions_total': ('counter', 'Up and down changes of the gateway seen by this node.'),
}


def metrics_text(node, networks):
    """node_exporter textfile of the monitor."""
    rows = dict((name, []) for name in UPLINK_METRICS)
    for name, network in sorted(networks.items()):
        if network.carrier is not None:
            rows['l3ha_uplink_carrier'].append(('node="%s",network="%s"' % (_label(node), _label(name)),
                                                int(network.carrier)))
        for ip, gateway in sorted(network.gateways.items()):
            labels = 'node="%s",network="%s",gateway="%s"' % (_label(node), _label(name), _label(ip))
            rows['l3ha_uplink_up'].append((labels, int(gateway.state == 'up')))
            rows['l3ha_uplink_routers_failed'].append((labels, int(gateway.failed)))
            rows['l3ha_uplink_lost_probes_total'].append((labels, gateway.lost))
            rows['l3ha_uplink_transitions_total'].append((labels, gateway.transitions))
    lines = []
    for name, (kind, text) in sorted(UPLINK_METRICS.items()):
        if rows[name]:
            lines += ['# HELP %s %s' % (name, text), '# TYPE %s %s' % (name, kind)]
            lines += ['%s{%s} %d' % (name, labels, value) for labels, value in rows[name]]
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- the monitor

class Network(object):
    """One external network: its bridge, peers, and gateways with their track files."""

    def __init__(self, name, spec, now):
        self.name = name
        self.bridge = spec['bridge']
        self.peers = list(spec.get('peers') or [])
        self.tracks = dict(spec.get('gateways') or {})  # gateway -> track file
        self.gateways = dict((ip, Gateway(ip, read_track(path), now)) for ip, path in self.tracks.items())
        self.index = None
        self.mac = None
        self.carrier = None
        self.sockets = {}  # family -> raw socket on the bridge

    def close(self):
        for sock in self.sockets.values():
            sock.close()
        self.sockets = {}

    def open(self, links):
        """Raw sockets on the bridge (again after it was recreated)."""
        found = [(index, link) for index, link in links.items() if link['name'] == self.bridge]
        if not found:
            self.close()
            self.index = None
            return
        index, link = found[0]
        if index == self.index and self.sockets:
            return
        self.close()
        self.index, self.mac = index, link['mac']
        families = set(g.family for g in self.gateways.values())
        for family, proto in ((4, ETH_P_ARP), (6, ETH_P_IPV6)):
            if family in families:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
                sock.bind((self.bridge, proto))
                sock.setblocking(False)
                self.sockets[family] = sock


class Monitor(object):
    def __init__(self, config, clock=time.monotonic):
        self.config = config
        self.clock = clock
        self.interval = float(config['interval'])
        self.fall = int(config['fall'])
        self.rise = int(config['rise'])
        self.fresh = max(PEER_FRESH_MIN, PEER_FRESH_INTERVALS * self.interval)
        now = clock()
        self.networks = dict((name, Network(name, spec, now))
                             for name, spec in sorted(config['networks'].items()))
        self.reports = dict((name, {}) for name in self.networks)  # network -> {peer: report}
        self.links = {}
        self.dirty = True
        self.running = True

    # sockets
    def open(self):
        self.netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        self.netlink.bind((0, RTMGRP_LINK))
        self.netlink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._dump_links()
        self.peer_socket = socket.socket(socket.AF_INET6 if ':' in (self.config.get('local_ip') or '')
                                         else socket.AF_INET, socket.SOCK_DGRAM)
        self.peer_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.peer_socket.bind((self.config.get('local_ip') or '', int(self.config['port'])))
        self.peer_socket.setblocking(False)
        for network in self.networks.values():
            network.open(self.links)
        for name in self.networks:
            self._carrier(name, self.clock())
        for name, network in self.networks.items():
            for gateway in network.gateways.values():
                directory = os.path.dirname(network.tracks[gateway.ip])
                if not os.path.isdir(directory):
                    os.makedirs(directory, 0o700)
                self._write_track(name, gateway, force=True)

    def _dump_links(self):
        request = struct.pack('IHHII', 32, RTM_GETLINK, 0x301, 1, 0) + struct.pack('BxHiII', 0, 0, 0, 0, 0)
        dump = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        try:
            dump.send(request)
            links = {}
            while True:
                data = dump.recv(1 << 16)
                for _kind, index, link in parse_links(data):
                    links[index] = link
                if _done(data):
                    break
            self.links = links
        finally:
            dump.close()

    # events
    def on_netlink(self):
        try:
            data = self.netlink.recv(1 << 16)
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:  # events were lost: read the whole table again
                self._dump_links()
                data = b''
            else:
                raise
        for kind, index, link in parse_links(data):
            if kind == RTM_DELLINK:
                self.links.pop(index, None)
            else:
                self.links[index] = link
        now = self.clock()
        for name, network in self.networks.items():
            network.open(self.links)
            self._carrier(name, now)

    def _carrier(self, name, now):
        network = self.networks[name]
        carrier = uplink_carrier(self.links, network.index) if network.index is not None else None
        if carrier == network.carrier:
            return
        network.carrier = carrier
        self.dirty = True
        if carrier is False:
            for gateway in network.gateways.values():
                gateway.carrier_lost(now)
        self.evaluate(name, now)

    def on_probe_reply(self, name, family):
        network = self.networks[name]
        sock = network.sockets.get(family)
        if sock is None:
            return
        now = self.clock()
        while True:
            try:
                frame = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                network.close()
                break
            if family == 4:
                sender, sender_mac = arp_reply_from(frame, network.mac)
            else:
                sender, sender_mac = na_target(frame), None
            gateway = network.gateways.get(sender)
            if gateway is None:
                continue
            if sender_mac is not None:
                gateway.mac = sender_mac
            missed = gateway.misses
            if gateway.answer(now, self.rise, network.carrier) or missed:
                self.dirty = True  # a state change, or the end of a run of misses
        self.evaluate(name, now)

    def on_report(self):
        now = self.clock()
        while True:
            try:
                data, source = self.peer_socket.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            try:
                report = json.loads(data.decode('utf-8'))
                name = report['network']
                network = self.networks.get(name)
                if network is None or source[0] not in network.peers or report.get('v') != REPORT_VERSION:
                    continue
                gateways = dict((ip, (entry[0], entry[1])) for ip, entry in report['gateways'].items())
            except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                continue
            if source[0] not in self.reports[name]:
                self.dirty = True  # a peer heard for the first time shows in the status
            self.reports[name][source[0]] = (now, gateways)
            self.evaluate(name, now)

    def tick(self):
        now = self.clock()
        for name, network in self.networks.items():
            if not network.sockets:
                network.open(self.links)
            for gateway in network.gateways.values():
                if gateway.probe_sent(now, self.fall):
                    self.dirty = True
                self._send_probe(network, gateway)
            self.evaluate(name, now)
            self._report(name, network, now)

    def expire(self):
        """The reply timeout of the probes sent at the last tick."""
        now = self.clock()
        for name, network in self.networks.items():
            for gateway in network.gateways.values():
                if gateway.outstanding is not None:
                    gateway.expire(self.fall)
                    self.dirty = True  # a lost probe shows in the status file
            self.evaluate(name, now)

    def _send_probe(self, network, gateway):
        sock = network.sockets.get(gateway.family)
        if sock is None or network.mac is None:
            return
        if gateway.family == 4:
            # unicast while the gateway answers; after a miss, broadcast (it may have a new MAC)
            frame = arp_probe(network.mac, gateway.ip, gateway.mac if not gateway.misses else None)
        else:
            frame = ns_probe(network.mac, gateway.ip)
        try:
            sock.send(frame)
        except OSError:
            network.close()  # the bridge went away: opened again at the next tick

    def _report(self, name, network, now):
        if not network.peers:
            return
        payload = json.dumps({'v': REPORT_VERSION, 'node': self.config.get('node'), 'network': name,
                              'gateways': dict((ip, [g.state, g.answer_age(now)])
                                               for ip, g in network.gateways.items())}).encode('utf-8')
        for peer in network.peers:
            try:
                self.peer_socket.sendto(payload, (peer, int(self.config['port'])))
            except OSError:
                pass  # an unreachable peer reports nothing: it counts as not seeing the gateway

    def evaluate(self, name, now):
        network = self.networks[name]
        reports = self.reports[name]
        for gateway in network.gateways.values():
            failed = should_fail(gateway, reports, bool(network.peers), now, self.fresh)
            if failed != gateway.failed:
                gateway.failed = failed
                self._write_track(name, gateway)
                self.dirty = True

    def _write_track(self, name, gateway, force=False):
        path = self.networks[name].tracks[gateway.ip]
        if force and read_track(path) == gateway.failed and os.path.exists(path):
            return
        write_atomic(path, '%d\n' % int(gateway.failed))
        _log('%s %s: %s (%s), routers %s' % (name, gateway.ip, gateway.state, gateway.reason or 'start',
                                             'in FAULT' if gateway.failed else 'released'))

    # outputs
    def status(self):
        return {'node': self.config.get('node'), 'pid': os.getpid(), 'networks': dict(
            (name, {'bridge': network.bridge, 'carrier': network.carrier,
                    'peers_reporting': sorted(self.reports[name]),
                    'gateways': dict((ip, {'state': g.state, 'failed': g.failed, 'lost': g.lost, 'misses': g.misses,
                                           'transitions': g.transitions, 'reason': g.reason})
                                     for ip, g in network.gateways.items())})
            for name, network in self.networks.items())}

    def flush(self, force=False):
        """Status and metrics files, rewritten only when something they show changed (a
        state, a lost probe, a peer heard first): a quiet node's files stay as they are."""
        if not (force or self.dirty):
            return
        status_file = self.config.get('status_file')
        if status_file:
            write_atomic(status_file, json.dumps(self.status(), sort_keys=True) + '\n', 0o600)
        metrics_file = self.config.get('metrics_file')
        if metrics_file:
            try:
                write_atomic(metrics_file, metrics_text(self.config.get('node'), self.networks))
            except OSError:
                pass  # metrics never stop the monitor
        self.dirty = False

    def run(self):
        self.open()
        self.flush(force=True)
        next_tick = self.clock()
        expire_at = None
        while self.running:
            # What has arrived is read before any probe is declared lost: a monitor that the
            # scheduler kept waiting must not count answers sitting in its socket as misses.
            wake = next_tick if expire_at is None else min(next_tick, expire_at)
            self._read_ready(max(0.0, wake - self.clock()))
            now = self.clock()
            if expire_at is not None and now >= expire_at:
                self._read_ready(0.0)
                self.expire()
                expire_at = None
            if now >= next_tick:
                self.tick()
                expire_at = now + REPLY_TIMEOUT * self.interval
                next_tick += self.interval
                if next_tick < now:  # late (a stopped process): probe on, never in a burst
                    next_tick = now + self.interval
            self.flush()

    def _read_ready(self, timeout):
        """Handle every socket with something to read, waiting at most `timeout` s for one."""
        readers = [self.netlink, self.peer_socket]
        owners = {}
        for name, network in self.networks.items():
            for family, sock in network.sockets.items():
                readers.append(sock)
                owners[sock] = (name, family)
        try:
            ready = select.select(readers, [], [], timeout)[0]
        except InterruptedError:
            return
        for sock in ready:
            if sock is self.netlink:
                self.on_netlink()
            elif sock is self.peer_socket:
                self.on_report()
            elif sock in owners:
                self.on_probe_reply(*owners[sock])


def _done(data):
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from('IH', data, offset)
        if kind in (NLMSG_DONE, NLMSG_ERROR):
            return True
        if length < 16:
            return True
        offset += (length + 3) & ~3
    return False


def _log(line):
    sys.stderr.write('%.3f l3ha-uplink: %s\n' % (time.time(), line))
    sys.stderr.flush()


def _write_pid(path):
    if path:
        write_atomic(path, '%d\n' % os.getpid(), 0o600)


def _die_with_parent():
    """The monitor ends with its supervisor (a killed supervisor leaves no orphan behind,
    which the next start would run beside)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _serve(config):
    # Probes and their deadlines must keep time while a hundred routers change state on
    # this node: ahead of keepalived's notify scripts in the run queue, not behind them.
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except (OSError, AttributeError):
        pass
    monitor = Monitor(config)

    def stop(_signum, _frame):
        monitor.running = False
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    monitor.run()
    return 0


def _supervise(config):
    """Daemon mode (supervisor reconciler): detach, then restart the monitor when it dies."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    log = config.get('log_file')
    if log:
        os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)
    _write_pid(config.get('pid_file'))
    child = [None]

    def stop(_signum, _frame):
        if child[0]:
            os.kill(child[0], signal.SIGTERM)
        child[0] = False
    signal.signal(signal.SIGTERM, stop)
    while child[0] is not False:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _die_with_parent()
            os._exit(_serve(config))
        if child[0] is False:  # SIGTERM arrived while forking
            os.kill(pid, signal.SIGTERM)
        else:
            child[0] = pid
        while True:
            try:
                _pid, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                status = 0
                break
        if child[0] is False or status == 0:
            break
        _log('monitor exited (status %d), restarting' % status)
        time.sleep(RESTART_DELAY)
    return 0


def main(argv):
    """l3ha-uplink --config FILE [--daemon]"""
    with open(argv[argv.index('--config') + 1]) as handle:
        config = json.load(handle)
    if '--daemon' in argv:
        return _supervise(config)
    _write_pid(config.get('pid_file'))
    return _serve(config)


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1:]))
