"""Command line of the lab: `lab/l3ha-lab VERB ...` (see docs/lab.md)."""

import argparse
import json
import os
import signal
import sys

from l3ha_lab.lab import Lab
from l3ha_lab.model import LabError


def _print_status(status):
    print("lab: %s" % status["lab_dir"])
    print("fragment: %s" % status["fragment"])
    if status["mgmt"]:
        mgmt = status["mgmt"]
        print("management network: %s on %s (host %s)" % (mgmt["network"], mgmt["bridge"], mgmt["host_ip"]))
    print("%-12s %-10s %-8s %-6s %-15s %s" % ("NODE", "KIND", "PID", "ALIVE", "TUNNEL IP", "SSH"))
    for node in status["nodes"]:
        alive = "yes" if node["alive"] else "no"
        print("%-12s %-10s %-8s %-6s %-15s %s" % (node["name"], node["kind"], node["pid"] or "-",
                                                  alive, node["tunnel_ip"], node["mgmt_ip"] or "-"))
    print("%-20s %-6s %-15s %s" % ("ENDPOINT", "ALIVE", "VTEP", "ADDRESSES"))
    for endpoint in status["endpoints"]:
        addresses = "; ".join("%s: %s" % (net, ", ".join(addrs))
                              for net, addrs in endpoint["networks"].items())
        print("%-20s %-6s %-15s %s" % (endpoint["name"], "yes" if endpoint["alive"] else "no",
                                       endpoint["vtep_ip"] or "-", addresses))
    cuts = ", ".join("%s/%s" % (c["node"], c["network"]) for c in status["cuts"])
    print("links cut: %s" % (cuts or "none"))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="l3ha-lab", description="Simulated network nodes.")
    parser.add_argument("--lab-dir", help="lab state directory (default $L3HA_LAB_DIR or "
                                          "/run/l3ha-lab)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="create or reconcile the lab from an inventory")
    up.add_argument("-i", "--inventory", action="append", required=True)
    up.add_argument("--nodes", choices=["namespace", "machine"],
                    help="kind of node: namespaces entered with nsenter (default), or "
                         "systemd-nspawn machines reached over SSH")
    verbs.add_parser("down", help="remove everything of the lab")
    verbs.add_parser("inventory", help="print the path of the inventory fragment")
    status = verbs.add_parser("status", help="nodes, endpoints, links cut")
    status.add_argument("--json", action="store_true")
    crash = verbs.add_parser("crash", help="kill a node at once, like a power loss")
    crash.add_argument("node")
    boot = verbs.add_parser("boot", help="start a crashed node again, empty")
    boot.add_argument("node")
    reboot = verbs.add_parser("reboot", help="reboot a node (a machine: systemctl reboot, "
                                             "then start it again; a namespace: crash + boot)")
    reboot.add_argument("node")
    link = verbs.add_parser("link", help="cut or restore a node's link to a network")
    link.add_argument("node")
    link.add_argument("network", help="a network of l3ha_networks, or ha for the underlay")
    link.add_argument("state", choices=["up", "down"])
    run = verbs.add_parser("exec", help="run a command in a node or endpoint")
    run.add_argument("name")
    run.add_argument("command", nargs=argparse.REMAINDER)
    probe = verbs.add_parser("probe", help="UDP probes to upstream's echo, measuring gaps")
    probe_verbs = probe.add_subparsers(dest="probe_verb", required=True)
    start = probe_verbs.add_parser("start")
    start.add_argument("name")
    start.add_argument("--from", dest="source", required=True)
    start.add_argument("--to", dest="target", required=True)
    start.add_argument("--interval", type=float, default=0.01)
    start.add_argument("--max-seconds", type=float, default=3600.0)
    stop = probe_verbs.add_parser("stop")
    stop.add_argument("name")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `status | head` is fine
    lab = Lab(args.lab_dir)
    try:
        return _dispatch(lab, args)
    except LabError as exc:
        print("l3ha-lab: %s" % exc, file=sys.stderr)
        return 2


def _dispatch(lab, args):
    if args.verb == "up":
        lab.up(args.inventory, nodes=args.nodes)
        for note in lab.notes:
            print("note: %s" % note)
        print("lab up; inventory fragment: %s" % lab.fragment_path)
    elif args.verb == "down":
        lab.down()
    elif args.verb == "inventory":
        print(lab.fragment_path)
    elif args.verb == "status":
        status = lab.status()
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            _print_status(status)
    elif args.verb == "crash":
        lab.crash(args.node)
    elif args.verb == "boot":
        lab.boot(args.node)
    elif args.verb == "reboot":
        lab.reboot(args.node)
    elif args.verb == "link":
        lab.link(args.node, args.network, args.state == "up")
    elif args.verb == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise LabError("exec: no command given (exec NAME -- CMD ...)")
        argv = lab.exec_argv(args.name, command)
        sys.stdout.flush()
        os.execvp(argv[0], argv)
    elif args.verb == "probe" and args.probe_verb == "start":
        lab.probe_start(args.name, args.source, args.target, args.interval, args.max_seconds)
    elif args.verb == "probe" and args.probe_verb == "stop":
        print(json.dumps(lab.probe_stop(args.name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
