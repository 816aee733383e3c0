"""Multi-target ICMP prober: one echo request to every target per interval.

Run inside the lab's upstream endpoint (`nsenter --net`), with the lab package on
PYTHONPATH. Stops on SIGTERM and writes JSON to --out: {"interval": s, "start": epoch,
"longest_send_stall": s, "targets": {IP: <l3ha_lab.probe.summarize() dict: sent,
received, longest_gap, gap_start, duration>}}. The lab's own probe measures one UDP
flow; this one measures every router's gateway address at once.

The gaps are between the *send* times (carried in the echo payload) of answered
probes: on a busy machine a prober that is not scheduled for a while would otherwise
stamp a burst of queued replies late and report an outage the router never had. A
stall in sending shows up in `longest_send_stall`.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import time

from l3ha_lab.probe import summarize

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def echo_request(ident, sequence):
    payload = struct.pack("!d", time.time())
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum(header + payload), ident,
                       sequence) + payload


def parse_reply(packet, ident):
    """(source IP, sequence, send time) of an echo reply to us, else None."""
    header_length = (packet[0] & 0x0f) * 4
    if len(packet) < header_length + 16:
        return None
    icmp_type, _code, _sum, reply_ident, sequence = struct.unpack(
        "!BBHHH", packet[header_length:header_length + 8])
    if icmp_type != ICMP_ECHO_REPLY or reply_ident != ident:
        return None
    sent_at = struct.unpack("!d", packet[header_length + 8:header_length + 16])[0]
    return socket.inet_ntoa(packet[12:16]), sequence, sent_at


def run(targets, interval, out_path, max_seconds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    ident = os.getpid() & 0xffff
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    replies = dict((target, []) for target in targets)
    seen = set()
    sent, last_send, stall = 0, None, 0.0
    with open(out_path + ".running", "w"):
        pass
    start = time.time()
    next_send = time.monotonic()
    deadline = next_send + max_seconds
    while not stopping and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_send:
            # One packet for every target (an echo request does not name its target):
            # built once per round, so 100 targets cost one checksum, not 100.
            request = echo_request(ident, sent & 0xffff)
            for target in targets:
                try:
                    sock.sendto(request, (target, 0))
                except OSError:
                    pass  # no neighbour yet: a lost probe
            sent += 1
            now_epoch = time.time()
            if last_send is not None:
                stall = max(stall, now_epoch - last_send)
            last_send = now_epoch
            next_send += interval
            if next_send < now:
                next_send = now + interval  # after a stall, never burst to catch up
        wait = max(0.0, min(next_send - time.monotonic(), 0.2))
        try:
            readable = select.select([sock], [], [], wait)[0]
        except InterruptedError:
            continue
        if readable:
            # At most two replies per target per round: a reply backlog must not hold
            # back the next round of sends (that would be a send stall, a fake outage).
            _drain(sock, ident, replies, seen, limit=2 * len(targets))
    end = time.monotonic() + 0.1
    while time.monotonic() < end:
        if select.select([sock], [], [], max(0.0, end - time.monotonic()))[0]:
            _drain(sock, ident, replies, seen)
    result = {"interval": interval, "start": start, "longest_send_stall": round(stall, 6),
              "targets": dict((t, summarize(start, replies[t], last_send, sent)) for t in targets)}
    tmp = out_path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(result, handle)
    os.rename(tmp, out_path)
    os.unlink(out_path + ".running")


def _drain(sock, ident, replies, seen, limit=None):
    count = 0
    while limit is None or count < limit:
        count += 1
        try:
            packet = sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
        reply = parse_reply(packet, ident)
        if reply is None or reply[0] not in replies:
            continue
        key = (reply[0], reply[1])
        if key in seen:
            continue  # a duplicate (two masters for a moment) is not a second reply
        seen.add(key)
        replies[reply[0]].append(reply[2])
        if len(seen) > 1000000:
            seen.clear()  # bounded memory; a late duplicate only adds a reply time


def main(argv=None):
    parser = argparse.ArgumentParser(prog="prober")
    parser.add_argument("--targets-file", required=True, help="one IPv4 address per line")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    with open(args.targets_file) as handle:
        targets = [line.strip() for line in handle if line.strip()]
    run(targets, args.interval, args.out, args.max_seconds)


if __name__ == "__main__":
    main()
