"""Unit tests of the node-side module_utils (netlink mocked by small fakes)."""
import importlib
import json
import os

import pytest

from ansible_collections.l3ha.routers.plugins.module_utils import (
    _node_input, _processes, _reconciler, _router_files, _router_namespace, _segments, _supervisor,
)
from ansible_collections.l3ha.routers.plugins.module_utils._changes import Changes, Unrecorded
from ansible_collections.l3ha.routers.plugins.module_utils._facts import parse_state, router_facts
from ansible_collections.l3ha.routers.plugins.module_utils._files import (
    file_drift, sha256_text, write_atomic,
)
from ansible_collections.l3ha.routers.plugins.module_utils._netlink import Route
from ansible_collections.l3ha.routers.plugins.module_utils._netlink_parse import COMPARED_INFO, Link
from ansible_collections.l3ha.routers.plugins.module_utils._ports import (
    NewNamespace, VethSpec, ensure_addresses, ensure_veth,
)
from ansible_collections.l3ha.routers.plugins.module_utils._validate import Errors, ValidationError
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import NODE_SYSCTL_FLOORS


class FakeRoute:
    def __init__(self, space):
        self.space = space
        self.calls = []

    def link(self, command, **attrs):
        self.calls.append(("link", command, attrs))
        if command == "add":
            info = {}
            if attrs.get("kind") == "vlan":
                info["IFLA_VLAN_ID"] = attrs["vlan_id"]
            self.space.add(Link(self.space.next_index(), attrs["ifname"], kind=attrs["kind"],
                                mtu=attrs.get("mtu"), alias=attrs.get("ifalias"), info=info))

    def fdb(self, command, **attrs):
        self.calls.append(("fdb", command, attrs))
        return []


class FakeSpace:
    """A namespace with links in memory; records the netlink calls made on it."""

    def __init__(self, name=None, links=()):
        self.name = name
        self._links = {}
        self.route = FakeRoute(self)
        self.addrs = {}
        self.sysctl_values = {}
        for link in links:
            self.add(link)

    def add(self, link):
        self._links[link.name] = link

    def next_index(self):
        return max([link.index for link in self._links.values()] + [1]) + 1

    def links(self):
        return self._links

    def link(self, name):
        return self._links.get(name)

    def fdb(self):
        return []  # no flood entries yet

    def sysctls(self, keys):
        return dict((key, self.sysctl_values.get(key)) for key in keys)  # None: not on this kernel

    def link_by_index(self, index):
        return next((link for link in self._links.values() if link.index == index), None)

    def refresh(self, name):
        return self._links.get(name)

    def reload(self):
        pass

    def set_link(self, name, **attrs):
        self.route.calls.append(("link", "set", dict(attrs, name=name)))
        link = self._links[name]
        link.mtu = attrs.get("mtu", link.mtu)
        link.alias = attrs.get("ifalias", link.alias)
        link.master = attrs.get("master", link.master)
        if "state" in attrs:
            link.up = attrs["state"] == "up"
        return link

    def delete_link(self, name):
        self.route.calls.append(("link", "del", {"name": name}))
        self._links.pop(name, None)

    def addresses(self, name):
        return list(self.addrs.get(name, []))

    def add_address(self, name, cidr):
        self.route.calls.append(("addr", "add", {"name": name, "cidr": cidr}))
        self.addrs.setdefault(name, []).append(cidr)

    def delete_address(self, name, cidr):
        self.route.calls.append(("addr", "del", {"name": name, "cidr": cidr}))
        self.addrs[name].remove(cidr)


def router(name="r1", **change):
    entry = {
        "name": name, "tenant": "t", "ha": True, "vrid": 1, "segment": "ha", "ha_address": "169.254.192.1/18",
        "ports": [
            {"kind": "ha", "name": "ha-00000001", "peer": "vha00000001", "segment": "ha",
             "mac": "fa:16:3e:00:00:01", "mtu": 1450, "addresses": ["169.254.192.1/18"]},
            {"kind": "gateway", "name": "qg-00000001", "peer": "vqg00000001", "segment": "ext",
             "mac": "fa:16:3e:00:00:02", "mtu": 1500, "addresses": []},
        ],
        "files": {"keepalived.conf": "global_defs {}\n"},
        "metadata": {"k": "v"},
    }
    entry.update(change)
    return entry


