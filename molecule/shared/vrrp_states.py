"""python vrrp_states.py LAB NODE...: the recorded VRRP state of every router on every node.

Prints JSON: {"nodes": {node: {"alive": bool, "routers": {router: state}}},
              "masters": {router: [nodes where it is master]},
              "busiest": the live node with the most masters (ties: first by name)}.
Reads each node's state files through `LAB exec NODE`; a node that cannot be reached
(crashed) is reported with alive false. Real traffic is checked separately."""
import json
import subprocess
import sys


def node_states(lab, node):
    script = 'for f in /run/l3ha/routers/*/state; do [ -f "$f" ] && echo "$f $(cat "$f")"; done; true'
    result = subprocess.run([lab, "exec", node, "--", "sh", "-c", script], capture_output=True, text=True,
                            check=False, timeout=30)
    if result.returncode != 0:
        return None
    states = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0].split("/")[-2]] = parts[1]
    return states


def main(lab, nodes):
    report = {"nodes": {}, "masters": {}}
    for node in nodes:
        states = node_states(lab, node)
        report["nodes"][node] = {"alive": states is not None, "routers": states or {}}
        for router, state in (states or {}).items():
            report["masters"].setdefault(router, [])
            if state == "master":
                report["masters"][router].append(node)
    counts = dict((node, sum(1 for masters in report["masters"].values() if node in masters))
                  for node in nodes if report["nodes"][node]["alive"])
    report["busiest"] = min(counts, key=lambda node: (-counts[node], node)) if counts else None
    json.dump(report, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
