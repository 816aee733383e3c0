# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner: HA segments, VRIDs, segment VNIs, HA addresses, short ids and MACs.

Pure Python, no I/O. Every allocation keeps what the nodes report first (in router
name order), and only then hands out the lowest free value, so a re-run, an added
router or an added node changes nothing that exists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

try:
    import netaddr
except ImportError:  # reported by plan()
    netaddr = None

from ansible_collections.l3ha.routers.plugins.module_utils._plan_values import Invalid, to_int
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import PLANNED_VRID_MAX as VRID_MAX, VRID_MIN

MAC_PREFIX = "fa:16:3e"  # Neutron's prefix
MAC_RE = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")


def short_id(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def mac_for(key, attempt=0):
    """fa:16:3e + 3 bytes of the key's hash; later attempts hash key#attempt."""
    text = key if attempt == 0 else "%s#%d" % (key, attempt)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return "%s:%s:%s:%s" % (MAC_PREFIX, digest[0:2], digest[2:4], digest[4:6])


def segment_key(tenant, index):
    return "ha-%s-%d" % (tenant, index)


def _segment_index(key, tenant):
    prefix = "ha-%s-" % tenant
    if not isinstance(key, str) or not key.startswith(prefix) or not key[len(prefix):].isdigit():
        return None
    return int(key[len(prefix):])


class _VridTable:
    """The VRIDs taken in each of one tenant's HA segments."""

    def __init__(self):
        self.used = []  # index -> set of VRIDs

    def segment(self, index):
        while len(self.used) <= index:
            self.used.append(set())
        return self.used[index]

    def take(self, index, vrid):
        used = self.segment(index)
        if vrid in used:
            return False
        used.add(vrid)
        return True

    def lowest_free(self, index):
        used = self.segment(index)
        for vrid in range(VRID_MIN, VRID_MAX + 1):
            if vrid not in used:
                return vrid
        return None

    def has_room(self, index, vrid=None):
        """Whether segment `index` has `vrid` (or, without one, any VRID) free."""
        used = self.segment(index)
        return len(used) < VRID_MAX if vrid is None else vrid not in used

    def first_with(self, vrid=None):
        """The lowest segment index with room for `vrid` (or any VRID)."""
        index = 0
        while not self.has_room(index, vrid):
            index += 1
        return index


def _reported_vrid(existing, router):
    """(segment index, vrid) the nodes report for this router in its tenant, or (None, None)."""
    claim = existing.claim(router.name)
    index = None if claim is None or claim[0] != router.tenant else _segment_index(claim[1], router.tenant)
    if index is None:
        return None, None
    try:
        return index, to_int(claim[2], VRID_MIN, VRID_MAX)
    except Invalid:
        return index, None


def assign_vrids(routers, existing, errors, reserved=()):
    """{router name: (segment key, vrid)} for the HA routers given (one list, all tenants).

    reserved: claims (router, tenant, segment, vrid, addresses) of routers that still run
    where this run cannot reach (_plan_record.reserved); their VRIDs are taken first.

    VRIDs are unique per segment; a tenant gets another segment for each 254 routers.
    Order: the existing (segment, vrid) when still valid and agreeing with a pin, then
    pins, then the lowest free VRID of the router's old segment or the lowest segment.
    """
    by_tenant = {}
    for router in routers:
        by_tenant.setdefault(router.tenant, []).append(router)
    result = {}
    for tenant in sorted(by_tenant):
        table, pending, pinned_by = _VridTable(), [], {}
        for _name, owner, segment, vrid, _addresses in reserved:
            index = _segment_index(segment, tenant) if owner == tenant else None
            if index is not None and isinstance(vrid, int):
                table.take(index, vrid)
        for router in by_tenant[tenant]:
            if router.vrid is not None:
                if router.vrid in pinned_by:
                    errors.append("router %r: vrid %d is also pinned by router %r of tenant %r (pins are unique per tenant)"
                                  % (router.name, router.vrid, pinned_by[router.vrid], tenant))
                    continue
                pinned_by[router.vrid] = router.name
            index, vrid = _reported_vrid(existing, router)
            if vrid is not None and router.vrid in (None, vrid) and table.take(index, vrid):
                result[router.name] = (segment_key(tenant, index), vrid)
            else:
                pending.append((router, index))
        # Pins before the rest, so a pinned VRID is not handed to an unpinned router first.
        pending.sort(key=lambda item: (item[0].vrid is None, item[0].name))
        for router, index in pending:
            # Stay in the old segment when it has room: a new segment means a new ha port.
            if index is not None and table.has_room(index, router.vrid):
                chosen = index
            else:
                chosen = table.first_with(router.vrid)
            vrid = router.vrid if router.vrid is not None else table.lowest_free(chosen)
            table.take(chosen, vrid)
            result[router.name] = (segment_key(tenant, chosen), vrid)
    return result


def assign_vnis(segments, existing, options, errors):
    """{HA segment key: vni} from ha_vni_range: kept when reported, else the lowest free."""
    claims = existing.segment_vnis()
    result, taken = {}, set()
    for key in segments:
        try:
            vni = to_int(claims.get(key), options.vni_low, options.vni_high)
        except Invalid:
            continue
        if vni not in taken:
            result[key] = vni
            taken.add(vni)
    candidate = options.vni_low
    for key in segments:
        if key in result:
            continue
        while candidate in taken:
            candidate += 1
        if candidate > options.vni_high:
            errors.append("HA segment %r: no free VNI left in ha_vni_range %d..%d"
                          % (key, options.vni_low, options.vni_high))
            continue
        result[key] = candidate
        taken.add(candidate)
    return result


class AddressPool:
    """Host addresses of ha_network_cidr for one L2 scope, handed out lowest first."""

    def __init__(self, cidr):
        self.cidr = cidr
        self.first = int(cidr.first) + 1
        self.last = int(cidr.last) - 1
        self.used = set()
        self.next = self.first

    def keep(self, text):
        """Take a reported address (any prefix) if it is a free host of the pool."""
        try:
            value = netaddr.IPNetwork(text).value if isinstance(text, str) else None
        except (netaddr.AddrFormatError, ValueError):
            value = None
        if value is None or not self.first <= value <= self.last or value in self.used:
            return None
        self.used.add(value)
        return self.text(value)

    def allocate(self):
        while self.next in self.used:
            self.next += 1
        if self.next > self.last:
            return None
        self.used.add(self.next)
        return self.text(self.next)

    def text(self, value):
        return "%s/%d" % (netaddr.IPAddress(value, 4), self.cidr.prefixlen)


def assign_ha_addresses(replicas, segments, scopes, existing, options, errors, reserved=()):
    """{(router, node): "169.254.x.y/18"}, unique per L2 scope of the HA segments.

    replicas: {router: [nodes]} of HA routers; segments: {router: segment key};
    scopes: {segment key: L2 scope} (a shared HA bridge is one scope for all segments);
    reserved: claims whose addresses stay taken (see assign_vrids).
    """
    pools = {}
    result = {}
    routers = sorted(replicas)
    for router in routers:
        pool = pools.setdefault(scopes[segments[router]], AddressPool(options.ha_cidr))
        for node in replicas[router]:
            kept = pool.keep(existing.ha_address(router, node))
            if kept is not None:
                result[(router, node)] = kept
    for _name, _tenant, segment, _vrid, addresses in reserved:
        scope = scopes.get(segment) or (("bridge", options.ha_bridge) if options.ha_type == "bridge" else None)
        if scope in pools:
            for address in addresses:
                pools[scope].keep(address)
    for router in routers:
        pool = pools[scopes[segments[router]]]
        for node in replicas[router]:
            if (router, node) in result:
                continue
            address = pool.allocate()
            if address is None:
                errors.append("router %r: no free HA address left in ha_network_cidr %s for segment %r"
                              % (router, options.ha_cidr, segments[router]))
                break
            result[(router, node)] = address
    return result


class MacBook:
    """MACs unique per L2 scope: the hashed MAC, or a rehash when another port has it."""

    def __init__(self):
        self.taken = {}  # scope -> {mac: owner}

    def keep(self, scope, mac, owner):
        owners = self.taken.setdefault(scope, {})
        if not isinstance(mac, str) or not MAC_RE.fullmatch(mac) or owners.get(mac, owner) != owner:
            return False
        owners[mac] = owner
        return True

    def allocate(self, scope, owner):
        owners = self.taken.setdefault(scope, {})
        attempt = 0
        while True:
            mac = mac_for(owner, attempt)
            if owners.get(mac, owner) == owner:
                owners[mac] = owner
                return mac
            attempt += 1


class IdBook:
    """Short ids per device kind; a hash collision between two keys is an error."""

    def __init__(self, errors):
        self.errors = errors
        self.owners = {}  # (kind, id) -> (key, who)

    def id_for(self, kind, key, who):
        ident = short_id(key)
        owner = self.owners.setdefault((kind, ident), (key, who))
        if owner[0] != key:
            self.errors.append("%s: device id %s%s (from %r) collides with %s (from %r); rename one of them"
                               % (who, kind, ident, key, owner[1], owner[0]))
        return ident