SEGMENTS = {"ha": {"type": "vxlan", "vni": 2000, "bridge": "brq-1", "device": "vx-1", "mtu": 1450,
                   "remotes": ["192.0.2.12"]},
            "ext": {"type": "bridge", "bridge": "br-ex", "mtu": 1500}}


def errors_of(routers, segments=None, local_ip="192.0.2.11", root=None):
    segments = SEGMENTS if segments is None else segments
    errors = Errors()
    _node_input.validate_routers(routers, segments, errors)
    root = root or FakeSpace(links=[Link(2, "br-ex", kind="bridge")])
    _segments.validate_segments(segments, local_ip, root, errors)
    return errors.messages


# ---------------------------------------------------------------- validation

def test_valid_input_has_no_errors():
    assert errors_of([router("r1"), router("r10", ports=[])]) == []


@pytest.mark.parametrize("change, expected", [
    ({"name": "R1"}, "router R1: name: 'R1' must match"),
    ({"vrid": 256}, "router r1: vrid: VRID 256 is out of range 1..255"),
    ({"ha_address": "169.254.192.1"}, "router r1: ha_address:"),
    ({"segment": "nope"}, "router r1: segment: 'nope' is not in segments"),
    ({"namespace": "qrouter-r2"}, "router r1: namespace:"),
    ({"files": {}}, "router r1: files: keepalived.conf (text) is required"),
    ({"files": {"keepalived.conf": "", "evil.sh": ""}}, "router r1: files: 'evil.sh'"),
])
def test_router_errors_name_router_and_field(change, expected):
    messages = errors_of([router(**change)])
    assert any(m.startswith(expected) for m in messages), messages


@pytest.mark.parametrize("port_change, expected", [
    ({"name": "ha-0123456789abcdef"}, "router r1: ports[0].name: 'ha-0123456789abcdef' is 19 characters long"),
    ({"name": "qr-00000001"}, "router r1: ports[0].name: 'qr-00000001': a ha port name starts with 'ha-'"),
    ({"mac": "fa:16:3e:00:00"}, "router r1: ports[0].mac:"),
    ({"mac": "01:00:5e:00:00:01"}, "router r1: ports[0].mac: '01:00:5e:00:00:01' is a multicast MAC"),
    ({"addresses": ["10.0.0.300/24"]}, "router r1: ports[0].addresses[0]:"),
    ({"mtu": 1400}, "router r1: ports[0].mtu: 1400 differs from the MTU 1450 of segment ha"),
    ({"segment": "other"}, "router r1: ports[0].segment:"),
])
def test_port_errors_name_the_field(port_change, expected):
    base = router()
    ports = [dict(base["ports"][0], **port_change), base["ports"][1]]
    messages = errors_of([router(ports=ports)])
    assert any(m.startswith(expected) for m in messages), messages


def test_duplicate_names_and_peers_are_errors():
    messages = errors_of([router("r1"), router("r1")])
    assert "router r1: name: listed twice" in messages
    assert any("ports[0].peer: 'vha00000001' is also used by router r1" in m for m in messages)


@pytest.mark.parametrize("segment, local_ip, expected", [
    ({"type": "bridge", "bridge": "br-missing"}, "192.0.2.11",
     "segment s: bridge: bridge 'br-missing' does not exist on this node"),
    ({"type": "vxlan", "vni": 0, "bridge": "brq-1", "device": "vx-1"}, "192.0.2.11",
     "segment s: vni: VNI 0 is out of range 1..16777215"),
    ({"type": "vxlan", "vni": 16777216, "bridge": "brq-1", "device": "vx-1"}, "192.0.2.11",
     "segment s: vni: VNI 16777216 is out of range 1..16777215"),
    ({"type": "vxlan", "vni": 5, "bridge": "brq-1", "device": "vx-1"}, None,
     "segment s: local_ip: a vxlan segment needs the local tunnel IP"),
    ({"type": "vxlan", "vni": 5, "bridge": "brq-1", "device": "vx-1", "remotes": ["x"]}, "192.0.2.11",
     "segment s: remotes[0]: 'x' is not an IP address"),
    ({"type": "vlan", "vlan_id": 4095, "bridge": "brq-1", "device": "eth9.4095", "physical_device": "eth9"},
     "192.0.2.11", "segment s: vlan_id: VLAN id 4095 is out of range 1..4094"),
    ({"type": "vlan", "vlan_id": 10, "bridge": "brq-1", "device": "eth9.10", "physical_device": "eth9"},
     "192.0.2.11", "segment s: physical_device: device 'eth9' does not exist on this node"),
    ({"type": "vxlan", "vni": 5, "bridge": "br-ex", "device": "vx-1"}, "192.0.2.11",
     "segment s: bridge: 'br-ex' exists and is not managed by l3ha"),
    ({"type": "token-ring"}, None, "segment s: type:"),
])
def test_segment_errors_name_segment_and_field(segment, local_ip, expected):
    messages = errors_of([], {"s": segment}, local_ip)
    assert any(m.startswith(expected) for m in messages), messages


