"""Integration tests of the node modules on real kernel objects, run through Ansible.

Each test gets a private node (l3ha_lab.testing.PrivateNode): a holder process with its
own network and mount namespace and its own /run/netns, so router namespaces and links
never touch the machine. Teardown kills every process the modules started there
(keepalived) and the holder, and waits until they are gone.
"""
import hashlib
import json
import os
import pathlib
import signal

import pytest

from l3ha_lab.testing import PrivateNode, namespace_of, process_running, wait_until  # on sys.path through conftest.py

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / ".venv" / "bin" / "ansible"
PYTHON = ROOT / ".venv" / "bin" / "python"
TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


class Node(PrivateNode):
    """A private node with an external bridge (br-ex); modules run inside it."""

    def __init__(self, tmp_path):
        super().__init__(setup="ip link add br-ex type bridge && ip link set br-ex up")
        self.tmp = tmp_path
        self.dirs = {key: str(tmp_path / key) for key in ("etc", "run", "state")}

    def sh(self, command, check=True):
        return super().sh(command, check=check, cwd=ROOT)

    def module(self, name, args, check=False, diff=False, extra_vars=None):
        """Run a module through ansible (ad-hoc, local connection) inside the node."""
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        command = [str(ANSIBLE), "localhost", "-c", "local", "-m", "l3ha.routers." + name, "-a", json.dumps(args)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        out = self.run(command, cwd=ROOT, env=env)
        try:
            data = json.loads(out.stdout)
        except ValueError:
            raise AssertionError("no JSON from ansible: %s %s" % (out.stdout, out.stderr))
        return data["plays"][0]["tasks"][0]["hosts"]["localhost"]

    def reconcile(self, args, check=False, diff=False):
        """Run the ha_routers module itself (without the role's rendering action) inside the node.

        The action plugin of the same name renders the role's templates; these tests give
        the module their own minimal files, so they call the module's main() the way
        AnsiballZ does: arguments in a JSON file, result as JSON on stdout.
        """
        payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        path = self.tmp / "args.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        out = self.run(module_argv(path), cwd=ROOT)
        try:
            return json.loads(out.stdout)
        except ValueError:
            raise AssertionError("no JSON from the module: %s %s" % (out.stdout, out.stderr))

    def namespaces(self):
        return set(self.sh("ls /run/netns").split())

    def links(self, namespace=None):
        prefix = "ip -n %s" % namespace if namespace else "ip"
        return set(line.split("@")[0].split(":")[1].strip()
                   for line in self.sh(prefix + " -o link").splitlines())


def module_argv(args_file):
    """The module l3ha.routers.ha_routers run from this checkout, with its arguments file."""
    return ["env", "PYTHONPATH=%s" % (ROOT / ".build" / "collections"), str(PYTHON), "-m",
            "ansible_collections.l3ha.routers.plugins.modules.ha_routers", str(args_file)]


@pytest.fixture
def node(tmp_path):
    node = Node(tmp_path)
    try:
        yield node
    finally:
        node.close()


def short(key):
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def keepalived_conf(name, ha_port, vrid, address):
    return """global_defs {
  vrrp_version 3
  router_id %(name)s
}
vrrp_instance %(name)s {
  state BACKUP
  interface %(ha)s
  virtual_router_id %(vrid)d
  priority 50
  advert_int 1
  nopreempt
  unicast_src_ip %(address)s
  unicast_peer {
    169.254.192.250
  }
  virtual_ipaddress {
    169.254.0.%(vrid)d/24 dev %(ha)s
  }
}
""" % dict(name=name, ha=ha_port, vrid=vrid, address=address)


def router(name, vrid, gateway_mac=None):
    ha, qg = "ha-" + short(name + "/ha"), "qg-" + short(name + "/gw")
    address = "169.254.192.%d" % vrid
    return {
        "name": name, "tenant": "t1", "namespace": namespace_of(name), "ha": True, "vrid": vrid,
        "segment": "ha-t1", "ha_address": address + "/18", "ha_vip": "169.254.0.%d/24" % vrid,
        "peers": ["169.254.192.250"], "priority": 50,
        "ports": [
            {"kind": "ha", "name": ha, "peer": "v" + ha.replace("-", ""), "segment": "ha-t1",
             "mac": "fa:16:3e:00:01:%02x" % vrid, "mtu": 1450, "addresses": [address + "/18"]},
            {"kind": "gateway", "name": qg, "peer": "v" + qg.replace("-", ""), "segment": "ext",
             "mac": gateway_mac or "fa:16:3e:00:02:%02x" % vrid, "mtu": 1500, "addresses": []},
        ],
        "files": {
            "keepalived.conf": keepalived_conf(name, ha, vrid, address),
            "notify.sh": "#!/bin/sh\nexit 0\n",
            "nftables.nft": "table inet l3ha\ndelete table inet l3ha\n"
                            "table inet l3ha {\n  chain post { type nat hook postrouting priority 100; }\n}\n",
        },
        "metadata": {"tenant": "t1", "vrid": vrid},
    }


def reconciler_args(node, routers, purge=True, **extra):
    args = {
        "local_ip": "192.0.2.11", "purge": purge, "config_dir": node.dirs["etc"],
        "run_dir": node.dirs["run"], "state_dir": node.dirs["state"],
        # the node shares the host's /var/lib: metrics stay in the test's directory
        "metrics_dir": node.dirs["state"] + "/metrics",
        "segments": {
            "ha-t1": {"type": "vxlan", "vni": 2000, "bridge": "brq-" + short("ha-t1"),
                      "device": "vx-" + short("ha-t1"), "mtu": 1450, "remotes": ["192.0.2.12"]},
            "ext": {"type": "bridge", "bridge": "br-ex"},
        },
        "routers": routers,
    }
    args.update(extra)
    return args


def changed_routers(result):
    return sorted(name for name, entry in result["routers"].items() if entry["changed"])


def keepalived_pid(node, name):
    path = pathlib.Path(node.dirs["run"]) / "routers" / name / "keepalived.pid"
    return int(path.read_text().split()[0])


# ---------------------------------------------------------------- netns

def test_netns_names_match_exactly(node):
    assert node.module("netns", {"name": "r10"})["changed"] is True
    # r1 is not r10: check mode reports the creation, apply makes it
    checked = node.module("netns", {"name": "r1"}, check=True, diff=True)
    assert checked["changed"] is True
    assert checked["diff"]["after"] == "state: present\n"
    assert "r1" not in node.namespaces()
    assert node.module("netns", {"name": "r1"})["changed"] is True
    assert node.module("netns", {"name": "r1"})["changed"] is False
    assert node.module("netns", {"name": "r1", "state": "absent"})["changed"] is True
    assert node.namespaces() == {"r10"}
    assert node.module("netns", {"name": "r1", "state": "absent"})["changed"] is False


# ---------------------------------------------------------------- veth

def test_veth_sequence_move_and_recreate(node):
    node.module("netns", {"name": "ns1"})
    args = {"name": "qr-test", "peer": "vqrtest", "namespace": "ns1", "peer_master": "br-ex",
            "mac": "fa:16:3e:aa:bb:cc", "mtu": 1400, "addresses": ["10.0.0.1/24"],
            "exclusive_addresses": True}
    assert node.module("veth", args, check=True)["changed"] is True
    assert "qr-test" not in node.links("ns1")
    assert node.module("veth", args)["changed"] is True
    assert node.module("veth", args, check=True)["changed"] is False
    assert node.module("veth", args)["changed"] is False
    assert "master br-ex" in node.sh("ip -o link show vqrtest")
    assert "10.0.0.1/24" in node.sh("ip -n ns1 -o addr show qr-test")

    # one attribute changed: check shows it in the diff, apply makes it
    changed = dict(args, mtu=1300)
    checked = node.module("veth", changed, check=True, diff=True)
    assert checked["changed"] is True
    assert "qr-test.mtu: 1400" in checked["diff"]["before"]
    assert "qr-test.mtu: 1300" in checked["diff"]["after"]
    assert node.module("veth", changed)["changed"] is True
    assert "mtu 1300" in node.sh("ip -n ns1 -o link show qr-test")

    # an address added by hand goes (exclusive), the wanted one stays
    node.sh("ip -n ns1 addr add 10.9.9.9/24 dev qr-test")
    assert node.module("veth", changed)["changed"] is True
    assert "10.9.9.9" not in node.sh("ip -n ns1 -o addr show qr-test")

    # an end moved to the wrong namespace (here: the node's root) is moved back
    node.sh("ip -n ns1 link set qr-test netns %d" % node.pid)
    assert "qr-test" in node.links()
    moved = node.module("veth", changed)
    assert moved["changed"] is True
    assert "qr-test.namespace: root -> ns1" in moved["changes"]
    assert "qr-test" in node.links("ns1") and "qr-test" not in node.links()

    # a pair whose peer is wrong is recreated
    node.sh("ip -n ns1 link del qr-test")
    node.sh("ip netns exec ns1 ip link add qr-test type veth peer name other")
    recreated = node.module("veth", changed)
    assert recreated["changed"] is True
    assert "vqrtest" in node.links() and "qr-test" in node.links("ns1")
    assert node.module("veth", changed)["changed"] is False

    assert node.module("veth", dict(changed, state="absent"))["changed"] is True
    assert "vqrtest" not in node.links()


def test_veth_bad_input_names_field(node):
    result = node.module("veth", {"name": "qr-much-too-long-name", "peer": "vqrx", "mac": "zz"})
    assert result.get("failed")
    assert "name" in result["msg"] and "15" in result["msg"]
    assert "mac" in result["msg"]
    assert "vqrx" not in node.links()


# ---------------------------------------------------------------- reconciler

def test_reconciler_sequence_and_purge(node):
    routers = [router("r1", 1), router("r10", 10)]
    created = node.reconcile(reconciler_args(node, routers))
    assert created["changed"] is True, created.get("msg")
    assert {"qrouter-r1", "qrouter-r10"} <= node.namespaces()
    wait_until(lambda: keepalived_pid(node, "r1") and keepalived_pid(node, "r10"), 15, "keepalived")
    pid_r1 = keepalived_pid(node, "r1")

    second = node.reconcile(reconciler_args(node, routers), check=True)
    assert second["changed"] is False, json.dumps({k: v for k, v in second.items() if k != "invocation"})
    assert node.reconcile(reconciler_args(node, routers))["changed"] is False

    # change one attribute of r1: check names r1 and the field, apply makes it
    routers[0] = router("r1", 1, gateway_mac="fa:16:3e:00:02:99")
    checked = node.reconcile(reconciler_args(node, routers), check=True, diff=True)
    assert checked["changed"] is True
    assert changed_routers(checked) == ["r1"]
    qg = routers[0]["ports"][1]["name"]
    field_diffs = [d for d in checked["diff"] if d["before_header"] == "router r1"]
    assert "%s.mac: fa:16:3e:00:02:01" % qg in field_diffs[0]["before"]
    assert "%s.mac: fa:16:3e:00:02:99" % qg in field_diffs[0]["after"]
    assert all("r10" not in d["before_header"] for d in checked["diff"])
    applied = node.reconcile(reconciler_args(node, routers))
    assert changed_routers(applied) == ["r1"]
    assert "fa:16:3e:00:02:99" in node.sh("ip -n qrouter-r1 -o link show %s" % qg)
    again = node.reconcile(reconciler_args(node, routers), check=True)
    assert again["changed"] is False, (again["routers"], again["segments"])
    assert keepalived_pid(node, "r1") == pid_r1  # not restarted

    # foreign namespace and foreign veth in the root namespace survive purge
    node.sh("ip netns add qrouter-foreign && ip link add vforeign type veth peer name vforeign1")
    purged = node.reconcile(reconciler_args(node, [routers[1]]))
    assert purged["purged"] == ["r1"]
    assert "qrouter-r1" not in node.namespaces()
    assert {"qrouter-r10", "qrouter-foreign"} <= node.namespaces()
    assert {"vforeign", "vforeign1"} <= node.links()
    assert not {port["peer"] for port in routers[0]["ports"]} & node.links()
    assert not (pathlib.Path(node.dirs["etc"]) / "routers" / "r1").exists()
    assert node.reconcile(reconciler_args(node, [routers[1]]))["changed"] is False


def test_drift_is_reported_for_the_drifted_router_and_repaired(node):
    routers = [router("r1", 1), router("r10", 10)]
    node.reconcile(reconciler_args(node, routers))
    wait_until(lambda: keepalived_pid(node, "r1") and keepalived_pid(node, "r10"), 15, "keepalived")
    qg = routers[0]["ports"][1]["name"]
    ha = routers[0]["ports"][0]["name"]

    def drift_of(expected_field):
        checked = node.reconcile(reconciler_args(node, routers), check=True, diff=True)
        assert changed_routers(checked) == ["r1"], checked["routers"]
        assert any(expected_field in line for line in checked["routers"]["r1"]["changes"]), checked
        applied = node.reconcile(reconciler_args(node, routers))
        assert changed_routers(applied) == ["r1"]
        again = node.reconcile(reconciler_args(node, routers), check=True)
        assert again["changed"] is False, again["routers"]

    node.sh("ip -n qrouter-r1 link del %s" % qg)
    drift_of(qg)
    assert qg in node.links("qrouter-r1")

    conf = pathlib.Path(node.dirs["etc"]) / "routers" / "r1" / "keepalived.conf"
    conf.write_text(conf.read_text() + "# edited by hand\n")
    drift_of("keepalived.conf")
    assert "edited by hand" not in conf.read_text()

    # SIGKILL leaves addresses behind; the restart must clear them
    pid = keepalived_pid(node, "r1")
    # a stand-in for a VIP the killed keepalived would leave (its own VIP may be there too)
    node.sh("ip -n qrouter-r1 addr add 169.254.0.77/24 dev %s" % ha)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not process_running(pid), 15, "keepalived death")
    drift_of("keepalived")
    assert keepalived_pid(node, "r1") != pid
    assert "169.254.0.77/24" not in node.sh("ip -n qrouter-r1 -o addr show %s" % ha)
    assert "169.254.192.1/18" in node.sh("ip -n qrouter-r1 -o addr show %s" % ha)


