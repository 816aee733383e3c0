# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's uplink monitor, as the reconciler installs, runs and removes it.

Private to the collection. From the node's plan it derives the monitor's configuration:
every external network that HA routers of this node use as gateway network, its bridge,
the distinct gateway addresses with their keepalived track files, and the peer nodes'
tunnel addresses (the planner's `uplink_peers`). It writes the program
(``_uplink_monitor.py``, as this run loaded it) and the configuration into
``<config_dir>/uplink/``, makes the track directories before any keepalived starts, and
(re)starts the monitor when either changed or it is not running: a daemon of its own
under supervisor ``reconciler`` (it restarts itself when it dies), a transient systemd
unit with ``Restart=always`` under ``systemd``. When no network is to be watched (monitor
off, no gateway), it stops the monitor and removes its files after the routers were
reconciled, so no keepalived still tracking a file loses it first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import sys
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils import _uplink_monitor
from ansible_collections.l3ha.routers.plugins.module_utils._files import (
    ensure_dir, read_checksum, read_text, remove_file, remove_tree, sha256_text, write_atomic, write_checksum,
)
from ansible_collections.l3ha.routers.plugins.module_utils._restore import loaded_source
from ansible_collections.l3ha.routers.plugins.module_utils._supervisor import (
    Started, pid_running, read_pid, run_in, stop_process,
)
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    METRICS_UPLINK_FILE, UPLINK_CHECKSUM, UPLINK_CONFIG, UPLINK_LOG, UPLINK_PID, UPLINK_PROGRAM, UPLINK_STATUS,
    UPLINK_SYSTEMD_UNIT, UPLINK_TRACK_SUBDIR, uplink_dir, uplink_track_file,
)

SYSTEMCTL = 'systemctl'
SYSTEMD_RUN = 'systemd-run'
# systemd restarts a monitor that died after this long, however often.
RESTART_SEC = '0.5'


def validate_uplink(option, peers, errors):
    """The module's `uplink_monitor` and `uplink_peers` options, each error naming the field."""
    if option is None:
        return
    owner = 'uplink_monitor'
    if not isinstance(option, dict):
        errors.add(owner, 'uplink_monitor', 'must be a dict (interval, fall, rise, port) or null, got %r' % (option,))
        return
    for field, kind, low, high in (('interval', (int, float), 0.01, 60), ('fall', int, 1, 100),
                                   ('rise', int, 1, 100), ('port', int, 1, 65535)):
        value = option.get(field)
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            errors.add(owner, field, 'must be a number from %s to %s, got %r' % (low, high, value))
    if not isinstance(peers, dict):
        errors.add(owner, 'uplink_peers', 'must be a dict of network: [tunnel addresses], got %r' % (peers,))
        return
    for network, addresses in sorted(peers.items()):
        for address in addresses if isinstance(addresses, list) else [addresses]:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                errors.add(owner, 'uplink_peers.%s' % network, '%r is not an IP address' % (address,))


def program_text(interpreter=None, module=_uplink_monitor):
    """The monitor program: this run's interpreter, then the module's source as loaded."""
    source = loaded_source(module)
    if source is None:
        with open(module.__file__) as handle:
            source = handle.read()
    return '#!%s\n%s' % (interpreter or sys.executable, source)


def monitored_networks(routers, segments, peers, run_dir):
    """{network: {bridge, gateways: {ip: track file}, peers}} of the HA routers' gateways."""
    networks = {}
    for router in routers:
        gateway = router.get('gateway')
        if not router.get('ha', True) or not gateway:
            continue
        network = gateway.get('network')
        segment = segments.get(network) or {}
        if not segment.get('bridge'):
            continue
        entry = networks.setdefault(network, {'bridge': segment['bridge'], 'gateways': {},
                                              'peers': sorted(set((peers or {}).get(network) or []))})
        for ip in gateway.get('gateway_ips') or []:
            ip = str(ipaddress.ip_address(ip))  # as the view names the track file, and as replies carry it
            entry['gateways'][ip] = uplink_track_file(run_dir, network, ip)
    return dict((name, entry) for name, entry in networks.items() if entry['gateways'])