# ---------------------------------------------------------------- segments

def test_vxlan_segment_created_with_flood_entries():
    root = FakeSpace()
    changes = Changes("segment ha")
    _segments.ensure_segment(root, "ha", SEGMENTS["ha"], "192.0.2.11", changes)
    changes.apply()
    adds = [attrs for kind, command, attrs in root.route.calls if command == "add" and kind == "link"]
    assert [a["ifname"] for a in adds] == ["brq-1", "vx-1"]
    assert adds[1]["vxlan_id"] == 2000 and adds[1]["vxlan_local"] == "192.0.2.11"
    assert adds[1]["vxlan_port"] == 4789 and adds[1]["vxlan_learning"] == 1
    assert adds[1]["ifalias"] == "l3ha:ha" and adds[1]["mtu"] == 1450
    assert root.link("vx-1").master == root.link("brq-1").index
    floods = [attrs for kind, command, attrs in root.route.calls if kind == "fdb" and command == "append"]
    assert floods == [{"ifindex": root.link("vx-1").index, "lladdr": "00:00:00:00:00:00", "dst": "192.0.2.12"}]
    assert changes.lines() == ["brq-1: absent -> created", "vx-1: absent -> created",
                               "vx-1.flood: [] -> [192.0.2.12]"]


def test_vxlan_with_wrong_vni_is_recreated_and_check_mode_writes_nothing():
    vx = Link(3, "vx-1", kind="vxlan", mtu=1450, up=True, master=2, alias="l3ha:ha",
              info={"IFLA_VXLAN_ID": 1999, "IFLA_VXLAN_LOCAL": "192.0.2.11", "IFLA_VXLAN_PORT": 4789,
                    "IFLA_VXLAN_LEARNING": 1})
    br = Link(2, "brq-1", kind="bridge", mtu=1450, up=True, alias="l3ha:ha")
    root = FakeSpace(links=[br, vx])
    changes = Changes("segment ha")
    _segments.ensure_link(root, "vx-1", "vxlan", _segments.vxlan_identity(SEGMENTS["ha"], "192.0.2.11"),
                          SEGMENTS["ha"], "ha", "brq-1", changes)
    changes.commit(check_mode=True)
    assert changes.lines() == ["vx-1.vxlan_id: 1999 -> 2000"]
    assert root.route.calls == []


def test_vlan_segment_plumbing():
    """vlan is unit-tested only: the lab kernel has no 802.1Q."""
    seg = {"type": "vlan", "vlan_id": 100, "bridge": "brq-2", "device": "eth1.100",
           "physical_device": "eth1", "mtu": 1500}
    root = FakeSpace(links=[Link(5, "eth1", kind=None, mtu=1500, up=True)])
    assert errors_of([], {"v": seg}, None, root) == []
    changes = Changes("segment v")
    _segments.ensure_segment(root, "v", seg, None, changes)
    changes.apply()
    vlan = [attrs for kind, command, attrs in root.route.calls if command == "add" and attrs["kind"] == "vlan"]
    assert vlan == [{"ifname": "eth1.100", "kind": "vlan", "ifalias": "l3ha:v", "vlan_id": 100,
                     "link": 5, "mtu": 1500}]
    assert root.link("eth1.100").master == root.link("brq-2").index
    assert not any(call[0] == "fdb" for call in root.route.calls)


