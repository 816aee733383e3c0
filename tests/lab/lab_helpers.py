"""Helpers of the lab tests that are theirs alone: snapshots of everything the collection
may change on a node (to prove a failed run changed nothing), the holders of an address,
a router's HA vxlan device, and measurements recorded for the reader.

What tests, benchmarks and molecule share (waiting, playbooks, VRRP states, probes, leak
checks) is in the lab test driver, lab/l3ha_lab/testing.py. Imported by the test modules
next to it (pytest puts this directory on sys.path)."""

import json
import os
import time
from pathlib import Path

from l3ha_lab.collection import vocabulary
from l3ha_lab.testing import CONFIG_DIR, NODE_DIRS, PYTHON, namespace_of, node_sh, router_config_dir, wait_until

# The lab tests' default inventory (the `lab` fixture's, unless a module overrides lab_inventory).
DEFAULT_INVENTORY = str(Path(__file__).with_name("inventory.yml"))
# Every lab of this test session lives in a directory whose name starts so (under /run, so
# tests never touch a demo lab in /run/l3ha-lab); the leak check knows the session's by it.
LAB_DIR_PREFIX = "/run/l3ha-lab-test-%d-" % os.getpid()

# Runs inside a node (all its namespaces): everything the collection could change there.
# Counters, lifetimes and other values that move on their own are left out.
SNAPSHOT_SCRIPT = r'''
import hashlib, json, os, stat, subprocess, sys

def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

def links(prefix):
    found = {}
    for link in json.loads(run(prefix + ["ip", "-j", "-d", "addr", "show"]) or "[]"):
        found[link["ifname"]] = {
            "mac": link.get("address"), "mtu": link.get("mtu"), "flags": sorted(link.get("flags", [])),
            "master": link.get("master"), "ifalias": link.get("ifalias"),
            "kind": (link.get("linkinfo") or {}).get("info_kind"),
            "addresses": sorted("%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])),
            # Still in duplicate address detection: its local route is not there yet.
            "tentative": sorted(a["local"] for a in link.get("addr_info", []) if a.get("tentative")),
        }
    return found

def namespace(prefix):
    return {
        "links": links(prefix),
        "routes": sorted(run(prefix + ["ip", "route", "show", "table", "all"]).splitlines()),
        "routes6": sorted(line for line in run(prefix + ["ip", "-6", "route", "show", "table", "all"]).splitlines()
                          if " expires " not in line),
        "nft": run(prefix + ["nft", "list", "ruleset"]),
    }

MOVING = __MOVING__

def files(root):
    found = {}
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(top, name)
            info = os.lstat(path)
            entry = {"mode": oct(info.st_mode), "uid": info.st_uid, "gid": info.st_gid}
            # the uplink monitor's status and metrics move on their own (a lost probe counts)
            if stat.S_ISREG(info.st_mode) and name not in MOVING:
                with open(path, "rb") as handle:
                    entry["sha256"] = hashlib.sha256(handle.read()).hexdigest()
            found[path] = entry
    return found

def processes():
    found = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = handle.read().split(b"\0")
            with open("/proc/%s/stat" % entry) as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found[entry] = b" ".join(argv).decode("utf-8", "replace").strip()
    return found

roots = sys.argv[1:]
netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
print(json.dumps({
    "netns": netns,
    "root": namespace([]),
    "namespaces": {ns: namespace(["nsenter", "--net=/run/netns/" + ns]) for ns in netns},
    "files": {root: files(root) for root in roots},
    "processes": processes(),
}, sort_keys=True))
'''.replace("__MOVING__", repr((vocabulary.UPLINK_STATUS, vocabulary.METRICS_UPLINK_FILE)))


def snapshot(lab, node, dirs=NODE_DIRS):
    """Everything of a node the collection may change, as a dict (see SNAPSHOT_SCRIPT)."""
    result = lab.run(node, [PYTHON, "-c", SNAPSHOT_SCRIPT] + list(dirs), timeout=60)
    assert result.returncode == 0, "snapshot of %s failed: %s" % (node, result.stderr)
    return json.loads(result.stdout)


def snapshot_all(lab, nodes):
    return {node: snapshot(lab, node) for node in nodes}


def settled_snapshot(lab, nodes, timeout=30):
    """Snapshots once the kernel has settled (no address in DAD, two snapshots equal)."""
    previous = [None]

    def settled():
        current = snapshot_all(lab, nodes)
        same = current == previous[0] and '"tentative": [' not in _tentative_marks(current)
        previous[0] = current
        return current if same else None

    return wait_until(settled, timeout, "nodes %s to settle" % ", ".join(nodes), interval=0.5)


def _tentative_marks(snap):
    return json.dumps(snap).replace('"tentative": []', "")


def differences(before, after, path=""):
    """Human-readable list of what differs between two snapshots."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            where = "%s/%s" % (path, key)
            if key not in after:
                found.append("%s: gone" % where)
            elif key not in before:
                found.append("%s: new %r" % (where, after[key]))
            else:
                found.extend(differences(before[key], after[key], where))
        return found
    if isinstance(before, list) and isinstance(after, list) and before != after:
        lost = [x for x in before if x not in after]
        gained = [x for x in after if x not in before]
        return ["%s: lost %r, gained %r" % (path, lost, gained)]
    if before != after:
        return ["%s: %r -> %r" % (path, before, after)]
    return []


def vip_holders(lab, nodes, router, address):
    """Nodes whose router namespace actually has `address` (what traffic sees)."""
    holders = []
    for node in nodes:
        try:
            result = lab.run(node, ["ip", "-n", namespace_of(router), "-o", "addr", "show"], timeout=30)
        except Exception:  # a crashed node cannot be entered
            continue
        if result.returncode == 0 and (" %s/" % address) in result.stdout:
            holders.append(node)
    return holders


def ha_vxlan_device(lab, node, router, config_dir=CONFIG_DIR):
    """The vxlan device of the router's HA segment in the node's root namespace."""
    record_file = os.path.join(router_config_dir(router, config_dir), vocabulary.RECORD_FILE)
    record = json.loads(node_sh(lab, node, "cat %s" % record_file))
    wanted = vocabulary.LINK_MARKER + record["segment"]
    for link in json.loads(node_sh(lab, node, "ip -j -d link show")):
        if link.get("ifalias") == wanted and (link.get("linkinfo") or {}).get("info_kind") == "vxlan":
            return link["ifname"]
    raise AssertionError("%s: no vxlan device of segment %s" % (node, record["segment"]))


def record_measurement(case, **values):
    """Print a measurement (pytest -s shows it) and append it to $L3HA_MEASUREMENTS, if set."""
    entry = dict(values, case=case, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    line = json.dumps(entry, sort_keys=True)
    print("MEASURED " + line)
    path = os.environ.get("L3HA_MEASUREMENTS")
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\n")
