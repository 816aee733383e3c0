"""The l3ha.routers lab: simulated network nodes on one machine (see docs/lab.md).

Python API: `Lab(lab_dir)` with up/down/crash/boot/link/run/status/probe_start/
probe_stop, and the `running_lab` context manager.
"""

import contextlib

from l3ha_lab.lab import Lab
from l3ha_lab.model import LabError


@contextlib.contextmanager
def running_lab(inventories, lab_dir=None):
    """Bring a lab up from inventories; always take it down again on exit."""
    lab = Lab(lab_dir)
    try:
        lab.up(list(inventories))
        yield lab
    finally:
        lab.down()


__all__ = ["Lab", "LabError", "running_lab"]
