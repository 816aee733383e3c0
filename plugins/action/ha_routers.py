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

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.l3ha.routers.plugins.module_utils._defaults import RENDER_SETTINGS, TEMPLATES
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import (
    ALWAYS_RENDERED, CONNTRACKD_CONF,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._keepalived_check import (
    find_keepalived, keepalived_config_errors,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._render import (
    inspect_templates, make_plain_renderer, make_renderer, read_sources, render_context, render_router_files,
    router_inputs, sha256,
)
from ansible_collections.l3ha.routers.plugins.plugin_utils._router_view import RenderError
from ansible_collections.l3ha.routers.plugins.plugin_utils._secret import _mask

MODULE = "l3ha.routers.ha_routers"
FILE_NAMES = ALWAYS_RENDERED
# Rendered only for routers that sync connections.
CONNTRACKD_FILE = CONNTRACKD_CONF
DEFAULT_TEMPLATES = TEMPLATES
RENDER_DEFAULTS = RENDER_SETTINGS
# Arguments of this action that the module does not take.
ACTION_ONLY_ARGS = ("templates", "render", "validate")


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
