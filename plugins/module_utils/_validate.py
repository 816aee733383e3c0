# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks shared by the modules. Errors are collected, then reported together."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    IFNAMSIZ, MTU_MAX, MTU_MIN, ROUTER_NAME_MAX, ROUTER_NAME_PATTERN, ROUTER_NAME_RE, VNI_MAX, VNI_MIN,
)

_MAC = re.compile(r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$')


class ValidationError(Exception):
    def __init__(self, errors):
        self.errors = list(errors)
        super(ValidationError, self).__init__('; '.join(self.errors))


class Errors(object):
    """Collects messages of the form '<owner>: <field>: <problem>'."""

    def __init__(self):
        self.messages = []

    def add(self, owner, field, problem):
        self.messages.append('%s: %s: %s' % (owner, field, problem))

    def check(self, owner, field, problem):
        """Record `problem` when it is not None (the checkers below return None when fine)."""
        if problem is not None:
            self.add(owner, field, problem)

    def raise_if_any(self):
        if self.messages:
            raise ValidationError(self.messages)


def ifname_problem(value):
    if not isinstance(value, str) or not value:
        return 'a device name is required'
    if len(value) > IFNAMSIZ:
        return '%r is %d characters long, device names have at most %d' % (value, len(value), IFNAMSIZ)
    if '/' in value or value in ('.', '..') or any(c.isspace() for c in value):
        return '%r is not a valid device name' % value
    return None


def mac_problem(value):
    if not isinstance(value, str) or not _MAC.match(value):
        return '%r is not a MAC address (expected aa:bb:cc:dd:ee:ff)' % (value,)
    if int(value[:2], 16) & 1:
        return '%r is a multicast MAC address' % value
    return None


def cidr_problem(value):
    if not isinstance(value, str) or '/' not in value:
        return '%r is not an address with a prefix length (expected a.b.c.d/n or x::y/n)' % (value,)
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return '%r is not an address with a prefix length' % value
    return None


def network_problem(value):
    try:
        ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        return '%r is not a network (a.b.c.d/n or x::/n)' % (value,)
    if '/' not in str(value):
        return '%r has no prefix length' % (value,)
    return None


def ip_problem(value):
    try:
        ipaddress.ip_address(value)
    except (TypeError, ValueError):
        return '%r is not an IP address' % (value,)
    return None


def int_range_problem(value, low, high, what):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError):
            return '%r is not an integer %s' % (value, what)
    if not low <= value <= high:
        return '%s %r is out of range %d..%d' % (what, value, low, high)
    return None


def mtu_problem(value):
    return int_range_problem(value, MTU_MIN, MTU_MAX, 'MTU')


def vni_problem(value):
    return int_range_problem(value, VNI_MIN, VNI_MAX, 'VNI')


def router_name_problem(value):
    if not isinstance(value, str) or not ROUTER_NAME_RE.match(value) or len(value) > ROUTER_NAME_MAX:
        return '%r must match %s and have at most %d characters' % (value, ROUTER_NAME_PATTERN, ROUTER_NAME_MAX)
    return None