# ---------------------------------------------------------------- veth decisions

def veth_pair(end_ns="ns1"):
    end = Link(2, "qr-1", kind="veth", mac="fa:16:3e:00:00:09", mtu=1450, up=True, peer_index=7)
    peer = Link(7, "vqr1", kind="veth", mtu=1450, up=True, peer_index=2, master=3, alias="l3ha:r1")
    bridge = Link(3, "br-x", kind="bridge")
    return FakeSpace(end_ns, [end]), FakeSpace(None, [peer, bridge])


def spec(**change):
    values = dict(name="qr-1", peer="vqr1", namespace="ns1", mac="fa:16:3e:00:00:09", mtu=1450,
                  peer_master="br-x", peer_alias="l3ha:r1")
    values.update(change)
    return VethSpec(**values)


def test_matching_pair_has_no_changes():
    end_space, root = veth_pair()
    changes = Changes("x")
    assert ensure_veth(end_space, root, root, spec(), changes) is False
    changes.apply()
    assert changes.lines() == [] and end_space.route.calls == [] and root.route.calls == []


def test_attribute_drift_is_recorded_and_check_mode_writes_nothing():
    end_space, root = veth_pair()
    changes = Changes("x")
    ensure_veth(end_space, root, root, spec(mtu=1400, mac="fa:16:3e:00:00:0a"), changes)
    changes.commit(check_mode=True)
    assert changes.lines() == ["qr-1.mac: fa:16:3e:00:00:09 -> fa:16:3e:00:00:0a", "qr-1.mtu: 1450 -> 1400",
                               "vqr1.mtu: 1450 -> 1400"]
    assert end_space.route.calls == [] and root.route.calls == []


def test_wrong_peer_means_recreate():
    end_space, root = veth_pair()
    root.link("vqr1").peer_index = 99  # our peer name belongs to another pair
    changes = Changes("x")
    assert ensure_veth(end_space, root, root, spec(), changes) is True
    assert changes.lines() == ["qr-1.peer: not vqr1 -> vqr1"]


def test_misplaced_end_is_reported_as_a_move():
    end_space, root = veth_pair()
    moved = end_space.link("qr-1")
    end_space.delete_link("qr-1")
    root.add(moved)
    changes = Changes("x")
    assert ensure_veth(end_space, root, root, spec(), changes) is False
    assert changes.lines()[0] == "qr-1.namespace: root -> ns1"


def test_absent_namespace_means_created():
    root = veth_pair()[1]
    changes = Changes("x")
    ensure_veth(NewNamespace("ns9"), root, root, spec(name="qr-9", peer="vqr9"), changes)
    assert changes.lines() == ["qr-9: absent -> created"]


def test_exclusive_addresses_keep_ipv6_link_local():
    space = FakeSpace("ns1", [Link(2, "qr-1", kind="veth")])
    space.addrs["qr-1"] = ["10.0.0.9/24", "fe80::1/64", "10.0.0.1/24"]
    changes = Changes("x")
    ensure_addresses(space, "qr-1", ["10.0.0.1/24", "10.0.1.1/24"], True, changes)
    changes.apply()
    assert sorted(space.addrs["qr-1"]) == ["10.0.0.1/24", "10.0.1.1/24", "fe80::1/64"]
    non_exclusive = FakeSpace("ns1", [Link(2, "qr-1", kind="veth")])
    non_exclusive.addrs["qr-1"] = ["10.0.0.9/24"]
    other = Changes("y")
    ensure_addresses(non_exclusive, "qr-1", ["10.0.0.1/24"], False, other)
    other.apply()
    assert sorted(non_exclusive.addrs["qr-1"]) == ["10.0.0.1/24", "10.0.0.9/24"]


def test_router_port_spec_owns_only_the_ha_address():
    r = router()
    ha, qg = (_router_namespace.port_spec(r, port, SEGMENTS) for port in r["ports"])
    assert ha.addresses == ["169.254.192.1/18"] and ha.exclusive_addresses is False
    assert qg.addresses is None
    assert (ha.peer_master, qg.peer_master) == ("brq-1", "br-ex")
    assert ha.alias == "l3ha:r1" and qg.alias is None and qg.peer_alias == "l3ha:r1"
    assert qg.sysctls["net/ipv6/conf/{dev}/addr_gen_mode"] == "1"
    # ARP to the peers is retried within one master-down interval (no dual master at start)
    assert ha.sysctls == {"net/ipv4/neigh/{dev}/retrans_time_ms": "100"}


