#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netns
short_description: Ensure a named network namespace is present or absent
version_added: 1.0.0
description:
  - Creates or removes a named network namespace (C(/run/netns/<name>)), like C(ip netns add/delete),
    over system calls without forking C(ip).
  - Names match exactly; C(r1) and C(r10) are different namespaces.
  - Check mode and apply mode compute the same difference; only the change itself is skipped in check mode.
extends_documentation_fragment:
  - l3ha.routers._attributes
  - l3ha.routers._netlink
options:
  name:
    description: Name of the namespace.
    type: str
    required: true
  state:
    description: Whether the namespace should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Removing a namespace unmounts its name; processes still running in it keep it alive.
author:
  - l3ha.routers developers (@l3ha)
'''

EXAMPLES = r'''
- name: A namespace for a test router
  l3ha.routers.netns:
    name: qrouter-r1

- name: Remove it again
  l3ha.routers.netns:
    name: qrouter-r1
    state: absent
'''

RETURN = r'''
name:
  description: The namespace name.
  returned: always
  type: str
  sample: qrouter-r1
state:
  description: The requested state.
  returned: always
  type: str
  sample: present
changes:
  description: What changed (or would change in check mode), one line per difference.
  returned: always
  type: list
  elements: str
  sample: ["state: absent -> present"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3ha.routers.plugins.module_utils._entry import NETNS_ARGS, run_netns


def main():
    run_netns(AnsibleModule(argument_spec=NETNS_ARGS, supports_check_mode=True))


if __name__ == '__main__':
    main()
