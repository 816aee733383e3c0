"""The notify mechanism with real keepalived: two router namespaces joined by a veth (the
HA link), each running keepalived with the role's rendered keepalived.conf and notify.sh.

The state files must end equal to the real VRRP state after the master flaps many times
(the ordered FIFO), hooks must run once per transition in order, IPv6 forwarding must
follow the master, a SIGTERM'd master must hand over and record `stop`, and a SIGKILL'd
one must come back as backup with its stale addresses cleared.

The namespaces live in a private node (l3ha_lab.testing.PrivateNode), so `ip netns`
never mounts /run/netns on the host. Everything created here (namespaces, processes,
files) is removed in the fixture."""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = str(ROOT / ".build" / "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.template import Templar  # noqa: E402

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import TEMPLATES as DEFAULT_TEMPLATES  # noqa: E402
from ansible_collections.l3ha.routers.plugins.module_utils._keepalived_test import find_keepalived  # noqa: E402
from ansible_collections.l3ha.routers.plugins.plugin_utils._render import (  # noqa: E402
    make_renderer, read_sources, render_router_files,
)
from l3ha_lab.collection import vocabulary  # noqa: E402  (on sys.path through conftest.py)
from l3ha_lab.testing import (TRANSITIONS_LOG, PrivateNode, notify_reader_idle, parse_transitions,  # noqa: E402
                              process_exists, router_config_dir, router_run_dir, wait_until)

KEEPALIVED = find_keepalived()
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(KEEPALIVED is None, reason="keepalived is not installed"),
]
TEMPLATES = ROOT / "roles" / "l3ha" / "templates"
HA_ADDRESSES = {"a": "169.254.192.1", "b": "169.254.192.2"}
VIP = "169.254.0.9"
GATEWAY_ADDRESS = "203.0.113.10"
DEADLINE = 30.0


def in_ns(node, namespace, *argv):
    """A command in a router namespace of the private node; fails when the command fails."""
    result = node.run(["ip", "netns", "exec", namespace] + list(argv))
    if result.returncode != 0:
        raise AssertionError("%s in %s failed: %s" % (" ".join(argv), namespace, result.stderr))
    return result


