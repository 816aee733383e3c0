"""Boxes (namespaced holder processes) and commands run inside them.

A box is `unshare --net --mount --uts --ipc --pid --fork` running `l3ha_lab.holder` as
its PID 1. The lab records the holder's host pid and start time, and only ever kills
a pid whose start time still matches (pids get reused).
"""

import os
import select
import shlex
import signal
import subprocess
import sys
import time

from l3ha_lab.model import LabError

LAB_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BoxError(LabError):
    """A box could not be started or a command in it failed."""


def start_time(pid):
    """Start time of a process in clock ticks, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie is dead for our purposes
    return int(fields[19])


def is_alive(pid, started):
    return pid is not None and started is not None and start_time(pid) == started


def spawn_box(hostname, log_path, binds=(), run_tmpfs=False, sysfs=True, serve=False,
              timeout=20.0):
    """Start a box and return {pid, start, unshare_pid} once it is set up."""
    read_fd, write_fd = os.pipe()
    argv = ["unshare", "--net", "--mount", "--uts", "--ipc", "--pid", "--fork",
            "--mount-proc", "--propagation", "private",
            sys.executable, "-m", "l3ha_lab.holder",
            "--hostname", hostname, "--ready-fd", str(write_fd)]
    for source, target in binds:
        argv += ["--bind", "%s:%s" % (source, target)]
    if run_tmpfs:
        argv.append("--run-tmpfs")
    if sysfs:
        argv.append("--sysfs")
    if serve:
        argv.append("--serve")
    unshare_pid = spawn_detached(argv, log_path, pass_fds=(write_fd,))
    os.close(write_fd)
    unshare_start = start_time(unshare_pid)
    with os.fdopen(read_fd) as ready:
        readable = select.select([ready], [], [], timeout)[0]
        message = ready.readline().strip() if readable else "no answer in %d s" % timeout
    holders = _children(unshare_pid) if start_time(unshare_pid) == unshare_start else []
    if message != "ready" or len(holders) != 1:
        for pid in holders + [unshare_pid]:
            kill_leftovers({"pid": pid, "start": start_time(pid)})
        detail = message or "exited during set-up"
        raise BoxError("box %s did not start: %s (log: %s)" % (hostname, detail, log_path))
    pid = holders[0]
    return {"pid": pid, "start": start_time(pid), "unshare_pid": unshare_pid,
            "unshare_start": unshare_start}


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(child) for child in handle.read().split()]
    except FileNotFoundError:
        return []


def spawn_detached(argv, log_path, pass_fds=()):
    """Start argv as an orphan (child of the host's init) in a session of its own.

    Not our child, so it never lingers as our zombie when it ends (a test process may
    run for long); no inherited stdio, so a caller capturing our output never waits
    for it. Returns its pid.
    """
    env = dict(os.environ, PYTHONPATH=LAB_PACKAGE_DIR, PYTHONDONTWRITEBYTECODE="1")
    script = 'exec 0</dev/null; %s >>"$1" 2>&1 & echo $!' % shlex.join(argv)
    proc = subprocess.run(["sh", "-c", script, "sh", log_path], capture_output=True,
                          text=True, pass_fds=pass_fds, start_new_session=True, env=env,
                          check=True)
    return int(proc.stdout.strip())


def kill_box(record):
    """SIGKILL a box's PID 1 if it is still the recorded process.

    The kernel then ends every process of the box, and its unshare parent exits by
    itself. Returns the recorded pids still alive, to pass to `wait_gone`.
    """
    pid, started = record.get("pid"), record.get("start")
    if is_alive(pid, started):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    alive = []
    for pid_key, start_key in (("pid", "start"), ("unshare_pid", "unshare_start")):
        if is_alive(record.get(pid_key), record.get(start_key)):
            alive.append(record[pid_key])
    return alive


def kill_leftovers(record):
    """Last resort for an unshare parent that outlived its box."""
    for pid_key, start_key in (("pid", "start"), ("unshare_pid", "unshare_start")):
        if is_alive(record.get(pid_key), record.get(start_key)):
            try:
                os.kill(record[pid_key], signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_gone(pids, timeout=10.0):
    """Wait until the pids have died (zombies count as dead). Returns those still alive."""
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while True:
        remaining = [p for p in remaining if start_time(p) is not None]
        if not remaining or time.monotonic() > deadline:
            return remaining
        time.sleep(0.01)


def nsenter_argv(pid, net_only=False):
    if net_only:
        return ["nsenter", "--target", str(pid), "--net"]
    return ["nsenter", "--target", str(pid), "--net", "--mount", "--uts", "--ipc", "--pid"]


def run_in(pid, argv, check=True, net_only=False, input_text=None):
    """Run a command in a box; returns the CompletedProcess (text, captured)."""
    proc = subprocess.run(nsenter_argv(pid, net_only) + list(argv), input=input_text,
                          capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        raise BoxError("in box pid %d: %s failed: %s" % (pid, " ".join(argv), output))
    return proc


def ip_batch(pid, commands):
    """Run `ip` commands in a box's network namespace in one process."""
    if commands:
        run_in(pid, ["ip", "-batch", "-"], net_only=True, input_text="\n".join(commands) + "\n")


def link_names(pid):
    proc = run_in(pid, ["ip", "-o", "link", "show"], net_only=True)
    names = set()
    for line in proc.stdout.splitlines():
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        names.add(name)
    return names


def process_exists(pid, started=None):
    """Whether `pid` is in the process table (a zombie counts: it is not reaped yet) and,
    given `started` (its start time in clock ticks), still the same process."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return started is None or int(fields[19]) == started
