"""The lab test driver: what the lab tests, the benchmarks and molecule's checks share.

A helper module, not a test. tests/lab, bench and molecule/shared all use it:

- `wait_until`: poll with a deadline; a timeout says what was awaited and what was last seen.
- `run_playbook`, `converge`, `recap`: ansible-playbook against a lab, and its PLAY RECAP.
- VRRP state readers: the state files and transitions logs that notify.sh writes on each
  node (`router_states`, `node_states`, `masters`, `transitions`, ...), and waits on them.
- `probing`: the lab's traffic probe (`Lab.probe_start/stop`) as a context manager.
- `PrivateNode`: a scratch network and mount namespace, for tests that need no lab.
- `HostSnapshot`: what the host holds (named namespaces, links, mounts, lab processes),
  taken before and compared after, to prove that nothing leaked.

Names and paths come from the collection's vocabulary and defaults (l3ha_lab.collection),
so they stay defined once. `python -m l3ha_lab.testing host-snapshot save|check FILE` is
the leak check for callers that are not Python (molecule's create and destroy).
"""

import argparse
import contextlib
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

from l3ha_lab import host, kernel
from l3ha_lab.collection import defaults, vocabulary
from l3ha_lab.machine import OWNER_ALIAS
from l3ha_lab.model import LabError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
PYTHON = os.path.join(VENV_BIN, "python")
ANSIBLE_PLAYBOOK = os.path.join(VENV_BIN, "ansible-playbook")
SITE = "l3ha.routers.site"

CONFIG_DIR, RUN_DIR, STATE_DIR = defaults.CONFIG_DIR, defaults.RUN_DIR, defaults.STATE_DIR
NODE_DIRS = (CONFIG_DIR, STATE_DIR, RUN_DIR)
# Written by notify.sh (roles/l3ha/templates/notify.sh.j2: LOG_FILE, READER_FILE) in a
# router's run directory, next to vocabulary.STATE_FILE and vocabulary.NOTIFY_FIFO.
TRANSITIONS_LOG = "transitions.log"
NOTIFY_READER_PID = "notify.pid"
namespace_of = vocabulary.namespace_of
process_exists = kernel.process_exists  # in the process table (a zombie counts), see l3ha_lab.kernel


def router_config_dir(router, config_dir=CONFIG_DIR):
    return vocabulary.router_config_dir(config_dir, router)


def router_run_dir(router, run_dir=RUN_DIR):
    return vocabulary.router_run_dir(run_dir, router)


# ---------------------------------------------------------------- waiting

class WaitTimeout(AssertionError):
    """A wait_until deadline passed."""


