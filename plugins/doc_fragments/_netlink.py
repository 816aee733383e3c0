# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The modules that change a node over netlink (module_utils/_netlink.py, pyroute2):
    # netns, veth and the reconciler ha_routers. Their shared change set supports check
    # mode, diff mode and idempotence fully (a module adds its own ``details``).
    # Use with l3ha.routers._attributes, which describes the attributes.
    DOCUMENTATION = r'''
options: {}
requirements:
  - pyroute2
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
'''