def non_ha_router(name):
    """A router without keepalived: the reconciler owns all its addresses and routes."""
    qg, qr = "qg-" + short(name + "/gw"), "qr-" + short(name + "/net/n1")
    return {
        "name": name, "tenant": "t1", "namespace": namespace_of(name), "ha": False, "vrid": None,
        "segment": None, "ha_address": None, "peers": [], "priority": None,
        "ports": [
            {"kind": "gateway", "name": qg, "peer": "v" + qg.replace("-", ""), "segment": "ext",
             "mac": "fa:16:3e:00:03:01", "mtu": 1500, "addresses": ["203.0.113.13/24", "203.0.113.50/32"]},
            {"kind": "internal", "name": qr, "peer": "v" + qr.replace("-", ""), "segment": "ha-t1",
             "mac": "fa:16:3e:00:03:02", "mtu": 1450, "addresses": ["10.1.0.1/24", "fd00:1::1/64"]},
        ],
        "gateway": {"network": "ext", "port": qg, "addresses": ["203.0.113.13/24"],
                    "gateway_ips": ["203.0.113.1"], "snat": True},
        "routes": [{"destination": "10.9.0.0/16", "nexthop": "10.1.0.254"}],
        "files": {"nftables.nft": "table inet l3ha\ndelete table inet l3ha\ntable inet l3ha {\n}\n"},
        "metadata": {"tenant": "t1"},
    }


