# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Defined once here; each module states its `support` level (and why, if partial).
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the node.
  diff_mode:
    description: Returns before/after details of what changed (or would change in check mode).
  idempotent:
    description:
      - When the node already matches the input, a second run reports no change.
'''
