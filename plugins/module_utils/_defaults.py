# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every default of the collection, defined once.

Private to the collection; standard library only. The planner, the render settings of
the action plugin and the modules' argument specs take their defaults from here. The
role's ``defaults/main.yml`` and ``meta/argument_specs.yml`` and the modules'
DOCUMENTATION repeat the values for their readers: ``tests/unit/test_defaults.py`` fails
when any of them differs from this file (``ROLE_DEFAULTS`` names which is which).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Paths on a network node.
CONFIG_DIR = '/etc/l3ha'
RUN_DIR = '/run/l3ha'
STATE_DIR = '/var/lib/l3ha'
SYSTEMD_UNIT_DIR = '/etc/systemd/system'
# node_exporter's textfile collector directory on Debian and Ubuntu (prometheus-node-exporter);
# an empty string writes no metrics.
METRICS_DIR = '/var/lib/prometheus/node-exporter'

# Commands on a network node (Debian and Ubuntu install them there).
KEEPALIVED_COMMAND = '/usr/sbin/keepalived'
NFT_COMMAND = '/usr/sbin/nft'
CONNTRACKD_COMMAND = '/usr/sbin/conntrackd'
RADVD_COMMAND = '/usr/sbin/radvd'
IP_COMMAND = '/usr/sbin/ip'

NODES_GROUP = 'l3ha_network_nodes'

# The planner's options (module l3ha.routers.plan).
PLAN_OPTIONS = {
    'default_ha': True,
    'max_nodes_per_router': 3,
    'min_nodes_per_router': 2,
    'ha_network_cidr': '169.254.192.0/18',
    'ha_network_type': 'vxlan',
    'ha_bridge': None,
    'ha_vni_range': [2000, 2999],
    'reschedule_unreachable': False,
    'vxlan_remote_vteps': [],
    'priority': 254,
    'underlay_mtu': 1500,
}

# The advert interval of each profile: 0.1 s adverts fail over in 0.2-0.4 s; at several
# hundred routers per node their CPU cost needs 0.5 s (docs/benchmarks.md).
PROFILES = {'standard': 0.1, 'large': 0.5}
PROFILE = 'standard'

# The health check (track_script) of a router, when enabled.
HEALTH_CHECK = {'interval': 1, 'timeout': 1, 'fall': 2, 'rise': 2, 'gateway': True}

# The uplink monitor (one per node, on by default): a probe of each gateway every
# `interval` s, down after `fall` unanswered in a row, up after `rise` answers in a row;
# peers exchange their view on UDP `port` of the underlay (tunnel) addresses.
UPLINK_MONITOR = {'interval': 0.1, 'fall': 3, 'rise': 3, 'port': 7079}

# What the templates render with (the ``render`` option of l3ha.routers.ha_routers).
RENDER_SETTINGS = {
    'advert_int': PROFILES[PROFILE],
    'vrrp_version': 3,
    'garp_repeat': 3,
    'garp_delay': 5,
    'auth_pass': None,
    'hooks': {},
    'check': None,
    'log_max_bytes': 65536,
    'track_ports': [],
    'config_dir': CONFIG_DIR,
    'run_dir': RUN_DIR,
    'metrics_dir': METRICS_DIR,
    'conntrackd': False,
    'conntrackd_command': CONNTRACKD_COMMAND,
    'master_services': [],
    'radvd': True,
    'radvd_command': RADVD_COMMAND,
    'supervisor': 'reconciler',
    'uplink_monitor': True,
}

TEMPLATES = {
    'keepalived.conf': 'keepalived.conf.j2',
    'notify.sh': 'notify.sh.j2',
    'nftables.nft': 'nftables.nft.j2',
    'conntrackd.conf': 'conntrackd.conf.j2',
    'radvd.conf': 'radvd.conf.j2',
}

DRAIN_TIMEOUT = 60

