"""The role's templates, rendered as the ha_routers action plugin renders them (Ansible's
Templar, the same derived `view`), then checked by the tools that will load them:
`keepalived -t`, `nft -c -f` (in a throwaway network namespace), `sh -n`, and
`systemd-analyze verify` where available."""
import copy
import os
import pathlib
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import TEMPLATES as DEFAULT_TEMPLATES
from ansible_collections.l3ha.routers.plugins.module_utils._files import sha256_text
from ansible_collections.l3ha.routers.plugins.module_utils._keepalived_test import (
    find_keepalived, keepalived_config_errors, rendered_config_errors,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._render import (
    inspect_templates, make_plain_renderer, make_renderer, read_sources, render_router_files, router_inputs_checksum,
    shared_inputs_checksum,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._router_view import RenderError, router_view

ROOT = pathlib.Path(__file__).resolve().parents[2]

TEMPLATES = ROOT / "roles" / "l3ha" / "templates"
KEEPALIVED = find_keepalived()
NFT = shutil.which("nft") or "/usr/sbin/nft"

needs_keepalived = pytest.mark.skipif(KEEPALIVED is None, reason="keepalived is not installed")
needs_nft = pytest.mark.skipif(not pathlib.Path(NFT).exists() or os.geteuid() != 0,
                               reason="needs nft and root (a private network namespace)")

ROLE_DEFAULT_VARS = {
    "l3ha_config_dir": "/etc/l3ha",
    "l3ha_run_dir": "/run/l3ha",
    "l3ha_ip_command": "/usr/sbin/ip",
    "l3ha_keepalived_command": "/usr/sbin/keepalived",
}


def full_router():
    """A dual-stack router with SNAT, a floating IP and an extra route."""
    return {
        "name": "demo-r1",
        "tenant": "demo",
        "namespace": "qrouter-demo-r1",
        "ha": True,
        "vrid": 7,
        "segment": "ha-demo-0",
        "ha_address": "169.254.192.1/18",
        "ha_vip": "169.254.0.7/24",
        "peers": ["169.254.192.2", "169.254.192.3"],
        "priority": 50,
        "ports": [
            {"kind": "ha", "name": "ha-1a2b3c4d", "peer": "vha1a2b3c4d", "segment": "ha-demo-0",
             "mac": "fa:16:3e:00:00:01", "mtu": 1450, "addresses": ["169.254.192.1/18"]},
            {"kind": "gateway", "name": "qg-2b3c4d5e", "peer": "vqg2b3c4d5e", "segment": "ext",
             "mac": "fa:16:3e:2b:3c:4d", "mtu": 1500, "addresses": []},
            {"kind": "internal", "name": "qr-3c4d5e6f", "peer": "vqr3c4d5e6f", "segment": "demo-net",
             "network": "demo-net", "mac": "fa:16:3e:3c:4d:5e", "mtu": 1450, "addresses": []},
            {"kind": "internal", "name": "qr-4d5e6f70", "peer": "vqr4d5e6f70", "segment": "demo-net2",
             "network": "demo-net2", "mac": "fa:16:3e:4d:5e:6f", "mtu": 1450, "addresses": []},
        ],
        "gateway": {"network": "ext", "addresses": ["203.0.113.10/24", "2001:db8:ff::10/64"],
                    "gateway_ips": ["203.0.113.1", "2001:db8:ff::1"], "snat": True, "port": "qg-2b3c4d5e"},
        "interfaces": [
            {"network": "demo-net", "port": "qr-3c4d5e6f", "addresses": ["10.0.0.1/24", "fd00:1::1/64"]},
            {"network": "demo-net2", "port": "qr-4d5e6f70", "addresses": ["10.0.2.1/24"]},
        ],
        "routes": [{"destination": "10.9.0.0/16", "nexthop": "10.0.2.254"}],
        "floating_ips": [{"external": "203.0.113.20", "internal": "10.0.0.5"}],
        "internal_subnets": ["10.0.0.0/24", "fd00:1::/64", "10.0.2.0/24"],
    }


def bare_router():
    """No gateway, no internal networks: only the HA port."""
    router = full_router()
    router.update(name="bare", namespace="qrouter-bare", gateway=None, interfaces=[], routes=[],
                  floating_ips=[], internal_subnets=[])
    router["ports"] = router["ports"][:1]
    return router


def single_router():
    """A router without HA: one node, no ha port, no VRRP."""
    router = full_router()
    router.update(name="solo", namespace="qrouter-solo", ha=False, vrid=None, segment=None, ha_address=None,
                  ha_vip=None, peers=[], priority=None)
    router["ports"] = router["ports"][1:]
    return router


def renderer(extra_vars=None):
    paths = {name: str(TEMPLATES / path) for name, path in DEFAULT_TEMPLATES.items()}
    return make_renderer(Templar(loader=DataLoader()), read_sources(paths),
                         dict(ROLE_DEFAULT_VARS, **(extra_vars or {})))


def render(router, settings=None):
    files, view = render_router_files(renderer(), router, settings or {})
    return files, view


def keepalived_test(files, view):
    return keepalived_config_errors(KEEPALIVED, files["keepalived.conf"], view["paths"]["script"],
                                    files["notify.sh"])


def instance_block(conf, keyword):
    """The lines of the first `keyword { ... }` block."""
    lines = conf.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == keyword + " {")
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "}")
    return [line.strip() for line in lines[start + 1:end]]


