# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The directories of a network node, for the modules that read or write them (the
    # defaults are _defaults.CONFIG_DIR, RUN_DIR and STATE_DIR; tests/unit/test_defaults.py).
    DOCUMENTATION = r'''
options:
  config_dir:
    description:
      - Holds C(routers/<name>/) with each router's files (C(keepalived.conf), C(notify.sh),
        C(nftables.nft), C(conntrackd.conf), C(router.json)).
    type: path
    default: /etc/l3ha
  run_dir:
    description: Holds C(routers/<name>/) with each router's pid files, state file and loaded-config checksums.
    type: path
    default: /run/l3ha
  state_dir:
    description: Holds the C(drained) marker.
    type: path
    default: /var/lib/l3ha
'''
