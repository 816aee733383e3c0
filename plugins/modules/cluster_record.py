#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cluster_record
short_description: Read, commit or roll back the cluster record on a network node
version_added: 2.0.0
description:
  - The cluster record is what every network node keeps of the whole cluster's plan, in
    C(<state_dir>/cluster.json) (see docs/planner.md, "What the cluster knows, and where").
    M(l3ha.routers.plan) starts from the newest one it finds; the role commits the next one
    to every node it reaches before it changes any router.
  - O(state=committed) is a compare-and-swap under a lock on the node. The node must still
    hold the generation the plan started from (O(base)), or an older one. Otherwise
    another run got there first, and the module fails with a message that says which
    generation, when and from which controller.
  - O(state=rolled_back) puts O(previous) back, but only where the record held is still
    the one written by O(run_id), so a run that lost a race leaves nothing behind.
extends_documentation_fragment:
  - l3ha.routers._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  state:
    description: C(read) only reads; C(committed) writes O(record); C(rolled_back) undoes this run's write.
    type: str
    choices: [read, committed, rolled_back]
    default: read
  state_dir:
    description: Directory of the record and its lock; the same as the role's C(l3ha_state_dir).
    type: path
    default: /var/lib/l3ha
  record:
    description: The record to commit (the C(record) of M(l3ha.routers.plan)'s result).
    type: dict
  base:
    description: C(generation) and C(checksum) of the record the plan started from (C(record_base)).
    type: dict
  run_id:
    description: The id of the run whose write O(state=rolled_back) undoes.
    type: str
  previous:
    description: The record to put back with O(state=rolled_back); none removes the file.
    type: dict
author:
  - l3ha.routers developers (@l3ha)
'''

EXAMPLES = r'''
- name: Read the record of a node outside this run
  l3ha.routers.cluster_record:
  delegate_to: net4

- name: Commit the next record
  l3ha.routers.cluster_record:
    state: committed
    record: "{{ l3ha_plan_result.plan.record }}"
    base: "{{ l3ha_plan_result.plan.record_base }}"
'''

RETURN = r'''
record:
  description: The record the node held before this task (none when it had none).
  returned: always
  type: dict
  sample: {format: 1, generation: 3, checksum: "9c1e...", routers: {}, nodes: {}}
conflict:
  description: Whether another run had changed the record (the task then fails).
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3ha.routers.plugins.module_utils._entry import CLUSTER_RECORD_ARGS, run_cluster_record


def main():
    run_cluster_record(AnsibleModule(argument_spec=CLUSTER_RECORD_ARGS, supports_check_mode=True,
                                     required_if=[('state', 'committed', ('record', 'base')),
                                                  ('state', 'rolled_back', ('run_id',))]))


if __name__ == '__main__':
    main()
