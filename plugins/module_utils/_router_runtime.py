# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What keepalived should hold in a router's namespace now, and the repair when it does not.

Private to the collection; the reconciler's runtime step for an HA router whose
keepalived runs and has held its state for RUNTIME_SETTLE_SECONDS. The master holds every
address and route of its keepalived.conf and forwards IPv6; a backup (or a replica in
FAULT) holds none of them besides its HA address and does not forward IPv6; the master
runs the router's master-only services and no other replica does. Repairs
never fail the router over: the missing pieces are added (or the extra ones removed)
directly, and only while the state file still says what it said when they were found.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._facts import parse_state, services_running
from ansible_collections.l3ha.routers.plugins.module_utils._files import read_text
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import (
    Route, is_ipv6_link_local, normalize_cidr, write_sysctls,
)
from ansible_collections.l3ha.routers.plugins.module_utils._supervisor import run_in
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    KEEPALIVED_CONF, NOTIFY_SCRIPT, RUNTIME_SETTLE_SECONDS, STATE_FILE, namespace_of, router_config_dir,
    router_run_dir,
)

# the keepalived.conf blocks that put addresses and routes on the master
ADDRESS_BLOCKS = ('virtual_ipaddress', 'virtual_ipaddress_excluded')
ROUTE_BLOCKS = ('virtual_routes',)
IPV6_FORWARDING = 'net/ipv6/conf/all/forwarding'
_DEFAULTS = {'default': '0.0.0.0/0', 'default6': '::/0'}


def _words(line):
    return line.split('#', 1)[0].split('!', 1)[0].split()


def master_runtime(text):
    """([(cidr, device)], [Route]) that a keepalived.conf puts on its master."""
    addresses, routes = [], []
    block, depth = None, 0
    for line in (text or '').splitlines():
        words = _words(line)
        if not words:
            continue
        if block is None:
            if words[-1] == '{' and words[0] in ADDRESS_BLOCKS + ROUTE_BLOCKS:
                block, depth = words[0], 1
            continue
        if words[0] == '}':
            depth -= 1
            block = None if depth == 0 else block
            continue
        options = dict(zip(words[1::2], words[2::2]))
        if block in ADDRESS_BLOCKS:
            addresses.append((normalize_cidr(words[0]), options.get('dev')))
        else:
            routes.append(Route(_DEFAULTS.get(words[0], words[0]), options.get('via'), options.get('dev')))
    return addresses, routes


def _covers(wanted, route):
    return (wanted.destination == route.destination and wanted.nexthop == route.nexthop
            and wanted.device in (None, route.device))


def settled_state(run_dir, name, alive, now=None):
    """(state, state file text) when keepalived runs and has held the state long enough, else (None, None)."""
    text = read_text(os.path.join(router_run_dir(run_dir, name), STATE_FILE))
    state, since = parse_state(text)
    now = time.time() if now is None else now
    if not alive or state not in ('master', 'backup', 'fault') or since is None \
            or now - since < RUNTIME_SETTLE_SECONDS:
        return None, None
    return state, text


def ensure_services(router, config_dir, run_dir, state, state_text, changes):
    """The master runs every master-only service, any other replica none; notify.sh starts
    or stops them (as on a transition)."""
    run = router_run_dir(run_dir, router['name'])
    master = state == 'master'
    wrong = [name for name, running in sorted(services_running(run, router.get('service_names') or []).items())
             if running != master]
    for name in wrong:
        changes.add('%s: service %s' % (state, name), 'stopped' if master else 'running',
                    'running' if master else 'stopped')
    if wrong:
        script = os.path.join(router_config_dir(config_dir, router['name']), NOTIFY_SCRIPT)
        changes.then(partial(_if_unchanged, os.path.join(run, STATE_FILE), state_text, run_in,
                             namespace_of(router['name']), [script, 'services', 'start' if master else 'stop'],
                             'master-only services of router %s' % router['name']))


def _if_unchanged(state_path, state_text, function, *args):
    if read_text(state_path) == state_text:
        function(*args)


def ensure_runtime(space, router, run_dir, state, state_text, changes):
    """Queue the repair of what differs between the namespace and `state` (master or not)."""
    wanted_addresses, wanted_routes = master_runtime(router['files'].get(KEEPALIVED_CONF))
    ports = dict((port['name'], port['kind']) for port in router.get('ports') or [])
    present = space.addresses_by_link()
    routes = space.routes()
    master = state == 'master'
    add, remove, add_routes, remove_routes, sysctls = [], [], [], [], []
    if master:
        add = [(cidr, dev) for cidr, dev in wanted_addresses if dev in ports and cidr not in present.get(dev, [])]
        add_routes = [r for r in wanted_routes if not any(_covers(r, route) for route in routes)]
    else:
        keep = set([normalize_cidr(router['ha_address'])] if router.get('ha_address') else [])
        remove = [(cidr, dev) for dev, kind in sorted(ports.items()) for cidr in present.get(dev, [])
                  if cidr not in keep and not (kind == 'ha' and is_ipv6_link_local(cidr))]
        remove_routes = routes
    for cidr, dev in add:
        changes.add('%s: address %s on %s' % (state, cidr, dev), 'absent', 'present')
    for cidr, dev in remove:
        changes.add('%s: address %s on %s' % (state, cidr, dev), 'present', 'absent')
    for route in add_routes:
        changes.add('%s: route %r' % (state, route), 'absent', 'present')
    for route in remove_routes:
        changes.add('%s: route %r' % (state, route), 'present', 'absent')
    forwarding = space.sysctls([IPV6_FORWARDING])[IPV6_FORWARDING]
    wanted_forwarding = '1' if master else '0'
    if forwarding is not None and forwarding != wanted_forwarding:
        changes.add('%s: sysctl %s' % (state, IPV6_FORWARDING), forwarding, wanted_forwarding)
        sysctls.append((IPV6_FORWARDING, wanted_forwarding))
    if add or remove or add_routes or remove_routes or sysctls:
        # only while keepalived keeps the state it had: else it moves these itself
        changes.then(partial(_if_unchanged, os.path.join(router_run_dir(run_dir, router['name']), STATE_FILE),
                             state_text, _repair, space, add, remove, add_routes, remove_routes, sysctls))


def _repair(space, add, remove, add_routes, remove_routes, sysctls):
    for cidr, dev in remove:
        space.delete_address(dev, cidr)
    for route in remove_routes:
        space.delete_route(route)
    for cidr, dev in add:
        space.add_address(dev, cidr)
    for route in add_routes:
        space.add_route(route)
    if sysctls:
        write_sysctls(space.name, sysctls)