# ---------------------------------------------------------------- diff, files

def test_diff_names_the_router_and_shows_file_content():
    changes = Changes("router r1")
    changes.add("qr-1.mtu", 1450, 1400)
    changes.add_file("/etc/l3ha/routers/r1/keepalived.conf", "old\n", "new\n")
    field_diff, file_diff = changes.diffs()
    assert field_diff == {"before_header": "router r1", "after_header": "router r1",
                          "before": "qr-1.mtu: 1450\n", "after": "qr-1.mtu: 1400\n"}
    assert file_diff["before_header"] == "router r1: /etc/l3ha/routers/r1/keepalived.conf"
    assert (file_diff["before"], file_diff["after"]) == ("old\n", "new\n")
    assert Changes("router r2").diffs() == []


def test_mutations_are_queued_and_applied_in_order_unless_in_check_mode():
    def recorded(check_mode):
        done = []
        changes = Changes("router r1")
        changes.add("namespace", None, "qrouter-r1", apply=lambda: done.append("namespace"))
        changes.then(lambda: done.append("directory"))
        changes.add_file("/etc/l3ha/routers/r1/notify.sh", None, "#!/bin/sh\n", apply=lambda: done.append("file"))
        assert done == []  # nothing runs while the differences are found
        changes.commit(check_mode)
        changes.commit(False)  # a commit runs each mutation once: check mode dropped them
        return changes.lines(), done

    checked, applied = recorded(True), recorded(False)
    assert checked[0] == applied[0] == ["namespace: absent -> qrouter-r1",
                                        "file /etc/l3ha/routers/r1/notify.sh: absent -> written"]
    assert (checked[1], applied[1]) == ([], ["namespace", "directory", "file"])


def test_unrecorded_details_are_applied_but_not_reported():
    done = []
    details = Unrecorded()
    details.add("lo.up", False, True, apply=lambda: done.append("lo"))
    details.add_file("/x", None, "x", apply=lambda: done.append("x"))
    details.apply()
    assert (details.lines(), details.diffs(), bool(details), done) == ([], [], False, ["lo", "x"])


def test_a_recreated_vxlan_device_reports_the_same_in_check_and_apply_mode():
    def reconciled(check_mode):
        br = Link(2, "brq-1", kind="bridge", mtu=1450, up=True, alias="l3ha:ha")
        vx = Link(3, "vx-1", kind="vxlan", mtu=1450, up=True, master=2, alias="l3ha:ha",
                  info={"IFLA_VXLAN_ID": 1999, "IFLA_VXLAN_LOCAL": "192.0.2.11", "IFLA_VXLAN_PORT": 4789,
                        "IFLA_VXLAN_LEARNING": 1})
        root = FakeSpace(links=[br, vx])
        root.fdb = lambda: [(3, "00:00:00:00:00:00", "192.0.2.12")]  # the old device's flood entry
        changes = Changes("segment ha")
        _segments.ensure_segment(root, "ha", SEGMENTS["ha"], "192.0.2.11", changes)
        changes.commit(check_mode)
        return changes.lines(), root

    (checked, untouched), (applied, root) = reconciled(True), reconciled(False)
    # the new device has no flood entries yet: both modes say so
    assert checked == applied == ["vx-1.vxlan_id: 1999 -> 2000", "vx-1.flood: [] -> [192.0.2.12]"]
    assert untouched.route.calls == []
    links = [(command, attrs.get("name") or attrs.get("ifname"), attrs.get("vxlan_id"))
             for kind, command, attrs in root.route.calls if kind == "link" and command in ("add", "del")]
    assert links == [("del", "vx-1", None), ("add", "vx-1", 2000)]
    assert root.link("vx-1").master == 2
    floods = [attrs for kind, command, attrs in root.route.calls if kind == "fdb" and command == "append"]
    assert floods == [{"ifindex": root.link("vx-1").index, "lladdr": "00:00:00:00:00:00", "dst": "192.0.2.12"}]


