# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is on a node now, read from files and /proc only (no forks: 1000 routers)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket

from ansible_collections.l3ha.routers.plugins.module_utils._cluster_store import read as read_cluster_record
from ansible_collections.l3ha.routers.plugins.module_utils._files import read_text, sha256_text
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import list_namespaces
from ansible_collections.l3ha.routers.plugins.module_utils._router_files import as_written, read_record, router_file_texts
from ansible_collections.l3ha.routers.plugins.module_utils._services import SERVICE_FILE_RE, service_pid_path
from ansible_collections.l3ha.routers.plugins.module_utils._supervisor import keepalived_pid, pid_running
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    ALWAYS_RENDERED, CONFIG_CHECKSUM, RADVD_CONF, DRAINED_MARKER, ROUTERS_SUBDIR, STATE_FILE, VRRP_STATES, namespace_of, router_of,
    router_run_dir,
)


def parse_state(text):
    """'master 1764100000.123' -> ('master', 1764100000.123); unknown -> (None, None)."""
    if not text:
        return None, None
    parts = text.split()
    state = parts[0].lower() if parts else None
    if state not in VRRP_STATES:
        return None, None
    try:
        since = float(parts[1]) if len(parts) > 1 else None
    except ValueError:
        since = None
    return state, since


def services_running(run, names):
    """{service: running} of a router's master-only services, from their pid files."""
    return dict((name, pid_running(service_pid_path(run, name)) is not None) for name in names)


def router_facts(name, config_dir, run_dir, namespaces):
    record = read_record(config_dir, name)
    run = router_run_dir(run_dir, name)
    state, since = parse_state(read_text(os.path.join(run, STATE_FILE)))
    namespace = namespace_of(name)
    alive = namespace in namespaces and keepalived_pid(run_dir, name, namespace) is not None
    files = router_file_texts(config_dir, name)
    # the files whose checksums the action plugin compares (conntrackd.conf is not validated)
    checksums = dict((fname, sha256_text(files[fname])) for fname in ALWAYS_RENDERED + (RADVD_CONF,) if fname in files)
    loaded = (read_text(os.path.join(run, CONFIG_CHECKSUM)) or '').strip() or None
    # master-only services that recorded a pid (they remove it when stopped)
    services = {}
    if alive and os.path.isdir(run):
        names = [f[len('service-'):-len('.pid')] for f in os.listdir(run) if SERVICE_FILE_RE.match(f)]
        services = services_running(run, sorted(names))
    return {
        'tenant': record.get('tenant'),
        'vrid': record.get('vrid'),
        'segment': record.get('segment'),
        'ha_address': record.get('ha_address'),
        'namespace_present': namespace in namespaces,
        # a dead keepalived's last state is stale: report it as stop
        'state': state if alive else 'stop' if state else None,
        'since': since,
        'keepalived_alive': alive,
        'checksums': checksums,
        'loaded_config_checksum': loaded,
        'services': services,
        'metadata': record.get('metadata') or {},
        # what its files were rendered from, while they are as written (else null: render again)
        'inputs_checksum': record.get('inputs_checksum') if as_written(files, record) else None,
    }


def gather(config_dir, run_dir, state_dir, node_name=None):
    """ansible_facts for router_facts: every router with a directory or a namespace here."""
    namespaces = set(list_namespaces())
    names = set()
    routers_dir = os.path.join(config_dir, ROUTERS_SUBDIR)
    if os.path.isdir(routers_dir):
        names.update(n for n in os.listdir(routers_dir) if os.path.isdir(os.path.join(routers_dir, n)))
    names.update(router_of(ns) for ns in namespaces if router_of(ns))
    return {
        'l3ha_node': {
            'name': node_name or socket.gethostname(),
            'drained': os.path.exists(os.path.join(state_dir, DRAINED_MARKER)),
            # systemd is the service manager (sd_booted(3): the directory exists)
            'systemd': os.path.isdir('/run/systemd/system'),
        },
        'l3ha_router_facts': dict((name, router_facts(name, config_dir, run_dir, namespaces))
                                  for name in sorted(names)),
        'l3ha_cluster_record': read_cluster_record(state_dir),
    }