# --- the derived view -----------------------------------------------------------------

def test_view_excluded_addresses_cover_gateway_internal_floating_and_link_local():
    view = router_view(full_router())
    excluded = {(a["cidr"], a["dev"]) for a in view["excluded_addresses"]}
    assert excluded == {
        ("203.0.113.10/24", "qg-2b3c4d5e"), ("2001:db8:ff::10/64", "qg-2b3c4d5e"),
        ("fe80::f816:3eff:fe2b:3c4d/64", "qg-2b3c4d5e"),
        ("10.0.0.1/24", "qr-3c4d5e6f"), ("fd00:1::1/64", "qr-3c4d5e6f"),
        ("fe80::f816:3eff:fe3c:4d5e/64", "qr-3c4d5e6f"),
        ("10.0.2.1/24", "qr-4d5e6f70"),
        ("203.0.113.20/32", "qg-2b3c4d5e"),
    }


def test_view_routes_resolve_the_device_of_the_nexthop():
    view = router_view(full_router())
    assert view["routes"] == [
        {"destination": "0.0.0.0/0", "nexthop": "203.0.113.1", "dev": "qg-2b3c4d5e"},
        {"destination": "::/0", "nexthop": "2001:db8:ff::1", "dev": "qg-2b3c4d5e"},
        {"destination": "10.9.0.0/16", "nexthop": "10.0.2.254", "dev": "qr-4d5e6f70"},
    ]


def test_view_snat_takes_ipv4_subnets_and_the_ipv4_gateway_address():
    view = router_view(full_router())
    assert view["snat"] == {"port": "qg-2b3c4d5e", "address": "203.0.113.10",
                            "subnets": ["10.0.0.0/24", "10.0.2.0/24"]}
    router = full_router()
    router["gateway"]["snat"] = False
    assert router_view(router)["snat"] is None


def test_view_finds_ports_from_the_port_list_when_the_plan_omits_them():
    router = full_router()
    del router["gateway"]["port"]
    for interface in router["interfaces"]:
        del interface["port"]
    view = router_view(router)
    assert view["gateway_port"] == "qg-2b3c4d5e"
    assert ("10.0.2.1/24", "qr-4d5e6f70") in {(a["cidr"], a["dev"]) for a in view["excluded_addresses"]}


def test_view_accept_ra_on_master_only_without_an_ipv6_gateway():
    assert router_view(full_router())["master_accept_ra"] == 0
    router = full_router()
    router["gateway"]["gateway_ips"] = ["203.0.113.1"]
    assert router_view(router)["master_accept_ra"] == 2