class Replica:
    """One side: its namespace, its rendered files and its keepalived."""

    def __init__(self, side, node, namespace, base):
        self.side = side
        self.node = node
        self.namespace = namespace
        self.ha_port = "ha-t%s" % side
        self.gateway_port = "qg-t%s" % side
        self.config_dir = base / side / "etc"
        self.run_dir = base / side / "run"
        self.process = None

    @property
    def router_dir(self):
        return pathlib.Path(router_run_dir("flap", str(self.run_dir)))

    @property
    def config(self):
        return pathlib.Path(router_config_dir("flap", str(self.config_dir)), vocabulary.KEEPALIVED_CONF)

    def router(self):
        peer = "b" if self.side == "a" else "a"
        return {
            "name": "flap", "tenant": "test", "namespace": self.namespace, "ha": True, "vrid": 9,
            "segment": "ha-test-0", "ha_address": HA_ADDRESSES[self.side] + "/18", "ha_vip": VIP + "/24",
            "peers": [HA_ADDRESSES[peer]], "priority": 50,
            "ports": [
                {"kind": "ha", "name": self.ha_port, "mac": "fa:16:3e:00:00:0%s" % ("1" if self.side == "a" else "2")},
                {"kind": "gateway", "name": self.gateway_port, "mac": "fa:16:3e:aa:bb:cc"},
            ],
            "gateway": {"network": "ext", "port": self.gateway_port,
                        "addresses": [GATEWAY_ADDRESS + "/24", "2001:db8:ff::10/64"],
                        "gateway_ips": ["203.0.113.1", "2001:db8:ff::1"], "snat": True},
            "interfaces": [], "routes": [], "floating_ips": [], "internal_subnets": [],
        }

    def write_files(self, hooks_log):
        paths = {name: str(TEMPLATES / path) for name, path in DEFAULT_TEMPLATES.items()}
        render_template = make_renderer(Templar(loader=DataLoader()), read_sources(paths), {})
        hook = 'echo "$L3HA_ROUTER $L3HA_STATE" >> %s' % hooks_log
        settings = {"config_dir": str(self.config_dir), "run_dir": str(self.run_dir),
                    "metrics_dir": str(self.run_dir.parent / "metrics"),  # not the host's /var/lib
                    "hooks": {"master": [hook], "backup": [hook], "fault": [hook], "stop": [hook]}}
        files, _view = render_router_files(render_template, self.router(), settings)
        self.config.parent.mkdir(parents=True, mode=0o700)
        self.router_dir.mkdir(parents=True, mode=0o700)
        for name, text in files.items():
            path = self.config.parent / name
            path.write_text(text)
            path.chmod(0o700 if name == "notify.sh" else 0o600)

    def start(self):
        self.process = subprocess.Popen(self.node.argv(
            ["ip", "netns", "exec", self.namespace, KEEPALIVED, "--dont-fork", "--vrrp", "--log-console",
             "--use-file=%s" % self.config, "--pid=%s" % (self.router_dir / vocabulary.KEEPALIVED_PID),
             "--vrrp_pid=%s" % (self.router_dir / vocabulary.VRRP_PID)]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self, sig=signal.SIGTERM):
        if self.process is None:
            return
        pids = [self.process.pid]
        vrrp_pid = self.router_dir / vocabulary.VRRP_PID
        if sig == signal.SIGKILL and vrrp_pid.exists():
            pids.append(int(vrrp_pid.read_text().split()[0]))
        # A SIGKILL must hit parent and VRRP child together: a child that outlives its
        # parent shuts down cleanly and removes the addresses. Freeze both first.
        signals = [signal.SIGSTOP, sig] if sig == signal.SIGKILL else [sig]
        for each in signals:
            for pid in pids:
                try:
                    os.kill(pid, each)
                except ProcessLookupError:
                    pass
        try:
            self.process.wait(timeout=DEADLINE)
        finally:
            self.process = None
        # The vrrp child and the FIFO reader exit after the parent, and keepalived refuses
        # to start while a pid of its pid files exists (even as a zombie): wait for them.
        wait_until(lambda: self.processes() + [pid for pid in pids if process_exists(pid)], DEADLINE,
                   "keepalived of %s to exit" % self.side, ok=lambda left: not left)

    def processes(self):
        found = []
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(self.config).encode() in b" ".join(cmdline) or \
                    str(self.config.parent / vocabulary.NOTIFY_SCRIPT).encode() in b" ".join(cmdline):
                found.append(int(entry.name))
        return found

    def recorded_state(self):
        try:
            return (self.router_dir / vocabulary.STATE_FILE).read_text().split()[0]
        except (OSError, IndexError):
            return None

    def holds_vip(self):
        out = in_ns(self.node, self.namespace, "ip", "-4", "-o", "addr", "show", "dev", self.ha_port).stdout
        return " %s/" % VIP in out

    def gateway_addresses(self):
        return in_ns(self.node, self.namespace, "ip", "-o", "addr", "show", "dev", self.gateway_port,
                     "scope", "global").stdout

    def link_up(self):
        out = in_ns(self.node, self.namespace, "ip", "-o", "link", "show", "dev", self.ha_port).stdout
        return "state UP" in out or ",UP" in out.split(">")[0]

    def real_state(self):
        """master when the kernel holds the VIP, fault when the HA link is down, else backup."""
        if self.holds_vip():
            return "master"
        return "backup" if self.link_up() else "fault"

    def notify_done(self):
        """The notify reader has handled every transition keepalived reported."""
        return notify_reader_idle(str(self.router_dir))

    def ipv6_forwarding(self):
        return in_ns(self.node, self.namespace, "cat", "/proc/sys/net/ipv6/conf/all/forwarding").stdout.strip()

    def set_ha_link(self, up):
        in_ns(self.node, self.namespace, "ip", "link", "set", self.ha_port, "up" if up else "down")


@pytest.fixture
def pair(tmp_path):
    suffix = uuid.uuid4().hex[:6]
    base = tmp_path / "pair"
    base.mkdir(mode=0o700)
    node = PrivateNode()
    replicas = {side: Replica(side, node, "l3ha-notify-%s-%s" % (suffix, side), base) for side in ("a", "b")}
    hooks_log = base / "hooks.log"
    try:
        for replica in replicas.values():
            node.sh("ip netns add %s" % replica.namespace)
        a, b = replicas["a"], replicas["b"]
        in_ns(node, a.namespace, "ip", "link", "add", a.ha_port, "type", "veth", "peer", "name", b.ha_port)
        in_ns(node, a.namespace, "ip", "link", "set", b.ha_port, "netns", b.namespace)
        for replica in replicas.values():
            ns = replica.namespace
            in_ns(node, ns, "ip", "link", "set", "lo", "up")
            in_ns(node, ns, "ip", "addr", "add", HA_ADDRESSES[replica.side] + "/18", "dev", replica.ha_port)
            in_ns(node, ns, "ip", "link", "set", replica.ha_port, "up")
            # The gateway port only has to exist and be up; its peer stays in the namespace.
            in_ns(node, ns, "ip", "link", "add", replica.gateway_port, "type", "veth", "peer", "name", "qgp")
            in_ns(node, ns, "sysctl", "-q", "-w", "net.ipv6.conf.%s.addr_gen_mode=1" % replica.gateway_port)
            in_ns(node, ns, "ip", "link", "set", replica.gateway_port, "up")
            in_ns(node, ns, "ip", "link", "set", "qgp", "up")
            replica.write_files(hooks_log)
        yield replicas, hooks_log
    finally:
        for replica in replicas.values():
            try:
                replica.stop(signal.SIGKILL)
            except Exception:  # cleanup must go on; the node goes next anyway
                pass
        node.close()  # its namespaces go with it
        shutil.rmtree(base, ignore_errors=True)


def start_both(replicas):
    for replica in replicas.values():
        replica.start()
    return wait_until(lambda: one_master(replicas), DEADLINE, "exactly one master")


def one_master(replicas):
    masters = [r for r in replicas.values() if r.holds_vip()]
    if len(masters) == 1 and all(r.recorded_state() == r.real_state() for r in replicas.values()):
        return masters[0]
    return None


def settled(replicas):
    """Every transition keepalived reported is handled to its end (state file, log,
    forwarding, hooks: notify.sh writes the state file first), every state file equals
    the real state, and exactly one replica is master. Idle is checked before and after
    reading the states, so that no transition slipped in between."""
    if not all(r.notify_done() for r in replicas.values()):
        return False
    real = {side: r.real_state() for side, r in replicas.items()}
    recorded = {side: r.recorded_state() for side, r in replicas.items()}
    done = all(r.notify_done() for r in replicas.values())
    return done and real == recorded and list(real.values()).count("master") == 1


def transitions(replica):
    return [state for _at, state in parse_transitions((replica.router_dir / TRANSITIONS_LOG).read_text())]


def test_state_files_match_real_vrrp_state_after_rapid_flaps(pair):
    replicas, hooks_log = pair
    start_both(replicas)
    flaps = 40
    for index in range(flaps):
        side = replicas["a" if index % 2 == 0 else "b"]
        side.set_ha_link(False)
        side.set_ha_link(True)
        # Sometimes leave the master no time to settle, sometimes enough to move.
        if index % 5 == 4:
            wait_until(lambda: any(r.holds_vip() for r in replicas.values()), DEADLINE, "a master between flaps")
    wait_until(lambda: settled(replicas), DEADLINE,
               "every transition handled and state files equal to the real VRRP state")
    master = next(r for r in replicas.values() if r.holds_vip())
    backup = next(r for r in replicas.values() if r is not master)
    assert (master.recorded_state(), backup.recorded_state()) == ("master", "backup")

    # The flaps really happened: every link-down was a FAULT transition on that side.
    for replica in replicas.values():
        states = transitions(replica)
        assert states.count("fault") >= flaps // 2, states
        assert states[-1] == replica.real_state()
    # Hooks ran once per transition, in the order of the transitions.
    hook_lines = hooks_log.read_text().splitlines()
    assert len(hook_lines) == sum(len(transitions(r)) for r in replicas.values())
    # IPv6 forwarding follows the master.
    assert (master.ipv6_forwarding(), backup.ipv6_forwarding()) == ("1", "0")
    assert GATEWAY_ADDRESS in master.gateway_addresses()
    assert GATEWAY_ADDRESS not in backup.gateway_addresses()


def test_sigterm_hands_over_and_records_stop(pair):
    replicas, _hooks_log = pair
    master = start_both(replicas)
    other = next(r for r in replicas.values() if r is not master)
    master.stop(signal.SIGTERM)
    wait_until(lambda: other.holds_vip() and other.recorded_state() == "master", DEADLINE,
               "the other replica to take over")
    assert master.recorded_state() == "stop"
    assert not master.holds_vip() and GATEWAY_ADDRESS not in master.gateway_addresses()


def test_sigkilled_master_comes_back_as_backup_and_clears_stale_addresses(pair):
    replicas, _hooks_log = pair
    master = start_both(replicas)
    other = next(r for r in replicas.values() if r is not master)
    master.stop(signal.SIGKILL)
    # SIGKILL leaves the addresses behind, and the reader records that VRRP stopped.
    assert GATEWAY_ADDRESS in master.gateway_addresses()
    wait_until(master.recorded_state, DEADLINE, "the killed replica's state file to say stop",
               ok=lambda state: state == "stop")
    wait_until(other.recorded_state, DEADLINE, "the other replica to take over", ok=lambda state: state == "master")
    master.start()
    wait_until(master.recorded_state, DEADLINE, "the restarted replica to record backup",
               ok=lambda state: state == "backup")
    wait_until(lambda: GATEWAY_ADDRESS not in master.gateway_addresses() and not master.holds_vip(), DEADLINE,
               "the restarted replica to clear its stale addresses")
    assert other.holds_vip() and other.recorded_state() == "master"
