"""Where a loaded machine waits: twice a second, the runnable (R) and blocked (D)
processes counted by command, state, syscall number and kernel wait channel, from
/proc/PID/stat, syscall and wchan, with the load average.

Run it real-time beside a benchmark, or it starves with what it watches:

    chrt --fifo 50 python3 bench/procsample.py OUT [--interval 0.5]

It found the fork storm of the notify readers and the survivors' wait for RTNL in a mass
failover (docs/benchmarks.md, "Crash failover against N"). Stop it with a signal.
"""
import argparse
import collections
import os
import time


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""  # the process ended meanwhile


def sample():
    """Counter of (command, state, syscall, wchan) over the R and D processes."""
    found = collections.Counter()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        stat = _read("/proc/%s/stat" % pid)
        if not stat:
            continue
        command = stat[stat.find("(") + 1:stat.rfind(")")]
        state = stat[stat.rfind(")") + 2]
        if state not in "RD":
            continue
        syscall = (_read("/proc/%s/syscall" % pid).split() or ["?"])[0]
        found[(command, state, syscall, _read("/proc/%s/wchan" % pid))] += 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--top", type=int, default=8, help="rows per sample")
    args = parser.parse_args()
    with open(args.out, "w") as out:
        while True:
            now = time.time()
            load = _read("/proc/loadavg").split()[0]
            out.write("== %s.%02d load=%s\n" % (time.strftime("%H:%M:%S", time.gmtime(now)),
                                                int(now % 1 * 100), load))
            for key, count in sample().most_common(args.top):
                out.write("  %d %s\n" % (count, " ".join(key)))
            out.flush()
            time.sleep(args.interval)


if __name__ == "__main__":
    main()
