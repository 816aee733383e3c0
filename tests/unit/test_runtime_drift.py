"""The pure parts of exact drift: nft listings and what a keepalived.conf gives its master."""

from ansible_collections.l3ha.routers.plugins.module_utils._netlink import Route, read_sysctl, read_sysctls
from ansible_collections.l3ha.routers.plugins.module_utils._router_nftables import ruleset_difference, ruleset_lines
from ansible_collections.l3ha.routers.plugins.module_utils._router_runtime import master_runtime

LISTING = """table ip l3ha {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr 203.0.113.20 counter packets 4 bytes 336 dnat to 10.0.0.5
\t}
}
table inet l3ha_drain {
\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t}
}
"""


def test_listing_is_normalised_without_counters_and_drain_table():
    tables = ruleset_lines(LISTING)
    assert tables == {"ip l3ha": ["chain prerouting: type nat hook prerouting priority dstnat; policy accept;",
                                  "chain prerouting: ip daddr 203.0.113.20 counter dnat to 10.0.0.5"]}
    assert ruleset_lines(LISTING.replace("packets 4 bytes 336", "packets 9 bytes 900")) == tables


def test_difference_names_missing_rules_and_foreign_tables():
    kept = ruleset_lines(LISTING)
    live = ruleset_lines(LISTING.replace("\t\tip daddr 203.0.113.20 counter packets 4 bytes 336 dnat to 10.0.0.5\n", "")
                         + "table inet intruder {\n}\n")
    extra, missing = ruleset_difference(live, kept)
    assert extra == ["inet intruder"]
    assert missing == ["ip l3ha chain prerouting: ip daddr 203.0.113.20 counter dnat to 10.0.0.5"]
    assert ruleset_difference(kept, kept) == ([], [])


def test_master_runtime_reads_the_address_and_route_blocks():
    conf = """vrrp_instance r1 {
    virtual_ipaddress {
        169.254.192.1/18 dev ha-1
    }
    virtual_ipaddress_excluded {
        203.0.113.10/24 dev qg-1 no_track  # gateway
        fd00:1::1/64 dev qr-1 no_track
    }
    virtual_routes {
        0.0.0.0/0 via 203.0.113.1 dev qg-1 no_track
        default6 via 2001:db8:ff::1 dev qg-1
        10.9.0.0/16 via 10.0.0.254
    }
}
static_routes {
    192.0.2.0/24 via 10.0.0.9
}
"""
    addresses, routes = master_runtime(conf)
    assert addresses == [("169.254.192.1/18", "ha-1"), ("203.0.113.10/24", "qg-1"), ("fd00:1::1/64", "qr-1")]
    assert routes == [Route("0.0.0.0/0", "203.0.113.1", "qg-1"), Route("::/0", "2001:db8:ff::1", "qg-1"),
                      Route("10.9.0.0/16", "10.0.0.254", None)]
    assert master_runtime(None) == ([], [])


def test_services_are_parsed_with_errors_naming_the_field():
    import pytest
    from ansible_collections.l3ha.routers.plugins.module_utils._services import (
        ServiceError, merge_services, parse_services,
    )
    assert parse_services([{"name": "md", "command": "python3 -m http.server 80"}], "s") == [
        {"name": "md", "command": ["python3", "-m", "http.server", "80"], "stop_signal": "TERM"}]
    assert parse_services([{"name": "x", "command": ["a"], "stop_signal": "sigkill"}], "s")[0]["stop_signal"] == "KILL"
    for bad, message in (([{"name": "Bad", "command": ["a"]}], r"s\[0\]\.name 'Bad'"),
                         ([{"name": "a", "command": []}], r"s\[0\]\.command must be"),
                         ([{"name": "a", "command": ["a"], "stop_signal": "USR9"}], r"s\[0\]\.stop_signal"),
                         ([{"name": "a", "command": ["a"]}, {"name": "a", "command": ["b"]}], "used twice"),
                         ([{"name": "a", "command": ["a"], "user": "x"}], "user is not a known field"),
                         ("a", "must be a list")):
        with pytest.raises(ServiceError, match=message):
            parse_services(bad, "s")
    common = parse_services([{"name": "a", "command": ["1"]}, {"name": "b", "command": ["2"]}], "g")
    own = parse_services([{"name": "b", "command": ["3"]}, {"name": "c", "command": ["4"]}], "r")
    assert [(s["name"], s["command"]) for s in merge_services(common, own)] == [
        ("a", ["1"]), ("b", ["3"]), ("c", ["4"])]


def test_sysctls_read_from_their_top_directory_match_full_paths():
    keys = ["net/ipv4/ip_forward", "net/ipv4/conf/lo/arp_ignore", "net/ipv4/conf/no-such-link/arp_ignore",
            "net/no-such-top/conf/all/x", "kernel/pid_max"]
    assert read_sysctls(None, keys) == dict((key, read_sysctl(key)) for key in keys)
    assert read_sysctls(None, keys)["net/ipv4/conf/no-such-link/arp_ignore"] is None
    assert read_sysctls(None, ["kernel/pid_max"])["kernel/pid_max"].isdigit()
