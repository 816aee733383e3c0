# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Low-level process helpers of the node side: command lines, pid files, /proc scans, signals.

Private to the collection. keepalived and conntrackd run one per router, inside its
namespace; `_processes.RouterProcesses` decides what to start, reload or stop, under
either supervisor, with these. `run_in` runs short commands (nft, systemctl).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import signal
import subprocess
import tempfile
import time

from ansible_collections.l3ha.routers.plugins.module_utils._netlink import (
    entered, namespace_inode, process_namespace_inode,
)
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    CONNTRACKD_CHECKSUM, CONNTRACKD_CONF, CONNTRACKD_LOCK, CONNTRACKD_SOCKET, KEEPALIVED_CONF, KEEPALIVED_PID, VRRP_PID,
    router_config_dir, router_run_dir,
)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class SupervisorError(Exception):
    pass


def keepalived_argv(name, config_dir, run_dir, keepalived_bin):
    """The one keepalived command line, for the reconciler and the systemd unit alike.

    Run inside the router's namespace. `--vrrp`: no health checker; `--log-detail`
    for transitions in the log; own pid files per router so instances do not collide.
    """
    run = router_run_dir(run_dir, name)
    return [
        keepalived_bin, '--vrrp', '--log-detail',
        '-f', os.path.join(router_config_dir(config_dir, name), KEEPALIVED_CONF),
        '-p', os.path.join(run, KEEPALIVED_PID),
        '-r', os.path.join(run, VRRP_PID),
    ]


def conntrackd_argv(name, config_dir, conntrackd_bin):
    """conntrackd of one router, run inside its namespace; `-d` forks once it is ready.

    Its lock file, UNIX socket and log are named in the router's conntrackd.conf (under
    the router's run directory), so the daemons of several routers never collide.
    """
    return [conntrackd_bin, '-d', '-C', os.path.join(router_config_dir(config_dir, name), CONNTRACKD_CONF)]


def conntrackd_namespaces():
    """{network namespace inode: [pid]} of every live conntrackd, from one /proc scan."""
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        state = _process_state(int(entry))
        if state is None or state[0] != 'conntrackd' or state[1] in ('Z', 'X'):
            continue
        try:
            found.setdefault(process_namespace_inode(int(entry)), []).append(int(entry))
        except OSError:
            continue
    return found


def conntrackd_pids(namespace):
    """Live conntrackd processes in the namespace (one per router namespace)."""
    try:
        wanted = namespace_inode(namespace)
    except OSError:
        return []
    return conntrackd_namespaces().get(wanted, [])


def stop_conntrackd(namespace, run_dir, name):
    """Stop the router's conntrackd and remove what a killed one leaves behind.

    A lock file left by a SIGKILLed daemon makes the next start fail ("perhaps conntrackd
    is already running").
    """
    for pid in conntrackd_pids(namespace):
        stop_process(pid)
    remove_run_files(run_dir, name, (CONNTRACKD_LOCK, CONNTRACKD_SOCKET, CONNTRACKD_CHECKSUM))


def read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().split()[0])
    except (IOError, OSError, ValueError, IndexError):
        return None


def _process_state(pid):
    """(comm, state letter) of a process, or None when it does not exist."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    comm = data[data.find('(') + 1:data.rfind(')')]
    state = data[data.rfind(')') + 2:data.rfind(')') + 3]
    return comm, state


def pid_running(path):
    """The pid in a pid file when that process runs (not a zombie), else None."""
    pid = read_pid(path)
    state = _process_state(pid) if pid else None
    return pid if state is not None and state[1] not in ('Z', 'X') else None


def keepalived_pid(run_dir, name, namespace):
    """pid of the router's live keepalived in its namespace, else None.

    Alive means: the pid file names a keepalived process, not a zombie, whose network
    namespace is the router's (a recycled pid or a stray process does not count).
    """
    run = router_run_dir(run_dir, name)
    pid = read_pid(os.path.join(run, KEEPALIVED_PID))
    if pid is None:
        return None
    found = _process_state(pid)
    if found is None or not found[0].startswith('keepalived') or found[1] in ('Z', 'X'):
        return None
    try:
        if process_namespace_inode(pid) != namespace_inode(namespace):
            return None
    except OSError:
        return None
    vrrp = read_pid(os.path.join(run, VRRP_PID))
    if vrrp is not None:
        child = _process_state(vrrp)
        if child is None or child[1] in ('Z', 'X'):
            return None
    return pid


class Started(object):
    """A daemon (keepalived, conntrackd) being started: its foreground process exits once the daemon runs."""

    def __init__(self, namespace, argv):
        self.argv = argv
        self.errors = tempfile.TemporaryFile()
        with entered(namespace):
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self.errors, close_fds=True, start_new_session=True)

    def wait(self, timeout=START_TIMEOUT):
        """Raise SupervisorError with keepalived's output when it did not start."""
        try:
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = 'timeout'
            if rc != 0:
                self.errors.seek(0)
                raise SupervisorError('%s exited with %s: %s' % (
                    ' '.join(self.argv), rc, self.errors.read().decode('utf-8', 'replace').strip()))
        finally:
            self.errors.close()


def start_keepalived(namespace, argv):
    """Start keepalived inside `namespace` (it daemonizes); call .wait() on the result."""
    return Started(namespace, argv)


def start_conntrackd(namespace, argv):
    """Start conntrackd inside `namespace`; returns once it runs, else raises SupervisorError."""
    Started(namespace, argv).wait()


def wait_for_pid(run_dir, name, namespace, timeout=START_TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid = keepalived_pid(run_dir, name, namespace)
        if pid is not None:
            return pid
        time.sleep(0.05)
    raise SupervisorError('keepalived for router %s did not write a live pid file within %.0f s'
                          % (name, timeout))


def reload_keepalived(pid):
    os.kill(pid, signal.SIGHUP)


def stop_process(pid, timeout=STOP_TIMEOUT):
    """SIGTERM (keepalived then sends priority-0 adverts and drops its VIPs), SIGKILL after timeout."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return
        raise
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = _process_state(pid)
        if state is None or state[1] in ('Z', 'X'):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def namespace_pids(namespace):
    """Every process whose network namespace is `namespace` (to stop before deleting it)."""
    try:
        wanted = namespace_inode(namespace)
    except OSError:
        return []
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            if process_namespace_inode(int(entry)) == wanted:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def stop_leftovers(namespace, run_dir, name):
    """Stop keepalived processes left in a namespace and remove their pid files.

    A SIGKILLed parent leaves its VRRP child running, and an unreaped (zombie) parent
    still passes keepalived's own "already running" pid-file test.
    """
    for pid in namespace_pids(namespace):
        found = _process_state(pid)
        if found is not None and found[0].startswith('keepalived') and found[1] not in ('Z', 'X'):
            stop_process(pid)
    remove_pid_files(run_dir, name)


def remove_pid_files(run_dir, name):
    remove_run_files(run_dir, name, (KEEPALIVED_PID, VRRP_PID))


def remove_run_files(run_dir, name, fnames):
    run = router_run_dir(run_dir, name)
    for fname in fnames:
        try:
            os.unlink(os.path.join(run, fname))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise


def run_in(namespace, argv, what):
    """Run a short command inside a namespace; raise with its output on failure."""
    with entered(namespace):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, close_fds=True)
    output = proc.communicate()[0].decode('utf-8', 'replace').strip()
    if proc.returncode != 0:
        raise SupervisorError('%s failed (%s): %s' % (what, ' '.join(argv), output))
    return output
