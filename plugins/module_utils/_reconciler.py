# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node reconciler: makes every router of one node match its plan in one call.

Private to the collection. Per router it owns the namespace, its sysctls, the veth
ports, the `ha-` address, the files in `<config_dir>/routers/<name>/`, the nftables
ruleset and, through `RouterProcesses`, keepalived and conntrackd. Per node: the
segments, the kernel limits, purge. One code path for check and apply: each step finds
the differences and queues their mutations in a `Changes`; `Changes.commit` applies the
queue of each router (segment, node) right after it is computed, unless in check mode.
A step that depends on an earlier one is computed against what the earlier one makes
(the ports of a namespace created in this run: an empty `NewNamespace`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._changes import Changes, Unrecorded
from ansible_collections.l3ha.routers.plugins.module_utils._defaults import MODULE_DEFAULTS, RADVD_COMMAND
from ansible_collections.l3ha.routers.plugins.module_utils._files import (
    file_drift, read_text, remove_tree, sha256_text, write_atomic,
)
from ansible_collections.l3ha.routers.plugins.module_utils._keepalived_test import rendered_config_errors
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import (
    Namespace, NetlinkError, create_namespace, delete_namespace, list_namespaces, read_sysctl, write_sysctl,
    write_sysctls,
)
from ansible_collections.l3ha.routers.plugins.module_utils._metrics import (
    ensure_metrics_dir, orphan_router_metrics, remove_router_metrics, write_node_metrics,
)
from ansible_collections.l3ha.routers.plugins.module_utils._node_input import validate_routers
from ansible_collections.l3ha.routers.plugins.module_utils._ports import NewNamespace, ensure_veth
from ansible_collections.l3ha.routers.plugins.module_utils._processes import RouterProcesses
from ansible_collections.l3ha.routers.plugins.module_utils._router_namespace import (
    CREATION_SYSCTLS, NAMESPACE_SYSCTLS, NON_HA_SYSCTLS, clear_leftovers, ensure_static_routes, port_spec,
)
from ansible_collections.l3ha.routers.plugins.module_utils._restore import queue_install
from ansible_collections.l3ha.routers.plugins.module_utils._router_nftables import RouterNftables
from ansible_collections.l3ha.routers.plugins.module_utils._router_runtime import (
    ensure_runtime, ensure_services, settled_state,
)
from ansible_collections.l3ha.routers.plugins.module_utils._router_files import (
    ensure_router_dir, ensure_router_files, restore_unchanged_files,
)
from ansible_collections.l3ha.routers.plugins.module_utils._segments import (
    ensure_segment, marker, segment_links, validate_segments,
)
from ansible_collections.l3ha.routers.plugins.module_utils._supervisor import SupervisorError
from ansible_collections.l3ha.routers.plugins.module_utils._uplink import UplinkMonitor, validate_uplink
from ansible_collections.l3ha.routers.plugins.module_utils._validate import Errors, ValidationError
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    CONNTRACKD_CONF, DRAINED_MARKER, KEEPALIVED_CONF, RADVD_CONF, LINK_MARKER, NFTABLES_RULES, NOTIFY_SCRIPT,
    NODE_SYSCTL_FLOORS, PORT_PREFIXES, ROUTERS_SUBDIR, STATE_DIR_MODE, namespace_of, router_config_dir, router_of,
    router_run_dir,
)


# ---------------------------------------------------------------- reconciler