def test_file_drift_content_and_mode(tmp_path):
    path = str(tmp_path / "notify.sh")
    assert file_drift(path, "x", 0o700) == [("content", None, "x")]
    write_atomic(path, "x", 0o700)
    assert file_drift(path, "x", 0o700) == []
    os.chmod(path, 0o755)
    assert file_drift(path, "x", 0o700) == [("mode", "0755", "0700")]
    write_atomic(path, "y", 0o700)
    assert file_drift(path, "x", 0o700) == [("content", "y", "x")]
    assert os.listdir(str(tmp_path)) == ["notify.sh"]  # no temporary files left


def test_router_json_holds_planned_values_and_metadata():
    record = json.loads(_router_files.router_files(router())["router.json"])
    assert (record["tenant"], record["vrid"], record["segment"], record["ha_address"]) == \
        ("t", 1, "ha", "169.254.192.1/18")
    assert record["metadata"] == {"k": "v"}


# ---------------------------------------------------------------- supervisor

def test_keepalived_argv_is_built_in_one_place():
    assert _supervisor.keepalived_argv("r1", "/etc/l3ha", "/run/l3ha", "/usr/sbin/keepalived") == [
        "/usr/sbin/keepalived", "--vrrp", "--log-detail",
        "-f", "/etc/l3ha/routers/r1/keepalived.conf",
        "-p", "/run/l3ha/routers/r1/keepalived.pid",
        "-r", "/run/l3ha/routers/r1/vrrp.pid",
    ]


@pytest.mark.parametrize("running, config_changed, expected", [
    (False, False, ["systemctl", "start", "l3ha-keepalived@r1.service"]),
    (False, True, ["systemctl", "start", "l3ha-keepalived@r1.service"]),
    (True, True, ["systemctl", "reload", "l3ha-keepalived@r1.service"]),
    (True, False, None),
])
def test_systemd_command_choice(running, config_changed, expected):
    assert _processes.systemd_command("r1", running, config_changed) == expected


def test_keepalived_pid_rejects_a_pid_that_is_not_keepalived(tmp_path):
    run = tmp_path / "routers" / "r1"
    run.mkdir(parents=True)
    (run / "keepalived.pid").write_text("%d\n" % os.getpid())  # this python process
    assert _supervisor.keepalived_pid(str(tmp_path), "r1", "qrouter-r1") is None
    (run / "keepalived.pid").write_text("garbage\n")
    assert _supervisor.keepalived_pid(str(tmp_path), "r1", "qrouter-r1") is None


# ---------------------------------------------------------------- facts

@pytest.mark.parametrize("text, expected", [
    ("master 1764100000.123\n", ("master", 1764100000.123)),
    ("BACKUP 5", ("backup", 5.0)),
    ("fault", ("fault", None)),
    ("weird 5", (None, None)),
    ("", (None, None)),
    (None, (None, None)),
])
def test_parse_state(text, expected):
    assert parse_state(text) == expected


def test_router_facts_from_files(tmp_path):
    config = tmp_path / "etc" / "routers" / "r1"
    config.mkdir(parents=True)
    (config / "router.json").write_text(json.dumps(_router_files.router_record(router())))
    (config / "keepalived.conf").write_text("conf\n")
    run = tmp_path / "run" / "routers" / "r1"
    run.mkdir(parents=True)
    (run / "state").write_text("master 1764100000.5\n")
    facts = router_facts("r1", str(tmp_path / "etc"), str(tmp_path / "run"), set())
    assert facts["tenant"] == "t" and facts["vrid"] == 1 and facts["metadata"] == {"k": "v"}
    assert facts["checksums"] == {"keepalived.conf": sha256_text("conf\n")}
    # no namespace, no keepalived: the recorded master state is stale
    assert (facts["keepalived_alive"], facts["state"], facts["since"]) == (False, "stop", 1764100000.5)


def test_validation_error_carries_every_message():
    errors = Errors()
    errors.add("router r1", "vrid", "bad")
    errors.add("router r2", "name", "bad")
    with pytest.raises(ValidationError) as caught:
        errors.raise_if_any()
    assert caught.value.errors == ["router r1: vrid: bad", "router r2: name: bad"]


# ---------------------------------------------------------------- routers without keepalived

