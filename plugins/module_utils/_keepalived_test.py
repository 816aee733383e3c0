# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``keepalived -t`` validation of a rendered keepalived.conf (and ``radvd --configtest``
of a radvd.conf).

Private to the collection. It runs where keepalived is: on the controller (the
ha_routers action plugin, before anything goes to a node), or, when the controller has
no keepalived (an AWX execution environment, usually), on the node, in the reconciler,
before any change (option ``validate_on_node``). Standard library only, so both sides
import it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile

from ansible_collections.l3ha.routers.plugins.module_utils._files import sha256_text
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import KEEPALIVED_CONF, NOTIFY_SCRIPT, RADVD_CONF


def find_tool(name):
    """`name` on this machine's PATH, or None (then the node validates)."""
    candidate = shutil.which(name)
    return candidate if candidate and os.access(candidate, os.X_OK) else None


def find_keepalived():
    return find_tool("keepalived")


def find_radvd():
    return find_tool("radvd")


WORKDIR = "@L3HA_VALIDATION_DIR@"


def _check_files(files, argv):
    """Write {name: (text, mode)} to a temporary directory and run ``argv`` (WORKDIR, in
    the texts and the arguments, replaced by its path); the output when it fails, else None."""
    workdir = tempfile.mkdtemp(prefix="l3ha-validate-")
    try:
        for name, (text, mode) in files.items():
            path = os.path.join(workdir, name)
            with open(path, "w") as handle:
                handle.write(text.replace(WORKDIR, workdir))
            os.chmod(path, mode)
        result = subprocess.run([arg.replace(WORKDIR, workdir) for arg in argv], capture_output=True, text=True,
                                timeout=30, check=False)
        if result.returncode == 0:
            return None
        return (result.stdout + result.stderr).strip() or "exit %d" % result.returncode
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def radvd_config_errors(radvd, text):
    """``radvd --configtest`` output for one radvd.conf, or None when it passes."""
    return _check_files({RADVD_CONF: (text, 0o600)}, [radvd, "--configtest", "-C", WORKDIR + "/" + RADVD_CONF])


def keepalived_config_errors(keepalived, text, script_path, script_text):
    """``keepalived -t`` output for one config, or None when it passes.

    The config names its notify.sh by the path on the node; a copy of the script is put
    in the temporary directory and the config pointed at it, so the check needs no node files.
    """
    marker = WORKDIR + "/" + NOTIFY_SCRIPT
    return _check_files({NOTIFY_SCRIPT: (script_text, 0o700), KEEPALIVED_CONF: (text.replace(script_path, marker), 0o600)},
                        [keepalived, "-t", "-f", WORKDIR + "/" + KEEPALIVED_CONF])


def rendered_config_errors(routers, script_paths, facts, keepalived=None, where="controller", radvd=None):
    """An error naming the router for every rendered keepalived.conf of ``routers`` that
    ``keepalived -t`` rejects; none when keepalived is not installed here.

    ``script_paths`` is each router's notify.sh path on the node. A config whose checksum
    the node's ``facts`` report (the one it runs) was checked before and is skipped.
    """
    keepalived = keepalived or find_keepalived()
    radvd = radvd or find_radvd()
    errors = []
    for router in routers:
        text = router["files"].get(RADVD_CONF)
        known = (facts.get(router["name"]) or {}).get("checksums") or {}
        if radvd and text is not None and known.get(RADVD_CONF) != sha256_text(text):
            output = radvd_config_errors(radvd, text)
            if output:
                errors.append("router %s: radvd.conf does not pass radvd --configtest (validated on the %s): %s"
                              % (router["name"], where, output))
    if keepalived is None:
        return errors
    for router in routers:
        text = router["files"][KEEPALIVED_CONF]
        known = facts.get(router["name"]) or {}
        if (known.get("checksums") or {}).get(KEEPALIVED_CONF) == sha256_text(text):
            continue
        output = keepalived_config_errors(keepalived, text, script_paths[router["name"]],
                                          router["files"][NOTIFY_SCRIPT])
        if output:
            errors.append("router %s: keepalived.conf does not pass keepalived -t (validated on the %s): %s"
                          % (router["name"], where, output))
    return errors
