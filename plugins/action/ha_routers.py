# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of l3ha.routers.ha_routers: render each router's files, then run the
module once for the whole node.

For every router of the node's plan it renders three templates with the Templar, on the
controller: keepalived.conf, notify.sh and nftables.nft (plus conntrackd.conf for routers
that sync connections). The rendered text goes into the
router's ``files`` and the module (the node reconciler) runs once with all routers. There
are no per-router remote tasks.

Options of this action on top of the module's:

``templates``: ``{keepalived.conf: PATH, notify.sh: PATH, nftables.nft: PATH,
  conntrackd.conf: PATH}``; each
  path is looked up like the ``template`` module's ``src`` (the role's ``templates/``
  first), so users can point at their own templates.
``render``: settings the templates use (advert interval, GARP, hooks, health check,
  VRRP authentication...), see ``RENDER_DEFAULTS``.
``validate``: run ``keepalived -t`` on every rendered keepalived.conf that differs from
  what the node reported, when keepalived is installed on the controller.

Templates see the task's variables plus ``router`` (the plan entry) and ``view`` (values
derived from it by ``router_view`` so that templates need no IP arithmetic).

Unchanged routers are not rendered again: every router is sent with ``inputs``, a
checksum of its plan entry, the render settings, the template texts, the values of the
other variables the templates name, and this file. A router whose node reports the same
``inputs`` (``l3ha_router_facts``, with its files as written) goes without ``files``; the
module then uses the node's own files, after checking them, or names the router in
``render`` and changes nothing, and this action renders those and calls it again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible.plugins.filter.core import quote as ansible_quote
from jinja2 import Environment, StrictUndefined, TemplateError, TemplateSyntaxError, nodes

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import HEALTH_CHECK, RENDER_SETTINGS, TEMPLATES
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    ALWAYS_RENDERED, CONNTRACKD_CONF, VRRP_STATES, as_list as _as_list,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._keepalived_check import (
    find_keepalived, keepalived_config_errors,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._secret import _mask

MODULE = "l3ha.routers.ha_routers"
FILE_NAMES = ALWAYS_RENDERED
# Rendered only for routers that sync connections.
CONNTRACKD_FILE = CONNTRACKD_CONF
DEFAULT_TEMPLATES = TEMPLATES
MANAGED = "Managed by Ansible (l3ha.routers); local changes are overwritten."
RENDER_DEFAULTS = RENDER_SETTINGS
# conntrackd's sync port on the HA network (its documented default) and cache sizes.
CONNTRACKD_PORT = 3780
CONNTRACKD_HASH_SIZE = 8192
CONNTRACKD_HASH_LIMIT = 131072
CONNTRACKD_PURGE_TIMEOUT = 15
CHECK_DEFAULTS = HEALTH_CHECK
HOOK_STATES = VRRP_STATES
# Arguments of this action that the module does not take.
ACTION_ONLY_ARGS = ("templates", "render", "validate")


class RenderError(ValueError):
    """Bad input for rendering; the message names the router and the field."""


def _interface(text, router, field):
    try:
        return ipaddress.ip_interface(str(text))
    except ValueError:
        raise RenderError("router %s: %s: %r is not an address with prefix" % (router, field, text))


def _address(text, router, field):
    try:
        return ipaddress.ip_address(str(text))
    except ValueError:
        raise RenderError("router %s: %s: %r is not an IP address" % (router, field, text))


def link_local(mac):
    """The EUI-64 link-local address the kernel would derive from ``mac``."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = ["%02x%02x" % (eui[i], eui[i + 1]) for i in range(0, 8, 2)]
    return ipaddress.ip_interface("fe80::%s/64" % ":".join(groups))


def _ports_by_kind(router):
    ports = {}
    for port in router.get("ports") or []:
        ports.setdefault(port.get("kind"), []).append(port)
    return ports


def _port_name(port):
    if isinstance(port, dict):
        return port.get("name")
    return port


def _gateway(router, ports):
    gateway = router.get("gateway") or None
    if not gateway:
        return None, None
    port = _port_name(gateway.get("port"))
    port_entry = None
    for candidate in ports.get("gateway", []):
        if port is None or candidate.get("name") == port:
            port_entry = candidate
            break
    if port is None and port_entry is not None:
        port = port_entry.get("name")
    if not port:
        raise RenderError("router %s: gateway.port: the plan has no gateway port" % router["name"])
    return gateway, (port, port_entry)


def _internal_ports(router, ports):
    """[(port name, port entry, [ip_interface])] for each internal network."""
    by_segment = {}
    for port in ports.get("internal", []):
        by_segment[port.get("network") or port.get("segment")] = port
    result = []
    for index, interface in enumerate(router.get("interfaces") or []):
        field = "interfaces[%d]" % index
        port = _port_name(interface.get("port"))
        entry = by_segment.get(interface.get("network"))
        if port is None and entry is not None:
            port = entry.get("name")
        if not port:
            raise RenderError("router %s: %s.port: no internal port for network %r"
                              % (router["name"], field, interface.get("network")))
        texts = _as_list(interface.get("addresses")) + _as_list(interface.get("address"))
        addresses = [_interface(text, router["name"], field + ".addresses") for text in texts]
        result.append((port, entry, addresses))
    return result


def _check(render, gateway_port, gateway_v4, gateway_ip_v4):
    check = render.get("check")
    if not check or not gateway_port:
        return None
    settings = dict(CHECK_DEFAULTS)
    if isinstance(check, dict):
        settings.update(check)
    view = {key: settings[key] for key in ("interval", "timeout", "fall", "rise")}
    view["gateway_ip"] = None
    view["source_ip"] = None
    if settings.get("gateway") and gateway_v4 is not None and gateway_ip_v4 is not None:
        view["gateway_ip"] = str(gateway_ip_v4)
        view["source_ip"] = str(gateway_v4.ip)
    return view


def _hooks(render, name):
    hooks = render.get("hooks") or {}
    unknown = sorted(set(hooks) - set(HOOK_STATES))
    if unknown:
        raise RenderError("router %s: l3ha_notify_hooks: unknown state(s) %s (use %s)"
                          % (name, ", ".join(unknown), ", ".join(HOOK_STATES)))
    return {state: [str(command) for command in _as_list(hooks.get(state))] for state in HOOK_STATES}


def _conntrackd(router, settings, ha_port, own, peers, config, run):
    """conntrackd settings of one router, or None when it does not sync connections.

    ``own`` is the router's HA address, ``config``/``run`` its config and run directories.
    """
    name = router["name"]
    field, wanted = "conntrackd", router.get("conntrackd")
    if wanted is None:
        field, wanted = "l3ha_conntrackd", settings.get("conntrackd")
    try:
        wanted = boolean(wanted, strict=True)
    except TypeError:
        raise RenderError("router %s: %s: %r is not a boolean" % (name, field, wanted))
    if not wanted:
        return None
    if ha_port is None:
        raise RenderError("router %s: conntrackd: needs an HA router (ha is false)" % name)
    if not peers:
        return None  # a single replica has nobody to sync with
    if len(peers) > 1:
        raise RenderError("router %s: conntrackd: syncs exactly two replicas over unicast UDP, this router "
                          "has %d peers (%s); set its max_nodes to 2" % (name, len(peers), ", ".join(peers)))
    return {
        "command": str(settings["conntrackd_command"]),
        "address": own,
        "peer": peers[0],
        "port": CONNTRACKD_PORT,
        "interface": ha_port,
        "hash_size": CONNTRACKD_HASH_SIZE,
        "hash_limit": CONNTRACKD_HASH_LIMIT,
        "purge_timeout": CONNTRACKD_PURGE_TIMEOUT,
        # Loopback, the HA addresses (VRRP and the sync itself) and the VRRP VIP.
        "ignore_addresses": ["127.0.0.1", "::1", own] + list(peers) + (
            [str(_interface(router["ha_vip"], name, "ha_vip").ip)] if router.get("ha_vip") else []),
        "paths": {
            "config": config + "/" + CONNTRACKD_FILE,
            "lock": run + "/conntrackd.lock",
            "socket": run + "/conntrackd.ctl",
            "log": run + "/conntrackd.log",
        },
    }


def router_view(router, render=None):
    """Values derived from one plan entry, for the templates. Pure; raises RenderError."""
    settings = dict(RENDER_DEFAULTS)
    settings.update({key: value for key, value in (render or {}).items() if value is not None})
    name = router["name"]
    ports = _ports_by_kind(router)
    ha = bool(router.get("ha", True))
    ha_ports = ports.get("ha", [])
    if ha and not ha_ports:
        raise RenderError("router %s: ports: the plan has no ha port" % name)
    ha_port = ha_ports[0]["name"] if ha else None

    excluded = []
    routes = []
    gateway, gateway_port_info = _gateway(router, ports)
    gateway_port = gateway_port_info[0] if gateway_port_info else None
    gateway_v4 = gateway_ip_v4 = None
    has_v6_gateway_address = has_v6_gateway_ip = False
    if gateway:
        port_name, port_entry = gateway_port_info
        addresses = [_interface(text, name, "gateway.addresses")
                     for text in _as_list(gateway.get("addresses")) + _as_list(gateway.get("address"))]
        gateway_ips = [_address(text, name, "gateway.gateway_ips")
                       for text in _as_list(gateway.get("gateway_ips")) + _as_list(gateway.get("gateway_ip"))]
        if any(address.version == 6 for address in addresses) and port_entry and port_entry.get("mac"):
            excluded.append({"cidr": str(link_local(port_entry["mac"])), "dev": port_name})
        for address in addresses:
            excluded.append({"cidr": str(address), "dev": port_name})
            if address.version == 4 and gateway_v4 is None:
                gateway_v4 = address
            has_v6_gateway_address = has_v6_gateway_address or address.version == 6
        for gateway_ip in gateway_ips:
            default = "0.0.0.0/0" if gateway_ip.version == 4 else "::/0"
            routes.append({"destination": default, "nexthop": str(gateway_ip), "dev": port_name})
            if gateway_ip.version == 4 and gateway_ip_v4 is None:
                gateway_ip_v4 = gateway_ip
            has_v6_gateway_ip = has_v6_gateway_ip or gateway_ip.version == 6

    internal = _internal_ports(router, ports)
    for port_name, port_entry, addresses in internal:
        if any(address.version == 6 for address in addresses) and port_entry and port_entry.get("mac"):
            excluded.append({"cidr": str(link_local(port_entry["mac"])), "dev": port_name})
        for address in addresses:
            excluded.append({"cidr": str(address), "dev": port_name})

    floating_ips = []
    for index, fip in enumerate(router.get("floating_ips") or []):
        field = "floating_ips[%d]" % index
        external = _address(fip.get("external"), name, field + ".external")
        internal_ip = _address(fip.get("internal"), name, field + ".internal")
        if not gateway_port:
            raise RenderError("router %s: %s: a floating IP needs a gateway" % (name, field))
        if external.version != 4 or internal_ip.version != 4:
            raise RenderError("router %s: %s: floating IPs are IPv4 (1:1 NAT)" % (name, field))
        floating_ips.append({"external": str(external), "internal": str(internal_ip), "port": gateway_port})
        excluded.append({"cidr": "%s/32" % external, "dev": gateway_port})

    for index, route in enumerate(router.get("routes") or []):
        field = "routes[%d]" % index
        destination = _interface(route.get("destination"), name, field + ".destination").network
        nexthop = _address(route.get("nexthop"), name, field + ".nexthop")
        dev = _port_name(route.get("port"))
        if dev is None:
            for port_name, _entry, addresses in internal:
                if any(nexthop in address.network for address in addresses):
                    dev = port_name
                    break
        routes.append({"destination": str(destination), "nexthop": str(nexthop), "dev": dev})

    subnets = router.get("internal_subnets")
    if subnets is None:
        subnets = [str(address.network) for _port, _entry, addresses in internal for address in addresses]
    networks = set(_interface(subnet, name, "internal_subnets").network for subnet in subnets)
    subnets_v4 = [str(network) for network in sorted(n for n in networks if n.version == 4)]
    snat = None
    if gateway and gateway.get("snat", True) and gateway_v4 is not None and subnets_v4:
        snat = {"port": gateway_port, "address": str(gateway_v4.ip), "subnets": subnets_v4}

    auth_pass = settings.get("auth_pass") or None
    global_version = int(settings["vrrp_version"])
    version = 2 if auth_pass else global_version
    advert_int = float(settings["advert_int"])
    if version == 2:
        advert_int = max(1, int(math.ceil(advert_int)))
    elif advert_int == int(advert_int):
        advert_int = int(advert_int)

    run = "%s/routers/%s" % (settings["run_dir"].rstrip("/"), name)
    config = "%s/routers/%s" % (settings["config_dir"].rstrip("/"), name)
    peers = [str(_address(peer, name, "peers")) for peer in router.get("peers") or []]
    own = str(_interface(router["ha_address"], name, "ha_address").ip) if ha else None
    return {
        "managed": MANAGED,
        "ha_port": ha_port,
        "gateway_port": gateway_port,
        # Ports whose loss must fail the router over, besides the HA port (tracked anyway).
        "track_interfaces": _as_list(settings.get("track_ports")),
        "ha": ha,
        "unicast_src_ip": own,
        "peers": peers,
        "vrrp_version": version,
        "global_vrrp_version": global_version,
        "advert_int": advert_int,
        "auth": str(auth_pass)[:8] if auth_pass else None,
        "garp_repeat": int(settings["garp_repeat"]),
        "garp_delay": int(settings["garp_delay"]),
        "excluded_addresses": excluded,
        "routes": routes,
        "floating_ips": floating_ips,
        "snat": snat,
        "master_accept_ra": 2 if has_v6_gateway_address and not has_v6_gateway_ip else 0,
        "check": _check(settings, gateway_port, gateway_v4, gateway_ip_v4),
        "hooks": _hooks(settings, name),
        "log_max_bytes": int(settings["log_max_bytes"]),
        "conntrackd": _conntrackd(router, settings, ha_port, own, peers, config, run),
        "paths": {
            "config": config + "/keepalived.conf",
            "script": config + "/notify.sh",
            "run": run,
            "fifo": run + "/notify.fifo",
        },
    }


def render_router_files(render_template, router, render):
    """({file name: text}, view) for one router; ``render_template(file_name, variables)``."""
    view = router_view(router, render)
    variables = {"router": router, "view": view}
    names = FILE_NAMES + ((CONNTRACKD_FILE,) if view["conntrackd"] else ())
    return {file_name: render_template(file_name, variables) for file_name in names}, view


def read_sources(paths):
    """{file name: template text} from {file name: path}; the text is trusted as a template."""
    sources = {}
    for file_name, path in paths.items():
        with open(path) as handle:
            sources[file_name] = trust_as_template(handle.read())
    return sources


def make_renderer(templar, sources, base_vars, searchpath=None):
    """``render_template(file_name, variables)`` over ``base_vars`` plus ``variables``."""
    def render_template(file_name, variables):
        if file_name not in sources:
            raise AnsibleError("no template for %s was found" % file_name)
        available = dict(base_vars)
        available.update(variables)
        env = {"available_variables": available}
        if searchpath:
            env["searchpath"] = searchpath
        text = templar.copy_with_new_env(**env).template(sources[file_name], escape_backslashes=False)
        return to_text(text)

    return render_template


def _plain(value):
    """``value`` as plain JSON types, for checksums (anything else by its repr)."""
    if isinstance(value, dict):
        return dict((str(key), _plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value) if isinstance(value, str) else repr(value)


# Plain Jinja2 renders the role's templates about 40 times faster than Ansible's templating
# (0.5 against 23 ms per router): used for every template that needs nothing else.
FAST_JINJA = Environment(trim_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined,
                         finalize=lambda value: "" if value is None else value)  # as Ansible prints None
FAST_JINJA.filters.update(quote=ansible_quote)
# Names Jinja2 itself gives a template.
JINJA_NAMES = frozenset(FAST_JINJA.globals) | {"loop", "caller", "varargs", "kwargs", "self"}


def inspect_templates(sources):
    """(names the templates read besides ``router`` and ``view``, whether they include or
    import other templates, whether they use only plain Jinja2's filters and tests), or
    (None, True, False) when a template does not parse here."""
    names, includes, plain = set(), False, True
    for text in sources.values():
        try:
            tree = FAST_JINJA.parse(str(text))
        except TemplateSyntaxError:
            return None, True, False
        local = set(node.name for node in tree.find_all(nodes.Name) if node.ctx in ("store", "param"))
        names.update(node.name for node in tree.find_all(nodes.Name)
                     if node.ctx == "load" and node.name not in local and node.name not in JINJA_NAMES)
        includes = includes or any(tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)))
        plain = plain and all(node.name in FAST_JINJA.filters for node in tree.find_all(nodes.Filter))
        plain = plain and all(node.name in FAST_JINJA.tests for node in tree.find_all(nodes.Test))
    return sorted(names - {"router", "view"}), includes, plain


def _checksum(value):
    return sha256(json.dumps(value, sort_keys=True, separators=(",", ":")))


with open(__file__, "rb") as _source:
    # A new version of this plugin (router_view) may render differently: part of the inputs.
    CODE_CHECKSUM = hashlib.sha256(_source.read()).hexdigest()


def render_context(sources, render, variables):
    """Checksum of what every router's files depend on besides its plan entry."""
    return _checksum({"code": CODE_CHECKSUM, "templates": _plain(sources), "render": _plain(render),
                      "variables": _plain(variables)})


def router_inputs(context, router):
    """Checksum of everything one router's files are rendered from (files given in the plan
    entry included: they are merged into the rendered ones)."""
    entry = dict((key, value) for key, value in router.items() if key != "inputs")
    return _checksum({"context": context, "router": _plain(entry)})


def make_plain_renderer(sources, base_vars):
    """Like ``make_renderer``, with plain Jinja2 (only for templates ``inspect_templates`` passed)."""
    compiled = dict((file_name, FAST_JINJA.from_string(str(text))) for file_name, text in sources.items())

    def render_template(file_name, variables):
        if file_name not in compiled:
            raise AnsibleError("no template for %s was found" % file_name)
        available = dict(base_vars)
        available.update(variables)
        try:
            return compiled[file_name].render(available)
        except (TemplateError, TypeError, ValueError, KeyError, AttributeError) as error:
            raise AnsibleError("%s: %s" % (file_name, error))

    return render_template


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def _template_paths(self, templates):
        paths = {}
        for file_name in DEFAULT_TEMPLATES:
            path = (templates or {}).get(file_name) or DEFAULT_TEMPLATES[file_name]
            try:
                paths[file_name] = self._find_needle("templates", path)
            except AnsibleError as error:
                if file_name == CONNTRACKD_FILE and file_name not in (templates or {}):
                    continue  # needed only by routers with conntrackd; they fail when rendering
                raise AnsibleActionFail("template for %s: %s" % (file_name, to_text(error)))
        return paths

    def _update_module_args(self, module_name, module_args, task_vars, *args, **kwargs):
        super()._update_module_args(module_name, module_args, task_vars, *args, **kwargs)
        # A VRRP password travels inside keepalived.conf: keep the node from logging it.
        if self._vrrp_secret:
            module_args["_ansible_no_log"] = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        module_args = dict(self._task.args)
        templates = module_args.pop("templates", None) or {}
        render = dict(module_args.pop("render", None) or {})
        validate = module_args.pop("validate", True)
        render.setdefault("config_dir", module_args.get("config_dir") or RENDER_DEFAULTS["config_dir"])
        render.setdefault("run_dir", module_args.get("run_dir") or RENDER_DEFAULTS["run_dir"])
        self._vrrp_secret = render.get("auth_pass") or None
        unknown = sorted(set(templates) - set(DEFAULT_TEMPLATES))
        if unknown:
            raise AnsibleActionFail("templates: unknown file(s) %s (use %s)"
                                    % (", ".join(unknown), ", ".join(DEFAULT_TEMPLATES)))

        routers = [dict(router) for router in module_args.get("routers") or []]
        paths = self._template_paths(templates)
        sources = read_sources(paths)
        searchpath = list(task_vars.get("ansible_search_path", [])) + [os.path.dirname(p) for p in paths.values()]
        reported = task_vars.get("l3ha_router_facts") or {}
        names, includes, plain = inspect_templates(sources)
        context = None
        if names is not None and not includes:
            templar = self._templar.copy_with_new_env(available_variables=task_vars)
            variables = dict((name, templar.resolve_variable_expression(name)) for name in names if name in task_vars)
            # any other name is an Ansible global (a lookup, now()...): render every time
            if len(variables) == len(names):
                context = render_context(sources, render, variables)
        if context is not None and plain:
            render_template = make_plain_renderer(sources, variables)
        else:
            render_template = make_renderer(self._templar, sources, task_vars, searchpath)
        sent = list(routers)  # what the module gets: a cached router goes without files
        for index, router in enumerate(routers):
            if context is not None:
                router["inputs"] = router_inputs(context, router)
                if (reported.get(router.get("name")) or {}).get("inputs") == router["inputs"]:
                    # the node has these files already (the module checks)
                    sent[index] = dict((key, value) for key, value in router.items() if key != "files")
        module_args["routers"] = sent
        pending = [index for index, router in enumerate(routers) if sent[index] is router]
        rendered = set()
        for _attempt in range(2):
            rendered.update(routers[index].get("name") for index in pending)
            errors = self._render([routers[index] for index in pending], render_template, render, validate,
                                  task_vars)
            if errors:
                result.update(failed=True, msg="; ".join(errors), errors=errors)
                return result
            module_result = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            stale = set(module_result.pop("render", None) or [])
            # files changed on the node since its facts were read: render those as well
            pending = [index for index, router in enumerate(routers) if router.get("name") in stale]
            for index in pending:
                sent[index] = routers[index]
            if not pending:
                break
        if pending:
            names = ", ".join(sorted(routers[index]["name"] for index in pending))
            result.update(failed=True, msg="routers %s: their files changed on the node while it was being "
                                           "reconciled; nothing was changed for them, run again" % names)
            return result
        result.update(module_result)
        result["rendered"] = sorted(rendered)
        if self._vrrp_secret:
            result.pop("invocation", None)
        # Also without a password now: the old one is on the diff's "before" side.
        _mask(result, str(self._vrrp_secret)[:8] if self._vrrp_secret else None)
        return result

    def _render(self, routers, render_template, render, validate, task_vars):
        """Render the files of ``routers`` into each; the errors, naming router and field."""
        errors = []
        script_paths = {}
        for router in routers:
            try:
                files, view = render_router_files(render_template, router, render)
            except RenderError as error:
                errors.append(str(error))
                continue
            except AnsibleError as error:
                errors.append("router %s: rendering: %s" % (router.get("name"), to_text(error)))
                continue
            router["files"] = dict(router.get("files") or {}, **files)
            script_paths[router["name"]] = view["paths"]["script"]
        if not errors and validate:
            errors.extend(self._validate(routers, script_paths, task_vars))
        return errors

    def _validate(self, routers, script_paths, task_vars):
        keepalived = find_keepalived()
        if keepalived is None:
            return []
        # Configs the node already runs (same checksum in its facts) were checked before.
        known = (task_vars.get("l3ha_router_facts") or {})
        errors = []
        for router in routers:
            text = router["files"]["keepalived.conf"]
            facts = known.get(router["name"]) or {}
            if (facts.get("checksums") or {}).get("keepalived.conf") == sha256(text):
                continue
            output = keepalived_config_errors(keepalived, text, script_paths[router["name"]],
                                              router["files"]["notify.sh"])
            if output:
                errors.append("router %s: keepalived.conf does not pass keepalived -t: %s" % (router["name"], output))
        return errors