def test_router_without_keepalived_gets_addresses_and_routes(node):
    legacy = non_ha_router("acme-r10")
    qg, qr = legacy["ports"][0]["name"], legacy["ports"][1]["name"]
    created = node.reconcile(reconciler_args(node, [legacy]))
    assert created["changed"] is True, created.get("msg")
    assert node.reconcile(reconciler_args(node, [legacy]), check=True)["changed"] is False
    assert "203.0.113.50/32" in node.sh("ip -n qrouter-acme-r10 -o addr show %s" % qg)
    assert "fd00:1::1/64" in node.sh("ip -n qrouter-acme-r10 -o addr show %s" % qr)
    routes = node.sh("ip -n qrouter-acme-r10 route show")
    assert "default via 203.0.113.1 dev %s" % qg in routes
    assert "10.9.0.0/16 via 10.1.0.254 dev %s" % qr in routes
    assert node.sh("ip netns exec qrouter-acme-r10 sysctl -n net.ipv6.conf.all.forwarding").strip() == "1"
    assert not (pathlib.Path(node.dirs["run"]) / "routers" / "acme-r10" / "keepalived.pid").exists()

    node.sh("ip -n qrouter-acme-r10 route del 10.9.0.0/16")
    node.sh("ip -n qrouter-acme-r10 addr add 203.0.113.99/32 dev %s" % qg)
    checked = node.reconcile(reconciler_args(node, [legacy]), check=True)
    assert changed_routers(checked) == ["acme-r10"]
    lines = checked["routers"]["acme-r10"]["changes"]
    assert any(line.startswith("routes:") for line in lines), lines
    assert any(line.startswith(qg + ".addresses:") for line in lines), lines
    assert node.reconcile(reconciler_args(node, [legacy]))["changed"] is True
    assert "10.9.0.0/16 via 10.1.0.254" in node.sh("ip -n qrouter-acme-r10 route show")
    assert "203.0.113.99" not in node.sh("ip -n qrouter-acme-r10 -o addr show %s" % qg)
    assert node.reconcile(reconciler_args(node, [legacy]), check=True)["changed"] is False


