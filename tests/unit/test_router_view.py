"""Each section builder of the router view, alone (plugins/plugin_utils/_router_view.py),
and router_view as their composition. The rendered files are tested in test_templates.py."""
import pytest

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import RENDER_SETTINGS
from ansible_collections.l3ha.routers.plugins.plugin_utils import _router_view as view
from ansible_collections.l3ha.routers.plugins.plugin_utils._router_view import RenderError
from ansible_collections.l3ha.routers.plugins.plugin_utils._services_view import services_section
from test_templates import bare_router, full_router, single_router


def sections(router):
    """(ports, gateway, internal ports) of a plan entry."""
    ports = view.ports_by_kind(router)
    return ports, view.gateway_section(router, ports), view.internal_section(router, ports)


def settings(**changes):
    return dict(RENDER_SETTINGS, **changes)


def error(build, *args):
    with pytest.raises(RenderError) as raised:
        build(*args)
    return str(raised.value)


# ---------------------------------------------------------------- HA

def test_ha_section_has_the_ha_port_own_address_and_peers():
    router = full_router()
    assert view.ha_section(router, view.ports_by_kind(router)) == {
        "ha": True, "ha_port": "ha-1a2b3c4d", "unicast_src_ip": "169.254.192.1",
        "peers": ["169.254.192.2", "169.254.192.3"]}


def test_ha_section_of_a_router_without_ha_has_no_port_and_no_address():
    router = single_router()
    assert view.ha_section(router, view.ports_by_kind(router)) == {
        "ha": False, "ha_port": None, "unicast_src_ip": None, "peers": []}


@pytest.mark.parametrize("change,message", [
    ({"ports": []}, "router demo-r1: ports: the plan has no ha port"),
    ({"peers": ["169.254.192.300"]}, "router demo-r1: peers: '169.254.192.300' is not an IP address"),
    ({"ha_address": "169.254.192.1"}, None),  # a plain address is an interface /32: accepted
    ({"ha_address": "not/an/address"}, "router demo-r1: ha_address: 'not/an/address' is not an address with prefix"),
])
def test_ha_section_errors(change, message):
    router = dict(full_router(), **change)
    if message is None:
        assert view.ha_section(router, view.ports_by_kind(router))["unicast_src_ip"] == "169.254.192.1"
    else:
        assert error(view.ha_section, router, view.ports_by_kind(router)) == message


# ---------------------------------------------------------------- gateway

def test_gateway_section_takes_the_plan_port_its_mac_and_both_address_spellings():
    router = full_router()
    del router["gateway"]["port"]
    router["gateway"].update(addresses=["203.0.113.10/24"], address="2001:db8:ff::10/64",
                             gateway_ips=[], gateway_ip="203.0.113.1")
    gateway = view.gateway_section(router, view.ports_by_kind(router))
    assert (gateway.name, gateway.mac) == ("qg-2b3c4d5e", "fa:16:3e:2b:3c:4d")
    assert [str(address) for address in gateway.addresses] == ["203.0.113.10/24", "2001:db8:ff::10/64"]
    assert [str(address) for address in gateway.gateway_ips] == ["203.0.113.1"]
    assert (str(gateway.address_v4), str(gateway.gateway_ip_v4)) == ("203.0.113.10/24", "203.0.113.1")


def test_gateway_section_keeps_a_named_port_the_plan_does_not_list():
    router = full_router()
    router["gateway"]["port"] = {"name": "qg-elsewhere"}
    gateway = view.gateway_section(router, view.ports_by_kind(router))
    assert (gateway.name, gateway.mac) == ("qg-elsewhere", None)


def test_gateway_section_of_a_router_without_gateway_is_none():
    router = bare_router()
    assert view.gateway_section(router, view.ports_by_kind(router)) is None


def test_gateway_section_needs_a_port():
    router = full_router()
    del router["gateway"]["port"]
    router["ports"] = [port for port in router["ports"] if port["kind"] != "gateway"]
    assert error(view.gateway_section, router, view.ports_by_kind(router)) == \
        "router demo-r1: gateway.port: the plan has no gateway port"


@pytest.mark.parametrize("ips,accept_ra", [
    (["203.0.113.1", "2001:db8:ff::1"], 0),
    (["203.0.113.1"], 2),  # an IPv6 address without an IPv6 gateway IP: RAs give the route
    ([], 2),
])
def test_master_accepts_router_advertisements_only_without_an_ipv6_gateway_ip(ips, accept_ra):
    router = full_router()
    router["gateway"]["gateway_ips"] = ips
    assert view.gateway_section(router, view.ports_by_kind(router)).master_accept_ra() == accept_ra
    router["gateway"]["addresses"] = ["203.0.113.10/24"]
    assert view.gateway_section(router, view.ports_by_kind(router)).master_accept_ra() == 0


