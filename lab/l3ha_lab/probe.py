"""A UDP probe: sends numbered datagrams to the upstream echo and times the replies.

Run as `python -m l3ha_lab.probe` inside a box's network namespace (nsenter --net).
It stops on SIGTERM, or by itself when the box it measures from dies or `--max-seconds`
pass, and writes its result as JSON to `--out`:

  sent, received, longest_gap (s), gap_start (epoch s), duration (s)

The longest gap is the longest time between consecutive events among: the start, every
reply received, and the last datagram sent. An outage that never recovered before the
stop therefore still shows as a gap.
"""

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import time

from l3ha_lab.servers import ECHO_PORT

_PACKET = struct.Struct("!Qd")   # sequence number, send time (epoch)


def summarize(start, replies, last_send, sent):
    """Result dict from the start time, reply times (epoch, any order) and last send."""
    events = sorted([start] + list(replies) + ([last_send] if last_send else []))
    longest, gap_start = 0.0, start
    for before, after in zip(events, events[1:]):
        if after - before > longest:
            longest, gap_start = after - before, before
    return {"sent": sent, "received": len(replies), "longest_gap": round(longest, 6),
            "gap_start": round(gap_start, 6),
            "duration": round((last_send or start) - start, 6)}


def _owner_alive(pid, started):
    if not pid:
        return True
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and int(fields[19]) == started


def run(target, interval, out_path, owner_pid=None, owner_start=None, max_seconds=3600.0):
    address = ipaddress.ip_address(target)
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *args: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *args: stopping.append(True))
    with open(out_path + ".running", "w"):
        pass  # tells probe_start that SIGTERM now ends us cleanly
    start = time.time()
    replies, seen = [], set()
    sent, last_send, next_send, next_owner_check = 0, None, time.monotonic(), 0.0
    deadline = time.monotonic() + max_seconds
    while not stopping and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_owner_check:
            if not _owner_alive(owner_pid, owner_start):
                break
            next_owner_check = now + 0.5
        if now >= next_send:
            try:
                sock.sendto(_PACKET.pack(sent, time.time()), (target, ECHO_PORT))
            except OSError:
                pass  # e.g. no route for a moment: counts as a lost datagram
            sent += 1
            last_send = time.time()
            next_send += interval
            if next_send < now:
                next_send = now + interval  # never burst to catch up after a stall
        wait = max(0.0, min(next_send - time.monotonic(), 0.5))
        try:
            readable = select.select([sock], [], [], wait)[0]
        except InterruptedError:
            continue
        if readable:
            _drain(sock, replies, seen)
    # A short grace for replies still in flight.
    end = time.monotonic() + min(0.2, max(interval * 5, 0.05))
    while time.monotonic() < end:
        readable = select.select([sock], [], [], max(0.0, end - time.monotonic()))[0]
        if readable:
            _drain(sock, replies, seen)
    result = summarize(start, replies, last_send, sent)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(result, handle)
    os.rename(tmp, out_path)
    os.unlink(out_path + ".running")
    return result


def _drain(sock, replies, seen):
    while True:
        try:
            data = sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # ICMP errors surface here; they are not replies
        if len(data) >= _PACKET.size:
            sequence, _sent_at = _PACKET.unpack(data[:_PACKET.size])
            if sequence not in seen:
                seen.add(sequence)
                replies.append(time.time())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="l3ha_lab.probe")
    parser.add_argument("--to", required=True)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--out", required=True)
    parser.add_argument("--owner-pid", type=int)
    parser.add_argument("--owner-start", type=int)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)
    run(args.to, args.interval, args.out, args.owner_pid, args.owner_start, args.max_seconds)


if __name__ == "__main__":
    main()
