#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ha_routers
short_description: Reconcile all HA routers of a network node in one call
version_added: 1.0.0
description:
  - Makes the node match its plan for every router in O(routers), over netlink (pyroute2), in one
    module call (no per-router forks of C(ip)).
  - Per router it owns the namespace C(qrouter-<name>) and its sysctls, the veth ports (router end
    in the namespace, peer on the segment's bridge), the C(ha-) address (VIPs and routes belong to
    keepalived), the files in C(<config_dir>/routers/<name>/), the nftables ruleset, and keepalived.
  - Files are written atomically and only when their content differs. keepalived is started when it
    is not running, sent SIGHUP only when its configuration changed, and never restarted otherwise.
    Before a keepalived that is not running is started, addresses other than the C(ha-) address and
    routes other than connected ones are removed from the router, so it comes back as a clean backup.
  - On a drained node (C(<state_dir>/drained) exists) keepalived is not started.
  - A router with a C(conntrackd.conf) file gets a conntrackd in its namespace, started before
    keepalived and restarted when that file changes; without the file its conntrackd is stopped.
  - It also ensures the L2 segments in O(segments) (bridges, vxlan devices with head-end replication).
  - All input is validated first; on any error nothing is changed and the message names the router
    (or segment) and the field.
  - See C(docs/node.md) for what the reconciler owns and the drift it detects.
  - The C(invocation) in the result (shown with C(-vvv)) lists the routers by name only; the full
    plan of a node with 1000 routers would otherwise travel back in every result.
requirements:
  - keepalived
  - nft (when routers have an C(nftables.nft) file)
  - conntrackd (when routers have a C(conntrackd.conf) file)
extends_documentation_fragment:
  - l3ha.routers._attributes
  - l3ha.routers._netlink
  - l3ha.routers._paths
attributes:
  diff_mode:
    details: One before/after entry per drifted router (fields) and per file whose content differs.
