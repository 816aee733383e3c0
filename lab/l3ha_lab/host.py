"""Host-wide kernel limits the lab raises while it runs, restored after the last lab.

Lab nodes are namespaces of one kernel, so limits a real node has for itself are the
host's here: the neighbour tables are shared by every namespace, and with a few hundred
routers they overflow their defaults (1024 entries); one broadcast flooded to all
nodes' router ports overflows the per-CPU input queue (1000 packets); and every
keepalived of every node takes one of the host's 128 inotify instances. The reconciler raises the same
limits on real nodes: both take them from NODE_SYSCTL_FLOORS in
plugins/module_utils/_vocabulary.py. Inside a lab node the net.* files do not exist;
fs.inotify.max_user_instances is the host's everywhere, so the reconciler finds it raised
(a PrivateNode raises it too, for the tests that run the reconciler without a lab).

/run/l3ha-lab-host.json records the values found and the labs that use the raised ones.
"""

import contextlib
import fcntl
import json
import os

from l3ha_lab.collection import vocabulary

REGISTRY = "/run/l3ha-lab-host.json"
FLOORS = vocabulary.NODE_SYSCTL_FLOORS


@contextlib.contextmanager
def _locked():
    # the lock is on /run itself, so no lock file is left behind
    fd = os.open(os.path.dirname(REGISTRY), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(key):
    with open("/proc/sys/" + key) as handle:
        return int(handle.read().split()[0])


def _write(key, value):
    with open("/proc/sys/" + key, "w") as handle:
        handle.write(str(value))


def _load():
    try:
        with open(REGISTRY) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _save(registry):
    with open(REGISTRY + ".tmp", "w") as handle:
        json.dump(registry, handle, indent=1, sort_keys=True)
    os.rename(REGISTRY + ".tmp", REGISTRY)


def acquire(lab_dir):
    """Raise the limits for the lab in `lab_dir` (remembering the values found)."""
    with _locked():
        registry = _load() or {"original": {}, "labs": []}
        for key, floor in FLOORS:
            current = _read(key)
            if current < floor:
                registry["original"].setdefault(key, current)
                _write(key, floor)
        if lab_dir not in registry["labs"]:
            registry["labs"].append(lab_dir)
        _save(registry)


def release(lab_dir):
    """The lab in `lab_dir` is gone; the last one restores the values found."""
    with _locked():
        registry = _load()
        if registry is None:
            return
        # labs whose directory is gone were removed without `down`
        labs = [d for d in registry["labs"] if d != lab_dir and os.path.isdir(d)]
        if labs:
            registry["labs"] = labs
            _save(registry)
            return
        for key, value in registry["original"].items():
            _write(key, value)
        os.unlink(REGISTRY)
