"""The uplink monitor's logic without a network: probe counting, the all-nodes rule,
packets, netlink parsing, metrics. The lab tests (tests/lab/test_uplink.py) run it for real."""
import json
import socket
import struct

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.l3ha.routers.plugins.module_utils import _uplink_monitor as monitor
from ansible_collections.l3ha.routers.plugins.module_utils._uplink import (
    UplinkMonitor, monitored_networks, program_text, validate_uplink,
)
from ansible_collections.l3ha.routers.plugins.module_utils._validate import Errors

MAC = b"\x02\x00\x00\x00\x00\x01"
FRESH = 1.0


def lose(gateway, count, start=0.0, interval=0.1, fall=3):
    """`count` probes sent and never answered (the next send counts the previous as lost)."""
    changed = []
    for i in range(count + 1):
        changed.append(gateway.probe_sent(start + i * interval, fall))
    return any(changed)


def test_one_or_two_lost_probes_change_nothing_the_third_goes_down():
    gateway = monitor.Gateway("203.0.113.1")
    assert not lose(gateway, 2)
    assert (gateway.state, gateway.lost, gateway.misses) == ("up", 2, 2)
    gateway.answer(0.35, rise=3)
    assert gateway.misses == 0 and gateway.state == "up"
    assert lose(gateway, 3, start=1.0)
    assert gateway.state == "down" and gateway.reason == "probes"
    assert gateway.down_since == pytest.approx(1.0)  # the first unanswered probe's send time


def test_up_again_after_rise_answers_in_a_row():
    gateway = monitor.Gateway("203.0.113.1", failed=True, now=5.0)
    assert gateway.state == "down"
    for i in range(2):
        gateway.probe_sent(6.0 + i, 3)
        assert not gateway.answer(6.01 + i, rise=3)
    gateway.probe_sent(8.0, 3)
    assert gateway.answer(8.01, rise=3) and gateway.state == "up"
    assert gateway.transitions == 1


def test_carrier_loss_is_down_at_once_and_answers_while_it_lasts_do_not_raise_it():
    gateway = monitor.Gateway("203.0.113.1")
    assert gateway.carrier_lost(2.0) and gateway.state == "down" and gateway.reason == "carrier"
    for i in range(5):
        gateway.probe_sent(3.0 + i, 3)
        gateway.answer(3.01 + i, rise=3, carrier=False)
    assert gateway.state == "down"


def report(received, gateway_ip, state, age):
    return (received, {gateway_ip: (state, age)})


def test_a_down_gateway_fails_only_while_a_peer_answered_after_our_first_loss():
    gateway = monitor.Gateway("203.0.113.1")
    lose(gateway, 3, start=10.0)  # first unanswered probe sent at 10.0
    now = 10.4
    # the peer's last answer was at 10.35 - 0.02 = 10.33, after 10.0: our uplink is the problem
    assert monitor.should_fail(gateway, {"p": report(10.35, "203.0.113.1", "up", 0.02)}, True, now, FRESH)
    # its last answer was at 9.9, before our loss began: the gateway itself may be gone for everyone
    assert not monitor.should_fail(gateway, {"p": report(10.35, "203.0.113.1", "up", 0.45)}, True, now, FRESH)
    # a peer that never got an answer, or whose report is stale, does not count
    assert not monitor.should_fail(gateway, {"p": report(10.35, "203.0.113.1", "down", None)}, True, now, FRESH)
    # nor one that answered after our loss but has lost the gateway since: nobody reaches it now
    assert not monitor.should_fail(gateway, {"p": report(10.35, "203.0.113.1", "down", 0.02)}, True, now, FRESH)
    assert not monitor.should_fail(gateway, {"p": report(9.0, "203.0.113.1", "up", 0.0)}, True, 10.4 + FRESH, FRESH)
    # a report about another gateway does not count
    assert not monitor.should_fail(gateway, {"p": report(10.35, "203.0.113.9", "up", 0.0)}, True, now, FRESH)
    # no peers at all: this node's view decides
    assert monitor.should_fail(gateway, {}, False, now, FRESH)
    # up: never failed
    assert not monitor.should_fail(monitor.Gateway("203.0.113.1"), {"p": report(10.35, "203.0.113.1", "up", 0)},
                                   True, now, FRESH)


