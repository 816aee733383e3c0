"""PID 1 of a lab box (node, endpoint or switch), started by `unshare --fork`.

It sets the hostname, mounts what the box needs (for a machine node: its root file
system, an overlay of the cached image), tells the parent it is ready, then
reaps zombies forever (keepalived daemonizes and orphans are reparented to it). It
never exits by itself; the lab ends it with SIGKILL, and the kernel then kills every
other process of the box. Kept import-light: it starts once per box.
"""

import argparse
import ctypes
import os
import signal
import socket
import sys

MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source, target, fstype, flags=0, data=None):
    result = _libc.mount(source.encode(), target.encode(),
                         fstype.encode() if fstype else None, flags,
                         data.encode() if data else None)
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "mount %s on %s: %s" % (source, target, os.strerror(err)))


def _umount(target):
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "umount %s: %s" % (target, os.strerror(err)))


def _mounts():
    """(mount point, fstype) of this mount namespace, in mount order."""
    result = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            separator = fields.index("-")
            point = fields[4].encode().decode("unicode_escape")
            result.append((point, fields[separator + 1]))
    return result


def _drop_foreign_mounts(run_tmpfs):
    """Detach the copies of the host's namespace mounts (and of /run, for a node).

    Our copy of the host's mount table would otherwise keep other people's named
    network namespaces alive as long as this box lives.
    """
    for point, fstype in reversed(_mounts()):
        under_run = point == "/run" or point.startswith("/run/")
        if fstype == "nsfs" or (run_tmpfs and under_run and point != "/run"):
            try:
                _umount(point)
            except OSError:
                pass  # already gone with a parent mount


def _setup(args):
    socket.sethostname(args.hostname)
    # Directories bound back in after /run is replaced, from descriptors opened while
    # their paths were still visible (the lab directory is usually under /run).
    kept = [(os.open(pair.split(":", 1)[0], os.O_PATH | os.O_DIRECTORY), pair.split(":", 1)[1])
            for pair in args.keep]
    # No mount event of a box may reach the host (unshare defaults to private too).
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    _drop_foreign_mounts(args.run_tmpfs)
    if args.sysfs:
        # sysfs shows the devices of the mounter's network namespace.
        _mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV)
    for pair in args.bind:
        source, target = pair.split(":", 1)
        _mount(source, target, None, MS_BIND)
    if args.run_tmpfs:
        _mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        os.makedirs("/run/lock", exist_ok=True)
    for fd, target in kept:
        os.makedirs(target, exist_ok=True)
        _mount("/proc/self/fd/%d" % fd, target, None, MS_BIND)
        os.close(fd)
    for spec in args.overlay:
        lower, upper, work, target = spec.split(":")
        _mount("overlay", target, "overlay", 0,
               "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work))


def _reap_forever():
    # SIGCHLD stays blocked and is collected with sigtimedwait: no lost wake-ups.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        signal.sigtimedwait({signal.SIGCHLD}, 30)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="l3ha_lab.holder")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--bind", action="append", default=[], help="SOURCE:TARGET")
    parser.add_argument("--run-tmpfs", action="store_true")
    parser.add_argument("--keep", action="append", default=[],
                        help="SOURCE:TARGET, bound after /run is replaced")
    parser.add_argument("--overlay", action="append", default=[],
                        help="LOWER:UPPER:WORK:TARGET, mounted last")
    parser.add_argument("--sysfs", action="store_true")
    parser.add_argument("--serve", action="store_true", help="run the upstream servers")
    args = parser.parse_args(argv)
    # Block SIGCHLD before any thread starts, so every thread inherits the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    with os.fdopen(args.ready_fd, "w") as ready:
        try:
            _setup(args)
            if args.serve:
                from l3ha_lab import servers
                servers.start_in_background()
        except Exception as exc:  # report any setup failure to the parent, then die
            ready.write("error: %s\n" % exc)
            ready.flush()
            sys.exit(1)
        ready.write("ready\n")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    _reap_forever()


if __name__ == "__main__":
    main()