def wait_until(read, timeout=30.0, what="the condition", interval=0.05, ok=bool):
    """Call read() until ok(value) holds (default: the value is true); return that value.

    Past `timeout` seconds, raise WaitTimeout naming `what` and the last value read, so a
    failure shows what was seen instead of the condition. The deadline is a functional
    bound (something that never happens), not a timing measurement.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() >= deadline:
            seen = repr(value)
            if len(seen) > 3000:
                seen = seen[:3000] + "..."
            raise WaitTimeout("timed out after %s s waiting for %s; last seen: %s" % (timeout, what, seen))
        time.sleep(interval)


def process_running(pid):
    """Whether `pid` runs (exists and is not a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


# ---------------------------------------------------------------- playbooks

class PlaybookRun:
    """The outcome of one ansible-playbook run (like subprocess.CompletedProcess)."""

    def __init__(self, argv, returncode, stdout, stderr, seconds):
        self.args, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr
        self.seconds = seconds

    @property
    def recap(self):
        return recap(self.stdout)

    @property
    def changed(self):
        """Sum of changed= over the hosts of the PLAY RECAP."""
        return sum(host.get("changed", 0) for host in self.recap.values())

    def tail(self, chars=6000):
        return "%s\n%s" % (self.stdout[-chars:], self.stderr[-chars // 2:])


class PlaybookFailed(AssertionError):
    """A playbook that had to pass did not."""


RECAP_LINE = re.compile(r"^(\S+)\s+:\s+(ok=\d+.*)$", re.MULTILINE)


def recap(output):
    """{host: {ok: N, changed: N, unreachable: N, failed: N, ...}} from a PLAY RECAP."""
    found = {}
    for host, counters in RECAP_LINE.findall(output):
        found[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counters)}
    return found


def playbook_env(env=None):
    """The environment of a run: this checkout's ansible.cfg and venv, no colours."""
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    environment.update(env or {})
    return environment


def run_playbook(lab, playbook=SITE, inventories=None, extra_vars=None, args=(), check=False, diff=False,
                 env=None, timeout=600, log_path=None):
    """ansible-playbook against the lab; returns a PlaybookRun (it does not check the exit code).

    inventories: default the ones the lab was brought up from; the lab's fragment (how
    Ansible reaches its nodes) is always added. extra_vars (a dict) go through a JSON file,
    so any string arrives unchanged. log_path: the output goes to that file as it comes
    (stdout and stderr together, and so into .stdout), for long runs worth keeping.
    """
    command = [ANSIBLE_PLAYBOOK]
    for inventory in list(inventories or lab.status()["inventories"]) + [lab.fragment_path]:
        command += ["-i", inventory]
    vars_file = None
    try:
        if extra_vars is not None:
            handle, vars_file = tempfile.mkstemp(prefix="l3ha-vars-", suffix=".json")
            with os.fdopen(handle, "w") as stream:
                json.dump(extra_vars, stream)
            command += ["-e", "@" + vars_file]
        command += list(args) + (["--check"] if check else []) + (["--diff"] if diff else []) + [playbook]
        options = dict(cwd=REPO, env=playbook_env(env), stdin=subprocess.DEVNULL)
        start = time.monotonic()
        if log_path:
            with open(log_path, "w") as log:
                returncode, _out, _err = _run_group(command, timeout, stdout=log, stderr=subprocess.STDOUT, **options)
            with open(log_path) as log:
                stdout, stderr = log.read(), ""
        else:
            returncode, stdout, stderr = _run_group(command, timeout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                    text=True, **options)
        return PlaybookRun(command, returncode, stdout, stderr, time.monotonic() - start)
    finally:
        if vars_file:
            os.unlink(vars_file)


def _run_group(command, timeout, **options):
    """(exit code, stdout, stderr) of `command` in a process group of its own. A run that
    times out or is interrupted ends with its whole group: ansible-playbook's fork workers
    outlive a parent killed alone."""
    with subprocess.Popen(command, start_new_session=True, **options) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return proc.returncode, stdout, stderr


def converge(lab, **kwargs):
    """run_playbook that must pass (default: the site playbook); raises PlaybookFailed."""
    run = run_playbook(lab, **kwargs)
    if run.returncode != 0:
        playbook = kwargs.get("playbook", SITE)
        raise PlaybookFailed("%s failed (exit %d):\n%s" % (playbook, run.returncode, run.tail()))
    return run


def runner_job(lab, playbook, data_dir, extra_vars=None, check=False, timeout=900):
    """A job as AWX runs it: ansible-runner with a private data directory, the checkout
    as the project, the lab's inventories. Returns the runner (status, rc, stats, events);
    `job_stats(runner)` gives its set_stats data."""
    import ansible_runner  # a dev dependency, only for the tests that need AWX's engine
    os.makedirs(str(data_dir), exist_ok=True)
    return ansible_runner.run(
        private_data_dir=str(data_dir), project_dir=REPO,
        playbook=os.path.join(REPO, "playbooks", playbook + ".yml"),
        inventory=list(lab.status()["inventories"]) + [lab.fragment_path],
        extravars=dict(extra_vars or {}), cmdline="--check" if check else None,
        envvars={"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                 "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")},
        quiet=True, timeout=timeout,
        # without it ansible-runner installs SIGTERM/SIGINT handlers in this process for
        # good: the test session would then ignore a stop and skip every lab's teardown
        cancel_callback=lambda: False)


def job_stats(runner):
    """The set_stats data of a runner job (what AWX stores as the job's artifacts)."""
    found = {}
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            found.update(event.get("event_data", {}).get("artifact_data") or {})
    return found


# ---------------------------------------------------------------- commands in nodes

def node_sh(lab, node, script, timeout=30):
    """Run a shell script inside a lab node or endpoint; fail with its output when it fails."""
    result = lab.run(node, ["sh", "-c", script], timeout=timeout)
    assert result.returncode == 0, "%s: %r failed: %s%s" % (node, script, result.stdout, result.stderr)
    return result.stdout


def answers(lab, source, target):
    """One ping from `source` to `target` got an answer."""
    return lab.run(source, ["ping", "-n", "-q", "-c", "1", "-W", "1", target], timeout=30).returncode == 0


# ---------------------------------------------------------------- VRRP state readers

_STATES_SCRIPT = 'for f in %s/*/%s; do [ -f "$f" ] && echo "$f $(cat "$f")"; done; true'


def router_states(lab, node, run_dir=RUN_DIR):
    """{router: state} from the node's state files; None when the node cannot be entered."""
    script = _STATES_SCRIPT % (os.path.join(run_dir, vocabulary.ROUTERS_SUBDIR), vocabulary.STATE_FILE)
    try:
        result = lab.run(node, ["sh", "-c", script], timeout=30)
    except (LabError, OSError, subprocess.SubprocessError):  # a crashed node cannot be entered
        return None
    if result.returncode != 0:
        return None
    states = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0].split("/")[-2]] = parts[1]
    return states


def node_states(lab, nodes, run_dir=RUN_DIR):
    """{node: {router: state}, or None for a node that cannot be entered}."""
    return {node: router_states(lab, node, run_dir) for node in nodes}


def masters_by_router(states):
    """{router: [nodes whose state file says master]} over node_states' result; every
    router seen on a reachable node has an entry."""
    found = {}
    for node, routers in sorted(states.items()):
        for router, state in sorted((routers or {}).items()):
            found.setdefault(router, [])
            if state == "master":
                found[router].append(node)
    return found


def busiest(states):
    """The reachable node that is master of the most routers (ties: the first by name)."""
    masters = masters_by_router(states)
    counts = {node: sum(1 for held in masters.values() if node in held)
              for node, routers in states.items() if routers is not None}
    return min(counts, key=lambda node: (-counts[node], node)) if counts else None


def masters(lab, nodes, router):
    """Nodes whose state file says master for `router` (a crashed node is not master)."""
    return [node for node in nodes if (router_states(lab, node) or {}).get(router) == "master"]


def wait_one_master(lab, nodes, router, timeout=30):
    """Wait until exactly one of `nodes` is master of `router`; return that node."""
    return wait_until(lambda: masters(lab, nodes, router), timeout,
                      "exactly one master of %s on %s" % (router, ", ".join(nodes)),
                      ok=lambda found: len(found) == 1)[0]


def one_master_each(states, routers):
    """Whether every router has exactly one master and only backups besides (none in fault or stop)."""
    for router in routers:
        seen = [found[router] for found in states.values() if found and router in found]
        if seen.count("master") != 1 or any(state not in ("master", "backup") for state in seen):
            return False
    return True


def wait_settled(lab, nodes, routers, timeout=60):
    """Wait until every router has one master and only backups besides; return node_states."""
    return wait_until(lambda: node_states(lab, nodes), timeout,
                      "one master and only backups besides for %s" % ", ".join(routers),
                      interval=0.1, ok=lambda states: one_master_each(states, routers))


def uplink_status(lab, node, run_dir=RUN_DIR):
    """The node's uplink monitor status (its status file, _uplink_monitor.Monitor.status):
    {node, pid, networks: {name: {carrier, peers_reporting, gateways: {ip: {state, failed,
    lost, misses, transitions, reason}}}}}; None when it has written none."""
    path = os.path.join(run_dir, vocabulary.UPLINK_SUBDIR, vocabulary.UPLINK_STATUS)
    text = node_sh(lab, node, "cat %s 2>/dev/null; true" % path)
    return json.loads(text) if text.strip() else None


def uplink_gateway(lab, node, network, gateway, run_dir=RUN_DIR):
    """One gateway's entry of the node's uplink status (None when there is none)."""
    status = uplink_status(lab, node, run_dir) or {}
    return ((status.get("networks") or {}).get(network) or {}).get("gateways", {}).get(gateway)


def parse_transitions(text):
    """[(epoch, state)] of a transitions log, oldest first. Its lines are "EPOCH STATE
    (priority N)", "EPOCH <message>" and hook output (no time stamp): only the first kind counts."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[1] in vocabulary.VRRP_STATES:
            try:
                found.append((float(fields[0]), fields[1]))
            except ValueError:
                continue  # hook output that happens to name a state
    return found


def transitions(lab, node, router, run_dir=RUN_DIR):
    """The states logged in the router's transitions log on `node`, oldest first."""
    path = os.path.join(router_run_dir(router, run_dir), TRANSITIONS_LOG)
    return [state for _at, state in parse_transitions(node_sh(lab, node, "cat %s 2>/dev/null; true" % path))]


def state_changes(states, before):
    """How many times the state changed in `states` (logged states after the first `before`).

    A reload makes keepalived report the current state again; a repeated state is not a
    transition."""
    previous = states[before - 1] if before else None
    changes = 0
    for state in states[before:]:
        if state != previous:
            changes += 1
        previous = state
    return changes


def keepalived_pids(lab, node, router, run_dir=RUN_DIR):
    """(keepalived parent pid, VRRP child pid) from the router's pid files; None if missing."""
    directory = router_run_dir(router, run_dir)
    out = node_sh(lab, node, 'for f in %s %s; do echo "$(cat %s/$f 2>/dev/null)"; done'
                  % (vocabulary.KEEPALIVED_PID, vocabulary.VRRP_PID, directory))
    values = [line.strip() for line in out.split("\n")[:2]]
    return tuple(int(value) if value.isdigit() else None for value in values)


def process_alive(lab, node, pid):
    """Whether `pid` runs in the node (a zombie does not count)."""
    out = node_sh(lab, node, "cat /proc/%d/stat 2>/dev/null; true" % pid)
    return bool(out) and out.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def read_replicas(run_dir=RUN_DIR):
    """Run where the files are (inside a node): {router: {"state": STATE or None,
    "transitions": [STATE, ...], "transition_times": [EPOCH, ...]}} of every router."""
    base = os.path.join(run_dir, vocabulary.ROUTERS_SUBDIR)
    replicas = {}
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        state = _read_text(os.path.join(base, name, vocabulary.STATE_FILE)).split()
        logged = parse_transitions(_read_text(os.path.join(base, name, TRANSITIONS_LOG)))
        replicas[name] = {"state": state[0] if state else None,
                          "transitions": [word for _at, word in logged],
                          "transition_times": [at for at, _word in logged]}
    return replicas


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


# The number of read(2), to recognize a process blocked reading (/proc/PID/syscall).
_READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "riscv64": 63}


