"""Run inside one lab node: its routers' VRRP state, transitions and memory, as JSON.

  python bench/nodeinfo.py [--run-dir /run/l3ha] [--memory]

Prints {"routers": {NAME: {"state": STATE, "transitions": [STATE, ...],
"transition_times": [EPOCH, ...]}},
"memory": {NAME: {"pss_kib": N, "processes": N}}}. The routers part is the lab test
driver's reader (l3ha_lab.testing.read_replicas). Memory is the PSS
(/proc/PID/smaps_rollup) summed over every process whose command line names the
router's directory: keepalived's parent, its VRRP child and the notify.sh reader.
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lab"))

from l3ha_lab.collection import vocabulary  # noqa: E402  (needs the sys.path entry above)
from l3ha_lab.testing import RUN_DIR, read_replicas  # noqa: E402

ROUTER_PATH = re.compile(r"/%s/(%s)/" % (vocabulary.ROUTERS_SUBDIR, vocabulary.ROUTER_NAME_PATTERN))


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


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
    parser.add_argument("--run-dir", default=RUN_DIR)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args(argv)
    result = {"routers": read_replicas(args.run_dir)}
    if args.memory:
        result["memory"] = router_memory()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