def test_bad_input_fails_naming_the_field_before_any_change(node):
    good = router("r1", 1)
    cases = [
        ({"ports": [dict(good["ports"][0], name="ha-0123456789abc")]}, "ports[0].name"),
        ({"ports": [dict(good["ports"][0], mac="fa:16:3e:zz:00:01")]}, "ports[0].mac"),
        ({"ha_address": "169.254.192.300/18"}, "ha_address"),
    ]
    for change, field in cases:
        result = node.reconcile(reconciler_args(node, [dict(good, **change)]))
        assert result.get("failed"), result
        assert "router r1: %s" % field in result["msg"]
    segment_cases = [
        ({"ext": {"type": "bridge", "bridge": "br-missing"}}, "segment ext: bridge"),
        ({"ha-t1": {"type": "vxlan", "vni": 16777216, "bridge": "brq-x", "device": "vx-x"}}, "segment ha-t1: vni"),
    ]
    for change, text in segment_cases:
        args = reconciler_args(node, [good])
        args["segments"] = dict(args["segments"], **change)
        result = node.reconcile(args)
        assert result.get("failed") and text in result["msg"], result
    result = node.reconcile(reconciler_args(node, [good], local_ip=None))
    assert result.get("failed") and "segment ha-t1: local_ip" in result["msg"]
    assert "qrouter-r1" not in node.namespaces()
    assert not (pathlib.Path(node.dirs["etc"]) / "routers").exists()
    assert not any(name.startswith(("brq-", "vx-")) for name in node.links())