def test_every_node_losing_the_gateway_fails_nobody():
    """Three nodes lose the gateway together: each one's peers last heard it before the loss
    (while they still say 'up', before their own `fall`, and once they say 'down')."""
    gateways = dict((node, monitor.Gateway("203.0.113.1")) for node in ("a", "b", "c"))
    for node, gateway in gateways.items():
        gateway.probe_sent(0.0, 3)
        gateway.answer(0.01, rise=3)
        lose(gateway, 3, start=0.1)
    now = 0.5
    for node, gateway in gateways.items():
        for said in ("up", "down"):
            reports = dict((other, report(now - 0.01, "203.0.113.1", said, gateways[other].answer_age(now - 0.01)))
                           for other in gateways if other != node)
            assert gateway.state == "down"
            assert not monitor.should_fail(gateway, reports, True, now, FRESH)


def test_arp_probe_is_an_rfc5227_probe_and_the_reply_is_recognised():
    frame = monitor.arp_probe(MAC, "203.0.113.1")
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == MAC and frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = struct.unpack("!HHBBH6s4s6s4s", frame[14:42])
    assert (htype, ptype, hlen, plen, op, sha, spa, tha) == (1, 0x0800, 6, 4, 1, MAC, b"\0" * 4, b"\0" * 6)
    assert socket.inet_ntoa(tpa) == "203.0.113.1"
    gw_mac = b"\x02\x00\x00\x00\x00\x02"
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, gw_mac, socket.inet_aton("203.0.113.1"), MAC, b"\0" * 4)
    reply = MAC + gw_mac + b"\x08\x06" + arp
    assert monitor.arp_reply_from(reply, MAC) == ("203.0.113.1", gw_mac)
    assert monitor.arp_reply_from(reply, b"\x02" * 6) == (None, None)  # a reply to someone else
    assert monitor.arp_reply_from(frame, MAC) == (None, None)  # a request
    # once the gateway's MAC is known, the probe goes to it alone
    assert monitor.arp_probe(MAC, "203.0.113.1", gw_mac)[:6] == gw_mac


def test_neighbour_solicitation_goes_to_the_solicited_node_group_with_a_valid_checksum():
    frame = monitor.ns_probe(MAC, "2001:db8:ff::1")
    assert frame[:6] == b"\x33\x33\xff\x00\x00\x01" and frame[12:14] == b"\x86\xdd"
    ip6 = frame[14:54]
    assert ip6[6] == 58 and ip6[7] == 255 and ip6[8:24] == b"\0" * 16
    assert socket.inet_ntop(socket.AF_INET6, ip6[24:40]) == "ff02::1:ff00:1"
    body = frame[54:]
    assert body[0] == 135 and socket.inet_ntop(socket.AF_INET6, body[8:24]) == "2001:db8:ff::1"
    pseudo = ip6[8:40] + struct.pack("!I3xB", len(body), 58)
    assert monitor._checksum(pseudo + body) == 0
    advert = bytearray(frame)
    advert[54] = 136
    assert monitor.na_target(bytes(advert)) == "2001:db8:ff::1"
    assert monitor.na_target(frame) is None