options:
  routers:
    description:
      - The full desired set of routers on this node, as planned on the controller (see
        C(docs/architecture.md), "Reconciler input"), each with C(files) holding the rendered
        C(keepalived.conf) and optional C(notify.sh), C(nftables.nft) and C(conntrackd.conf), and C(metadata) (written
        to C(router.json)).
      - C(inputs_checksum) is a checksum of what the files were rendered from; it is written to C(router.json) with the
        checksums of the files. A router with C(inputs_checksum) and no C(files) keeps the files the node has, when
        its C(router.json) has the same C(inputs_checksum) and every file is as it was written; otherwise the module
        changes nothing on the node and returns the router in RV(rerender). The action plugin does this for
        routers whose inputs did not change, so a no-op run renders nothing.
    type: list
    elements: dict
    required: true
  segments:
    description:
      - Every L2 segment the routers' ports use, by name. C(type=bridge) names an existing operator
        bridge. C(type=vxlan) has C(vni), C(bridge), C(device), C(mtu), and C(remotes) (flooded by
        head-end replication) or a multicast C(group). C(type=vlan) has C(vlan_id),
        C(physical_device), C(bridge), C(device), C(mtu); it is not lab-tested (the test kernel has
        no 802.1Q).
    type: dict
    default: {}
  local_ip:
    description: Local tunnel IP of this node (C(l3ha_tunnel_ip)); required with a vxlan segment.
    type: str
  purge:
    description:
      - Remove this collection's routers that are not in O(routers), and root-namespace links carrying
        the C(l3ha:) marker that no router or segment uses. Foreign namespaces and links are never touched.
      - Give the full set in one call.
    type: bool
    default: false
  supervisor:
    description:
      - C(reconciler) runs keepalived itself; C(systemd) starts and reloads C(l3ha-keepalived@<name>.service)
        (the unit is written by the role).
    type: str
    choices: [reconciler, systemd]
    default: reconciler
  metrics_dir:
    description:
      - node_exporter's textfile-collector directory. At the end of each run (not in check mode) the
        module writes C(l3ha_node.prom) there atomically (C(l3ha_node_routers), C(l3ha_node_drained),
        C(l3ha_node_last_converge_timestamp_seconds), C(l3ha_node_last_converge_success)), and it
        removes C(l3ha_router_<name>.prom) of every router it purges (with O(purge), also such files
        of routers it does not hold). The action plugin also gives it to the templates, and each router's
        C(notify.sh) writes its C(l3ha_router_<name>.prom) on every transition.
      - Empty writes no metrics.
    type: path
    default: /var/lib/prometheus/node-exporter
  keepalived_bin:
    description: keepalived executable.
    type: str
    default: /usr/sbin/keepalived
  nft_bin:
    description: nft executable.
    type: str
    default: /usr/sbin/nft
  conntrackd_bin:
    description: conntrackd executable, for routers with a C(conntrackd.conf) file (run in their namespace).
    type: str
    default: /usr/sbin/conntrackd
  sysctl_file:
    description:
      - Where the node's kernel limits (neighbour tables, input queue) are also written, so that they
        hold after a reboot before any run (a C(sysctl.d) file). Empty writes no file (they are then
        set at runtime only).
    type: str
    default: ''
  restore_dir:
    description:
      - Where the node keeps the program that restores its routers at boot (C(l3ha-restore.service),
        written by the role). It is this module's own node-side code, written there when it differs. The
        module also keeps its input (without the file texts) in C(<state_dir>/desired.json) for it.
        Empty (the default) does neither.
    type: str
    default: ''
  restore_non_ha:
    description:
      - Whether the restore at boot also rebuilds the routers without HA. The role sets it to false
        when C(l3ha_reschedule_unreachable) is true, since such a router may have moved while the
        node was down, and has no VRRP to settle a duplicate.
    type: bool
    default: true
  validate_on_node:
    description:
      - Run C(keepalived -t) (O(keepalived_bin)) on the node for every keepalived.conf that differs
        from the node's, before anything changes; one that fails stops the whole call with an error
        naming the router and saying it was validated on the node. The action plugin sets it when the
        controller has no keepalived.
    type: bool
    default: false
  uplink_monitor:
    description:
      - The node's uplink monitor (one process for every external network) probes each distinct
        gateway of the HA routers' gateway networks (ARP from 0.0.0.0, IPv6 neighbour solicitation from
        the unspecified address), watches the carrier of the bridge's uplink ports, and writes one keepalived track file per
        gateway, so every router on a dead uplink goes to FAULT at once. Null (the default) runs none
        and removes one that runs. The role sets it from C(l3ha_uplink_monitor*) (on by default).
      - A down gateway fails the routers only while a peer (O(uplink_peers)) reports an answer from it
        newer than this node's first lost probe; when no node reaches it, nobody fails.
    type: dict
    suboptions:
      interval:
        description: Seconds between two probes of a gateway.
        type: float
        default: 0.1
      fall:
        description: Unanswered probes in a row before a gateway is down.
        type: int
        default: 3
      rise:
        description: Answered probes in a row before a gateway is up again.
        type: int
        default: 3
      port:
        description: UDP port of the peers' reports, on the tunnel addresses (O(local_ip)).
        type: int
        default: 7079
  uplink_peers:
    description:
      - Per external network, the tunnel addresses of the other nodes holding replicas of this node's
        routers there (the planner's C(uplink_peers) of this node).
    type: dict
    default: {}
notes:
  - Its action plugin renders every router's files on the controller first, and takes three options
    the module never sees. C(templates) names the template of each file (C(keepalived.conf),
    C(notify.sh), C(nftables.nft), C(conntrackd.conf)). C(template_settings) holds what the
    templates render with for every router (advert interval, GARP, hooks, health check, VRRP
    password, conntrackd); its old name C(render) is deprecated. C(validate) (default true) runs
    C(keepalived -t) on every new C(keepalived.conf) when keepalived is on the controller. The role
    passes all three; see C(docs/role.md).
author:
  - l3ha.routers developers (@l3ha)
'''

EXAMPLES = r'''
- name: Reconcile every router of this node (input planned by l3ha.routers.plan)
  l3ha.routers.ha_routers:
    local_ip: 192.0.2.11
    purge: true
    segments:
      ha-demo-0: {type: vxlan, vni: 2000, bridge: brq-1a2b3c4d, device: vx-1a2b3c4d, mtu: 1450,
                  remotes: [192.0.2.12]}
      ext: {type: bridge, bridge: br-ex}
    routers:
      - name: r1
        tenant: demo
        ha: true
        vrid: 1
        segment: ha-demo-0
        ha_address: 169.254.192.1/18
        ports:
          - {kind: ha, name: ha-1a2b3c4d, peer: vha1a2b3c4d, segment: ha-demo-0,
             mac: "fa:16:3e:00:00:01", mtu: 1450, addresses: [169.254.192.1/18]}
          - {kind: gateway, name: qg-5e6f7a8b, peer: vqg5e6f7a8b, segment: ext,
             mac: "fa:16:3e:00:00:02", mtu: 1500, addresses: []}
        files:
          keepalived.conf: "{{ lookup('template', 'keepalived.conf.j2') }}"
        metadata: {tenant: demo}
'''

RETURN = r'''
routers:
  description: Per router name, C(changed) and C(changes) (one line per difference).
  returned: always
  type: dict
  sample: {r1: {changed: true, changes: ["qr-1a2b3c4d.mtu: 1450 -> 1400"]}}
segments:
  description: Per segment name, C(changed) and C(changes).
  returned: always
  type: dict
  sample: {ha-demo-0: {changed: false, changes: []}}
purged:
  description: Routers removed (or that would be removed) by O(purge).
  returned: always
  type: list
  elements: str
  sample: [old-router]
purged_links:
  description: Marked root-namespace links removed by O(purge).
  returned: when O(purge=true)
  type: list
  elements: str
rerender:
  description:
    - Routers sent without C(files) whose files on the node cannot be kept (other C(inputs_checksum), or a file
      changed by hand). When this is returned nothing was changed; the action plugin renders these
      routers and calls the module again, so a playbook never sees it.
  returned: when a router sent without files has to be rendered
  type: list
  elements: str
  sample: [r1]
rendered:
  description:
    - Routers whose files the action plugin rendered in this run; the others kept the files the node
      has, their inputs_checksum being unchanged.
  returned: success
  type: list
  elements: str
  sample: [r1]
failures:
  description: Per-router errors while applying (the module then fails after doing the other routers).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3ha.routers.plugins.module_utils._entry import HA_ROUTERS_ARGS, run_ha_routers


def main():
    run_ha_routers(AnsibleModule(argument_spec=HA_ROUTERS_ARGS, supports_check_mode=True))


if __name__ == '__main__':
    main()