def test_router_facts(node):
    routers = [router("r1", 1)]
    node.reconcile(reconciler_args(node, routers))
    wait_until(lambda: keepalived_pid(node, "r1"), 15, "keepalived")
    state = pathlib.Path(node.dirs["run"]) / "routers" / "r1" / "state"
    state.write_text("master 1764100000.5\n")
    state_dir = pathlib.Path(node.dirs["state"])
    state_dir.mkdir(exist_ok=True)
    state_dir.chmod(0o700)  # as drain makes it; another mode is drift the reconciler repairs
    (state_dir / "drained").write_text("")
    facts = node.module("router_facts", {k: node.dirs[v] for k, v in
                                         (("config_dir", "etc"), ("run_dir", "run"), ("state_dir", "state"))})
    r1 = facts["ansible_facts"]["l3ha_router_facts"]["r1"]
    assert facts["ansible_facts"]["l3ha_node"]["drained"] is True
    assert (r1["tenant"], r1["vrid"], r1["segment"], r1["ha_address"]) == ("t1", 1, "ha-t1", "169.254.192.1/18")
    assert (r1["state"], r1["since"], r1["keepalived_alive"]) == ("master", 1764100000.5, True)
    assert r1["metadata"] == {"tenant": "t1", "vrid": 1}
    conf = (pathlib.Path(node.dirs["etc"]) / "routers" / "r1" / "keepalived.conf").read_text()
    assert r1["checksums"]["keepalived.conf"] == hashlib.sha256(conf.encode()).hexdigest()