def legacy_router(**change):
    entry = router("r2", ha=False, vrid=None, segment=None, ha_address=None,
                   ports=[{"kind": "gateway", "name": "qg-00000002", "peer": "vqg00000002", "segment": "ext",
                           "mac": "fa:16:3e:00:00:03", "mtu": 1500, "addresses": ["203.0.113.13/24"]}],
                   gateway={"port": "qg-00000002", "gateway_ips": ["203.0.113.1", "2001:db8::1"]},
                   routes=[{"destination": "10.9.0.0/16", "nexthop": "10.0.2.254"}],
                   files={"nftables.nft": ""})
    entry.update(change)
    return entry


def test_router_without_keepalived_is_valid_and_owns_its_addresses():
    assert errors_of([legacy_router()]) == []
    qg = _router_namespace.port_spec(legacy_router(), legacy_router()["ports"][0], SEGMENTS)
    assert qg.addresses == ["203.0.113.13/24"] and qg.exclusive_addresses is True


def test_static_routes_of_a_router_without_keepalived():
    assert [repr(r) for r in _router_namespace.static_routes(legacy_router())] == [
        "0.0.0.0/0 via 203.0.113.1 dev qg-00000002",
        "::/0 via 2001:db8::1 dev qg-00000002",
        "10.9.0.0/16 via 10.0.2.254",
    ]


@pytest.mark.parametrize("change, expected", [
    ({"routes": [{"destination": "10.9.0.0", "nexthop": "10.0.2.254"}]}, "router r2: routes[0].destination:"),
    ({"routes": [{"destination": "10.9.0.0/16", "nexthop": "x"}]}, "router r2: routes[0].nexthop:"),
    ({"gateway": {"gateway_ips": ["203.0.113.1"]}}, "router r2: gateway.port:"),
])
def test_static_route_errors(change, expected):
    messages = errors_of([legacy_router(**change)])
    assert any(m.startswith(expected) for m in messages), messages


def test_static_route_drift_compares_device_only_when_planned():
    space = FakeSpace("qrouter-r2", [Link(2, "qg-00000002", kind="veth")])
    planned = _router_namespace.static_routes(legacy_router(gateway={}))  # 10.9.0.0/16 via 10.0.2.254, any device
    space.routes = lambda: [Route("10.9.0.0/16", "10.0.2.254", "qr-x"), Route("10.8.0.0/16", "10.0.2.1")]
    removed, added = [], []
    space.delete_route, space.add_route = removed.append, added.append
    changes = Changes("router r2")
    _router_namespace.ensure_static_routes(space, legacy_router(gateway={}), changes)
    changes.apply()
    assert [repr(r) for r in removed] == ["10.8.0.0/16 via 10.0.2.1"] and added == []
    assert planned and changes.lines()[0].startswith("routes: ")


def test_two_segments_with_one_vni_are_an_error():
    segments = dict(SEGMENTS, other=dict(SEGMENTS["ha"], bridge="brq-2", device="vx-2"))
    assert "segment other: vni: VNI 2000 is also used by segment ha" in errors_of([], segments)


# ---------------------------------------------------------------- unchanged inputs

def written_router(tmp_path, **change):
    """A router as a previous run left it in tmp_path (config dir): files and router.json."""
    entry = router(inputs_checksum="in-1", files={"keepalived.conf": "conf\n", "notify.sh": "#!/bin/sh\n"}, **change)
    directory = tmp_path / "routers" / entry["name"]
    directory.mkdir(parents=True)
    for fname, text in _router_files.router_files(entry).items():
        (directory / fname).write_text(text)
    return entry, directory


def sent_without_files(entry, inputs="in-1"):
    sent = dict(entry, inputs_checksum=inputs)
    del sent["files"]
    return sent


def test_unchanged_inputs_keep_the_nodes_files(tmp_path):
    entry, _directory = written_router(tmp_path)
    sent = sent_without_files(entry)
    assert _router_files.restore_unchanged_files([sent], str(tmp_path)) == []
    assert sent["files"] == entry["files"]
    # the record it would write is the one on the node: no drift from the cache itself
    assert _router_files.router_files(sent) == _router_files.router_files(entry)