def test_view_authentication_forces_vrrp2_with_whole_second_adverts():
    view = router_view(full_router(), {"auth_pass": "s3cret-and-more", "advert_int": 0.1})
    assert (view["vrrp_version"], view["advert_int"], view["auth"]) == (2, 1, "s3cret-a")
    view = router_view(full_router(), {"advert_int": 0.1})
    assert (view["vrrp_version"], view["advert_int"], view["auth"]) == (3, 0.1, None)


@pytest.mark.parametrize("field,mutate", [
    ("gateway.addresses", lambda r: r["gateway"].update(addresses=["203.0.113.300/24"])),
    ("floating_ips[0].external", lambda r: r["floating_ips"][0].update(external="not-an-ip")),
    ("routes[0].nexthop", lambda r: r["routes"][0].update(nexthop="10.0.2")),
    ("interfaces[1].addresses", lambda r: r["interfaces"][1].update(addresses=["10.0.2.1/33"])),
    ("ports", lambda r: r.update(ports=r["ports"][1:])),
    ("internal_subnets", lambda r: r.update(internal_subnets=["10.0.0.0/33"])),
    ("gateway.gateway_ips", lambda r: r["gateway"].update(gateway_ips=["203.0.113.1/24"])),
    ("l3ha_notify_hooks", None),
])
def test_bad_input_names_the_router_and_the_field(field, mutate):
    router = full_router()
    settings = {}
    if mutate is None:
        settings = {"hooks": {"mastr": ["true"]}}
    else:
        mutate(router)
    with pytest.raises(RenderError) as error:
        router_view(router, settings)
    assert "router demo-r1" in str(error.value)
    assert field in str(error.value)


# --- keepalived.conf ------------------------------------------------------------------

def test_keepalived_conf_has_neutrons_shape():
    files, _view = render(full_router())
    conf = files["keepalived.conf"]
    global_defs = conf[conf.index("global_defs {"):conf.index("vrrp_instance")]
    instance = conf[conf.index("vrrp_instance demo-r1 {"):]
    # vrrp_version belongs to global_defs (the trap: inside the instance it comes too late).
    assert "vrrp_version 3" in global_defs and "version" not in instance.split("advert_int")[0]
    for line in ("enable_script_security", "script_user root", "notify_fifo /run/l3ha/routers/demo-r1/notify.fifo",
                 'notify_fifo_script "/etc/l3ha/routers/demo-r1/notify.sh fifo"'):
        assert line in global_defs
    for line in ("state BACKUP", "priority 50", "nopreempt", "interface ha-1a2b3c4d", "virtual_router_id 7",
                 "advert_int 0.1", "unicast_src_ip 169.254.192.1"):
        assert "\n    %s\n" % line in instance
    assert instance_block(conf, "unicast_peer") == ["169.254.192.2", "169.254.192.3"]
    # keepalived tracks the instance's own interface and rejects listing it again.
    assert "track_interface {" not in [line.strip() for line in conf.splitlines()]
    assert instance_block(conf, "virtual_ipaddress") == ["169.254.0.7/24 dev ha-1a2b3c4d"]
    excluded = instance_block(conf, "virtual_ipaddress_excluded")
    assert len(excluded) == 8 and all(line.endswith(" no_track") for line in excluded)
    assert "fe80::f816:3eff:fe3c:4d5e/64 dev qr-3c4d5e6f no_track" in excluded
    assert instance_block(conf, "virtual_routes") == [
        "0.0.0.0/0 via 203.0.113.1 dev qg-2b3c4d5e no_track",
        "::/0 via 2001:db8:ff::1 dev qg-2b3c4d5e no_track",
        "10.9.0.0/16 via 10.0.2.254 dev qr-4d5e6f70 no_track",
    ]
    assert "authentication" not in instance and "track_script" not in instance


