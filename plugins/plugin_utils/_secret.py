# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Masking of the VRRP secret in the ha_routers action's result.

Private to the collection (the leading underscore): only the ha_routers action plugin and
the tests use it. It lives in ``plugin_utils`` because it is controller-only code that
never runs on a node.
"""

from __future__ import annotations

import re


_AUTH_PASS = re.compile(r"(\bauth_pass[ \t]+)\S+")


def _mask(value, secret):
    """Replace ``secret`` and every keepalived ``auth_pass`` value (e.g. a previous password
    in a diff) in every string of a result, in place where possible."""
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _mask(value[key], secret)
        return value
    if isinstance(value, list):
        return [_mask(item, secret) for item in value]
    if isinstance(value, str):
        if secret and secret in value:
            value = value.replace(secret, "********")
        return _AUTH_PASS.sub(r"\1********", value)
    return value