def test_reconciler_through_the_action_plugin(node):
    """The way the role calls it: the action renders templates (here: ones echoing our files)."""
    args = reconciler_args(node, [router("r1", 1)])
    args["templates"] = {f: str(TEMPLATES / (f + ".j2")) for f in ("keepalived.conf", "notify.sh", "nftables.nft")}
    args["validate"] = False
    checked = node.module("ha_routers", args, check=True)
    assert checked["changed"] is True, checked.get("msg")
    assert "qrouter-r1" not in node.namespaces()
    assert node.module("ha_routers", args)["changed"] is True
    wait_until(lambda: keepalived_pid(node, "r1"), 15, "keepalived")
    assert node.module("ha_routers", args)["changed"] is False


def test_routers_with_unchanged_inputs_are_not_rendered_again(node):
    """A re-run renders only what changed; the node's own files stand in for the rest, and a
    file edited after the facts were read is still found (the module asks for it)."""
    args = reconciler_args(node, [router("r1", 1), router("r2", 2)])
    args["templates"] = {f: str(TEMPLATES / (f + ".j2")) for f in ("keepalived.conf", "notify.sh", "nftables.nft")}
    args["validate"] = False
    dirs = {k: node.dirs[v] for k, v in (("config_dir", "etc"), ("run_dir", "run"), ("state_dir", "state"))}

    def facts():
        return node.module("router_facts", dirs)["ansible_facts"]

    assert node.module("ha_routers", args)["rendered"] == ["r1", "r2"]
    known = facts()
    assert all(known["l3ha_router_facts"][name]["inputs_checksum"] for name in ("r1", "r2"))
    again = node.module("ha_routers", args, extra_vars=known)
    assert (again["changed"], again["rendered"]) == (False, [])
    conf = pathlib.Path(node.dirs["etc"]) / "routers" / "r2" / "keepalived.conf"
    written = conf.read_text()
    conf.write_text(written + "# edited by hand\n")
    checked = node.module("ha_routers", args, check=True, diff=True, extra_vars=known)
    assert (checked["rendered"], changed_routers(checked)) == (["r2"], ["r2"]), checked.get("msg")
    assert conf.read_text().endswith("# edited by hand\n")  # check mode changed nothing
    repaired = node.module("ha_routers", args, extra_vars=known)
    assert (repaired["rendered"], changed_routers(repaired)) == (["r2"], ["r2"])
    assert conf.read_text() == written
    # a changed input renders the routers it concerns, without facts as well
    args["routers"][0]["metadata"] = {"tenant": "t1", "vrid": 1, "note": "new"}
    assert node.module("ha_routers", args, extra_vars=facts())["rendered"] == ["r1"]
    assert node.module("ha_routers", args)["rendered"] == ["r1", "r2"]


def test_drained_node_does_not_start_keepalived(node):
    routers = [router("r1", 1)]
    node.reconcile(reconciler_args(node, routers))
    pid = wait_until(lambda: keepalived_pid(node, "r1"), 15, "keepalived")
    state_dir = pathlib.Path(node.dirs["state"])
    state_dir.mkdir(exist_ok=True)
    state_dir.chmod(0o700)  # as drain makes it; another mode is drift the reconciler repairs
    (state_dir / "drained").write_text("")
    os.kill(pid, signal.SIGTERM)  # as the drain playbook does: a graceful stop
    wait_until(lambda: not process_running(pid), 15, "keepalived stop")
    assert node.reconcile(reconciler_args(node, routers), check=True)["changed"] is False
    assert node.reconcile(reconciler_args(node, routers))["changed"] is False
    (pathlib.Path(node.dirs["state"]) / "drained").unlink()
    checked = node.reconcile(reconciler_args(node, routers), check=True)
    assert checked["routers"]["r1"]["changes"] == ["keepalived: stopped -> running"]
    assert node.reconcile(reconciler_args(node, routers))["changed"] is True
    assert keepalived_pid(node, "r1") != pid


def test_flood_entries_follow_the_remotes(node):
    routers = [router("r1", 1)]
    args = reconciler_args(node, routers)
    node.reconcile(args)
    device = args["segments"]["ha-t1"]["device"]
    assert "dst 192.0.2.12" in node.sh("bridge fdb show dev %s" % device)
    args["segments"]["ha-t1"]["remotes"] = ["192.0.2.13", "192.0.2.14"]
    checked = node.reconcile(args, check=True)
    assert checked["segments"]["ha-t1"]["changes"] == [
        "%s.flood: [192.0.2.12] -> [192.0.2.13, 192.0.2.14]" % device]
    assert changed_routers(checked) == []
    node.reconcile(args)
    flood = node.sh("bridge fdb show dev %s" % device)
    assert "dst 192.0.2.13" in flood and "dst 192.0.2.14" in flood and "192.0.2.12" not in flood
    assert node.reconcile(args, check=True)["changed"] is False