RENDER_CASES = pytest.mark.parametrize("router,settings", [
    (full_router(), {}),
    (bare_router(), {}),
    (full_router(), {"check": True}),
    (full_router(), {"check": {"interval": 2, "fall": 3, "gateway": False}}),
    (full_router(), {"auth_pass": "s3cret"}),
    (full_router(), {"advert_int": 1, "garp_repeat": 1, "garp_delay": 0}),
    (full_router(), {"hooks": {"master": ["systemctl start x", "echo 'it''s master'"], "stop": "true"}}),
    (dict(full_router(), conntrackd=True, peers=["169.254.192.2"]), {}),
    (single_router(), {}),
    (full_router(), {"vrrp_version": 2, "advert_int": 2, "garp_delay": 60}),  # Neutron's defaults
], ids=["full", "bare", "check", "link-check", "auth", "slow", "hooks", "conntrackd", "single", "vrrp2"])


@needs_keepalived
@RENDER_CASES
def test_keepalived_accepts_every_rendered_config(router, settings):
    files, view = render(copy.deepcopy(router), settings)
    assert keepalived_test(files, view) is None


def test_router_without_ha_has_static_routes_and_no_vrrp():
    files, view = render(single_router())
    conf = files["keepalived.conf"]
    assert "vrrp_instance" not in conf and "virtual_ipaddress" not in conf
    assert instance_block(conf, "static_routes") == [
        "0.0.0.0/0 via 203.0.113.1 dev qg-2b3c4d5e no_track",
        "::/0 via 2001:db8:ff::1 dev qg-2b3c4d5e no_track",
        "10.9.0.0/16 via 10.0.2.254 dev qr-4d5e6f70 no_track",
    ]
    # Its notify.sh records master itself (there are no VRRP events).
    assert "transition master\n" in files["notify.sh"]
    assert view["snat"]["address"] == "203.0.113.10"


@needs_keepalived
def test_keepalived_check_catches_a_broken_config():
    files, view = render(full_router())
    files["keepalived.conf"] = files["keepalived.conf"].replace("nopreempt", "nopreempt_typo")
    assert "nopreempt_typo" in keepalived_test(files, view)


@needs_keepalived
def test_only_configs_the_node_does_not_run_are_checked():
    files, view = render(full_router())
    files["keepalived.conf"] = files["keepalived.conf"].replace("nopreempt", "nopreempt_typo")
    router, scripts = {"name": "demo-r1", "files": files}, {"demo-r1": view["paths"]["script"]}
    [error] = rendered_config_errors([router], scripts, {})
    assert error.startswith("router demo-r1: keepalived.conf does not pass keepalived -t (validated on the controller): ")
    assert "nopreempt_typo" in error
    running = {"demo-r1": {"checksums": {"keepalived.conf": sha256_text(files["keepalived.conf"])}}}
    assert rendered_config_errors([router], scripts, running) == []


def test_auth_instance_sets_version_before_advert_int():
    files, _view = render(full_router(), {"auth_pass": "s3cret"})
    instance = files["keepalived.conf"].split("vrrp_instance demo-r1 {", 1)[1]
    assert instance.index("version 2") < instance.index("advert_int 1")
    assert instance_block(files["keepalived.conf"], "authentication") == ["auth_type PASS", "auth_pass s3cret"]


def test_health_check_script_is_tracked_with_weight_zero():
    files, _view = render(full_router(), {"check": True})
    conf = files["keepalived.conf"]
    script = conf[conf.index("vrrp_script l3ha_external_check {"):conf.index("vrrp_instance")]
    assert 'script "/etc/l3ha/routers/demo-r1/notify.sh check"' in script
    assert "weight 0" in script
    assert instance_block(conf, "track_script") == ["l3ha_external_check"]
    assert "ping -c 1 -W 1 -I 203.0.113.10 203.0.113.1" in files["notify.sh"]


# --- notify.sh ------------------------------------------------------------------------

