# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``keepalived -t`` validation of a rendered keepalived.conf.

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
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import KEEPALIVED_CONF, NOTIFY_SCRIPT


def find_keepalived():
    """keepalived on this machine's PATH, or None (then the node validates)."""
    candidate = shutil.which("keepalived")
    return candidate if candidate and os.access(candidate, os.X_OK) else None


def keepalived_config_errors(keepalived, text, script_path, script_text):
    """``keepalived -t`` output for one config, or None when it passes.

    The config names its notify.sh by the path on the node; a copy of the script is put
    at a temporary path and the config pointed at it, so the check needs no node files.
    """
    workdir = tempfile.mkdtemp(prefix="l3ha-validate-")
    try:
        script = os.path.join(workdir, NOTIFY_SCRIPT)
        with open(script, "w") as handle:
            handle.write(script_text)
        os.chmod(script, 0o700)
        config = os.path.join(workdir, KEEPALIVED_CONF)
        with open(config, "w") as handle:
            handle.write(text.replace(script_path, script))
        result = subprocess.run([keepalived, "-t", "-f", config], capture_output=True, text=True,
                                timeout=30, check=False)
        if result.returncode == 0:
            return None
        return (result.stdout + result.stderr).strip() or "exit %d" % result.returncode
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def rendered_config_errors(routers, script_paths, facts, keepalived=None, where="controller"):
    """An error naming the router for every rendered keepalived.conf of ``routers`` that
    ``keepalived -t`` rejects; none when keepalived is not installed here.

    ``script_paths`` is each router's notify.sh path on the node. A config whose checksum
    the node's ``facts`` report (the one it runs) was checked before and is skipped.
    """
    keepalived = keepalived or find_keepalived()
    if keepalived is None:
        return []
    errors = []
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
