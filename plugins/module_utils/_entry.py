# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each module's main() hands over to: argument specs and the glue to module_utils."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback
from functools import partial

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.l3ha.routers.plugins.module_utils._changes import Changes
from ansible_collections.l3ha.routers.plugins.module_utils._defaults import MODULE_DEFAULTS, UPLINK_MONITOR
from ansible_collections.l3ha.routers.plugins.module_utils import _netlink
from ansible_collections.l3ha.routers.plugins.module_utils._validate import (
    Errors, ValidationError, cidr_problem, ifname_problem, mac_problem, mtu_problem,
)

NETNS_ARGS = dict(
    name=dict(type='str', required=True),
    state=dict(type='str', default='present', choices=['present', 'absent']),
)

VETH_ARGS = dict(
    name=dict(type='str', required=True),
    peer=dict(type='str', required=True),
    namespace=dict(type='str'),
    peer_namespace=dict(type='str'),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    mac=dict(type='str'),
    peer_mac=dict(type='str'),
    mtu=dict(type='int'),
    up=dict(type='bool', default=True),
    addresses=dict(type='list', elements='str'),
    peer_addresses=dict(type='list', elements='str'),
    exclusive_addresses=dict(type='bool', default=False),
    peer_master=dict(type='str'),
    alias=dict(type='str'),
    peer_alias=dict(type='str'),
)

HA_ROUTERS_ARGS = dict(
    routers=dict(type='list', elements='dict', required=True),
    segments=dict(type='dict', default={}),
    local_ip=dict(type='str'),
    purge=dict(type='bool', default=MODULE_DEFAULTS['ha_routers']['purge']),
    supervisor=dict(type='str', default=MODULE_DEFAULTS['ha_routers']['supervisor'], choices=['reconciler', 'systemd']),
    config_dir=dict(type='path', default=MODULE_DEFAULTS['ha_routers']['config_dir']),
    run_dir=dict(type='path', default=MODULE_DEFAULTS['ha_routers']['run_dir']),
    state_dir=dict(type='path', default=MODULE_DEFAULTS['ha_routers']['state_dir']),
    metrics_dir=dict(type='path', default=MODULE_DEFAULTS['ha_routers']['metrics_dir']),
    keepalived_bin=dict(type='str', default=MODULE_DEFAULTS['ha_routers']['keepalived_bin']),
    nft_bin=dict(type='str', default=MODULE_DEFAULTS['ha_routers']['nft_bin']),
    conntrackd_bin=dict(type='str', default=MODULE_DEFAULTS['ha_routers']['conntrackd_bin']),
    sysctl_file=dict(type='str', default=MODULE_DEFAULTS['ha_routers']['sysctl_file']),
    restore_dir=dict(type='str', default=MODULE_DEFAULTS['ha_routers']['restore_dir']),
    restore_non_ha=dict(type='bool', default=MODULE_DEFAULTS['ha_routers']['restore_non_ha']),
    validate_on_node=dict(type='bool', default=MODULE_DEFAULTS['ha_routers']['validate_on_node']),
    uplink_monitor=dict(type='dict', options=dict(
        interval=dict(type='float', default=UPLINK_MONITOR['interval']),
        fall=dict(type='int', default=UPLINK_MONITOR['fall']),
        rise=dict(type='int', default=UPLINK_MONITOR['rise']),
        port=dict(type='int', default=UPLINK_MONITOR['port']),
    )),
    uplink_peers=dict(type='dict', default=MODULE_DEFAULTS['ha_routers']['uplink_peers']),
)

ROUTER_FACTS_ARGS = dict(
    config_dir=dict(type='path', default=MODULE_DEFAULTS['router_facts']['config_dir']),
    run_dir=dict(type='path', default=MODULE_DEFAULTS['router_facts']['run_dir']),
    state_dir=dict(type='path', default=MODULE_DEFAULTS['router_facts']['state_dir']),
    node_name=dict(type='str'),
)

CLUSTER_RECORD_ARGS = dict(
    state=dict(type='str', default=MODULE_DEFAULTS['cluster_record']['state'],
               choices=['read', 'committed', 'rolled_back']),
    state_dir=dict(type='path', default=MODULE_DEFAULTS['cluster_record']['state_dir']),
    record=dict(type='dict'),
    base=dict(type='dict'),
    run_id=dict(type='str'),
    previous=dict(type='dict'),
)


def require_pyroute2(module):
    if not _netlink.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib('pyroute2'),
                         exception=str(_netlink.PYROUTE2_IMPORT_ERROR))


def _finish(module, changes, extra=None):
    result = dict(changed=changes.changed, changes=changes.lines())
    result.update(extra or {})
    if module._diff:
        diffs = changes.diffs()
        result['diff'] = diffs[0] if diffs else {'before': '', 'after': ''}
    module.exit_json(**result)


def run_netns(module):
    require_pyroute2(module)
    name, state = module.params['name'], module.params['state']
    errors = Errors()
    errors.check('netns', 'name', None if name and '/' not in name and name not in ('.', '..')
                 else '%r is not a valid namespace name' % name)
    _fail_on(module, errors)
    # exact names only: 'r1' is not 'r10'
    present = name in _netlink.list_namespaces()
    changes = Changes('netns %s' % name)
    if state == 'present' and not present:
        changes.add('state', 'absent', 'present', apply=partial(_netlink.create_namespace, name))
    elif state == 'absent' and present:
        changes.add('state', 'present', 'absent', apply=partial(_netlink.delete_namespace, name))
    changes.commit(module.check_mode)
    _finish(module, changes, {'name': name, 'state': state})


