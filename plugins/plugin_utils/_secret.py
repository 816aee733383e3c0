# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Masking of the VRRP secret in the ha_routers action's result.

Private to the collection (the leading underscore): only the ha_routers action plugin and
the tests use it. It lives in ``plugin_utils`` because it is controller-only code that
never runs on a node.
"""

from __future__ import annotations

import re


MASK = "********"
_AUTH_PASS = re.compile(r"(\bauth_pass[ \t]+)\S+")


def hide_vrrp_secret(result, secret):
    """The action's ``result`` without the VRRP password ``secret`` (None: no password):
    no ``invocation`` (it holds the module arguments), and every string masked, also
    without a password now (the old one is on the diff's "before" side)."""
    if secret:
        result.pop("invocation", None)
    return mask_secret(result, str(secret)[:8] if secret else None)


def mask_secret(value, secret):
    """Replace ``secret`` and every keepalived ``auth_pass`` value (e.g. a previous password
    in a diff) in every string of a result, in place where possible."""
    if isinstance(value, dict):
        for key in list(value):
            value[key] = mask_secret(value[key], secret)
        return value
    if isinstance(value, list):
        return [mask_secret(item, secret) for item in value]
    if isinstance(value, str):
        if secret and secret in value:
            value = value.replace(secret, MASK)
        return _AUTH_PASS.sub(r"\1" + MASK, value)
    return value
