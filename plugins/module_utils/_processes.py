# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The processes of the routers of a node: keepalived and conntrackd, under either supervisor.

Private to the collection. `RouterProcesses` is the one place that knows the supervisor:
with `reconciler`, keepalived is started inside the router's namespace (it daemonizes),
reloaded with SIGHUP and stopped with SIGTERM; with `systemd`, systemctl starts, reloads
and stops `l3ha-keepalived@<router>.service`, whose unit (written by the role) runs the
same command line (`keepalived_argv`). conntrackd is started by the reconciler in both
cases. It also keeps the checksum of the configuration each daemon runs with, in the
router's run directory. The low-level helpers (pid files, /proc scans, signals) are in
`_supervisor.py`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.l3ha.routers.plugins.module_utils._files import read_checksum, write_checksum
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import namespace_inode
from ansible_collections.l3ha.routers.plugins.module_utils._supervisor import (
    SupervisorError, conntrackd_argv, conntrackd_namespaces, keepalived_argv, keepalived_pid, namespace_pids,
    reload_keepalived, remove_pid_files, run_in, start_conntrackd, start_keepalived, stop_conntrackd,
    stop_leftovers, stop_process, wait_for_pid,
)
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    CONFIG_CHECKSUM, CONNTRACKD_CHECKSUM, namespace_of, router_run_dir, systemd_unit,
)

# keepalived processes being started at once: each holds a file until it runs, and a
# node taking 1000 routers must neither run out of files nor start them all in one burst.
START_BATCH = 50
# systemd's own command (supervisor: systemd), found on PATH.
SYSTEMCTL = 'systemctl'


def systemd_command(name, running, config_changed, systemctl=SYSTEMCTL):
    """systemctl argv for the wanted action, or None when nothing is to be done."""
    if not running:
        return [systemctl, 'start', systemd_unit(name)]
    if config_changed:
        return [systemctl, 'reload', systemd_unit(name)]
    return None


class RouterProcesses(object):
    """keepalived and conntrackd of every router of one reconciler run."""

    def __init__(self, supervisor, config_dir, run_dir, keepalived_bin, conntrackd_bin, systemctl_bin=SYSTEMCTL):
        self.supervisor = supervisor
        self.config_dir = config_dir
        self.run_dir = run_dir
        self.keepalived_bin = keepalived_bin
        self.conntrackd_bin = conntrackd_bin
        self.systemctl_bin = systemctl_bin
        self.failures = []  # 'router <name>: <problem>' of starts that failed
        self._starting = []  # keepalived processes started, not yet seen alive
        self._conntrackd = None  # {namespace inode: [pid]}, scanned once per run

    def _systemctl(self, argv, name):
        run_in(None, argv, 'systemd for router %s' % name)

    def _checksum_path(self, name, fname):
        return os.path.join(router_run_dir(self.run_dir, name), fname)

    # keepalived
    def keepalived_pid(self, name):
        """pid of the router's live keepalived, or None."""
        return keepalived_pid(self.run_dir, name, namespace_of(name))

    def keepalived_config(self, name):
        """Checksum of the keepalived.conf the router's keepalived was last started or reloaded with."""
        return read_checksum(self._checksum_path(name, CONFIG_CHECKSUM))

    def clear_keepalived(self, name, created):
        """Before a start: what a dead keepalived left (its processes, its pid files)."""
        if created:
            remove_pid_files(self.run_dir, name)
        else:
            stop_leftovers(namespace_of(name), self.run_dir, name)

    def run_keepalived(self, name, pid, config_changed, checksum):
        """keepalived runs the config with `checksum`: started when `pid` is None, else reloaded.

        Started by the reconciler itself, it is waited for in batches (`wait_started`), so
        the starts overlap but stay bounded; its config checksum is recorded once it runs.
        """
        if self.supervisor == 'systemd':
            self._systemctl(systemd_command(name, pid is not None, config_changed, self.systemctl_bin), name)
        elif pid is None:
            namespace = namespace_of(name)
            started = start_keepalived(namespace, keepalived_argv(name, self.config_dir, self.run_dir,
                                                                  self.keepalived_bin))
            self._starting.append((name, started, checksum))
            if len(self._starting) >= START_BATCH:
                self.wait_started()
            return
        else:
            reload_keepalived(pid)
        write_checksum(self._checksum_path(name, CONFIG_CHECKSUM), checksum)

    def wait_started(self):
        """Wait for the keepalived processes started so far; a failed start is recorded in `failures`."""
        starting, self._starting = self._starting, []
        for name, started, checksum in starting:
            try:
                started.wait()
                wait_for_pid(self.run_dir, name, namespace_of(name))
            except SupervisorError as exc:
                self.failures.append('router %s: %s' % (name, exc))
                continue
            write_checksum(self._checksum_path(name, CONFIG_CHECKSUM), checksum)

    def stop_keepalived(self, name):
        """The router's keepalived goes (it became a router without keepalived)."""
        if self.supervisor == 'systemd':
            self._systemctl([self.systemctl_bin, 'stop', systemd_unit(name)], name)
        stop_leftovers(namespace_of(name), self.run_dir, name)

    def stop_all(self, name):
        """Every process of the router's namespace goes (the router is purged)."""
        if self.supervisor == 'systemd':
            self._systemctl([self.systemctl_bin, 'stop', systemd_unit(name)], name)
        for pid in namespace_pids(namespace_of(name)):
            stop_process(pid)

    # conntrackd
    def had_conntrackd(self, name):
        """Whether the router's conntrackd was started (only those are looked for: no /proc scan otherwise)."""
        return os.path.exists(self._checksum_path(name, CONNTRACKD_CHECKSUM))

    def conntrackd_running(self, name):
        if self._conntrackd is None:
            self._conntrackd = conntrackd_namespaces()
        try:
            return bool(self._conntrackd.get(namespace_inode(namespace_of(name))))
        except OSError:
            return False

    def conntrackd_config(self, name):
        """Checksum of the conntrackd.conf the router's conntrackd was started with."""
        return read_checksum(self._checksum_path(name, CONNTRACKD_CHECKSUM))

    def restart_conntrackd(self, name, checksum):
        """(Re)start the router's conntrackd: it has no reload, a new config means a restart."""
        namespace = namespace_of(name)
        stop_conntrackd(namespace, self.run_dir, name)
        start_conntrackd(namespace, conntrackd_argv(name, self.config_dir, self.conntrackd_bin))
        write_checksum(self._checksum_path(name, CONNTRACKD_CHECKSUM), checksum)

    def stop_conntrackd(self, name):
        stop_conntrackd(namespace_of(name), self.run_dir, name)
