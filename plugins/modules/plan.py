#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file only documents the action plugin plugins/action/plan.py, which does the work
# on the controller.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: plan
short_description: Plan every network node's HA routers, once, on the controller
version_added: 1.0.0
description:
  - Computes where each router runs and every value derived from that, from the inventory
    and the router facts gathered on the nodes (M(l3ha.routers.router_facts)). It changes
    nothing anywhere; run it once (C(run_once)) before the nodes are reconciled.
  - Placement follows Neutron L3 HA. An HA router gets between O(min_nodes_per_router) and
    O(max_nodes_per_router) replicas (0 means every node). A non-HA router gets one node.
    The plan fails when fewer nodes than the minimum are available, naming the router,
    the numbers and the nodes.
  - The plan is stable. Existing replicas stay where they are, so a re-run, an added node or
    an added router moves nothing. Missing replicas go to the least-loaded nodes, spread
    over availability zones first, ties broken by name. A drained node gets no new replicas.
    An unreachable node keeps its routers unless O(reschedule_unreachable) is set. A node
    that left the group loses its routers.
  - Each tenant gets an HA segment (C(ha-<tenant>-0)) with its own VNI from O(ha_vni_range).
    VRIDs (1..254) are unique per segment, so a tenant with more than 254 HA routers gets
    another segment (C(ha-<tenant>-1), ...). HA port addresses come from
    O(ha_network_cidr), unique per segment. VRRP uses unicast peers.
  - Every check runs first and all errors are reported together, in one failure whose
    message starts with C(l3ha plan failed:). Each error names the router (or network,
    node, option) and the field.
  - The hosts of the group O(nodes_group) are the network nodes. From each one's hostvars
    it reads C(l3ha_tunnel_ip), C(l3ha_availability_zone), C(l3ha_node.drained) and the
    gathered C(l3ha_router_facts). A host of the play without gathered facts counts as unreachable.
  - The plan starts from the newest cluster record among the nodes (C(l3ha_cluster_record) of
    M(l3ha.routers.router_facts), and O(outside_records) for the group's hosts outside the play).
    The record stands in for every node without facts. A router it places on a node outside
    this run (C(--limit), a job slice) or unreachable stays there, keeps its VRID and
    addresses, and is not created elsewhere; new replicas on such nodes are C(pending).
  - See C(docs/planner.md) for the rules and C(docs/architecture.md) for the plan's shape.
requirements:
  - netaddr (on the controller)
extends_documentation_fragment:
  - l3ha.routers._attributes
attributes:
  check_mode:
    support: full
    details: It only computes; check mode changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: The same inventory and facts always give the same plan, and the plan fed back as facts gives the same plan.
options:
  routers:
    description:
      - The routers (C(l3ha_routers)). Each item has C(name) (C([a-z0-9][a-z0-9-]*), at most
        48 characters, unique), C(tenant) (default C(default)), C(ha) (default
        O(default_ha)), C(min_nodes), C(max_nodes), C(availability_zones), C(vrid) (a pin,
        1..254, unique per tenant), C(gateway) (C(network), C(address) and C(gateway_ip),
        each a string or a list with one entry per family, C(snat) default true),
        C(interfaces) (a list of C(network) and C(address)), C(routes) (C(destination),
        C(nexthop)), C(floating_ips) (C(external), C(internal)), C(conntrackd) (a boolean, default
        the role's C(l3ha_conntrackd); only for HA routers), C(master_services) (a list of
        C(name), C(command), C(stop_signal), added to the role's C(l3ha_master_services)) and
        C(state) (C(present) or C(absent)).
    type: list
    elements: dict
    default: []
  networks:
    description:
      - The networks (C(l3ha_networks)), by name. C(type) is C(bridge) (with C(bridge), an
        existing operator bridge), C(vxlan) (with C(vni)) or C(vlan) (with C(vlan_id) and
        C(physical_device), not lab-tested). Optional C(cidr) (a string or a list) restricts the addresses routers
        may use on it, C(mtu), and C(external).
    type: dict
    default: {}
  nodes_group:
    description: The inventory group of the network nodes (C(l3ha_network_nodes_group)).
    type: str
    default: l3ha_network_nodes
  outside_records:
    description:
      - The registered C(results) of a loop of M(l3ha.routers.cluster_record) reads delegated to
        the group's hosts outside the play. A host whose read failed counts as unreachable.
    type: list
    elements: dict
  retire:
    description:
      - A host of the group that is being retired (C(l3ha.routers.retire)). It counts as out of
        the group, so its replicas are placed on the other nodes; the plan fails, before anything
        changes, when they cannot take them.
    type: str
  uplink_monitor:
    description:
      - The node option C(uplink_monitor) of M(l3ha.routers.ha_routers) (C(interval), C(fall),
        C(rise), C(port)), checked here so that a wrong value stops the run before anything
        changes on a node; not used for planning.
    type: dict
  default_ha:
    description: Whether a router without C(ha) is an HA router.
    type: bool
    default: true
  max_nodes_per_router:
    description: Replicas per HA router at most; 0 means every node of the group.
    type: int
    default: 3
  min_nodes_per_router:
    description: Replicas per HA router at least; planning fails when fewer nodes are available.
    type: int
    default: 2
  ha_network_cidr:
    description: IPv4 subnet for the routers' HA port addresses. It must not overlap C(169.254.0.0/24), where the VIPs live.
    type: str
    default: 169.254.192.0/18
  ha_network_type:
    description:
      - C(vxlan) gives each HA segment its own VNI. C(bridge) puts every HA port on the bridge
        O(ha_bridge); HA addresses are then unique over all segments.
    type: str
    choices: [vxlan, bridge]
    default: vxlan
  ha_bridge:
    description: The operator bridge for HA ports when O(ha_network_type=bridge).
    type: str
  ha_vni_range:
    description: First and last VNI for HA segments. No network's VNI may fall inside.
    type: list
    elements: int
    default: [2000, 2999]
  reschedule_unreachable:
    description: Move the replicas of unreachable nodes to other nodes. By default they stay, so a short loss of the control connection moves nothing.
    type: bool
    default: false
  vxlan_remote_vteps:
    description:
      - VTEPs outside the node group (compute hosts, the lab's clients) that carry the vxlan
        networks; a list of IPs for every vxlan network, or a dict of network name to list.
      - HA segments only flood to the nodes of the group.
    type: raw
    default: []
  priority:
    description:
      - VRRP priority of every replica (equal priorities and C(nopreempt), as in Neutron, which uses 50).
      - The default 254 keeps keepalived's skew time near 0, so backups take over sooner.
    type: int
    default: 254
  underlay_mtu:
    description: MTU of the underlay; vxlan segments get this minus 50.
    type: int
    default: 1500
notes:
  - Runs on the controller only. Use it with C(run_once) after gathering facts.
seealso:
  - module: l3ha.routers.router_facts
  - module: l3ha.routers.ha_routers
author:
  - l3ha.routers developers (@l3ha)
'''

EXAMPLES = r'''
- name: Gather the router facts of every network node
  l3ha.routers.router_facts:

- name: Plan all routers once
  l3ha.routers.plan:
    routers: "{{ l3ha_routers }}"
    networks: "{{ l3ha_networks }}"
    nodes_group: l3ha_network_nodes
    max_nodes_per_router: 2
    min_nodes_per_router: 2
    ha_network_cidr: 169.254.192.0/18
  run_once: true
  register: l3ha_plan

- name: Show where the routers run
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.replicas | join(', ') }}"
  loop: "{{ l3ha_plan.plan.routers | dict2items }}"
  run_once: true
'''

RETURN = r'''
plan:
  description: The plan. Empty when planning failed (see RV(errors)).
  returned: success
  type: dict
  contains:
    nodes:
      description:
        - Per node of the group, the input of M(l3ha.routers.ha_routers) minus C(files),
          C(local_ip), C(purge) and the paths, see C(docs/architecture.md).
        - C(segments) holds only the segments the node's routers use; a vxlan segment lists
          C(remotes), the tunnel IPs of the other nodes carrying it (plus the remote VTEPs of
          its network).
        - Each router holds C(name), C(tenant), C(namespace), C(ha), C(vrid), C(segment),
          C(ha_address), C(ha_vip), C(peers), C(priority), C(ports), C(gateway),
          C(interfaces), C(routes), C(floating_ips), C(internal_subnets) and C(metadata).
      type: dict
      sample:
        net1:
          segments:
            ha-demo-0: {type: vxlan, vni: 2000, bridge: brq-eab663b1, device: vx-eab663b1, mtu: 1450, remotes: [192.0.2.12]}
          routers:
            - {name: r1, tenant: demo, namespace: qrouter-r1, ha: true, vrid: 1, segment: ha-demo-0}
    routers:
      description:
        - Per router, its C(tenant), C(vrid), C(segment), C(replicas) (node names), C(ha) and
          C(pending) (the replicas on nodes outside this run, configured by a later run).
      type: dict
      sample:
        r1: {tenant: demo, vrid: 1, segment: ha-demo-0, replicas: [net1, net2], ha: true, pending: []}
    absent:
      description: Names of the routers with C(state=absent).
      type: list
      elements: str
    record:
      description:
        - The cluster record this plan leaves (C(format), C(generation), C(checksum), C(routers),
          C(nodes), C(run_id), C(controller), C(applied_at)), see M(l3ha.routers.cluster_record).
      type: dict
    record_base:
      description: C(generation) and C(checksum) of the record the plan started from.
      type: dict
    record_targets:
      description: The reached nodes whose record differs from RV(plan.record); empty on a run that changes nothing.
      type: list
      elements: str
    pending:
      description: Per node outside this run, the routers planned there and not configured yet.
      type: dict
    warnings:
      description: What the nodes hold that the cluster record says otherwise (also raised as warnings).
      type: list
      elements: str
    errors:
      description: Always empty in a successful plan.
      type: list
      elements: str
errors:
  description: Every problem found, each naming the router (or network, node, option) and the field.
  returned: failure
  type: list
  elements: str
  sample: ["router 'r1': gateway.gateway_ip 203.0.114.1 is outside 203.0.113.0/24"]
'''
