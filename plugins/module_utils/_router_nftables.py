# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A router's nftables ruleset: loaded from its nftables.nft, and kept so.

Private to the collection; the reconciler's nftables step. After a load the run
directory keeps the file's checksum with the namespace's nftables generation, and the
ruleset as `nft list ruleset` printed it. A run reads the generation over netlink (no
fork); only when it moved does it list the ruleset and compare it, normalised, with the
kept listing. Drift is repaired by one `nft -f` transaction: tables nobody planned are
deleted and the file loaded again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._files import read_text, sha256_text, write_atomic
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import nftables_generation
from ansible_collections.l3ha.routers.plugins.module_utils._supervisor import run_in
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    DRAIN_NFT_TABLE, NFTABLES_CHECKSUM, NFTABLES_LISTING, NFTABLES_REPAIR, NFTABLES_RULES, namespace_of,
    router_config_dir, router_run_dir,
)

_TABLE = re.compile(r'^table (\S+ \S+) \{$')
_CHAIN = re.compile(r'^(chain|set|map|flowtable) (\S+) \{$')
# per-packet numbers of a listing, not part of what a rule is
_COUNTERS = re.compile(r'\b(counter|quota) packets \d+ bytes \d+')


def ruleset_lines(listing):
    """{table: ['chain NAME: statement', ...]} of an `nft list ruleset` text, without
    counter values and without the drain table (a drained router is muted on purpose)."""
    tables, table, block = {}, None, None
    for raw in (listing or '').splitlines():
        line = _COUNTERS.sub(r'\1', raw.strip())
        match = _TABLE.match(raw)
        if match:
            table, block = match.group(1), None
            tables[table] = []
        elif table is None or not line:
            continue
        elif raw == '}':
            table = None
        elif _CHAIN.match(line):
            block = ' '.join(_CHAIN.match(line).groups())
        elif line == '}':
            block = None
        else:
            tables[table].append('%s: %s' % (block, line) if block else line)
    tables.pop(DRAIN_NFT_TABLE, None)
    return tables


def ruleset_difference(live, loaded):
    """(lines only in the live ruleset, lines only in the loaded one), each 'table chain: rule'."""
    def flat(tables):
        return ['%s %s' % (table, line) if line else table
                for table, lines in sorted(tables.items()) for line in (lines or [''])]
    now, wanted = flat(live), flat(loaded)
    return [line for line in now if line not in wanted], [line for line in wanted if line not in now]


class RouterNftables(object):
    """The nftables step of one reconciler: `nft_bin`, the config and run directories."""

    def __init__(self, nft_bin, config_dir, run_dir):
        self.nft_bin = nft_bin
        self.config_dir = config_dir
        self.run_dir = run_dir

    def _path(self, name, file_name):
        return os.path.join(router_run_dir(self.run_dir, name), file_name)

    def marker(self, name):
        """(checksum, generation) of the last load, or (None, None)."""
        parts = (read_text(self._path(name, NFTABLES_CHECKSUM)) or '').split()
        checksum = parts[0] if parts else None
        generation = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        return checksum, generation

    def ensure(self, router, created, changes):
        content = router['files'].get(NFTABLES_RULES)
        if content is None:
            return
        name = router['name']
        wanted = sha256_text(content)
        loaded, generation = self.marker(name)
        if loaded != wanted or created:
            changes.add('nftables', loaded[:12] if loaded else 'not loaded', wanted[:12],
                        apply=partial(self.load, name, wanted))
            return
        if generation is not None and nftables_generation(namespace_of(name)) == generation:
            return
        kept = read_text(self._path(name, NFTABLES_LISTING))
        if generation is None or kept is None:
            # loaded by a version that kept no listing: load it again to have one
            changes.then(partial(self.load, name, wanted))
            return
        live = ruleset_lines(self.list_ruleset(name))
        extra, missing = ruleset_difference(live, ruleset_lines(kept))
        if not extra and not missing:
            # changed and changed back (a drain and undrain do that): nothing to repair
            changes.then(partial(self.remember, name, wanted, kept))
            return
        planned = set(ruleset_lines(kept))
        unplanned = sorted(table for table in live if table not in planned)
        changes.add('nftables ruleset', ['missing ' + line for line in missing] + ['extra ' + line for line in extra],
                    'as loaded', apply=partial(self.load, name, wanted, unplanned))

    def list_ruleset(self, name):
        return run_in(namespace_of(name), [self.nft_bin, 'list', 'ruleset'], 'listing nftables of router %s' % name)

    def load(self, name, checksum, delete_tables=()):
        """Load the router's file in one transaction (deleting `delete_tables` in the same one)."""
        path = os.path.join(router_config_dir(self.config_dir, name), NFTABLES_RULES)
        if delete_tables:
            script = ''.join('delete table %s\n' % table for table in delete_tables) + 'include "%s"\n' % path
            path = self._path(name, NFTABLES_REPAIR)
            write_atomic(path, script, 0o600, durable=False)
        run_in(namespace_of(name), [self.nft_bin, '-f', path], 'loading nftables for router %s' % name)
        self.remember(name, checksum, self.list_ruleset(name))

    def remember(self, name, checksum, listing):
        write_atomic(self._path(name, NFTABLES_LISTING), listing + '\n', 0o600, durable=False)
        generation = nftables_generation(namespace_of(name))
        write_atomic(self._path(name, NFTABLES_CHECKSUM), '%s %s\n' % (checksum, generation), 0o600, durable=False)