def test_notify_script_is_valid_posix_sh():
    for settings in ({}, {"check": True, "hooks": {"master": ["echo 'it is mine' > /dev/null"]}}):
        files, _view = render(full_router(), settings)
        checked = subprocess.run(["sh", "-n"], input=files["notify.sh"], text=True, capture_output=True, check=False)
        assert checked.returncode == 0, checked.stderr


def test_notify_hooks_are_quoted_and_run_per_state():
    hook = "echo \"$L3HA_ROUTER is master\" >> '/tmp/x y'"
    files, _view = render(full_router(), {"hooks": {"master": [hook], "fault": ["true"]}})
    script = files["notify.sh"]
    master = script[script.index("        master)"):script.index(";;", script.index("        master)"))]
    assert "run_hook master 'echo \"$L3HA_ROUTER is master\" >> '\"'\"'/tmp/x y'\"'\"''" in master
    assert "backup)" not in script.split("run_hooks() {", 1)[1].split("transition() {")[0]
    assert "run_hook fault true" in script


# --- nftables.nft ---------------------------------------------------------------------

def nft_check(text, tmp_path):
    path = tmp_path / "nftables.nft"
    path.write_text(text)
    # A private network namespace that vanishes with the process: nothing to clean up.
    return subprocess.run(["unshare", "--net", NFT, "-c", "-f", str(path)], capture_output=True, text=True,
                          check=False)


def test_nftables_rules_for_snat_and_floating_ips():
    files, _view = render(full_router())
    rules = [line.strip() for line in files["nftables.nft"].splitlines()]
    assert "ip daddr 203.0.113.20 dnat to 10.0.0.5" in rules
    assert 'oifname "qg-2b3c4d5e" ip saddr 10.0.0.5 snat to 203.0.113.20' in rules
    assert 'oifname "qg-2b3c4d5e" ip saddr { 10.0.0.0/24, 10.0.2.0/24 } snat to 203.0.113.10' in rules
    # Floating IP SNAT comes before the subnet SNAT, so the floating IP wins.
    assert rules.index('oifname "qg-2b3c4d5e" ip saddr 10.0.0.5 snat to 203.0.113.20') < \
        rules.index('oifname "qg-2b3c4d5e" ip saddr { 10.0.0.0/24, 10.0.2.0/24 } snat to 203.0.113.10')


@needs_nft
@pytest.mark.parametrize("router", [full_router(), bare_router()], ids=["full", "bare"])
def test_nft_accepts_the_ruleset(router, tmp_path):
    files, _view = render(router)
    checked = nft_check(files["nftables.nft"], tmp_path)
    assert checked.returncode == 0, checked.stderr


@needs_nft
def test_ruleset_loads_twice_in_a_row(tmp_path):
    """`nft -f` of the same file on a loaded ruleset replaces it (no duplicate tables)."""
    files, _view = render(full_router())
    path = tmp_path / "nftables.nft"
    path.write_text(files["nftables.nft"])
    script = "%s -f %s && %s -f %s && %s list tables" % (NFT, path, NFT, path, NFT)
    loaded = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split("\n").count("table ip l3ha") == 1


# --- the systemd unit -----------------------------------------------------------------

