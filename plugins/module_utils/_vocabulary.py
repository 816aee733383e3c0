# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's vocabulary, defined once: names, patterns, limits, the router file
set and the paths below the configured directories.

Private to the collection. Pure Python with no imports beyond the standard library, so
the planner, the node modules, the action plugins, the lab and the tests all import it
(the lab by file path). Defaults (values a user can change) live in ``_defaults.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

# ---------------------------------------------------------------- names and patterns
NAMESPACE_PREFIX = 'qrouter-'
# veth ends inside a router namespace, by port kind (as Neutron names them).
PORT_PREFIXES = {'ha': 'ha-', 'gateway': 'qg-', 'internal': 'qr-'}
# ifalias of every link the collection creates: 'l3ha:<router or segment>'.
LINK_MARKER = 'l3ha:'
ROUTER_NAME_PATTERN = r'[a-z0-9][a-z0-9-]*'
ROUTER_NAME_RE = re.compile('^%s$' % ROUTER_NAME_PATTERN)
TENANT_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]*$')
NETWORK_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
BRIDGE_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$')
# VRRP states as keepalived's notify reports them (lower case).
VRRP_STATES = ('master', 'backup', 'fault', 'stop')

# ---------------------------------------------------------------- limits
# Router and tenant names: 'qrouter-' + 48 characters stays well inside NAME_MAX (255)
# and leaves room in unit names (l3ha-keepalived@<router>.service).
ROUTER_NAME_MAX = 48
IFNAMSIZ = 15            # kernel device names, without the NUL
VRID_MIN, VRID_MAX = 1, 255          # what VRRP allows
PLANNED_VRID_MAX = 254               # the planner allocates 1..254 per HA segment, as Neutron
VNI_MIN, VNI_MAX = 1, 16777215       # 24-bit VXLAN network identifier
VLAN_ID_MIN, VLAN_ID_MAX = 1, 4094   # 802.1Q (0 and 4095 are reserved)
MTU_MIN, MTU_MAX = 68, 65535
# Kernel limits of a network node, raised (never lowered) by the reconciler where the node
# has them (its initial namespace), and by the lab on its host. The neighbour tables are
# shared by every namespace of a host, and their defaults (gc_thresh3 = 1024 entries) are
# exceeded by a few hundred routers (HA peers, gateways, instances): then every new entry
# forces a GC that evicts another namespace's entries (unanswered ARP, and VRRP adverts to
# an evicted peer can be lost: spurious failovers). A broadcast (ARP, GARP) on a bridge is
# copied to every router port on it in one pass: with 1000 and more ports the per-CPU
# input queue (netdev_max_backlog = 1000) drops the copies to the last ports, every time.
NODE_SYSCTL_FLOORS = (
    ('net/ipv4/neigh/default/gc_thresh1', 8192),
    ('net/ipv4/neigh/default/gc_thresh2', 32768),
    ('net/ipv4/neigh/default/gc_thresh3', 65536),
    ('net/ipv6/neigh/default/gc_thresh1', 8192),
    ('net/ipv6/neigh/default/gc_thresh2', 32768),
    ('net/ipv6/neigh/default/gc_thresh3', 65536),
    ('net/core/netdev_max_backlog', 16384),
    # Every keepalived watches its track files (the uplink monitor's) with an inotify
    # instance of its own, and the default allows 128 per user for the whole host: past
    # that, keepalived runs blind to them (seen in the lab at 100 routers per node: 35 of
    # 100 masters on a dead uplink stayed master).
    ('fs/inotify/max_user_instances', 8192),
)

# ---------------------------------------------------------------- the files of a router
KEEPALIVED_CONF = 'keepalived.conf'
NOTIFY_SCRIPT = 'notify.sh'
NFTABLES_RULES = 'nftables.nft'
CONNTRACKD_CONF = 'conntrackd.conf'
RADVD_CONF = 'radvd.conf'
# Rendered on the controller, written by the reconciler, with their modes. conntrackd.conf
# only for routers that sync connections.
ROUTER_FILES = {
    KEEPALIVED_CONF: 0o600,
    NOTIFY_SCRIPT: 0o700,
    NFTABLES_RULES: 0o600,
    CONNTRACKD_CONF: 0o600,
    RADVD_CONF: 0o600,
}
# Every router gets these; CONNTRACKD_CONF only with conntrackd, RADVD_CONF only with radvd.
ALWAYS_RENDERED = (KEEPALIVED_CONF, NOTIFY_SCRIPT, NFTABLES_RULES)
# Written by the reconciler from the plan entry (router_facts reads it back).
RECORD_FILE = 'router.json'