def notify_reader_idle(router_dir):
    """Run where the files and processes are: whether the router's notify reader has
    handled every transition keepalived wrote to its FIFO. notify.sh records the state
    file first and then logs, sets forwarding and runs the hooks, so a state file that is
    right does not mean the transition is done: here nothing is left in the FIFO and the
    reader is blocked reading the FIFO, not inside a transition."""
    fifo_path = os.path.join(router_dir, vocabulary.NOTIFY_FIFO)
    try:
        with open(os.path.join(router_dir, NOTIFY_READER_PID)) as handle:
            pid = int(handle.read().split()[0])
        fifo = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            pending = struct.unpack("i", fcntl.ioctl(fifo, termios.FIONREAD, b"\0\0\0\0"))[0]
        finally:
            os.close(fifo)
        with open("/proc/%d/syscall" % pid) as handle:
            syscall = handle.read().split()
        if len(syscall) < 2 or syscall[0] != str(_READ_SYSCALL.get(os.uname().machine)):
            return False
        # The shell reads the line with `read <&3`: the fd read is a copy of the FIFO's.
        reading, fifo_file = os.stat("/proc/%d/fd/%d" % (pid, int(syscall[1], 16))), os.stat(fifo_path)
        return pending == 0 and (reading.st_dev, reading.st_ino) == (fifo_file.st_dev, fifo_file.st_ino)
    except (OSError, ValueError, IndexError):
        return False


