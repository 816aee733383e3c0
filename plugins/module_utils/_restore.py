# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-restore at boot: a node rebuilds its routers from its last applied state, alone.

Private to the collection. Two halves of one job:

- In the playbook run (ha_routers, through the reconciler's one gate): the node's
  desired state (the module input, without the file texts, which are on disk and
  checked against router.json) goes to `<state_dir>/desired.json`, and the very code
  of this collection's node side that the module runs goes to `restore_dir`, with a
  launcher. So the restore runs the same reconciler code as the playbook.
- At boot (`l3ha-restore.service`, enabled by the role, started by systemd after the
  network): `main()` waits until the underlay reaches a peer, then reconciles every
  router from that state (namespaces, ports, segments, sysctls, nftables, then the
  keepalived units). Every replica starts as BACKUP (nopreempt), so no master moves.
  A drained node stays drained (the marker is on disk). A router without HA is left
  alone when the controller may have moved it (`restore_non_ha` false): it has no VRRP
  to settle a duplicate, so only a run may confirm it. One line per router and a
  summary go to stdout (the journal); one router failing does not stop the others.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import time
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import STATE_DIR
from ansible_collections.l3ha.routers.plugins.module_utils._files import read_text, write_atomic
from ansible_collections.l3ha.routers.plugins.module_utils._router_files import (
    as_written, read_record, router_file_texts,
)
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import DESIRED_STATE, RESTORE_LAUNCHER

PACKAGE = 'ansible_collections.l3ha.routers.plugins.module_utils'
# How long the restore waits for the underlay to reach one peer before it goes on anyway.
PEER_WAIT = 30.0
LAUNCHER = '''#!/usr/bin/python3
# Written by l3ha.routers (ha_routers): rebuilds this node's routers at boot.
import sys
sys.path.insert(0, %r)
from ansible_collections.l3ha.routers.plugins.module_utils._restore import main
sys.exit(main(sys.argv[1:]))
'''


def desired_text(params):
    """desired.json: the module input minus the file texts (written files are on disk)."""
    state = dict((key, value) for key, value in params.items() if key != 'routers')
    state['routers'] = [dict((k, v) for k, v in router.items() if k != 'files') for router in params.get('routers') or []]
    return json.dumps(state, sort_keys=True, indent=1) + '\n'


def loaded_source(module):
    """The source of a module as this run loaded it (also from inside Ansible's module zip), or None."""
    loader = getattr(module, '__loader__', None)
    if loader is None or not hasattr(loader, 'get_source'):
        return None
    return loader.get_source(module.__name__)


def program_files(restore_dir, modules=None):
    """{path: text} of the restore program: this collection's node-side modules, as loaded."""
    modules = sys.modules if modules is None else modules
    files = {os.path.join(restore_dir, RESTORE_LAUNCHER): LAUNCHER % restore_dir}
    for name, module in sorted(modules.items()):
        if not name.startswith(PACKAGE + '._') or module is None:
            continue
        source = loaded_source(module)
        if source is not None:
            files[os.path.join(restore_dir, *name.split('.')) + '.py'] = source
    return files


def queue_install(params, state_dir, restore_dir, changes):
    """Queue, on the node's change set, what the restore needs and the node lacks."""
    path = os.path.join(state_dir, DESIRED_STATE)
    text = desired_text(params)
    if read_text(path) != text:
        changes.then(partial(write_atomic, path, text, 0o600))
    for target, content in sorted(program_files(restore_dir).items()):
        if read_text(target) != content:
            mode = 0o755 if target.endswith(RESTORE_LAUNCHER) else 0o644
            changes.add_file(target, read_text(target), content, apply=partial(_write, target, content, mode))


def _write(path, content, mode):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    write_atomic(path, content, mode)


def _remotes(state):
    found = []
    for segment in (state.get('segments') or {}).values():
        for ip in segment.get('remotes') or []:
            if ip not in found:
                found.append(ip)
    return found


def wait_for_a_peer(remotes, log, deadline=PEER_WAIT, ping=None):
    """Wait until one peer's tunnel address answers, so a router never starts cut off
    from its peers (it would become master beside the real one: Neutron bug 1597461)."""
    ping = ping or _ping
    if not remotes:
        return True
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for ip in remotes:
            if ping(ip):
                log('underlay: %s answers' % ip)
                return True
        time.sleep(0.2)
    log('underlay: no peer answered in %d s (%s); restoring anyway' % (deadline, ', '.join(remotes)))
    return False


def _ping(ip):
    return subprocess.call(['ping', '-n', '-q', '-c', '1', '-W', '1', ip],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def restorable(state, log):
    """The routers to restore, each with its files from disk (only files as written)."""
    routers = []
    for router in state.get('routers') or []:
        name = router.get('name')
        if not router.get('ha', True) and not state.get('restore_non_ha', True):
            log('router %s: not restored: no HA, and it may have moved while the node was down '
                '(l3ha_reschedule_unreachable); the next run decides' % name)
            continue
        files = router_file_texts(state['config_dir'], name)
        if not as_written(files, read_record(state['config_dir'], name)):
            log('router %s: not restored: its files are not as the last run wrote them' % name)
            continue
        routers.append(dict(router, files=files))
    return routers


def journal(line):
    """One line on stdout, which systemd gives to the journal."""
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def restore(state_dir, log=journal, reconcile=None, ping=None):
    """Rebuild the routers of desired.json; returns the exit code (0: all restored)."""
    if reconcile is None:
        from ansible_collections.l3ha.routers.plugins.module_utils._reconciler import reconcile
    text = read_text(os.path.join(state_dir, DESIRED_STATE))
    if not text:
        log('l3ha-restore: no %s in %s: nothing to restore' % (DESIRED_STATE, state_dir))
        return 0
    state = json.loads(text)
    routers = restorable(state, log)
    wait_for_a_peer(_remotes(state), log, ping=ping)
    params = dict(state, routers=routers, purge=False)
    params.pop('restore_dir', None)  # the program stays as the last run wrote it
    started = time.monotonic()
    result = reconcile(params, False)
    # failures are 'router <name>: <problem>'
    failed = dict(f[len('router '):].split(': ', 1) for f in result.get('failures') or []
                  if f.startswith('router ') and ': ' in f)
    for router in routers:
        name = router['name']
        if name in failed:
            log('router %s: FAILED: %s' % (name, failed[name]))
        else:
            changed = (result['routers'].get(name) or {}).get('changed')
            log('router %s: restored (%s)' % (name, 'changed' if changed else 'already in place'))
    skipped = len(state.get('routers') or []) - len(routers)
    log('l3ha-restore: %d router(s) restored, %d failed, %d left for the next run, in %.1f s'
        % (len(routers) - len(failed), len(failed), skipped, time.monotonic() - started))
    return 1 if failed else 0


def main(argv):
    state_dir = argv[argv.index('--state-dir') + 1] if '--state-dir' in argv else STATE_DIR
    return restore(state_dir)
