"""python vrrp_states.py NODE... [--one-master-of ROUTER... [--timeout S]]: the recorded
VRRP state of every router on every node of the scenario's lab ($L3HA_LAB_DIR).

Prints JSON: {"nodes": {node: {"alive": bool, "routers": {router: state}}},
              "masters": {router: [nodes where it is master]},
              "busiest": the live node with the most masters (ties: first by name)}.
A node that cannot be entered (crashed) is reported with alive false. With
--one-master-of, it first waits until exactly these routers have exactly one master
each, and fails naming the last states seen when the deadline passes. The readers and
the wait are the lab test driver's (lab/l3ha_lab/testing.py). Real traffic is checked
separately."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lab"))

from l3ha_lab import Lab  # noqa: E402  (needs the sys.path entry above)
from l3ha_lab.testing import WaitTimeout, busiest, masters_by_router, node_states, wait_until  # noqa: E402


def report(states):
    return {"nodes": {node: {"alive": found is not None, "routers": found or {}} for node, found in states.items()},
            "masters": masters_by_router(states), "busiest": busiest(states)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="vrrp_states.py")
    parser.add_argument("nodes", nargs="+")
    parser.add_argument("--one-master-of", nargs="+", default=[], metavar="ROUTER")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    lab = Lab()
    wanted = sorted(args.one_master_of)

    def one_master_each(states):
        masters = masters_by_router(states)
        return sorted(masters) == wanted and all(len(held) == 1 for held in masters.values())

    try:
        states = wait_until(lambda: node_states(lab, args.nodes), args.timeout if wanted else 0,
                            "exactly one master of each of %s" % ", ".join(wanted), interval=0.5,
                            ok=one_master_each if wanted else lambda _states: True)
    except WaitTimeout as exc:
        print(exc, file=sys.stderr)
        return 1
    json.dump(report(states), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