# ---------------------------------------------------------------- traffic

@contextlib.contextmanager
def probing(lab, name, source, target, interval=0.01, max_seconds=900):
    """A lab probe (UDP to upstream's echo) for the block; the dict it yields gets the
    probe's result on exit: sent, received, longest_gap, gap_start, duration (l3ha_lab.probe)."""
    result = {}
    lab.probe_start(name, source, target, interval=interval, max_seconds=max_seconds)
    try:
        yield result
    finally:
        result.update(lab.probe_stop(name))


# ---------------------------------------------------------------- a node without a lab

class PrivateNode:
    """A scratch node for tests that need no lab: a holder process with its own network
    and mount namespace and its own /run (so its own /run/netns). Router namespaces, links
    and mounts made in it never reach the host; processes started in it run in the host's
    pid namespace (pid files hold pids the test can signal).

    `setup`: shell commands run in it before it is ready (e.g. a bridge). close() kills
    every process in it (also in namespaces nested in it) and waits until they are gone.
    """

    def __init__(self, setup=""):
        # Host-wide limits (inotify) are the host's in here too, as in a lab: raised while it lives.
        self.host_dir = tempfile.mkdtemp(prefix="l3ha-private-node-", dir="/run")
        host.acquire(self.host_dir)
        script = ("mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/netns /run/lock && "
                  "ip link set lo up\n%s\necho ready\nexec sleep infinity\n" % setup)
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private",
                                      "sh", "-ec", script], stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline().strip()
        if ready != "ready":
            self.proc.kill()
            self.proc.wait()
            self._release_host()
            raise LabError("private node did not start (exit %s)" % self.proc.returncode)
        self.pid = self.proc.pid
        # Its /run is a tmpfs of its own: a process whose /run is that tmpfs is in the node.
        self.run_device = os.stat("/proc/%d/root/run" % self.pid).st_dev

    def argv(self, argv, cwd=None):
        """The argv that runs a command in the node (its network and mount namespace)."""
        return ["nsenter", "-t", str(self.pid), "--net", "--mount"] + (["--wd=%s" % cwd] if cwd else []) + list(argv)

    def run(self, argv, cwd=None, **kwargs):
        """subprocess.run of a command in the node (text, output captured, not checked)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(argv, cwd), check=kwargs.pop("check", False), **kwargs)

    def sh(self, script, check=True, cwd=None):
        """A shell script in the node; its stdout. check: fail with its stderr when it fails."""
        result = self.run(["sh", "-c", script], cwd=cwd)
        if check and result.returncode != 0:
            raise AssertionError("%s failed: %s" % (script, result.stderr))
        return result.stdout

    def processes(self):
        """Running pids of the node besides its holder (a zombie has no /run to look at)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != self.pid:
                try:
                    if os.stat("/proc/%s/root/run" % entry).st_dev == self.run_device:
                        found.append(int(entry))
                except OSError:
                    continue
        return found

    def close(self, timeout=15.0):
        for pid in self.processes():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()
        wait_until(self.processes, timeout, "the processes of the private node to exit", ok=lambda left: not left)
        self._release_host()

    def _release_host(self):
        os.rmdir(self.host_dir)
        host.release(self.host_dir)