# ---------------------------------------------------------------- internal ports

def test_internal_section_finds_ports_by_network_then_by_segment():
    router = full_router()
    for interface in router["interfaces"]:
        del interface["port"]
    del router["ports"][3]["network"]  # qr-4d5e6f70 is found by its segment demo-net2
    internal = view.internal_section(router, view.ports_by_kind(router))
    assert [(port.name, port.mac, [str(a) for a in port.addresses]) for port in internal] == [
        ("qr-3c4d5e6f", "fa:16:3e:3c:4d:5e", ["10.0.0.1/24", "fd00:1::1/64"]),
        ("qr-4d5e6f70", "fa:16:3e:4d:5e:6f", ["10.0.2.1/24"]),
    ]


def test_internal_section_needs_a_port_on_the_network():
    router = full_router()
    router["interfaces"][1] = {"network": "nowhere", "address": "10.0.3.1/24"}
    assert error(view.internal_section, router, view.ports_by_kind(router)) == \
        "router demo-r1: interfaces[1].port: no internal port for network 'nowhere'"


def test_excluded_addresses_of_a_port_put_the_link_local_first_only_with_ipv6():
    dual = view.Port("qr-1", "fa:16:3e:3c:4d:5e", [view.ipaddress.ip_interface("fd00:1::1/64")])
    assert [entry["cidr"] for entry in dual.excluded_addresses()] == ["fe80::f816:3eff:fe3c:4d5e/64", "fd00:1::1/64"]
    assert view.Port("qr-1", None, dual.addresses).excluded_addresses() == [{"cidr": "fd00:1::1/64", "dev": "qr-1"}]
    v4 = view.Port("qr-2", "fa:16:3e:3c:4d:5e", [view.ipaddress.ip_interface("10.0.0.1/24")])
    assert v4.excluded_addresses() == [{"cidr": "10.0.0.1/24", "dev": "qr-2"}]


def test_excluded_addresses_are_gateway_then_internal_then_floating_ips():
    router = full_router()
    _ports, gateway, internal = sections(router)
    floating_ips = view.floating_ips_section(router, gateway)
    devices = [entry["dev"] for entry in view.excluded_addresses(gateway, internal, floating_ips)]
    assert devices == ["qg-2b3c4d5e"] * 3 + ["qr-3c4d5e6f"] * 3 + ["qr-4d5e6f70", "qg-2b3c4d5e"]
    assert view.excluded_addresses(None, [], []) == []


# ---------------------------------------------------------------- floating IPs, routes, SNAT

def test_floating_ips_are_on_the_gateway_port():
    router = full_router()
    _ports, gateway, _internal = sections(router)
    assert view.floating_ips_section(router, gateway) == [
        {"external": "203.0.113.20", "internal": "10.0.0.5", "port": "qg-2b3c4d5e"}]


@pytest.mark.parametrize("fip,gateway,message", [
    ({"external": "203.0.113.20", "internal": "10.0.0.5"}, False, "floating_ips[0]: a floating IP needs a gateway"),
    ({"external": "2001:db8:ff::20", "internal": "10.0.0.5"}, True, "floating_ips[0]: floating IPs are IPv4"),
    ({"external": "203.0.113.20", "internal": "10.0.0"}, True, "floating_ips[0].internal: '10.0.0' is not an IP"),
])
def test_floating_ip_errors(fip, gateway, message):
    router = dict(full_router(), floating_ips=[fip])
    _ports, found, _internal = sections(router)
    assert message in error(view.floating_ips_section, router, found if gateway else None)


def test_routes_are_the_default_routes_then_the_entrys_own():
    router = full_router()
    router["routes"] = [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"},
                        {"destination": "10.8.0.1/16", "nexthop": "192.0.2.1"},
                        {"destination": "10.7.0.0/16", "nexthop": "10.0.0.9", "port": {"name": "qr-x"}}]
    _ports, gateway, internal = sections(router)
    assert view.routes_section(router, gateway, internal) == [
        {"destination": "0.0.0.0/0", "nexthop": "203.0.113.1", "dev": "qg-2b3c4d5e"},
        {"destination": "::/0", "nexthop": "2001:db8:ff::1", "dev": "qg-2b3c4d5e"},
        {"destination": "10.9.0.0/16", "nexthop": "10.0.0.254", "dev": "qr-3c4d5e6f"},
        {"destination": "10.8.0.0/16", "nexthop": "192.0.2.1", "dev": None},  # no port holds the nexthop
        {"destination": "10.7.0.0/16", "nexthop": "10.0.0.9", "dev": "qr-x"},
    ]
    assert view.routes_section(dict(router, routes=[]), None, internal) == []