class NodeReconciler(object):
    """One ha_routers call: `params` are the module's, `check_mode` drops every queued mutation."""

    def __init__(self, params, check_mode=False):
        # copies: restored files must not travel back in the module's invocation
        self.routers = [dict(router) for router in params.get('routers') or []]
        self.segments = params.get('segments') or {}
        self.local_ip = params.get('local_ip')
        self.purge = bool(params.get('purge'))
        self.config_dir = params['config_dir']
        self.run_dir = params['run_dir']
        self.state_dir = params['state_dir']
        option = dict(MODULE_DEFAULTS['ha_routers'], **dict((k, v) for k, v in params.items() if v is not None))
        self.nftables = RouterNftables(option['nft_bin'], self.config_dir, self.run_dir)
        self.sysctl_file = option['sysctl_file']
        self.restore_dir = option['restore_dir']
        self.validate_on_node = bool(option['validate_on_node'])
        self.metrics_dir = option['metrics_dir']
        self.keepalived_bin = option['keepalived_bin']
        self.params = params
        self.processes = RouterProcesses(option['supervisor'], self.config_dir, self.run_dir,
                                         option['keepalived_bin'], option['conntrackd_bin'])
        self.uplink = UplinkMonitor(option['uplink_monitor'], option['uplink_peers'], option['supervisor'],
                                    self.config_dir, self.run_dir, self.metrics_dir, self.local_ip)
        self.check_mode = check_mode
        # one broken router must not stop the others: its problem is kept, the module fails at the end
        self.failures = self.processes.failures

    @property
    def drained(self):
        return os.path.exists(os.path.join(self.state_dir, DRAINED_MARKER))

    def run(self):
        """Validate everything, then reconcile segments, routers, and purge. Returns the
        result. In apply mode the node's metrics then say how the run ended (a failed one
        too: with its exception, which goes on). Input rejected before any change leaves
        them as they were: such a run changes nothing on the node, not even its metrics."""
        try:
            result = self._run()
        except ValidationError:
            raise
        except Exception:
            self._write_node_metrics(success=False)
            raise
        if not result.get('rerender'):  # not the end of a run: the controller calls again
            warning = self._write_node_metrics(success=not result['failures'])
            if warning:
                result['warnings'] = [warning]
        return result

    def _write_node_metrics(self, success):
        """The node's metrics file (not in check mode, not when metrics are off); a warning
        when it cannot be written: metrics never fail a converge."""
        if self.check_mode or not self.metrics_dir:
            return None
        try:
            if self.purge:
                for name in orphan_router_metrics(self.metrics_dir, set(r.get('name') for r in self.routers)):
                    remove_router_metrics(self.metrics_dir, name)
            write_node_metrics(self.metrics_dir, len(self.routers), self.drained, time.time(), success)
        except OSError as exc:
            return 'metrics in %s not written: %s' % (self.metrics_dir, exc)
        return None

    def _run(self):
        stale = restore_unchanged_files(self.routers, self.config_dir)
        root = Namespace(None)
        try:
            errors = Errors()
            validate_routers(self.routers, self.segments, errors)
            validate_segments(self.segments, self.local_ip, root, errors)
            validate_uplink(self.uplink.option, self.uplink.peers, errors)
            errors.raise_if_any()
            if self.validate_on_node and not stale:
                self._validate_configs()
            if stale:
                # nothing done: the controller renders these and calls again
                return {'segments': {}, 'routers': {}, 'purged': [], 'changed': False, 'diff': [],
                        'failures': [], 'rerender': sorted(stale)}
            return self._reconcile(root)
        finally:
            root.close()

    def _validate_configs(self):
        """keepalived -t (radvd --configtest) here, for every config that differs from the
        node's, before anything changes (the controller did not have them)."""
        on_disk, scripts = {}, {}
        for router in self.routers:
            name = router['name']
            directory = router_config_dir(self.config_dir, name)
            texts = dict((f, read_text(os.path.join(directory, f))) for f in (KEEPALIVED_CONF, RADVD_CONF))
            on_disk[name] = {'checksums': dict((f, sha256_text(t)) for f, t in texts.items() if t is not None)}
            scripts[name] = os.path.join(directory, NOTIFY_SCRIPT)
        routers = [r for r in self.routers if KEEPALIVED_CONF in (r.get('files') or {}) and NOTIFY_SCRIPT in r['files']]
        radvd = RADVD_COMMAND if os.access(RADVD_COMMAND, os.X_OK) else None
        problems = rendered_config_errors(routers, scripts, on_disk, keepalived=self.keepalived_bin, where='node',
                                          radvd=radvd)
        if problems:
            raise ValidationError(problems)

    def _reconcile(self, root):
        result = {'segments': {}, 'routers': {}, 'purged': []}
        if not self.check_mode and self.metrics_dir:
            try:  # before keepalived starts: its notify.sh writes there from the first transition
                ensure_metrics_dir(self.metrics_dir)
            except OSError:
                pass  # the node's file is not written either: the run ends with that warning
        diffs = []
        node_changes = Changes('node')
        self._ensure_state_dir_private(node_changes)
        self._ensure_node_sysctls(node_changes)
        if self.restore_dir:
            queue_install(self.params, self.state_dir, self.restore_dir, node_changes)
        # before any keepalived starts: the track files' directories, and the monitor writing them
        self.uplink.ensure(self.routers, self.segments, node_changes)
        node_changes.commit(self.check_mode)
        diffs.extend(node_changes.diffs())
        for name in sorted(self.segments):
            changes = Changes('segment %s' % name)
            ensure_segment(root, name, self.segments[name], self.local_ip, changes)
            changes.commit(self.check_mode)
            result['segments'][name] = changes.result()
            diffs.extend(changes.diffs())
        existing = set(list_namespaces())
        drained = self.drained
        for router in self.routers:
            changes = Changes('router %s' % router['name'])
            try:
                self.reconcile_router(root, router, existing, drained, changes)
            except (OSError, NetlinkError, SupervisorError) as exc:
                self.failures.append('router %s: %s' % (router['name'], exc))
            result['routers'][router['name']] = changes.result()
            diffs.extend(changes.diffs())
        self.processes.wait_started()
        if self.purge:
            for name, changes in self.purge_routers():
                changes.commit(self.check_mode)
                result['purged'].append(name)
                diffs.extend(changes.diffs())
            purge_changes = Changes('root links')
            self.purge_links(root, result['purged'], purge_changes)
            purge_changes.commit(self.check_mode)
            result['purged_links'] = purge_changes.lines()
            diffs.extend(purge_changes.diffs())
        # after the routers: none of them tracks what goes here any more
        uplink_changes = Changes('uplink monitor')
        self.uplink.finish(self.routers, self.segments, uplink_changes)
        uplink_changes.commit(self.check_mode)
        diffs.extend(uplink_changes.diffs())
        result['changed'] = bool(diffs)
        result['diff'] = diffs
        result['failures'] = self.failures
        return result

    def _ensure_node_sysctls(self, changes):
        """Kernel limits of the node, raised to NODE_SYSCTL_FLOORS (absent in a container or lab node),
        and written to sysctl_file so that a reboot keeps them."""
        if self.sysctl_file:
            content = sysctl_file_text()
            if file_drift(self.sysctl_file, content, 0o644):
                changes.add_file(self.sysctl_file, read_text(self.sysctl_file), content,
                                 apply=partial(write_atomic, self.sysctl_file, content, 0o644))
        for key, floor in NODE_SYSCTL_FLOORS:
            current = read_sysctl(key)
            if current is None or int(current) >= floor:
                continue
            changes.add('sysctl ' + key.replace('/', '.'), current, str(floor), apply=partial(write_sysctl, key, floor))

    def _ensure_state_dir_private(self, changes):
        """The state directory, where it exists, is root's alone like the config and run ones."""
        try:
            mode = os.stat(self.state_dir).st_mode & 0o7777
        except OSError:
            return
        if mode != STATE_DIR_MODE:
            changes.add('%s.mode' % self.state_dir, '%04o' % mode, '%04o' % STATE_DIR_MODE,
                        apply=partial(os.chmod, self.state_dir, STATE_DIR_MODE))

    # one router
    def reconcile_router(self, root, router, existing, drained, changes):
        """Find every difference of one router, then apply them in order (unless in check mode)."""
        namespace = namespace_of(router['name'])
        created = namespace not in existing
        ha = router.get('ha', True)
        space = NewNamespace(namespace) if created else Namespace(namespace)
        try:
            if created:
                changes.add('namespace', None, namespace, apply=partial(self._create_namespace, space, ha))
            else:
                self._ensure_sysctls(space, ha, changes)
                self._ensure_loopback(space, changes)
            replaced = self._ensure_ports(root, space, router, changes)
            if not ha:
                ensure_static_routes(space, router, changes, replaced)
            ensure_router_files(self.config_dir, router, changes)
            self._ensure_nftables(router, created, changes)
            # before keepalived: its first transition already talks to conntrackd
            self._ensure_conntrackd(router, created, changes)
            if KEEPALIVED_CONF in router['files']:
                pid = self._ensure_keepalived(space, router, created, drained, changes)
                if ha and pid is not None:
                    self._ensure_runtime(space, router, changes)
            elif not created:
                self._ensure_no_keepalived(router, changes)
            changes.commit(self.check_mode)
        finally:
            space.close()

    def _create_namespace(self, space, ha):
        """Create the router's namespace; its sysctls and `lo` are part of 'created'."""
        create_namespace(space.name)
        space.open()
        details = Unrecorded()
        if ha:
            details.then(partial(write_sysctls, space.name, CREATION_SYSCTLS))
        self._ensure_sysctls(space, ha, details)
        self._ensure_loopback(space, details)
        details.apply()

    def _ensure_sysctls(self, space, ha, changes):
        # without keepalived no notify script switches IPv6 forwarding: always on
        wanted = NAMESPACE_SYSCTLS + (() if ha else NON_HA_SYSCTLS)
        current = space.sysctls([key for key, _value in wanted])
        found = [(key, current[key], value) for key, value in wanted]
        writes = []
        for key, current, value in found:
            if current is not None and current != value:
                changes.add('sysctl ' + key.split('/', 1)[1], current, value)
                writes.append((key, value))
        if writes:
            changes.then(partial(write_sysctls, space.name, writes))

    def _ensure_loopback(self, space, changes):
        lo = space.link('lo')
        if lo is not None and not lo.up:
            changes.add('lo.up', False, True, apply=partial(space.set_link, 'lo', state='up'))

    def _ensure_ports(self, root, space, router, changes):
        """The router's veth ports; returns the names of those deleted or (re)created in this run."""
        wanted = set()
        replaced = set()
        for port in router.get('ports') or []:
            wanted.add(port['name'])
            if ensure_veth(space, root, root, port_spec(router, port, self.segments), changes):
                replaced.add(port['name'])
        # ports of ours that are no longer planned (an internal network removed)
        for link_name in sorted(space.links()):
            if link_name[:3] in PORT_PREFIXES.values() and link_name not in wanted:
                changes.add(link_name, 'present', None, apply=partial(space.delete_link, link_name))
                replaced.add(link_name)
        return replaced

    def _run_dir(self, name, changes):
        changes.then(partial(ensure_router_dir, self.run_dir, name))
        return router_run_dir(self.run_dir, name)

    def _ensure_nftables(self, router, created, changes):
        if NFTABLES_RULES in router['files']:
            self._run_dir(router['name'], changes)
            self.nftables.ensure(router, created, changes)

    def _ensure_conntrackd(self, router, created, changes):
        """conntrackd runs with the router's conntrackd.conf (restarted when it changed), or not at all."""
        name = router['name']
        content = router['files'].get(CONNTRACKD_CONF)
        processes = self.processes
        if content is None:
            if not created and processes.had_conntrackd(name):
                changes.add('conntrackd', 'running' if processes.conntrackd_running(name) else 'stopped', 'absent',
                            apply=partial(processes.stop_conntrackd, name))
            return
        running = not created and processes.conntrackd_running(name)
        self._run_dir(name, changes)
        wanted = sha256_text(content)
        loaded = processes.conntrackd_config(name)
        if running and loaded == wanted:
            return
        restart = partial(processes.restart_conntrackd, name, wanted)
        if running:
            changes.add('conntrackd.config', loaded[:12] if loaded else 'unknown', wanted[:12], apply=restart)
        else:
            changes.add('conntrackd', 'stopped', 'running', apply=restart)

    def _ensure_no_keepalived(self, router, changes):
        """A router that became non-HA: its keepalived goes."""
        name = router['name']
        if self.processes.keepalived_pid(name) is not None:
            changes.add('keepalived', 'running', 'stopped', apply=partial(self.processes.stop_keepalived, name))

    def _ensure_runtime(self, space, router, changes):
        state, text = settled_state(self.run_dir, router['name'], alive=True)
        if state is not None:
            ensure_runtime(space, router, self.run_dir, state, text, changes)
            ensure_services(router, self.config_dir, self.run_dir, state, text, changes)

    def _ensure_keepalived(self, space, router, created, drained, changes):
        """Queue the start or reload keepalived needs; returns its pid when it runs and stays as it is."""
        name = router['name']
        processes = self.processes
        self._run_dir(name, changes)
        wanted = sha256_text(router['files'][KEEPALIVED_CONF])
        loaded = processes.keepalived_config(name)
        pid = None if created else processes.keepalived_pid(name)
        if pid is None and drained:
            return None  # the drain playbook stopped it on purpose
        config_changed = loaded != wanted
        if pid is None:
            changes.add('keepalived', 'stopped', 'running',
                        apply=partial(self._start_keepalived, space, router, created, config_changed, wanted))
        elif config_changed:
            changes.add('keepalived.config', loaded[:12] if loaded else 'unknown', wanted[:12],
                        apply=partial(processes.run_keepalived, name, pid, config_changed, wanted))
            return None
        return pid

    def _start_keepalived(self, space, router, created, config_changed, checksum):
        """Start keepalived on a clean slate: what a dead one left (processes, pid files, VIPs) goes first."""
        self.processes.clear_keepalived(router['name'], created)
        if not created:
            clear_leftovers(space, router)
        self.processes.run_keepalived(router['name'], None, config_changed, checksum)

    # purge
    def owned_namespaces(self):
        """Namespaces of our routers: qrouter-* with a marked ha- port or a router directory."""
        owned = []
        for namespace in list_namespaces():
            name = router_of(namespace)
            if name is None:
                continue
            if os.path.isdir(router_config_dir(self.config_dir, name)):
                owned.append(name)
                continue
            with Namespace(namespace) as space:
                if any(link.name.startswith(PORT_PREFIXES['ha']) and (link.alias or '').startswith(LINK_MARKER)
                       for link in space.links().values()):
                    owned.append(name)
        return owned

    def purge_routers(self):
        """(name, Changes) of each router of ours that is not planned; commit removes it."""
        wanted = set(r['name'] for r in self.routers)
        names = set(self.owned_namespaces())
        routers_dir = os.path.join(self.config_dir, ROUTERS_SUBDIR)
        if os.path.isdir(routers_dir):
            names.update(os.listdir(routers_dir))
        for name in sorted(names - wanted):
            changes = Changes('router %s' % name)
            namespace = namespace_of(name)
            present = namespace in list_namespaces()
            changes.add('router', 'present', None, apply=partial(self.remove_router, name, namespace, present))
            yield name, changes

    def remove_router(self, name, namespace, present):
        if present:
            self.processes.stop_all(name)
            with Namespace(namespace) as space:
                # deleting our end removes the root-side peer with it
                for link in list(space.links().values()):
                    if link.kind == 'veth':
                        space.delete_link(link.name)
            delete_namespace(namespace)
        remove_tree(router_config_dir(self.config_dir, name))
        remove_tree(router_run_dir(self.run_dir, name))
        # last: its notify.sh, stopped above, wrote it for the last time
        remove_router_metrics(self.metrics_dir, name)

    def purge_links(self, root, purged_routers, changes):
        """Marked root links nobody plans (peers of purged routers went with them)."""
        keep = segment_links(self.segments)
        for router in self.routers:
            keep.update(port['peer'] for port in router.get('ports') or [])
        going = set(marker(name) for name in purged_routers)
        if purged_routers:
            changes.then(root.reload)  # removing routers deleted their peers behind the cache
        for link in sorted(root.links().values(), key=lambda link: link.name):
            if (link.alias or '').startswith(LINK_MARKER) and link.name not in keep and link.alias not in going:
                changes.add(link.name, link.alias, None, apply=partial(root.delete_link, link.name))


def sysctl_file_text():
    """The sysctl.d file of NODE_SYSCTL_FLOORS."""
    lines = ['# Managed by l3ha.routers (ha_routers): kernel limits for many router namespaces.']
    lines += ['%s = %d' % (key.replace('/', '.'), floor) for key, floor in NODE_SYSCTL_FLOORS]
    return '\n'.join(lines) + '\n'


def reconcile(params, check_mode):
    return NodeReconciler(params, check_mode).run()