# ---------------------------------------------------------------- leaks

# Lab processes in the host's namespaces: box parents (unshare) and holders, probes,
# keepalived, conntrackd and notify readers started outside a box. Every process in
# another network or mount namespace counts too (boxes, private nodes, router namespaces).
_LAB_COMMAND = re.compile(r"l3ha_lab\.(holder|probe)|\bunshare\b|\bkeepalived\b|\bconntrackd\b|notify\.sh fifo"
                          r"|bench/prober\.py")
_LAB_COMMS = ("unshare", "keepalived", "conntrackd")


class HostSnapshot:
    """What the host holds that a lab or a test could leave: named network namespaces,
    links of the host's network namespace, mounts of its mount namespace, lab processes.

    `owned_by` (path prefixes: lab directories, temporary directories) keeps only the lab
    processes of one owner, so that other labs running on the machine at the same time
    do not count: a process whose command line, working directory or stdio names such a
    path, one of its descendants, or a descendant of the process taking the snapshot.
    """

    def __init__(self, netns, links, mounts, processes, files=()):
        self.netns, self.links, self.mounts = set(netns), set(links), set(mounts)
        self.processes = dict(processes)  # "pid start" -> description
        self.files = set(files)

    @classmethod
    def take(cls, owned_by=None):
        netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
        return cls(netns, _links(owned_by), _mounts(), _lab_processes(owned_by), _host_node_files())

    def leaks_since(self, before):
        """{kind: [what this snapshot holds that `before` did not]}, only kinds with any."""
        leaks = {}
        for kind in ("netns", "links", "mounts", "files"):
            new = sorted(getattr(self, kind) - getattr(before, kind))
            if new:
                leaks[kind] = new
        new = sorted(self.processes[key] for key in set(self.processes) - set(before.processes))
        if new:
            leaks["processes"] = new
        return leaks

    def to_json(self):
        return json.dumps({"netns": sorted(self.netns), "links": sorted(self.links),
                           "mounts": sorted(self.mounts), "processes": self.processes,
                           "files": sorted(self.files)}, indent=1)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(data["netns"], data["links"], data["mounts"], data["processes"], data.get("files", ()))


# The node directories of the role's defaults: a lab node has private ones, so a file
# there on the host came from a test that reached the host (metrics share /var/lib).
HOST_NODE_DIRS = (defaults.CONFIG_DIR, defaults.STATE_DIR, defaults.RUN_DIR,
                  defaults.ROLE_DEFAULTS["l3ha_metrics_dir"])


