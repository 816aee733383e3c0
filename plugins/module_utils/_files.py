# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written by the reconciler: compared first, written atomically, exact modes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import shutil
import stat
import tempfile


def sha256_text(text):
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def read_text(path):
    """File content as text, or None when the file does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def file_mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def file_drift(path, content, mode):
    """What differs between the file and the wanted content/mode: list of (field, before, after)."""
    found = []
    current = read_text(path)
    if current != content:
        found.append(('content', current, content))
    current_mode = file_mode(path)
    if current is not None and current_mode != mode:
        found.append(('mode', '%04o' % current_mode, '%04o' % mode))
    return found


def ensure_dir(path, mode=0o700):
    """Create the directory (and parents) with `mode`; fix the mode of an existing one."""
    if not os.path.isdir(path):
        os.makedirs(path, mode)
    if file_mode(path) != mode:
        os.chmod(path, mode)


def read_checksum(path):
    """The checksum a daemon was started with (a run-directory file), or None."""
    return (read_text(path) or '').strip() or None


def write_checksum(path, checksum):
    """Record the checksum a daemon was started with; /run: no fsync, a reboot drops it
    with the processes."""
    write_atomic(path, checksum + '\n', 0o600, durable=False)


def write_atomic(path, content, mode, durable=True):
    """Write through a temporary file in the same directory and rename it into place.

    `durable=False` skips the fsync, for files on tmpfs (/run) that a reboot drops anyway.
    """
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.')
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content.encode('utf-8'))
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.rename(tmp, path)
    except Exception:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_tree(path):
    if os.path.isdir(path):
        shutil.rmtree(path)


def remove_file(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
