# -*- coding: utf-8 -*-
# Copyright: l3ha.routers developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node side of the cluster record: read it, compare-and-swap it, put it back.

Private to the collection. The record lives in `<state_dir>/cluster.json`; every
change happens under an exclusive flock of `<state_dir>/cluster.lock`, so the check
of the generation and the write are one step for concurrent runs (docs/planner.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
from contextlib import contextmanager

from ansible_collections.l3ha.routers.plugins.module_utils._files import ensure_dir, read_text, remove_file, write_atomic
from ansible_collections.l3ha.routers.plugins.module_utils._plan_record import stamp
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import CLUSTER_LOCK, CLUSTER_RECORD, STATE_DIR_MODE


class Conflict(Exception):
    """Another run changed the record since this run read it."""


def _path(state_dir):
    return os.path.join(state_dir, CLUSTER_RECORD)


def read(state_dir):
    """The record on this node, or None (none yet, or unreadable: the planner ignores it)."""
    text = read_text(_path(state_dir))
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


@contextmanager
def _locked(state_dir, check_mode=False):
    if check_mode:  # nothing is written: no directory, no lock
        yield
        return
    ensure_dir(state_dir, STATE_DIR_MODE)
    with open(os.path.join(state_dir, CLUSTER_LOCK), 'a') as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write(state_dir, record):
    write_atomic(_path(state_dir), json.dumps(record, sort_keys=True, indent=1) + '\n', 0o644)


def _conflict_message(held):
    return ('another run applied generation %s at %s from %s; re-run'
            % (held.get('generation'), held.get('applied_at') or 'an unknown time', held.get('controller') or 'an unknown controller'))


def commit(state_dir, record, base, check_mode):
    """Write `record` if this node still holds `base` (or an older generation).

    base: {"generation", "checksum"} of the record the plan started from. Returns
    (changed, previous record). Raises Conflict when another run got here first.
    """
    with _locked(state_dir, check_mode):
        held = read(state_dir)
        held_generation, held_checksum = stamp(held)
        if stamp(record) == (held_generation, held_checksum):
            return False, held
        base_generation = base.get('generation') or 0
        newer = held_generation > base_generation
        raced = held_generation == base_generation and held_generation and held_checksum != base.get('checksum')
        if newer or raced:
            raise Conflict(_conflict_message(held))
        if not check_mode:
            _write(state_dir, record)
        return True, held


def roll_back(state_dir, run_id, previous, check_mode):
    """Put `previous` back where this run's record (by run_id) is still the one held."""
    with _locked(state_dir, check_mode):
        held = read(state_dir)
        if not isinstance(held, dict) or held.get('run_id') != run_id:
            return False
        if not check_mode:
            if previous:
                _write(state_dir, previous)
            else:
                remove_file(_path(state_dir))
        return True
