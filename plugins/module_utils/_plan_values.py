# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner input values: the small parsers every inventory field goes through.

Pure Python, no I/O. Each parser raises Invalid with what is wrong; field() adds who
and which field, so every message names the router (or network, node, option).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import netaddr
except ImportError:  # reported by plan(), so the import sanity test passes
    netaddr = None

from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import BRIDGE_NAME_RE

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class Invalid(Exception):
    """A bad value; the message says what is wrong, the caller adds who and where."""


def to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise Invalid("%r is not a boolean" % (value,))


def to_int(value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Invalid("%r is not an integer" % (value,))
    try:
        number = int(value)
    except ValueError:
        raise Invalid("%r is not an integer" % (value,))
    if (low is not None and number < low) or (high is not None and number > high):
        raise Invalid("%s is out of range %s..%s" % (number, low, high))
    return number


def parse_ip(value):
    """A plain address, no prefix."""
    if not isinstance(value, str) or "/" in value:
        raise Invalid("%r is not an IP address" % (value,))
    try:
        return netaddr.IPAddress(value)
    except (netaddr.AddrFormatError, ValueError):
        raise Invalid("%r is not an IP address" % (value,))


def _with_prefix(value, what):
    if not isinstance(value, str) or "/" not in value:
        raise Invalid("%r is not %s" % (value, what))
    try:
        return netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError):
        raise Invalid("%r is not %s" % (value, what))


def parse_network(value):
    """A subnet in CIDR form; host bits must be zero."""
    net = _with_prefix(value, "a CIDR (address/prefix)")
    if net.value != net.first:
        raise Invalid("%s has host bits set (the network is %s)" % (value, net.cidr))
    return net


def parse_interface(value):
    """An address with its prefix, e.g. 10.0.0.1/24; not the subnet's own address."""
    net = _with_prefix(value, "an address with a prefix (e.g. 10.0.0.1/24)")
    single = 31 if net.version == 4 else 127
    if net.prefixlen < single:
        if net.value == net.first:
            raise Invalid("%s is the network address of %s" % (value, net.cidr))
        if net.version == 4 and net.value == net.last:
            raise Invalid("%s is the broadcast address of %s" % (value, net.cidr))
    return net


def parse_device_name(value):
    if not isinstance(value, str) or not BRIDGE_NAME_RE.fullmatch(value):
        raise Invalid("%r is not a device name (at most 15 characters: letters, digits, _ . -)" % (value,))
    return value


def inside(value, version, net):
    """Whether the address (as int and IP version) is inside the subnet of `net`."""
    return net.version == version and net.first <= value <= net.last


def field(errors, prefix, field, parse, value):
    """Run parse(value); on failure record `<prefix>: <field> <why>` and return None."""
    try:
        return parse(value)
    except Invalid as exc:
        errors.append("%s: %s %s" % (prefix, field, exc))
        return None