def test_config_change_reloads_keepalived_without_restart(node):
    routers = [router("r1", 1)]
    node.reconcile(reconciler_args(node, routers))
    pid = wait_until(lambda: keepalived_pid(node, "r1"), 15, "keepalived")
    ha = routers[0]["ports"][0]["name"]
    # alone on its segment, the instance becomes master and adds its VIP
    wait_until(lambda: "169.254.0.1/24" in node.sh("ip -n qrouter-r1 -o addr show %s" % ha), 15, "master VIP")
    conf = routers[0]["files"]["keepalived.conf"]
    routers[0]["files"]["keepalived.conf"] = conf.replace("169.254.0.1/24", "169.254.0.2/24")
    checked = node.reconcile(reconciler_args(node, routers), check=True)
    assert any(line.startswith("keepalived.config: ") for line in checked["routers"]["r1"]["changes"])
    node.reconcile(reconciler_args(node, routers))
    wait_until(lambda: "169.254.0.2/24" in node.sh("ip -n qrouter-r1 -o addr show %s" % ha), 15, "reloaded VIP")
    assert keepalived_pid(node, "r1") == pid
    assert node.reconcile(reconciler_args(node, routers), check=True)["changed"] is False


COMPARE_DUMPS = r"""
import json, sys
from pyroute2 import IPRoute
from ansible_collections.l3ha.routers.plugins.module_utils import _netlink, _netlink_parse
result = {}
for name in (None, sys.argv[1]):
    lean = _netlink.Namespace(name)
    with _netlink.entered(name):
        full = IPRoute()
    fields = lambda link: [link.index, link.name, link.kind, link.mac, link.mtu, link.up, link.master,
                           link.alias, link.peer_index, sorted((k, v) for k, v in link.info.items()
                                                              if k in _netlink_parse.COMPARED_INFO)]
    links = dict((l.name, fields(l)) for l in lean.links().values())
    reference = dict((l.name, fields(l)) for l in (_netlink_parse.Link.from_message(m) for m in full.get_links()))
    addresses = dict((n, sorted(lean.addresses(n))) for n in links)
    reference_addresses = {}
    for n, entry in reference.items():
        reference_addresses[n] = sorted(_netlink.normalize_cidr("%s/%d" % (
            m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS"), m["prefixlen"])) for m in full.get_addr(index=entry[0]))
    fdb = sorted(e for e in lean.fdb() if e[2])
    reference_fdb = sorted((m["ifindex"], m.get_attr("NDA_LLADDR"), m.get_attr("NDA_DST"))
                           for m in full.fdb("dump") if m.get_attr("NDA_DST"))
    result[name or "root"] = [links == reference, addresses == reference_addresses, fdb == reference_fdb,
                              len(links), sum(len(a) for a in addresses.values()), len(fdb)]
    lean.close(); full.close()
print(json.dumps(result))
"""


def test_lean_dumps_read_what_pyroute2_reads(node):
    """The reconciler's own parser of link, address and FDB dumps against pyroute2's."""
    routers = [router("r1", 1), router("r2", 2)]
    node.reconcile(reconciler_args(node, routers))
    node.sh("ip -n qrouter-r1 addr add 2001:db8::1/64 dev %s" % routers[0]["ports"][1]["name"])
    out = node.sh("PYTHONPATH=%s %s -c '%s' qrouter-r1" % (ROOT / ".build" / "collections", PYTHON,
                                                           COMPARE_DUMPS.replace("'", "'\"'\"'")))
    result = json.loads(out)
    for space, (links_equal, addresses_equal, fdb_equal, links, addresses, floods) in result.items():
        assert (links_equal, addresses_equal, fdb_equal) == (True, True, True), space
    # something was compared: ports, a vxlan with its flood entry, v4 and v6 addresses
    assert result["root"][3] >= 6 and result["root"][5] >= 1
    assert result["qrouter-r1"][3] >= 3 and result["qrouter-r1"][4] >= 3
