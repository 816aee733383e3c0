# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of l3ha.routers.ha_routers: render each router's files, then run the
module once for the whole node.

For every router of the node's plan it renders, on the controller, keepalived.conf,
notify.sh and nftables.nft (plus conntrackd.conf for routers that sync connections) into
the router's ``files``; the module (the node reconciler) then runs once with all routers.
There are no per-router remote tasks. The work is done in ``plugins/plugin_utils/``: the
router view (``_router_view``), rendering and the inputs checksum (``_render``),
``keepalived -t`` (``_keepalived_test``) and masking the VRRP secret (``_secret``).

Options of this action on top of the module's:

``templates``: ``{keepalived.conf: PATH, notify.sh: PATH, nftables.nft: PATH,
  conntrackd.conf: PATH}``; each path is looked up like the ``template`` module's ``src``
  (the role's ``templates/`` first), so users can point at their own templates.
``metrics_dir`` (the module's) also reaches the templates: each router's notify.sh writes
  its metrics file there.
``template_settings``: settings the templates use (advert interval, GARP, hooks, health
  check, VRRP authentication...), see ``RENDER_SETTINGS`` in ``module_utils/_defaults.py``.
  Its old name ``render`` is deprecated.
``validate``: run ``keepalived -t`` on every rendered keepalived.conf that differs from
  what the node reported, when keepalived is installed on the controller.

Templates see the task's variables plus ``router`` (the plan entry) and ``view`` (values
derived from it by ``router_view`` so that templates need no IP arithmetic).

Unchanged routers are not rendered again: every router is sent with ``inputs_checksum``, a
checksum of its plan entry, the template settings, the template texts, the values of the
other variables the templates name, and the rendering code. A router whose node reports
the same ``inputs_checksum`` (``l3ha_router_facts``, with its files as written) goes without
``files``; the module then uses the node's own files, after checking them, or names the
router in ``rerender`` and changes nothing, and this action renders those and calls it again.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import RENDER_SETTINGS, TEMPLATES
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import CONNTRACKD_CONF, RADVD_CONF
from ansible_collections.l3ha.routers.plugins.module_utils._keepalived_test import (
    find_keepalived, find_radvd, rendered_config_errors,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._render import (
    choose_renderer, read_sources, render_router_files, router_inputs_checksum,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._router_view import (
    RenderError, auth_warning, router_service_names,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._secret import hide_vrrp_secret

MODULE = "l3ha.routers.ha_routers"
OPTIONAL_FILES = (CONNTRACKD_CONF, RADVD_CONF)  # rendered only for routers that use them
display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        module_args = dict(self._task.args)
        templates = module_args.pop("templates", None) or {}
        settings = self._template_settings(module_args)
        validate = module_args.pop("validate", True)
        # keepalived -t (radvd --configtest) where they are: here, else on the node before any change
        validated_on = ("controller" if find_keepalived() and find_radvd() else "node") if validate else None
        if validated_on == "node":
            module_args["validate_on_node"] = True
        self._vrrp_secret = settings.get("auth_pass") or None
        facts = task_vars.get("l3ha_router_facts") or {}

        paths = self._template_paths(templates)
        sources = read_sources(paths)
        searchpath = list(task_vars.get("ansible_search_path", [])) + [os.path.dirname(p) for p in paths.values()]
        render_template, shared = choose_renderer(self._templar, sources, settings, task_vars, searchpath)

        routers = [dict(router) for router in module_args.get("routers") or []]
        sent = list(routers)  # what the module gets: a router whose node has its files goes without them
        if shared is not None:
            for index, router in enumerate(routers):
                router["inputs_checksum"] = router_inputs_checksum(shared, router)
                if (facts.get(router.get("name")) or {}).get("inputs_checksum") == router["inputs_checksum"]:
                    sent[index] = dict((key, value) for key, value in router.items() if key != "files")
        for router in sent:  # what the reconciler checks runs on a master (the view has it)
            try:
                router["service_names"] = router_service_names(router, settings)
            except RenderError as error:
                result.update(failed=True, msg=str(error))
                return result
        module_args["routers"] = sent

        pending = [router for index, router in enumerate(routers) if sent[index] is router]
        rendered = set()
        for _attempt in range(2):
            rendered.update(router.get("name") for router in pending)
            errors = self._render_and_validate(pending, render_template, settings, validate, facts)
            if errors:
                result.update(failed=True, msg="; ".join(errors), errors=errors)
                return result
            module_result = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            # files changed on the node since its facts were read: render those as well
            stale = set(module_result.pop("rerender", None) or [])
            pending = []
            for index, router in enumerate(routers):
                if router.get("name") in stale:
                    sent[index] = router
                    pending.append(router)
            if not pending:
                break
        if pending:
            names = ", ".join(sorted(router["name"] for router in pending))
            result.update(failed=True, msg="routers %s: their files changed on the node while it was being "
                                           "reconciled; nothing was changed for them, run again" % names)
            return result

        result.update(module_result)
        result["rendered"] = sorted(rendered)
        result["validated_on"] = validated_on
        if not validate:
            result["warnings"] = list(result.get("warnings") or []) + [
                "keepalived -t validation is off (l3ha_validate: false): a broken keepalived.conf "
                "reaches the nodes"]
        trade_off = auth_warning(settings)
        if trade_off:  # Ansible shows a warning once per run, however many nodes raise it
            result["warnings"] = list(result.get("warnings") or []) + [trade_off]
        return hide_vrrp_secret(result, self._vrrp_secret)

    def _template_settings(self, module_args):
        """The ``template_settings`` option (or its deprecated name ``render``), with the
        module's config and run directories."""
        settings = dict(module_args.pop("template_settings", None) or {})
        if "render" in module_args:
            display.deprecated("l3ha.routers.ha_routers: the option render is now called template_settings",
                               version="2.0.0")
            settings = dict(module_args.pop("render") or {}, **settings)
        settings.setdefault("config_dir", module_args.get("config_dir") or RENDER_SETTINGS["config_dir"])
        settings.setdefault("run_dir", module_args.get("run_dir") or RENDER_SETTINGS["run_dir"])
        # notify.sh writes each router's metrics file where the module writes the node's ('' for none)
        settings.setdefault("metrics_dir", module_args.get("metrics_dir", RENDER_SETTINGS["metrics_dir"]))
        return settings

    def _template_paths(self, templates):
        """{file name: template path}, each found like the template module's ``src``."""
        unknown = sorted(set(templates) - set(TEMPLATES))
        if unknown:
            raise AnsibleActionFail("templates: unknown file(s) %s (use %s)"
                                    % (", ".join(unknown), ", ".join(TEMPLATES)))
        paths = {}
        for file_name, default in TEMPLATES.items():
            try:
                paths[file_name] = self._find_needle("templates", templates.get(file_name) or default)
            except AnsibleError as error:
                if file_name in OPTIONAL_FILES and file_name not in templates:
                    continue  # needed only by routers with conntrackd; they fail when rendering
                raise AnsibleActionFail("template for %s: %s" % (file_name, to_text(error)))
        return paths

    def _update_module_args(self, module_name, module_args, task_vars, *args, **kwargs):
        super()._update_module_args(module_name, module_args, task_vars, *args, **kwargs)
        # A VRRP password travels inside keepalived.conf: keep the node from logging it.
        if self._vrrp_secret:
            module_args["_ansible_no_log"] = True

    def _render_and_validate(self, routers, render_template, settings, validate, facts):
        """Render the files of ``routers`` into each, then check every new keepalived.conf
        (``validate``); the errors, naming router and field."""
        errors = []
        script_paths = {}
        for router in routers:
            try:
                files, view = render_router_files(render_template, router, settings)
            except RenderError as error:
                errors.append(str(error))
                continue
            except AnsibleError as error:
                errors.append("router %s: rendering: %s" % (router.get("name"), to_text(error)))
                continue
            router["files"] = dict(router.get("files") or {}, **files)
            script_paths[router["name"]] = view["paths"]["script"]
        if not errors and validate and find_keepalived():
            errors.extend(rendered_config_errors(routers, script_paths, facts))
        return errors