# ---------------------------------------------------------------- paths on a node
ROUTERS_SUBDIR = 'routers'
DRAINED_MARKER = 'drained'
# In the state directory: the cluster record (module cluster_record) and its lock.
CLUSTER_RECORD = 'cluster.json'
CLUSTER_LOCK = 'cluster.lock'
# In the state directory: the last applied input of ha_routers, for the restore at boot;
# in the restore directory, the program that runs it (module _restore).
DESIRED_STATE = 'desired.json'
RESTORE_LAUNCHER = 'l3ha-restore'
# The state directory is root's alone, like the config and run ones.
STATE_DIR_MODE = 0o700
# In a router's run directory.
STATE_FILE = 'state'
KEEPALIVED_PID = 'keepalived.pid'
VRRP_PID = 'vrrp.pid'
CONFIG_CHECKSUM = 'config.sha256'
NFTABLES_CHECKSUM = 'nftables.sha256'      # 'CHECKSUM GENERATION' of the loaded file
NFTABLES_LISTING = 'nftables.loaded'       # `nft list ruleset` right after the load
NFTABLES_REPAIR = 'nftables.repair'        # the one-transaction repair script
CONNTRACKD_CHECKSUM = 'conntrackd.sha256'
# Named in the router's conntrackd.conf; left behind by a killed conntrackd.
CONNTRACKD_LOCK = 'conntrackd.lock'
CONNTRACKD_SOCKET = 'conntrackd.ctl'
CONNTRACKD_LOG = 'conntrackd.log'
NOTIFY_FIFO = 'notify.fifo'
SYSTEMD_UNIT = 'l3ha-keepalived@%s.service'
# The table drain_stop.sh adds to mute a drained router (roles/l3ha/files, shell: named there too).
DRAIN_NFT_TABLE = 'inet l3ha_drain'
# A router's runtime (addresses, routes, IPv6 forwarding) is compared with its state only
# when keepalived has held that state for this long: a transition in progress is no drift.
RUNTIME_SETTLE_SECONDS = 2.0

# The uplink monitor, one per node (_uplink.py runs _uplink_monitor.py): in
# `<config_dir>/uplink/` its program and configuration; in `<run_dir>/uplink/` its pid,
# status, log, the checksum it was started with and, below `track/<network>/<gateway>`,
# the keepalived track files (1: the routers tracking that gateway go to FAULT).
UPLINK_SUBDIR = 'uplink'
UPLINK_PROGRAM = 'l3ha-uplink'
UPLINK_CONFIG = 'monitor.json'
UPLINK_PID = 'monitor.pid'
UPLINK_STATUS = 'status.json'
UPLINK_LOG = 'monitor.log'
UPLINK_CHECKSUM = 'monitor.sha256'
UPLINK_TRACK_SUBDIR = 'track'
# supervisor systemd: a transient unit (the restore at boot starts it again)
UPLINK_SYSTEMD_UNIT = 'l3ha-uplink.service'

# In the metrics directory (node_exporter's textfile collector reads *.prom): one file per
# router, written by its notify.sh, and one per node, written by the reconciler.
METRICS_ROUTER_FILE = 'l3ha_router_%s.prom'
METRICS_NODE_FILE = 'l3ha_node.prom'
METRICS_UPLINK_FILE = 'l3ha_uplink.prom'   # written by the uplink monitor
METRICS_ROUTER_FILE_RE = re.compile(r'^l3ha_router_(%s)\.prom$' % ROUTER_NAME_PATTERN)


def namespace_of(router):
    """The network namespace of a router."""
    return NAMESPACE_PREFIX + router


def router_of(namespace):
    """The router of a namespace name, or None when it is not a router namespace."""
    if namespace.startswith(NAMESPACE_PREFIX):
        return namespace[len(NAMESPACE_PREFIX):]
    return None


def router_config_dir(config_dir, name):
    return os.path.join(config_dir, ROUTERS_SUBDIR, name)


def router_run_dir(run_dir, name):
    return os.path.join(run_dir, ROUTERS_SUBDIR, name)


def router_metrics_file(metrics_dir, name):
    return os.path.join(metrics_dir, METRICS_ROUTER_FILE % name)


def uplink_dir(base_dir):
    """The uplink monitor's directory below the config or the run directory."""
    return os.path.join(base_dir, UPLINK_SUBDIR)


def uplink_track_file(run_dir, network, gateway):
    """The keepalived track file of one gateway of one external network."""
    return os.path.join(run_dir, UPLINK_SUBDIR, UPLINK_TRACK_SUBDIR, network, gateway)


def uplink_track_name(gateway):
    """The name of a gateway's track_file block in keepalived.conf."""
    return 'uplink_' + gateway.replace('.', '_').replace(':', '_')


def systemd_unit(name):
    return SYSTEMD_UNIT % name


def as_list(value):
    """None -> [], a list or tuple -> a list, anything else -> [it]."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
