# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Master-only services: what one is, how it is written down, and its files on the node.

Private to the collection; pure Python, standard library only, so the planner (per-router
``master_services``), the router view (``l3ha_master_services`` and radvd), the reconciler
and router_facts share one definition.

A service is ``{name, command, stop_signal}``: ``command`` an argument list (or a string,
split like a shell would, without a shell), run inside the router namespace while the
router is master there; ``stop_signal`` the signal that stops it (TERM by default).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex

SERVICE_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]{0,31}$')
STOP_SIGNALS = ('TERM', 'INT', 'HUP', 'QUIT', 'KILL')
SERVICE_KEYS = frozenset(('name', 'command', 'stop_signal'))
# radvd, the built-in one: KILL, because on TERM radvd sends a last advertisement with
# router lifetime 0 and clients drop the default route that the new master keeps.
RADVD_SERVICE = 'radvd'
RADVD_STOP_SIGNAL = 'KILL'
# In the router's run directory: the service's pid (written by itself before it execs),
# and the pid of the loop that restarts it (reconciler supervision).
SERVICE_PID = 'service-%s.pid'
SERVICE_LOOP_PID = 'service-%s.loop'
SERVICE_FILE_RE = re.compile(r'^service-[a-z0-9][a-z0-9_-]{0,31}\.pid$')
# Under systemd, a transient unit per router and service, bound to the keepalived unit.
SERVICE_UNIT = 'l3ha-service-%s-%s.service'


class ServiceError(ValueError):
    """A bad service entry; the message names the field."""


def parse_services(value, where):
    """[{name, command: [argv], stop_signal}] from a list of entries; ServiceError naming `where`."""
    if value in (None, []):
        return []
    if not isinstance(value, list):
        raise ServiceError('%s must be a list of {name, command}, got %r' % (where, value))
    found, names = [], set()
    for index, entry in enumerate(value):
        field = '%s[%d]' % (where, index)
        if not isinstance(entry, dict):
            raise ServiceError('%s must be a dict with name and command, got %r' % (field, entry))
        unknown = sorted(set(entry) - SERVICE_KEYS, key=str)
        if unknown:
            raise ServiceError('%s: %s is not a known field (use %s)' % (field, ', '.join(map(str, unknown)),
                                                                         ', '.join(sorted(SERVICE_KEYS))))
        name = entry.get('name')
        if not isinstance(name, str) or not SERVICE_NAME_RE.match(name):
            raise ServiceError('%s.name %r must match %s' % (field, name, SERVICE_NAME_RE.pattern))
        if name in names:
            raise ServiceError('%s.name %r is used twice' % (field, name))
        names.add(name)
        command = entry.get('command')
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
            raise ServiceError('%s.command must be a non-empty list of strings (or a string), got %r'
                               % (field, entry.get('command')))
        signal = str(entry.get('stop_signal') or 'TERM').upper().replace('SIG', '', 1)
        if signal not in STOP_SIGNALS:
            raise ServiceError('%s.stop_signal %r is not one of %s'
                               % (field, entry.get('stop_signal'), ', '.join(STOP_SIGNALS)))
        found.append({'name': name, 'command': list(command), 'stop_signal': signal})
    return found


def merge_services(common, own):
    """The global services, then the router's own; a router's entry replaces a global one of its name."""
    mine = dict((service['name'], service) for service in own)
    merged = [mine.pop(service['name'], service) for service in common]
    return merged + [service for service in own if service['name'] in mine]


def service_pid_path(run, name):
    return os.path.join(run, SERVICE_PID % name)


def service_loop_path(run, name):
    return os.path.join(run, SERVICE_LOOP_PID % name)


def service_unit(router, name):
    return SERVICE_UNIT % (router, name)
