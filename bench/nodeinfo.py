"""Run inside one lab node: its routers' VRRP state, transitions and memory, as JSON.

  python bench/nodeinfo.py [--run-dir /run/l3ha] [--memory]

Prints {"routers": {NAME: {"state": STATE, "transitions": [STATE, ...],
"transition_times": [EPOCH, ...]}},
"memory": {NAME: {"pss_kib": N, "processes": N}}}. The transitions are the state words
of `transitions.log` (written by notify.sh), oldest first. Memory is the PSS
(/proc/PID/smaps_rollup) summed over every process whose command line names the
router's directory: keepalived's parent, its VRRP child and the notify.sh reader.
"""

import argparse
import json
import os
import re

ROUTER_PATH = re.compile(r"/routers/([a-z0-9][a-z0-9-]*)/")
EPOCH = re.compile(r"^[0-9]+(\.[0-9]+)?$")  # hook output in the log has no time stamp


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def router_states(run_dir):
    routers = {}
    base = os.path.join(run_dir, "routers")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        state = (read_text(os.path.join(base, name, "state")) or "").split()
        log = read_text(os.path.join(base, name, "transitions.log")) or ""
        # Lines are "EPOCH STATE (priority N)" or "EPOCH hook ..."; keep the state words.
        logged = [(fields[0], fields[1]) for fields in (line.split() for line in log.splitlines())
                  if len(fields) > 1 and fields[1] in ("master", "backup", "fault", "stop")
                  and EPOCH.match(fields[0])]
        routers[name] = {"state": state[0] if state else None,
                         "transitions": [word for _at, word in logged],
                         "transition_times": [float(at) for at, _word in logged]}
    return routers


def pss_kib(pid):
    text = read_text("/proc/%d/smaps_rollup" % pid) or ""
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def router_memory():
    memory = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        cmdline = (read_text("/proc/%s/cmdline" % entry) or "").replace("\0", " ")
        match = ROUTER_PATH.search(cmdline)
        if not match or not ("keepalived" in cmdline or "notify.sh" in cmdline):
            continue
        usage = memory.setdefault(match.group(1), {"pss_kib": 0, "processes": 0})
        usage["pss_kib"] += pss_kib(int(entry))
        usage["processes"] += 1
    return memory


def main(argv=None):
    parser = argparse.ArgumentParser(prog="nodeinfo")
    parser.add_argument("--run-dir", default="/run/l3ha")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args(argv)
    result = {"routers": router_states(args.run_dir)}
    if args.memory:
        result["memory"] = router_memory()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
