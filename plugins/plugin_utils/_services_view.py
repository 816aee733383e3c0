# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router view's master-only services: radvd for the internal IPv6 subnets, the
role's ``l3ha_master_services`` and the router's own ``master_services``.

Controller side, pure; ``services_section`` is composed into ``view`` by
``_router_view.router_view``. notify.sh starts the services on MASTER and stops them
on any other state; radvd.conf is rendered from ``view.radvd``.
"""

from __future__ import annotations

import os
import shlex

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.l3ha.routers.plugins.module_utils._services import (
    RADVD_SERVICE, RADVD_STOP_SIGNAL, ServiceError, merge_services, parse_services, service_unit,
)
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import RADVD_CONF, router_config_dir

SLAAC_PREFIX_LENGTH = 64   # SLAAC needs a /64 (RFC 4862 with EUI-64 interface ids)


class RenderError(ValueError):
    """Bad input for rendering a router; the message names the router and the field
    (raised by every section of the view; defined here, the view's first dependency)."""


def radvd_section(router, internal, settings):
    """{config, interfaces: [{port, prefixes: [{prefix, autonomous}]}]}, or None: radvd
    runs for an HA router with an IPv6 subnet on an internal port, when ``radvd`` is on."""
    if not boolean(settings.get("radvd"), strict=False) or not router.get("ha", True):
        return None
    interfaces = []
    for port in internal:
        prefixes = [{"prefix": str(address.network), "autonomous": address.network.prefixlen == SLAAC_PREFIX_LENGTH}
                    for address in port.addresses if address.version == 6]
        if prefixes:
            interfaces.append({"port": port.name, "prefixes": prefixes})
    if not interfaces:
        return None
    config = os.path.join(router_config_dir(settings["config_dir"].rstrip("/") or "/", router["name"]), RADVD_CONF)
    return {"config": config, "interfaces": interfaces}


def _services(router, settings, radvd, run):
    name = router["name"]
    try:
        common = parse_services(settings.get("master_services"), "l3ha_master_services")
        own = parse_services(router.get("master_services"), "master_services")
    except ServiceError as exc:
        raise RenderError("router %s: %s" % (name, exc))
    builtin = []
    if radvd is not None:
        command = [settings["radvd_command"], "-n", "-m", "stderr", "-C", radvd["config"],
                   "-p", os.path.join(run, "radvd.pid")]
        builtin.append({"name": RADVD_SERVICE, "command": command, "stop_signal": RADVD_STOP_SIGNAL})
    return merge_services(builtin + common, own)


def service_names(router, internal, settings, run):
    """The names of a router's services (what the reconciler checks on the node)."""
    return [service["name"] for service in _services(router, settings, radvd_section(router, internal, settings), run)]


def services_section(router, internal, settings, run):
    """``radvd`` and ``services`` of the view; each service with its shell-quoted ``argv``
    and its systemd ``unit``."""
    radvd = radvd_section(router, internal, settings)
    services = [dict(service, argv=" ".join(shlex.quote(arg) for arg in service["command"]),
                     unit=service_unit(router["name"], service["name"]))
                for service in _services(router, settings, radvd, run)]
    return {"radvd": radvd, "services": services, "supervisor": settings.get("supervisor") or "reconciler"}