@pytest.mark.parametrize("spoil", ["hand edit", "removed file", "extra file", "other inputs", "old record"])
def test_files_that_cannot_be_kept_are_named_for_rendering(tmp_path, spoil):
    entry, directory = written_router(tmp_path)
    inputs = "in-1"
    if spoil == "hand edit":
        (directory / "keepalived.conf").write_text("conf\n# edited\n")
    elif spoil == "removed file":
        (directory / "notify.sh").unlink()
    elif spoil == "extra file":
        (directory / "nftables.nft").write_text("table inet x {}\n")
    elif spoil == "other inputs":
        inputs = "in-2"
    else:  # written before router.json recorded inputs and checksums
        record = json.loads((directory / "router.json").read_text())
        del record["inputs_checksum"], record["files"]
        (directory / "router.json").write_text(json.dumps(record))
    sent = sent_without_files(entry, inputs)
    assert _router_files.restore_unchanged_files([sent], str(tmp_path)) == ["r1"]
    assert "files" not in sent


def test_router_sent_without_files_passes_validation_only_with_inputs():
    without = router()
    del without["files"]
    assert any("files: must be a dictionary" in e for e in errors_of([without]))
    assert errors_of([dict(without, inputs_checksum="in-1")]) == []


def test_stale_router_makes_the_reconciler_change_nothing(tmp_path, monkeypatch):
    entry, directory = written_router(tmp_path)
    (directory / "keepalived.conf").write_text("edited\n")
    reconciler = _reconciler.NodeReconciler({"routers": [sent_without_files(entry)], "segments": SEGMENTS,
                                             "config_dir": str(tmp_path), "run_dir": str(tmp_path / "run"),
                                             "state_dir": str(tmp_path / "state")})
    root = FakeSpace()
    root.close = lambda: None
    monkeypatch.setattr(_reconciler, "Namespace", lambda name: root)
    monkeypatch.setattr(_reconciler, "validate_segments", lambda *args: None)
    monkeypatch.setattr(reconciler, "_reconcile", lambda root: pytest.fail("reconciled a stale router"))
    result = reconciler.run()
    assert (result["rerender"], result["changed"], result["diff"]) == (["r1"], False, [])
    assert (directory / "keepalived.conf").read_text() == "edited\n"


def test_router_facts_report_inputs_only_while_files_are_as_written(tmp_path):
    entry, directory = written_router(tmp_path)
    assert router_facts("r1", str(tmp_path), str(tmp_path / "run"), set())["inputs_checksum"] == "in-1"
    (directory / "notify.sh").write_text("#!/bin/sh\nexit 0\n")
    assert router_facts("r1", str(tmp_path), str(tmp_path / "run"), set())["inputs_checksum"] is None


# ---------------------------------------------------------------- node limits

def test_node_limits_are_raised_never_lowered(monkeypatch):
    values = {key: str(floor // 2) for key, floor in NODE_SYSCTL_FLOORS}
    values[NODE_SYSCTL_FLOORS[0][0]] = str(NODE_SYSCTL_FLOORS[0][1] * 4)  # already higher
    del values[NODE_SYSCTL_FLOORS[1][0]]  # absent: a container, a lab node
    written = {}
    monkeypatch.setattr(_reconciler, "read_sysctl", values.get)
    monkeypatch.setattr(_reconciler, "write_sysctl", written.__setitem__)
    changes = Changes("node")
    _reconciler.NodeReconciler({"config_dir": "/x", "run_dir": "/x", "state_dir": "/x"})._ensure_node_sysctls(changes)
    changes.apply()
    assert written == dict(NODE_SYSCTL_FLOORS[2:])
    assert len(changes.lines()) == len(NODE_SYSCTL_FLOORS) - 2


def test_the_lab_raises_the_same_host_limits_as_the_reconciler(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__), "..", "..", "lab"))
    lab_host = importlib.import_module("l3ha_lab.host")
    assert tuple(lab_host.FLOORS) == tuple(NODE_SYSCTL_FLOORS)


def test_the_lean_link_parser_decodes_every_attribute_the_segments_compare():
    compared = set(_segments.vxlan_identity({"vni": 1}, "192.0.2.1")) | set(
        _segments.vxlan_identity({"vni": 1, "group": "239.1.1.1"}, None)) | {"IFLA_VLAN_ID"}
    assert compared <= COMPARED_INFO