def _fail_on(module, errors):
    try:
        errors.raise_if_any()
    except ValidationError as exc:
        module.fail_json(msg='invalid input: ' + '; '.join(exc.errors), errors=exc.errors)


def validate_veth(params, namespaces, errors):
    owner = 'veth %s' % params['name']
    for field in ('name', 'peer'):
        errors.check(owner, field, ifname_problem(params[field]))
    for field in ('mac', 'peer_mac'):
        if params.get(field):
            errors.check(owner, field, mac_problem(params[field]))
    if params.get('mtu') is not None:
        errors.check(owner, 'mtu', mtu_problem(params['mtu']))
    for field in ('addresses', 'peer_addresses'):
        for i, cidr in enumerate(params.get(field) or []):
            errors.check(owner, '%s[%d]' % (field, i), cidr_problem(cidr))
    for field in ('namespace', 'peer_namespace'):
        if params.get(field) and params[field] not in namespaces:
            errors.add(owner, field, 'namespace %r does not exist' % params[field])


def run_veth(module):
    from ansible_collections.l3ha.routers.plugins.module_utils._ports import VethSpec, ensure_veth
    require_pyroute2(module)
    params = module.params
    errors = Errors()
    validate_veth(params, _netlink.list_namespaces(), errors)
    _fail_on(module, errors)
    spaces = {}

    def space(name):
        if name not in spaces:
            spaces[name] = _netlink.Namespace(name)
        return spaces[name]

    try:
        end_space, peer_space, root = space(params['namespace']), space(params['peer_namespace']), space(None)
        if params['peer_master']:
            bridge = peer_space.link(params['peer_master'])
            if bridge is None or bridge.kind != 'bridge':
                errors.add('veth %s' % params['name'], 'peer_master',
                           'bridge %r does not exist' % params['peer_master'])
                _fail_on(module, errors)
        changes = Changes('veth %s' % params['name'])
        if params['state'] == 'absent':
            _remove_pair(end_space, peer_space, params, changes)
        else:
            spec = VethSpec(**dict((k, v) for k, v in params.items() if k != 'state'))
            ensure_veth(end_space, peer_space, root, spec, changes)
        changes.commit(module.check_mode)
    finally:
        for opened in spaces.values():
            opened.close()
    _finish(module, changes)


def _remove_pair(end_space, peer_space, params, changes):
    for space, name in ((end_space, params['name']), (peer_space, params['peer'])):
        link = space.link(name)
        if link is not None and link.kind == 'veth':
            changes.add(name, 'present', None, apply=partial(_delete_pair, space, name, (end_space, peer_space)))
            break


def _delete_pair(space, name, spaces):
    space.delete_link(name)
    for other in spaces:
        other.reload()  # the other end went with it


def run_ha_routers(module):
    from ansible_collections.l3ha.routers.plugins.module_utils._reconciler import reconcile
    require_pyroute2(module)
    # The whole plan of the node would travel back in the invocation (megabytes at 1000
    # routers, for every run): the routers are named there instead.
    invocation = {'module_args': dict(module.params, routers=[router.get('name') for router in module.params['routers']])}
    try:
        result = reconcile(module.params, module.check_mode)
    except ValidationError as exc:
        module.fail_json(msg='invalid input, nothing was changed: ' + '; '.join(exc.errors),
                         errors=exc.errors, invocation=invocation)
    except Exception as exc:  # report with the traceback instead of a bare crash
        module.fail_json(msg='ha_routers failed: %s' % exc, exception=traceback.format_exc(), invocation=invocation)
    if not module._diff:
        result.pop('diff')
    result['invocation'] = invocation
    if result['failures']:
        module.fail_json(msg='; '.join(result['failures']), **result)
    module.exit_json(**result)


def run_router_facts(module):
    from ansible_collections.l3ha.routers.plugins.module_utils._facts import gather
    params = module.params
    module.exit_json(changed=False, ansible_facts=gather(
        params['config_dir'], params['run_dir'], params['state_dir'], params['node_name']))


def run_cluster_record(module):
    from ansible_collections.l3ha.routers.plugins.module_utils import _cluster_store
    params = module.params
    state_dir = params['state_dir']
    if params['state'] == 'read':
        module.exit_json(changed=False, conflict=False, record=_cluster_store.read(state_dir))
    if params['state'] == 'rolled_back':
        held = _cluster_store.read(state_dir)
        changed = _cluster_store.roll_back(state_dir, params['run_id'], params['previous'], module.check_mode)
        module.exit_json(changed=changed, conflict=False, record=held)
    try:
        changed, held = _cluster_store.commit(state_dir, params['record'], params['base'], module.check_mode)
    except _cluster_store.Conflict as exc:
        module.fail_json(msg=str(exc), conflict=True, record=_cluster_store.read(state_dir))
    module.exit_json(changed=changed, conflict=False, record=held)
