# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files of a router on a node: `<config_dir>/routers/<name>/`.

Private to the collection. The file set is `_vocabulary.ROUTER_FILES` (rendered on the
controller) plus `router.json`, the record of the planned values, of what the files were
rendered from (`inputs_checksum`) and of the checksum of each file written. The reconciler writes
them (`ensure_router_files`); `router_facts` reads them back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
from functools import partial

from ansible_collections.l3ha.routers.plugins.module_utils._files import (
    ensure_dir, file_drift, read_text, sha256_text, write_atomic,
)
from ansible_collections.l3ha.routers.plugins.module_utils._validate import router_name_problem
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    RECORD_FILE, ROUTER_FILES, ROUTERS_SUBDIR, router_config_dir,
)


def router_record(router):
    """What router.json holds: the planned values router_facts reads back."""
    return {
        'name': router['name'],
        'tenant': router.get('tenant'),
        'ha': router.get('ha', True),
        'vrid': router.get('vrid'),
        'segment': router.get('segment'),
        'ha_address': router.get('ha_address'),
        'ha_vip': router.get('ha_vip'),
        'priority': router.get('priority'),
        'peers': router.get('peers') or [],
        'metadata': router.get('metadata') or {},
        # What the files were rendered from and what was written: a later run whose
        # inputs are the same may send no files (see restore_unchanged_files).
        'inputs_checksum': router.get('inputs_checksum'),
        'files': dict((fname, sha256_text(text)) for fname, text in sorted((router.get('files') or {}).items())),
    }


def router_file_texts(config_dir, name):
    """{file name: text} of the router's files the node has."""
    directory = router_config_dir(config_dir, name)
    texts = dict((fname, read_text(os.path.join(directory, fname))) for fname in ROUTER_FILES)
    return dict((fname, text) for fname, text in texts.items() if text is not None)


def as_written(files, record):
    """Whether ``files`` are exactly what ``record`` says was written (no hand edit, no
    removed or extra file)."""
    written = record.get('files')
    return (isinstance(written, dict) and bool(written) and set(files) == set(written)
            and all(sha256_text(text) == written[fname] for fname, text in files.items()))


def read_record(config_dir, name):
    """router.json of a router as a dict ({} when missing or unreadable)."""
    text = read_text(os.path.join(router_config_dir(config_dir, name), RECORD_FILE))
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def restore_unchanged_files(routers, config_dir):
    """Give routers sent without ``files`` (same ``inputs`` as last time) the files the node has.

    Returns the names of those routers whose files cannot be trusted (inputs differ, or a
    file was changed by hand): the controller must render them. Reads only.
    """
    stale = []
    for router in routers:
        name, inputs = router.get('name'), router.get('inputs_checksum')
        if router.get('files') is not None or not inputs or not isinstance(name, str) or router_name_problem(name):
            continue  # rendered, or bad input that validation reports
        record = read_record(config_dir, name)
        files = router_file_texts(config_dir, name) if record.get('inputs_checksum') == inputs else None
        if files is not None and as_written(files, record):
            router['files'] = files
        else:
            stale.append(name)
    return stale


def router_files(router):
    """{file name: text} of everything the reconciler writes for a router, router.json included."""
    files = dict(router['files'])
    files[RECORD_FILE] = json.dumps(router_record(router), indent=2, sort_keys=True) + '\n'
    return files


def file_mode(fname):
    """The mode a router file is written with (router.json: 0600)."""
    return ROUTER_FILES.get(fname, 0o600)


def ensure_router_dir(base, name):
    """`<base>/routers/<name>/`, root's alone (0700) like its parent: config and run directories."""
    ensure_dir(os.path.join(base, ROUTERS_SUBDIR), 0o700)
    ensure_dir(os.path.join(base, ROUTERS_SUBDIR, name), 0o700)


def ensure_router_files(config_dir, router, changes):
    """The router's files whose content or mode differs are written (atomically), those no
    longer planned are removed; each difference is recorded in `changes`."""
    name = router['name']
    directory = router_config_dir(config_dir, name)
    changes.then(partial(ensure_router_dir, config_dir, name))
    files = router_files(router)
    for fname in sorted(set(ROUTER_FILES) - set(files)):
        # a file the plan no longer has (e.g. no nftables rules any more)
        path = os.path.join(directory, fname)
        if os.path.exists(path):
            changes.add('file ' + path, 'present', None, apply=partial(os.unlink, path))
    for fname, content in sorted(files.items()):
        path = os.path.join(directory, fname)
        drift = file_drift(path, content, file_mode(fname))
        for field, before, after in drift:
            if field == 'content':
                changes.add_file(path, before, after)
            else:
                changes.add('%s.mode' % fname, before, after)
        if drift:
            changes.then(partial(write_atomic, path, content, file_mode(fname)))