# Role variable -> its default, for every role default that is not a template expression.
# (l3ha_advert_int is '{{ ... [l3ha_profile] }}' over PROFILES; the test checks it apart.)
ROLE_DEFAULTS = {
    'l3ha_network_nodes_group': NODES_GROUP,
    'l3ha_routers': [],
    'l3ha_networks': {},
    'l3ha_default_ha': PLAN_OPTIONS['default_ha'],
    'l3ha_max_nodes_per_router': PLAN_OPTIONS['max_nodes_per_router'],
    'l3ha_min_nodes_per_router': PLAN_OPTIONS['min_nodes_per_router'],
    'l3ha_ha_network_cidr': PLAN_OPTIONS['ha_network_cidr'],
    'l3ha_ha_network_type': PLAN_OPTIONS['ha_network_type'],
    'l3ha_ha_bridge': '',
    'l3ha_ha_vni_range': PLAN_OPTIONS['ha_vni_range'],
    'l3ha_reschedule_unreachable': PLAN_OPTIONS['reschedule_unreachable'],
    'l3ha_vxlan_remote_vteps': PLAN_OPTIONS['vxlan_remote_vteps'],
    'l3ha_vrrp_priority': PLAN_OPTIONS['priority'],
    'l3ha_underlay_mtu': PLAN_OPTIONS['underlay_mtu'],
    'l3ha_config_dir': CONFIG_DIR,
    'l3ha_run_dir': RUN_DIR,
    'l3ha_state_dir': STATE_DIR,
    'l3ha_metrics_dir': METRICS_DIR,
    'l3ha_install_packages': True,
    'l3ha_packages': ['keepalived', 'nftables', 'iproute2', 'iputils-ping', 'python3-pyroute2', 'radvd'],
    'l3ha_conntrackd_packages': ['conntrackd'],
    'l3ha_supported_distributions': ['Debian 12', 'Ubuntu 24.04'],
    'l3ha_sysctl_file': '/etc/sysctl.d/60-l3ha.conf',
    'l3ha_restore_dir': '/usr/local/lib/l3ha',
    'l3ha_purge': True,
    'l3ha_supervisor': 'auto',
    'l3ha_keepalived_command': KEEPALIVED_COMMAND,
    'l3ha_nft_command': NFT_COMMAND,
    'l3ha_ip_command': IP_COMMAND,
    'l3ha_systemd_unit_dir': SYSTEMD_UNIT_DIR,
    'l3ha_profile': PROFILE,
    'l3ha_garp_master_repeat': RENDER_SETTINGS['garp_repeat'],
    'l3ha_garp_master_delay': RENDER_SETTINGS['garp_delay'],
    'l3ha_vrrp_auth_pass': '',
    'l3ha_vrrp_version': RENDER_SETTINGS['vrrp_version'],
    'l3ha_health_check': False,
    'l3ha_health_check_interval': HEALTH_CHECK['interval'],
    'l3ha_health_check_timeout': HEALTH_CHECK['timeout'],
    'l3ha_health_check_fall': HEALTH_CHECK['fall'],
    'l3ha_health_check_rise': HEALTH_CHECK['rise'],
    'l3ha_health_check_gateway': HEALTH_CHECK['gateway'],
    'l3ha_uplink_monitor': RENDER_SETTINGS['uplink_monitor'],
    'l3ha_uplink_monitor_interval': UPLINK_MONITOR['interval'],
    'l3ha_uplink_monitor_fall': UPLINK_MONITOR['fall'],
    'l3ha_uplink_monitor_rise': UPLINK_MONITOR['rise'],
    'l3ha_uplink_monitor_port': UPLINK_MONITOR['port'],
    'l3ha_notify_hooks': RENDER_SETTINGS['hooks'],
    'l3ha_keepalived_template': TEMPLATES['keepalived.conf'],
    'l3ha_notify_template': TEMPLATES['notify.sh'],
    'l3ha_nftables_template': TEMPLATES['nftables.nft'],
    'l3ha_conntrackd_template': TEMPLATES['conntrackd.conf'],
    'l3ha_validate': True,
    'l3ha_conntrackd': RENDER_SETTINGS['conntrackd'],
    'l3ha_conntrackd_command': CONNTRACKD_COMMAND,
    'l3ha_master_services': RENDER_SETTINGS['master_services'],
    'l3ha_radvd': RENDER_SETTINGS['radvd'],
    'l3ha_radvd_command': RADVD_COMMAND,
    'l3ha_radvd_template': TEMPLATES['radvd.conf'],
    'l3ha_status_json': '',
    'l3ha_drain_node': '',
    'l3ha_retire_node': '',
    'l3ha_drain_timeout': DRAIN_TIMEOUT,
    'l3ha_status_drift': True,
}

# Module option -> default, for the modules whose options mirror role variables.
MODULE_DEFAULTS = {
    'ha_routers': {
        'config_dir': CONFIG_DIR, 'run_dir': RUN_DIR, 'state_dir': STATE_DIR, 'metrics_dir': METRICS_DIR,
        'keepalived_bin': KEEPALIVED_COMMAND, 'nft_bin': NFT_COMMAND, 'conntrackd_bin': CONNTRACKD_COMMAND,
        'supervisor': 'reconciler', 'purge': False, 'sysctl_file': '', 'restore_dir': '', 'restore_non_ha': True,
        'validate_on_node': False, 'uplink_monitor': None, 'uplink_peers': {},
    },
    'router_facts': {'config_dir': CONFIG_DIR, 'run_dir': RUN_DIR, 'state_dir': STATE_DIR},
    'cluster_record': {'state_dir': STATE_DIR, 'state': 'read'},
    'plan': dict(PLAN_OPTIONS, nodes_group=NODES_GROUP),
}