def _host_node_files():
    found = []
    for top in HOST_NODE_DIRS:
        for root, dirs, files in os.walk(top):
            found.extend(os.path.join(root, name) for name in dirs + files)
    return found


def _links(owned_by=None):
    """Links of the host's network namespace; with `owned_by`, not those another lab made
    (machine labs mark their host links with ifalias l3ha-lab:<lab directory>)."""
    found = []
    for name in os.listdir("/sys/class/net"):
        try:
            with open("/sys/class/net/%s/ifalias" % name) as handle:
                alias = handle.read().strip()
        except OSError:
            alias = ""
        owner = alias[len(OWNER_ALIAS):] if alias.startswith(OWNER_ALIAS) else None
        if owned_by is None or owner is None or any(owner.startswith(p) for p in owned_by):
            found.append(name)
    return found


def _mounts():
    """Mounts of this mount namespace as "POINT FSTYPE SOURCE ROOT" (ids left out: they change)."""
    found = set()
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            tail = fields[fields.index("-") + 1:]
            found.add("%s %s %s %s" % (fields[4], tail[0], tail[1] if len(tail) > 1 else "-", fields[3]))
    return found


def _lab_processes(owned_by=None):
    own = {kind: os.readlink("/proc/self/ns/%s" % kind) for kind in ("net", "mnt")}
    parents, found = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/stat" % pid) as handle:
                stat = handle.read()
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        parents[pid] = int(fields[1])
        if fields[0] == "Z":
            lab = comm in _LAB_COMMS  # a zombie has no command line and no namespaces
            command = "[%s] (exited, not reaped yet)" % comm
        elif not command:
            continue  # a kernel thread
        else:
            try:
                foreign = any(os.readlink("/proc/%d/ns/%s" % (pid, kind)) != own[kind] for kind in own)
            except OSError:
                continue
            lab = foreign or bool(_LAB_COMMAND.search(command))
        if lab:
            found[pid] = ("%d %s" % (pid, fields[19]), "pid %d: %s" % (pid, command[:300]))
    if owned_by is not None:
        owners = _owners(parents, tuple(owned_by))
        found = {pid: entry for pid, entry in found.items() if _descends(pid, owners, parents)}
    return dict(found.values())


def _owners(parents, prefixes):
    """The pids that name one of `prefixes` in their command line, cwd or stdio, and this process."""
    owners = {os.getpid()}
    for pid in parents:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                named = [handle.read().replace(b"\0", b" ").decode("utf-8", "replace")]
        except OSError:
            continue
        for link in ("cwd", "fd/0", "fd/1", "fd/2"):
            with contextlib.suppress(OSError):
                named.append(os.readlink("/proc/%d/%s" % (pid, link)))
        if any(prefix in text for prefix in prefixes for text in named):
            owners.add(pid)
    return owners


def _descends(pid, owners, parents):
    seen = set()
    while pid and pid not in seen:
        if pid in owners:
            return True
        seen.add(pid)
        pid = parents.get(pid)
    return False


def assert_no_leaks(before, timeout=30.0, owned_by=None):
    """Wait until the host holds nothing that `before` (a HostSnapshot) did not, and fail
    with what is left when the deadline passes. The deadline covers what ends by itself
    (the kernel frees namespaces and the host's init reaps orphans with a delay)."""
    wait_until(lambda: HostSnapshot.take(owned_by).leaks_since(before), timeout,
               "the host to hold nothing it did not hold before", interval=0.2, ok=lambda leaks: not leaks)


# ---------------------------------------------------------------- command line

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l3ha_lab.testing", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    snapshot = verbs.add_parser("host-snapshot", help="save what the host holds, or check against a saved one")
    snapshot.add_argument("action", choices=["save", "check"])
    snapshot.add_argument("file")
    snapshot.add_argument("--timeout", type=float, default=30.0, help="check: how long leftovers may take to go")
    snapshot.add_argument("--owned-by", action="append", metavar="PATH",
                          help="only lab processes that name PATH (a lab directory), or descend from one")
    args = parser.parse_args(argv)
    if args.action == "save":
        with open(args.file, "w") as handle:
            handle.write(HostSnapshot.take(args.owned_by).to_json())
        return 0
    with open(args.file) as handle:
        before = HostSnapshot.from_json(handle.read())
    try:
        assert_no_leaks(before, args.timeout, args.owned_by)
    except WaitTimeout as exc:
        print("leaked: %s" % exc, file=sys.stderr)
        return 1
    print("the host holds nothing it did not hold before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
