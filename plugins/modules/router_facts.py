#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: router_facts
short_description: Report the HA routers on a network node
version_added: 1.0.0
description:
  - Reports every router that has a directory in C(<config_dir>/routers/) or a C(qrouter-*) namespace,
    with its planned values (from C(router.json)), its VRRP state and since when (from the state file
    written by the notify script), whether keepalived is alive, and checksums of its files.
  - Reads files and C(/proc) only, so it stays fast with 1000 routers.
  - The planner uses it for stable placement; the status playbook prints it.
extends_documentation_fragment:
  - l3ha.routers._attributes
  - l3ha.routers._paths
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: It changes nothing.
  idempotent:
    support: full
options:
  node_name:
    description: Name to report in C(l3ha_node.name). Default is the host name.
    type: str
author:
  - l3ha.routers developers (@l3ha)
'''

EXAMPLES = r'''
- name: What runs here
  l3ha.routers.router_facts:

- name: Masters on this node
  ansible.builtin.debug:
    msg: "{{ ansible_facts.l3ha_router_facts | dict2items | selectattr('value.state', 'eq', 'master') | map(attribute='key') }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts about the node and its routers.
  returned: always
  type: dict
  contains:
    l3ha_node:
      description: C(name), C(drained) (the drained marker exists) and C(systemd) (systemd is the service manager).
      type: dict
      sample: {name: net1, drained: false, systemd: true}
    l3ha_cluster_record:
      description:
        - The cluster record this node holds (C(<state_dir>/cluster.json), see M(l3ha.routers.cluster_record)),
          or none. M(l3ha.routers.plan) starts from the newest one among the nodes.
      type: dict
      sample: {format: 1, generation: 3, checksum: "9c1e...", routers: {}, nodes: {}}
    l3ha_router_facts:
      description:
        - Per router name, C(tenant), C(vrid), C(segment), C(ha_address) and C(metadata) from
          C(router.json); C(state) (master, backup, fault, stop; C(stop) when keepalived is dead) and
          C(since) (epoch seconds) from the state file; C(keepalived_alive); C(namespace_present);
          C(checksums) (sha256 per file); C(loaded_config_checksum) (the config keepalived last loaded);
          C(inputs_checksum) (the checksum of what the files were rendered from, see M(l3ha.routers.ha_routers); null
          when a file is not as it was written).
      type: dict
      sample:
        r1:
          tenant: demo
          vrid: 1
          segment: ha-demo-0
          ha_address: 169.254.192.1/18
          state: master
          since: 1764100000.123
          keepalived_alive: true
          namespace_present: true
          checksums: {keepalived.conf: "3f5a..."}
          loaded_config_checksum: "3f5a..."
          metadata: {}
          inputs_checksum: "9c1e..."
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3ha.routers.plugins.module_utils._entry import ROUTER_FACTS_ARGS, run_router_facts


def main():
    run_router_facts(AnsibleModule(argument_spec=ROUTER_FACTS_ARGS, supports_check_mode=True))


if __name__ == '__main__':
    main()