def test_systemd_unit_renders_and_verifies(tmp_path):
    # role_path: as the template module sets it for the role's templates
    templar = Templar(loader=DataLoader(), variables=dict(ROLE_DEFAULT_VARS, role_path=str(TEMPLATES.parent)))
    text = templar.template(trust_as_template((TEMPLATES / "l3ha-keepalived@.service.j2").read_text()))
    assert "Restart=on-failure" in text
    assert "netns exec qrouter-%i /usr/sbin/keepalived --dont-fork" in text
    assert "--use-file=/etc/l3ha/routers/%i/keepalived.conf" in text
    documentation = [uri for line in text.splitlines() if line.startswith("Documentation=")
                     for uri in line.split("=", 1)[1].split()]
    assert "man:keepalived(8)" in documentation
    docs = [uri[len("file:"):] for uri in documentation if uri.startswith("file:")]
    assert docs and all(os.path.isfile(path) for path in docs), documentation
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "l3ha-keepalived@.service"
    unit.write_text(text)
    instance = tmp_path / "l3ha-keepalived@demo-r1.service"
    instance.symlink_to(unit)
    verified = subprocess.run([analyze, "verify", "--man=no", str(instance)], capture_output=True, text=True,
                              check=False, env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/sbin:/usr/bin"})
    problems = [line for line in (verified.stdout + verified.stderr).splitlines()
                if "l3ha-keepalived" in line]
    assert not problems, verified.stdout + verified.stderr


# ---------------------------------------------------------------- inputs checksum

def sources():
    paths = {name: str(TEMPLATES / path) for name, path in DEFAULT_TEMPLATES.items()}
    return read_sources(paths)


def test_inspect_templates_names_the_variables_read_and_whether_plain_jinja_will_do():
    names, includes, plain = inspect_templates(dict(sources(), custom=trust_as_template(
        "{{ site_domain | upper }}{% for fip in router.floating_ips %}{{ view.ha_port }}{{ loop.index }}{% endfor %}"
        "{% set local = 1 %}{{ local }}")))
    assert (names, includes, plain) == (["site_domain"], False, True)
    assert inspect_templates({"x": trust_as_template("{{ broken")}) == (None, True, False)
    for ansible_only in ("{{ x | ansible.builtin.to_json }}", "{{ x | ipaddr }}", "{% if x is match('a') %}{% endif %}"):
        assert inspect_templates({"x": trust_as_template(ansible_only)})[2] is False, ansible_only
    assert inspect_templates({"x": trust_as_template("{% include 'other.j2' %}")})[1] is True
    # a lookup is a name the task variables lack: the action then renders every time, through Ansible
    assert inspect_templates({"x": trust_as_template("{{ lookup('env', 'HOME') }}")})[0] == ["lookup"]


@RENDER_CASES
def test_plain_jinja_renders_exactly_what_ansible_renders(router, settings):
    plain = make_plain_renderer(sources(), ROLE_DEFAULT_VARS)
    assert render_router_files(plain, copy.deepcopy(router), settings)[0] == \
        render(copy.deepcopy(router), settings)[0]


def test_plain_jinja_errors_name_the_file():
    plain = make_plain_renderer({"notify.sh": "{{ router.nothing.deeper }}"}, {})
    with pytest.raises(AnsibleError, match="notify.sh: .*nothing"):
        plain("notify.sh", {"router": {}})


@pytest.mark.parametrize("change", ["router", "template_settings", "template", "variable"])
def test_inputs_change_with_anything_the_files_are_rendered_from(change):
    texts, settings, variables, entry = dict(sources()), {"advert_int": 0.1}, {"l3ha_config_dir": "/etc/l3ha"}, full_router()
    before = router_inputs_checksum(shared_inputs_checksum(texts, settings, variables), entry)
    if change == "router":
        entry = dict(entry, vrid=entry["vrid"] + 1)
    elif change == "template_settings":
        settings = {"advert_int": 0.2}
    elif change == "template":
        texts["notify.sh"] = texts["notify.sh"] + "# local change\n"
    else:
        variables = {"l3ha_config_dir": "/srv/l3ha"}
    after = router_inputs_checksum(shared_inputs_checksum(texts, settings, variables), entry)
    assert after != before
    # and the same inputs give the same checksum (no run-to-run noise)
    assert after == router_inputs_checksum(shared_inputs_checksum(texts, settings, variables), entry)


def test_inputs_ignore_the_old_checksum_but_not_files_given_in_the_plan():
    shared = shared_inputs_checksum(dict(sources()), {}, {})
    entry = full_router()
    assert router_inputs_checksum(shared, entry) == router_inputs_checksum(shared, dict(entry, inputs_checksum="old"))
    assert router_inputs_checksum(shared, dict(entry, files={"nftables.nft": "a"})) != \
        router_inputs_checksum(shared, dict(entry, files={"nftables.nft": "b"}))