def test_snat_takes_the_ipv4_subnets_of_the_internal_ports_by_default():
    router = full_router()
    del router["internal_subnets"]
    _ports, gateway, internal = sections(router)
    assert view.snat_section(router, gateway, internal) == {
        "port": "qg-2b3c4d5e", "address": "203.0.113.10", "subnets": ["10.0.0.0/24", "10.0.2.0/24"]}
    assert view.snat_section(dict(router, internal_subnets=["10.5.0.0/16"]), gateway, internal)["subnets"] == \
        ["10.5.0.0/16"]


@pytest.mark.parametrize("change", [
    lambda r: r["gateway"].update(snat=False),
    lambda r: r["gateway"].update(addresses=["2001:db8:ff::10/64"]),  # no IPv4 gateway address
    lambda r: r.update(internal_subnets=["fd00:1::/64"]),  # no IPv4 subnet
    lambda r: r.update(gateway=None),
])
def test_no_snat(change):
    router = full_router()
    change(router)
    _ports, gateway, internal = sections(router)
    assert view.snat_section(router, gateway, internal) is None


def test_snat_subnets_are_checked():
    router = dict(full_router(), internal_subnets=["10.0.0.0/33"])
    _ports, gateway, internal = sections(router)
    assert error(view.snat_section, router, gateway, internal) == \
        "router demo-r1: internal_subnets: '10.0.0.0/33' is not an address with prefix"


# ---------------------------------------------------------------- VRRP, health check, hooks, paths

@pytest.mark.parametrize("changes,expected", [
    ({}, (3, 3, 0.1, None)),
    ({"advert_int": 1.0}, (3, 3, 1, None)),  # a whole number of seconds is written as one
    ({"auth_pass": "s3cret-and-more", "advert_int": 0.1}, (2, 3, 1, "s3cret-a")),
    ({"auth_pass": "s3cret", "advert_int": 2.5}, (2, 3, 3, "s3cret")),
    ({"vrrp_version": 2, "advert_int": 0.4}, (2, 2, 1, None)),
])
def test_vrrp_section(changes, expected):
    section = view.vrrp_section(settings(**changes))
    assert (section["vrrp_version"], section["global_vrrp_version"], section["advert_int"], section["auth"]) == expected
    assert (section["garp_repeat"], section["garp_delay"]) == \
        (RENDER_SETTINGS["garp_repeat"], RENDER_SETTINGS["garp_delay"])


def test_health_check_pings_the_ipv4_gateway_from_the_ipv4_gateway_address():
    _ports, gateway, _internal = sections(full_router())
    assert view.health_check_section(settings(check=True), gateway) == {
        "interval": 1, "timeout": 1, "fall": 2, "rise": 2, "gateway_ip": "203.0.113.1", "source_ip": "203.0.113.10"}
    custom = view.health_check_section(settings(check={"interval": 5, "gateway": False}), gateway)
    assert (custom["interval"], custom["rise"], custom["gateway_ip"], custom["source_ip"]) == (5, 2, None, None)


def test_health_check_is_off_without_the_setting_or_a_gateway():
    _ports, gateway, _internal = sections(full_router())
    assert view.health_check_section(settings(check=None), gateway) is None
    assert view.health_check_section(settings(check=True), None) is None
    router = full_router()
    router["gateway"].update(addresses=["2001:db8:ff::10/64"])
    _ports, v6_only, _internal = sections(router)
    assert view.health_check_section(settings(check=True), v6_only)["gateway_ip"] is None


def test_hooks_section_has_a_list_for_every_state():
    assert view.hooks_section(settings(hooks={"master": "one", "fault": ["two", 3]}), "r1") == {
        "master": ["one"], "backup": [], "fault": ["two", "3"], "stop": []}
    assert error(view.hooks_section, settings(hooks={"mastr": [], "zzz": []}), "r1") == \
        "router r1: l3ha_notify_hooks: unknown state(s) mastr, zzz (use master, backup, fault, stop)"