def link_message(kind, index, name, flags, master=None, alias=""):
    attrs = b""
    for attr, value in ((monitor.IFLA_IFNAME, name.encode() + b"\0"),
                        (monitor.IFLA_MASTER, struct.pack("I", master) if master else None),
                        (monitor.IFLA_IFALIAS, alias.encode() + b"\0" if alias else None)):
        if value is None:
            continue
        length = 4 + len(value)
        attrs += struct.pack("HH", length, attr) + value + b"\0" * ((4 - length % 4) % 4)
    body = struct.pack("BxHiII", 0, 1, index, flags, 0) + attrs
    return struct.pack("IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_netlink_links_and_the_uplink_carrier_of_a_bridge():
    up = monitor.IFF_UP | monitor.IFF_LOWER_UP
    data = (link_message(monitor.RTM_NEWLINK, 2, "br-ex", up)
            + link_message(monitor.RTM_NEWLINK, 3, "uplink0", up, master=2)
            + link_message(monitor.RTM_NEWLINK, 4, "vqg1a2b3c4d", up, master=2, alias="l3ha:r1"))
    links = dict((index, link) for _kind, index, link in monitor.parse_links(data))
    assert links[3]["name"] == "uplink0" and links[3]["master"] == 2 and links[4]["alias"] == "l3ha:r1"
    assert monitor.uplink_carrier(links, 2) is True
    links[3]["flags"] = monitor.IFF_UP  # no carrier; the router port (ours) does not count
    assert monitor.uplink_carrier(links, 2) is False
    del links[3]
    assert monitor.uplink_carrier(links, 2) is None


def test_metrics_parse_with_the_official_parser():
    network = monitor.Network("ext", {"bridge": "br-ex", "gateways": {"203.0.113.1": "/nonexistent/a",
                                                                      "2001:db8:ff::1": "/nonexistent/b"}}, 0.0)
    network.carrier = True
    lose(network.gateways["203.0.113.1"], 3)
    network.gateways["203.0.113.1"].failed = True
    families = dict((f.name, f) for f in text_string_to_metric_families(monitor.metrics_text("net1", {"ext": network})))
    values = dict(((s.name, s.labels.get("gateway")), s.value) for f in families.values() for s in f.samples)
    assert values[("l3ha_uplink_up", "203.0.113.1")] == 0 and values[("l3ha_uplink_up", "2001:db8:ff::1")] == 1
    assert values[("l3ha_uplink_routers_failed", "203.0.113.1")] == 1
    assert values[("l3ha_uplink_lost_probes_total", "203.0.113.1")] == 3
    assert values[("l3ha_uplink_carrier", None)] == 1


ROUTERS = [
    {"name": "r1", "ha": True, "gateway": {"network": "ext", "gateway_ips": ["203.0.113.1", "2001:DB8:FF::1"]}},
    {"name": "r2", "ha": True, "gateway": {"network": "ext", "gateway_ips": ["203.0.113.1"]}},
    {"name": "r3", "ha": False, "gateway": {"network": "ext2", "gateway_ips": ["198.51.100.1"]}},
    {"name": "r4", "ha": True, "gateway": None},
]
SEGMENTS = {"ext": {"type": "bridge", "bridge": "br-ex"}, "ext2": {"type": "bridge", "bridge": "br-ex2"}}


def test_monitored_networks_are_the_ha_routers_distinct_gateways_with_their_track_files():
    found = monitored_networks(ROUTERS, SEGMENTS, {"ext": ["192.0.2.12", "192.0.2.12"]}, "/run/l3ha")
    assert found == {"ext": {"bridge": "br-ex", "peers": ["192.0.2.12"], "gateways": {
        "203.0.113.1": "/run/l3ha/uplink/track/ext/203.0.113.1",
        "2001:db8:ff::1": "/run/l3ha/uplink/track/ext/2001:db8:ff::1"}}}


def test_the_monitor_config_and_program(tmp_path):
    uplink = UplinkMonitor({"interval": 0.1, "fall": 3, "rise": 3, "port": 7079}, {}, "reconciler",
                           str(tmp_path / "etc"), str(tmp_path / "run"), "", "192.0.2.11")
    config = uplink.config(ROUTERS, SEGMENTS)
    assert (config["local_ip"], config["port"], config["metrics_file"]) == ("192.0.2.11", 7079, None)
    assert config["pid_file"] == str(tmp_path / "run" / "uplink" / "monitor.pid")
    json.dumps(config)
    assert UplinkMonitor(None, {}, "reconciler", "/etc/l3ha", "/run/l3ha", "", None).config(ROUTERS, SEGMENTS) is None
    text = program_text("/usr/bin/python3")
    assert text.startswith("#!/usr/bin/python3\n") and "def should_fail(" in text
    assert "ansible_collections" not in text.split("def main", 1)[0].split('"""', 2)[2]  # stands alone


@pytest.mark.parametrize("option, peers, field", [
    ({"interval": 0, "fall": 3, "rise": 3, "port": 7079}, {}, "interval"),
    ({"interval": 0.1, "fall": 0, "rise": 3, "port": 7079}, {}, "fall"),
    ({"interval": 0.1, "fall": 3, "rise": True, "port": 7079}, {}, "rise"),
    ({"interval": 0.1, "fall": 3, "rise": 3, "port": 70790}, {}, "port"),
    ({"interval": 0.1, "fall": 3, "rise": 3, "port": 7079}, {"ext": ["not-an-ip"]}, "uplink_peers.ext"),
])
def test_bad_monitor_options_name_the_field(option, peers, field):
    errors = Errors()
    validate_uplink(option, peers, errors)
    assert len(errors.messages) == 1 and errors.messages[0].startswith("uplink_monitor: %s: " % field)


def test_a_probe_expires_once_and_a_late_answer_does_not_count():
    gateway = monitor.Gateway("203.0.113.1")
    for i in range(2):
        gateway.probe_sent(i * 0.1, 3)
        assert not gateway.expire(3)
    assert (gateway.lost, gateway.misses) == (2, 2)
    assert not gateway.answer(0.16, rise=3)  # the second probe's answer, after its timeout
    gateway.probe_sent(0.2, 3)  # the expired probes are not counted again
    assert gateway.lost == 2
    assert gateway.expire(3) and gateway.state == "down" and gateway.down_since == 0.0


def test_under_systemd_the_monitor_is_a_transient_unit_that_restarts_always(tmp_path):
    from ansible_collections.l3ha.routers.plugins.module_utils._changes import Changes
    calls = tmp_path / "calls"
    fake = tmp_path / "fake"
    fake.write_text('#!/bin/sh\necho "$(basename "$0") $*" >> %s\n' % calls)
    fake.chmod(0o755)
    for name in ("systemctl", "systemd-run"):
        (tmp_path / name).symlink_to(fake)
    uplink = UplinkMonitor({"interval": 0.1, "fall": 3, "rise": 3, "port": 7079}, {"ext": ["192.0.2.12"]}, "systemd",
                           str(tmp_path / "etc"), str(tmp_path / "run"), "", "192.0.2.11",
                           systemctl=str(tmp_path / "systemctl"), systemd_run=str(tmp_path / "systemd-run"))
    changes = Changes("node")
    uplink.ensure(ROUTERS, SEGMENTS, changes)
    assert "uplink monitor: stopped -> running" in changes.lines()
    changes.commit(check_mode=True)
    assert not calls.exists() and not (tmp_path / "etc").exists()  # check mode: nothing ran, nothing written
    changes = Changes("node")
    uplink.ensure(ROUTERS, SEGMENTS, changes)
    changes.commit(check_mode=False)
    run = [line for line in calls.read_text().splitlines() if line.startswith("systemd-run")]
    assert len(run) == 1
    assert "--unit=l3ha-uplink.service" in run[0] and "Restart=always" in run[0] and "StartLimitIntervalSec=0" in run[0]
    assert run[0].endswith("%s --config %s" % (uplink.program, uplink.config_file))
    config = json.loads((tmp_path / "etc" / "uplink" / "monitor.json").read_text())
    assert config["networks"]["ext"]["peers"] == ["192.0.2.12"] and config["log_file"] is None
    assert (tmp_path / "run" / "uplink" / "track" / "ext").is_dir()