class UplinkMonitor(object):
    """The monitor of one reconciler run."""

    def __init__(self, option, peers, supervisor, config_dir, run_dir, metrics_dir, local_ip,
                 systemctl=SYSTEMCTL, systemd_run=SYSTEMD_RUN):
        self.option = option
        self.peers = peers or {}
        self.supervisor = supervisor
        self.config_dir = uplink_dir(config_dir)
        self.run_dir = run_dir
        self.state = uplink_dir(run_dir)
        self.metrics_dir = metrics_dir
        self.local_ip = local_ip
        self.systemctl = systemctl
        self.systemd_run = systemd_run
        self.program = os.path.join(self.config_dir, UPLINK_PROGRAM)
        self.config_file = os.path.join(self.config_dir, UPLINK_CONFIG)
        self.pid_file = os.path.join(self.state, UPLINK_PID)
        self.checksum_file = os.path.join(self.state, UPLINK_CHECKSUM)

    def config(self, routers, segments):
        """The monitor's configuration, or None when it has nothing to watch."""
        if self.option is None:
            return None
        networks = monitored_networks(routers, segments, self.peers, self.run_dir)
        if not networks:
            return None
        return {
            'node': os.uname()[1], 'local_ip': self.local_ip, 'port': self.option['port'],
            'interval': self.option['interval'], 'fall': self.option['fall'], 'rise': self.option['rise'],
            'pid_file': self.pid_file, 'status_file': os.path.join(self.state, UPLINK_STATUS),
            'log_file': os.path.join(self.state, UPLINK_LOG) if self.supervisor != 'systemd' else None,
            'metrics_file': os.path.join(self.metrics_dir, METRICS_UPLINK_FILE) if self.metrics_dir else None,
            'networks': networks,
        }

    def running(self):
        """pid of the running monitor, else None (a recycled pid does not count)."""
        pid = pid_running(self.pid_file)
        if pid is None:
            return None
        try:
            with open('/proc/%d/comm' % pid) as handle:
                return pid if handle.read().strip() == UPLINK_PROGRAM else None
        except (IOError, OSError):
            return None

    def ensure(self, routers, segments, changes):
        """Queue what makes the monitor run with this run's configuration (before the routers)."""
        config = self.config(routers, segments)
        if config is None:
            return
        program = program_text()
        text = json.dumps(config, indent=1, sort_keys=True) + '\n'
        for path, content, mode in ((self.program, program, 0o700), (self.config_file, text, 0o600)):
            current = read_text(path)
            if current != content:
                changes.add_file(path, current, content, apply=partial(_write, path, content, mode))
        for network in config['networks'].values():
            for track in network['gateways'].values():
                changes.then(partial(ensure_dir, os.path.dirname(track)))
        wanted = sha256_text(program + text)
        pid = self.running()
        loaded = read_checksum(self.checksum_file)
        if pid is None:
            changes.add('uplink monitor', 'stopped', 'running', apply=partial(self._start, wanted))
        elif loaded != wanted:
            changes.add('uplink monitor.config', loaded[:12] if loaded else 'unknown', wanted[:12],
                        apply=partial(self._restart, pid, wanted))

    def finish(self, routers, segments, changes):
        """Queue, after the routers, the removal of a monitor with nothing to watch, and of
        the track files of gateways no longer watched."""
        config = self.config(routers, segments)
        if config is None:
            if self.running() is not None or os.path.exists(self.config_dir) or os.path.exists(self.state):
                changes.add('uplink monitor', 'present', None, apply=self.remove)
            return
        wanted = set(track for network in config['networks'].values() for track in network['gateways'].values())
        track_root = os.path.join(self.state, UPLINK_TRACK_SUBDIR)
        for directory, _dirs, files in os.walk(track_root):
            for fname in files:
                path = os.path.join(directory, fname)
                if path not in wanted and not fname.endswith('.tmp'):  # .tmp: the monitor is writing
                    changes.add(path, 'present', None, apply=partial(remove_file, path))

    def _start(self, checksum):
        ensure_dir(self.state)
        if self.supervisor == 'systemd':
            # a unit left from before (its process gone, or failed) would make systemd-run refuse
            self._systemctl([self.systemctl, 'stop', UPLINK_SYSTEMD_UNIT], check=False)
            self._systemctl([self.systemctl, 'reset-failed', UPLINK_SYSTEMD_UNIT], check=False)
            self._systemctl([self.systemd_run, '--quiet', '--collect', '--unit=' + UPLINK_SYSTEMD_UNIT,
                             '-p', 'Restart=always', '-p', 'RestartSec=' + RESTART_SEC,
                             '-p', 'StartLimitIntervalSec=0',
                             self.program, '--config', self.config_file])
        else:
            Started(None, [self.program, '--config', self.config_file, '--daemon']).wait()
        write_checksum(self.checksum_file, checksum)

    def _restart(self, pid, checksum):
        """A new configuration: the monitor starts again (the track files keep their values)."""
        if self.supervisor == 'systemd':
            self._systemctl([self.systemctl, 'restart', UPLINK_SYSTEMD_UNIT])
            write_checksum(self.checksum_file, checksum)
            return
        stop_process(pid)
        self._start(checksum)

    def stop(self):
        if self.supervisor == 'systemd':
            self._systemctl([self.systemctl, 'stop', UPLINK_SYSTEMD_UNIT], check=False)
        pid = read_pid(self.pid_file)
        if pid is not None and self.running() == pid:
            stop_process(pid)

    def remove(self):
        self.stop()
        remove_tree(self.config_dir)
        remove_tree(self.state)
        if self.metrics_dir:
            remove_file(os.path.join(self.metrics_dir, METRICS_UPLINK_FILE))

    def _systemctl(self, argv, check=True):
        try:
            run_in(None, argv, 'systemd for the uplink monitor')
        except Exception:
            if check:
                raise


def _write(path, content, mode):
    ensure_dir(os.path.dirname(path))
    write_atomic(path, content, mode)