@pytest.mark.parametrize("config_dir,run_dir", [("/etc/x", "/run/x"), ("/etc/x/", "/run/x//")])
def test_paths_section(config_dir, run_dir):
    assert view.paths_section(settings(config_dir=config_dir, run_dir=run_dir), "r1") == {
        "config": "/etc/x/routers/r1/keepalived.conf", "script": "/etc/x/routers/r1/notify.sh",
        "run": "/run/x/routers/r1", "fifo": "/run/x/routers/r1/notify.fifo"}


def test_conntrackd_section_syncs_the_ha_sections_address_with_its_one_peer():
    ha = {"ha": True, "ha_port": "ha-1", "unicast_src_ip": "169.254.192.1", "peers": ["169.254.192.2"]}
    router = {"name": "r1", "conntrackd": True, "ha_vip": "169.254.0.7/24"}
    section = view.conntrackd_section(router, settings(), ha)
    assert (section["address"], section["peer"], section["interface"]) == ("169.254.192.1", "169.254.192.2", "ha-1")
    assert section["ignore_addresses"] == ["127.0.0.1", "::1", "169.254.192.1", "169.254.192.2", "169.254.0.7"]
    assert view.conntrackd_section(dict(router, conntrackd=None), settings(conntrackd=False), ha) is None
    assert view.conntrackd_section(router, settings(), dict(ha, peers=[])) is None
    assert error(view.conntrackd_section, router, settings(), dict(ha, ha_port=None)) == \
        "router r1: conntrackd: needs an HA router (ha is false)"


# ---------------------------------------------------------------- the composition

@pytest.mark.parametrize("router", [full_router(), bare_router(), single_router()], ids=["full", "bare", "single"])
def test_router_view_is_its_sections(router):
    merged = settings(check=True, track_ports="qr-3c4d5e6f")
    ports, gateway, internal = sections(router)
    ha = view.ha_section(router, ports)
    floating_ips = view.floating_ips_section(router, gateway)
    expected = dict(ha, **view.vrrp_section(merged))
    expected.update({
        "managed": view.MANAGED, "gateway_port": gateway.name if gateway else None,
        "track_interfaces": ["qr-3c4d5e6f"],
        "excluded_addresses": view.excluded_addresses(gateway, internal, floating_ips),
        "routes": view.routes_section(router, gateway, internal), "floating_ips": floating_ips,
        "snat": view.snat_section(router, gateway, internal),
        "master_accept_ra": gateway.master_accept_ra() if gateway else 0,
        "check": view.health_check_section(merged, gateway), "hooks": view.hooks_section(merged, router["name"]),
        "uplink_tracks": view.uplink_section(merged, gateway, ha),
        "log_max_bytes": RENDER_SETTINGS["log_max_bytes"], "conntrackd": None,
        "paths": view.paths_section(merged, router["name"]),
    })
    expected.update(services_section(router, internal, merged, expected["paths"]["run"]))
    expected["metrics"] = view.metrics_section(router, merged)
    assert view.router_view(router, {"check": True, "track_ports": "qr-3c4d5e6f", "advert_int": None}) == expected


def test_auth_warning_gives_the_failover_cost():
    assert view.auth_warning(settings()) is None
    text = view.auth_warning(settings(auth_pass="s3cret", advert_int=0.1))
    assert "VRRPv2" in text and "rounded up to 1 s" in text and "about 3 s" in text and "about 0.3 s" in text


def test_uplink_section_names_one_track_file_per_gateway_ip_below_the_run_dir():
    ports, gateway, _internal = sections(full_router())
    ha = view.ha_section(full_router(), ports)
    tracks = view.uplink_section(settings(run_dir="/run/x/"), gateway, ha)
    assert tracks == [{"name": "uplink_203_0_113_1", "gateway": "203.0.113.1",
                       "file": "/run/x/uplink/track/ext/203.0.113.1"},
                      {"name": "uplink_2001_db8_ff__1", "gateway": "2001:db8:ff::1",
                       "file": "/run/x/uplink/track/ext/2001:db8:ff::1"}]


def test_uplink_section_is_empty_when_off_without_gateway_or_without_ha():
    ports, gateway, _internal = sections(full_router())
    ha = view.ha_section(full_router(), ports)
    assert view.uplink_section(settings(uplink_monitor=False), gateway, ha) == []
    assert view.uplink_section(settings(), None, ha) == []
    single = single_router()
    single_ports, single_gateway, _internal = sections(single)
    assert view.uplink_section(settings(), single_gateway, view.ha_section(single, single_ports)) == []
    assert "l3ha_uplink_monitor" in error(view.uplink_section, settings(uplink_monitor="maybe"), gateway, ha)
