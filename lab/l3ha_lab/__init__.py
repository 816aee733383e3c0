"""The l3ha.routers lab: simulated network nodes on one machine (see docs/lab.md).

Python API: `Lab(lab_dir)` with up/down/crash/boot/link/run/status/probe_start/
probe_stop, and the `running_lab` context manager.
"""

import contextlib


def __getattr__(name):
    # Lab and LabError on first use: code that runs inside a node (bench/nodeinfo.py,
    # through l3ha_lab.testing) imports the package without paying for the lab's imports.
    if name == "Lab":
        from l3ha_lab.lab import Lab
        return Lab
    if name == "LabError":
        from l3ha_lab.model import LabError
        return LabError
    raise AttributeError("module 'l3ha_lab' has no attribute %r" % name)


@contextlib.contextmanager
def running_lab(inventories, lab_dir=None):
    """Bring a lab up from inventories; always take it down again on exit."""
    from l3ha_lab.lab import Lab
    lab = Lab(lab_dir)
    try:
        lab.up(list(inventories))
        yield lab
    finally:
        lab.down()
