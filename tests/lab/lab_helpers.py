"""Helpers of the lab tests (bad input, faults, hygiene, conntrackd): run the
collection's playbooks against a lab, snapshot nodes, read VRRP states, poll.

Imported by the test modules next to it (pytest puts this directory on sys.path)."""

import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python")
PLAYBOOK = str(REPO / ".venv" / "bin" / "ansible-playbook")
DEFAULT_INVENTORY = str(REPO / "tests" / "lab" / "inventory.yml")

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

def files(root):
    found = {}
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(top, name)
            info = os.lstat(path)
            entry = {"mode": oct(info.st_mode), "uid": info.st_uid, "gid": info.st_gid}
            if stat.S_ISREG(info.st_mode):
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
'''

NODE_DIRS = ("/etc/l3ha", "/var/lib/l3ha", "/run/l3ha")


def poll(condition, timeout, what, interval=0.05):
    """Return condition()'s first true value; fail naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %s s waiting for: %s" % (timeout, what))
        time.sleep(interval)


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

    return poll(settled, timeout, "nodes %s to settle" % ", ".join(nodes), interval=0.5)


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


def run_playbook(lab, playbook="l3ha.routers.site", inventories=None, extra_vars=None, args=(),
                 timeout=600, env=None):
    """ansible-playbook against the lab; returns the CompletedProcess (text output).

    extra_vars (a dict) go through a JSON file, so any string arrives unchanged."""
    command = [PLAYBOOK]
    for inventory in (inventories or [DEFAULT_INVENTORY]) + [lab.fragment_path]:
        command += ["-i", inventory]
    vars_file = None
    try:
        if extra_vars is not None:
            handle, vars_file = tempfile.mkstemp(prefix="l3ha-vars-", suffix=".json")
            with os.fdopen(handle, "w") as stream:
                json.dump(extra_vars, stream)
            command += ["-e", "@" + vars_file]
        command += list(args) + [playbook]
        environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                           ANSIBLE_FORCE_COLOR="0", PATH=str(REPO / ".venv" / "bin") + ":" + os.environ["PATH"])
        environment.update(env or {})
        return subprocess.run(command, capture_output=True, text=True, cwd=str(REPO), env=environment,
                              timeout=timeout, check=False)
    finally:
        if vars_file:
            os.unlink(vars_file)


def converge(lab, **kwargs):
    result = run_playbook(lab, **kwargs)
    assert result.returncode == 0, "converge failed:\n%s\n%s" % (result.stdout[-6000:], result.stderr[-3000:])
    return result


def router_states(lab, node, run_dir="/run/l3ha"):
    """{router: state} from the node's state files; None when the node is not running."""
    script = 'for f in %s/routers/*/state; do [ -f "$f" ] && echo "$f $(cat "$f")"; done; true' % run_dir
    try:
        result = lab.run(node, ["sh", "-c", script], timeout=30)
    except Exception:  # a crashed node cannot be entered
        return None
    if result.returncode != 0:
        return None
    states = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0].split("/")[-2]] = parts[1]
    return states


def masters(lab, nodes, router):
    """Nodes whose state file says master for `router` (crashed nodes count as not master)."""
    return [node for node in nodes if ((router_states(lab, node) or {}).get(router) == "master")]


def wait_one_master(lab, nodes, router, timeout=30):
    def one_master():
        found = masters(lab, nodes, router)
        return found if len(found) == 1 else None
    return poll(one_master, timeout, "exactly one master of %s on %s" % (router, ", ".join(nodes)))[0]


def vip_holders(lab, nodes, router, address):
    """Nodes whose router namespace actually has `address` (what traffic sees)."""
    holders = []
    for node in nodes:
        try:
            result = lab.run(node, ["ip", "-n", "qrouter-" + router, "-o", "addr", "show"], timeout=30)
        except Exception:
            continue
        if result.returncode == 0 and (" %s/" % address) in result.stdout:
            holders.append(node)
    return holders


def node_sh(lab, node, script, timeout=30):
    """Run a shell script inside a node; fail with its output when it fails."""
    result = lab.run(node, ["sh", "-c", script], timeout=timeout)
    assert result.returncode == 0, "%s: %r failed: %s%s" % (node, script, result.stdout, result.stderr)
    return result.stdout


def keepalived_pids(lab, node, router, run_dir="/run/l3ha"):
    """(keepalived parent pid, VRRP child pid) from the router's pid files; None if missing."""
    out = node_sh(lab, node, 'for f in keepalived vrrp; do echo "$(cat %s/routers/%s/$f.pid 2>/dev/null)"; done'
                  % (run_dir, router))
    values = [line.strip() for line in out.split("\n")[:2]]
    return tuple(int(value) if value.isdigit() else None for value in values)


def process_alive(lab, node, pid):
    """Whether `pid` runs in the node (a zombie does not count)."""
    out = node_sh(lab, node, "cat /proc/%d/stat 2>/dev/null; true" % pid)
    return bool(out) and out.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def transitions(lab, node, router, run_dir="/run/l3ha"):
    """The states recorded in the router's transitions.log, oldest first."""
    out = node_sh(lab, node, "cat %s/routers/%s/transitions.log 2>/dev/null; true" % (run_dir, router))
    return [line.split()[1] for line in out.splitlines() if len(line.split()) >= 2]


def state_changes(states, before):
    """How many times the state changed in `states` (log lines after `before` earlier ones).

    A reload makes keepalived report the current state again; a repeated state is not a
    transition."""
    previous = states[before - 1] if before else None
    changes = 0
    for state in states[before:]:
        if state != previous:
            changes += 1
        previous = state
    return changes


def recap(output):
    """{host: {ok: N, changed: N, failed: N, unreachable: N}} from a PLAY RECAP."""
    found = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        found[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counters)}
    return found


def ha_vxlan_device(lab, node, router, config_dir="/etc/l3ha"):
    """The vxlan device of the router's HA segment in the node's root namespace."""
    record = json.loads(node_sh(lab, node, "cat %s/routers/%s/router.json" % (config_dir, router)))
    wanted = "l3ha:" + record["segment"]
    for link in json.loads(node_sh(lab, node, "ip -j -d link show")):
        if link.get("ifalias") == wanted and (link.get("linkinfo") or {}).get("info_kind") == "vxlan":
            return link["ifname"]
    raise AssertionError("%s: no vxlan device of segment %s" % (node, record["segment"]))


def answers(lab, source, target):
    """One ping from `source` to `target` got an answer."""
    return lab.run(source, ["ping", "-n", "-q", "-c", "1", "-W", "1", target], timeout=30).returncode == 0


@contextlib.contextmanager
def probing(lab, name, source, target, interval=0.01):
    """Probe traffic for the block; the dict it yields gets the probe's result on exit."""
    result = {}
    lab.probe_start(name, source, target, interval=interval, max_seconds=900)
    try:
        yield result
    finally:
        result.update(lab.probe_stop(name))


def record_measurement(case, **values):
    """Print a measurement (pytest -s shows it) and append it to $L3HA_MEASUREMENTS, if set."""
    entry = dict(values, case=case, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    line = json.dumps(entry, sort_keys=True)
    print("MEASURED " + line)
    path = os.environ.get("L3HA_MEASUREMENTS")
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\n")


def wait_settled(lab, nodes, routers, timeout=60):
    """Every router: exactly one master, every other replica backup (none in fault/stop)."""
    last = [None]

    def settled():
        states = last[0] = {node: router_states(lab, node) or {} for node in nodes}
        for router in routers:
            seen = sorted(states[node].get(router) for node in nodes if router in states[node])
            if seen.count("master") != 1 or any(state not in ("master", "backup") for state in seen):
                return None
        return states
    try:
        return poll(settled, timeout, "one master and only backups besides for %s" % ", ".join(routers), interval=0.1)
    except AssertionError as exc:
        raise AssertionError("%s; last states: %s" % (exc, last[0]))
