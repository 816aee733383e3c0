# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's Prometheus metrics, in node_exporter's textfile-collector format.

Private to the collection; standard library only. The reconciler writes the node's file
(`l3ha_node.prom`: routers held, drained, last converge time and result) at the end of
each run in apply mode, and removes the file of each router it purges. The routers' own
files (`l3ha_router_<name>.prom`: state, transitions, services) are written by their
notify.sh on every transition, so they are never older than the last failover.
Masters per node are not written here: a count taken at converge time is stale after the
next failover; it is a recording rule over `l3ha_router_state` (examples/prometheus).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.l3ha.routers.plugins.module_utils._files import remove_file, write_atomic
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    METRICS_NODE_FILE, METRICS_ROUTER_FILE_RE, router_metrics_file,
)

# node_exporter runs as its own user: the files and the directory it reads must be readable.
METRICS_FILE_MODE = 0o644
METRICS_DIR_MODE = 0o755

NODE_METRICS = (
    ('l3ha_node_routers', 'Router replicas this node holds (planned here by the last converge).'),
    ('l3ha_node_drained', '1 when the node is drained (l3ha.routers.drain), 0 otherwise.'),
    ('l3ha_node_last_converge_timestamp_seconds', 'When the last ha_routers run on this node ended.'),
    ('l3ha_node_last_converge_success', '1 when the last ha_routers run on this node succeeded, 0 when it failed.'),
)


def node_metrics_text(routers, drained, at, success):
    """The node's metrics file: every value a gauge, in NODE_METRICS order."""
    values = (int(routers), int(bool(drained)), '%.3f' % at, int(bool(success)))
    lines = []
    for (name, help_text), value in zip(NODE_METRICS, values):
        lines += ['# HELP %s %s' % (name, help_text), '# TYPE %s gauge' % name, '%s %s' % (name, value)]
    return '\n'.join(lines) + '\n'


def ensure_metrics_dir(metrics_dir):
    """The directory, made when missing (readable by node_exporter); an existing one is left as it is."""
    if not os.path.isdir(metrics_dir):
        os.makedirs(metrics_dir, METRICS_DIR_MODE)


def write_node_metrics(metrics_dir, routers, drained, at, success):
    """Write `l3ha_node.prom` atomically (a temporary file in the same directory, renamed:
    its name does not end in .prom, so the collector never reads half a file)."""
    ensure_metrics_dir(metrics_dir)
    write_atomic(os.path.join(metrics_dir, METRICS_NODE_FILE), node_metrics_text(routers, drained, at, success),
                 METRICS_FILE_MODE)


def remove_router_metrics(metrics_dir, name):
    """The metrics file of a purged router goes with it."""
    if metrics_dir:
        remove_file(router_metrics_file(metrics_dir, name))


def orphan_router_metrics(metrics_dir, wanted):
    """Routers with a metrics file in `metrics_dir` that are not in `wanted` (a file left
    by a notify.sh that wrote after its router was purged, or by a router removed by hand)."""
    try:
        entries = os.listdir(metrics_dir)
    except OSError:
        return []
    found = (METRICS_ROUTER_FILE_RE.match(entry) for entry in entries)
    return sorted(match.group(1) for match in found if match and match.group(1) not in wanted)
