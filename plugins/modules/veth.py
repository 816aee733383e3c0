#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: veth
short_description: Ensure a veth pair, its ends' namespaces, addresses and the peer's bridge
version_added: 1.0.0
description:
  - Ensures a veth pair whose end O(name) is in O(namespace) and whose other end O(peer) is in
    O(peer_namespace), over netlink (pyroute2).
  - An end found in the wrong namespace is moved. A pair whose ends are not each other's peer is
    deleted and created again.
  - Check mode and apply mode compute the same difference; only the changes are skipped in check mode.
  - The node reconciler M(l3ha.routers.ha_routers) uses the same code for router ports.
extends_documentation_fragment:
  - l3ha.routers._attributes
  - l3ha.routers._netlink
options:
  name:
    description: Device name of the end in O(namespace), at most 15 characters.
    type: str
    required: true
  peer:
    description: Device name of the other end, in O(peer_namespace), at most 15 characters.
    type: str
    required: true
  namespace:
    description: Named namespace of O(name). Omitted means the namespace the module runs in.
    type: str
  peer_namespace:
    description: Named namespace of O(peer). Omitted means the namespace the module runs in.
    type: str
  state:
    description: C(absent) deletes the pair (deleting one end deletes both).
    type: str
    choices: [present, absent]
    default: present
  mac:
    description: MAC address of O(name). Omitted means any.
    type: str
  peer_mac:
    description: MAC address of O(peer). Omitted means any.
    type: str
  mtu:
    description: MTU of both ends. Omitted means any.
    type: int
  up:
    description: Whether both ends are administratively up.
    type: bool
    default: true
  addresses:
    description:
      - Addresses (with prefix length) O(name) must carry. Omitted means addresses are not managed.
    type: list
    elements: str
  peer_addresses:
    description: Addresses O(peer) must carry. Omitted means addresses are not managed.
    type: list
    elements: str
  exclusive_addresses:
    description:
      - Remove every other address from an end whose address list is given (IPv6 link-local
        addresses are kept). Give the full list in one call.
    type: bool
    default: false
  peer_master:
    description: Bridge in O(peer_namespace) that O(peer) is attached to. It must exist.
    type: str
  alias:
    description: ifalias of O(name).
    type: str
  peer_alias:
    description: ifalias of O(peer).
    type: str
author:
  - l3ha.routers developers (@l3ha)
'''

EXAMPLES = r'''
- name: A router port with its peer on the external bridge
  l3ha.routers.veth:
    name: qg-1a2b3c4d
    namespace: qrouter-r1
    peer: vqg1a2b3c4d
    peer_master: br-ex
    mac: "fa:16:3e:1a:2b:3c"
    mtu: 1500
    addresses: [203.0.113.10/24]
    exclusive_addresses: true

- name: Remove the pair
  l3ha.routers.veth:
    name: qg-1a2b3c4d
    namespace: qrouter-r1
    peer: vqg1a2b3c4d
    state: absent
'''

RETURN = r'''
changes:
  description: What changed (or would change in check mode), one line per difference.
  returned: always
  type: list
  elements: str
  sample: ["qg-1a2b3c4d.mtu: 1450 -> 1500", "vqg1a2b3c4d.master: absent -> br-ex"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3ha.routers.plugins.module_utils._entry import VETH_ARGS, run_veth


def main():
    run_veth(AnsibleModule(argument_spec=VETH_ARGS, supports_check_mode=True))


if __name__ == '__main__':
    main()
