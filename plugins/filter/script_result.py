# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result of a remote helper script, from its one marked output line."""

from __future__ import annotations

import json

DOCUMENTATION = r"""
name: script_result
short_description: The JSON result of a remote helper script, taken from its marked line
version_added: 2.0.0
author: l3ha.routers contributors
description:
  - The role's helper scripts (C(drain_stop.sh)) print their result as one line
    C(<marker> <JSON>). This filter returns the JSON of the last such line, and ignores every
    other line, so a banner, a motd or a sudo warning in the output (C(ansible.builtin.script)
    runs in a pty, which mixes stderr into stdout) cannot break the result.
  - No marked line gives an empty dict; a marked line that is not JSON is an error naming it.
positional: marker
options:
  _input:
    description: The script's C(stdout_lines).
    type: list
    elements: str
    required: true
  marker:
    description: The word the result line starts with.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Times of the stopped routers
  ansible.builtin.set_fact:
    stopped: "{{ l3ha_drain_stopped.stdout_lines | l3ha.routers.script_result('l3ha-drain-result') }}"
"""

RETURN = r"""
_value:
  description: The parsed JSON of the last marked line, or an empty dict.
  type: raw
"""


class ScriptResultError(ValueError):
    """A marked line whose rest is not JSON."""


def script_result(lines, marker):
    prefix = marker + " "
    found = [line.strip() for line in (lines or []) if isinstance(line, str) and line.strip().startswith(prefix)]
    if not found:
        return {}
    text = found[-1][len(prefix):]
    try:
        return json.loads(text)
    except ValueError:
        raise ScriptResultError("%s: the result line is not JSON: %r" % (marker, text))


class FilterModule:
    def filters(self):
        return {"script_result": script_result}
