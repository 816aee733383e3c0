# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering a router's files on the controller: the two render engines (Ansible's
Templar, and plain Jinja2 for templates that need nothing of Ansible), the inspection
that chooses between them, and the inputs checksum that lets unchanged routers skip it.

Private to the collection (the leading underscore): the ha_routers action plugin and the
tests use it. It lives in ``plugin_utils`` because it is controller-only code (it imports
Ansible's controller API) that never runs on a node.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.filter.core import quote as ansible_quote
from ansible.template import trust_as_template
from jinja2 import Environment, StrictUndefined, TemplateError, TemplateSyntaxError, nodes

from ansible_collections.l3ha.routers.plugins.module_utils import _defaults, _vocabulary
from ansible_collections.l3ha.routers.plugins.module_utils._files import sha256_text
from ansible_collections.l3ha.routers.plugins.module_utils._vocabulary import ALWAYS_RENDERED, CONNTRACKD_CONF, RADVD_CONF
from ansible_collections.l3ha.routers.plugins.plugin_utils import _router_view
from ansible_collections.l3ha.routers.plugins.plugin_utils._router_view import router_view


def render_router_files(render_template, router, settings):
    """({file name: text}, view) for one router; ``render_template(file_name, variables)``.
    conntrackd.conf is rendered only for a router that syncs connections, radvd.conf only
    for one that sends router advertisements."""
    view = router_view(router, settings)
    variables = {"router": router, "view": view}
    names = (ALWAYS_RENDERED + ((CONNTRACKD_CONF,) if view["conntrackd"] else ())
             + ((RADVD_CONF,) if view["radvd"] else ()))
    return {file_name: render_template(file_name, variables) for file_name in names}, view


def read_sources(paths):
    """{file name: template text} from {file name: path}; the text is trusted as a template."""
    sources = {}
    for file_name, path in paths.items():
        with open(path) as handle:
            sources[file_name] = trust_as_template(handle.read())
    return sources


# ---------------------------------------------------------------- the two engines

def make_renderer(templar, sources, base_vars, searchpath=None):
    """``render_template(file_name, variables)`` with Ansible's Templar, over ``base_vars``
    plus ``variables``."""
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


# Plain Jinja2 renders the role's templates about 40 times faster than Ansible's templating
# (0.5 against 23 ms per router): used for every template that needs nothing else.
FAST_JINJA = Environment(trim_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined,
                         finalize=lambda value: "" if value is None else value)  # as Ansible prints None
FAST_JINJA.filters.update(quote=ansible_quote)
# Names Jinja2 itself gives a template.
JINJA_NAMES = frozenset(FAST_JINJA.globals) | {"loop", "caller", "varargs", "kwargs", "self"}


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


def choose_renderer(templar, sources, settings, task_vars, searchpath):
    """(``render_template``, the shared inputs checksum or None).

    Templates that read only task variables (besides ``router`` and ``view``) have a
    checksum of what they render from; any other name is an Ansible global (a lookup,
    ``now()``...) and an include reads another file, so those render every time (None).
    Templates with a checksum that use only plain Jinja2's filters and tests get the plain
    engine; the others Ansible's Templar.
    """
    names, includes, plain = inspect_templates(sources)
    if names is not None and not includes:
        resolver = templar.copy_with_new_env(available_variables=task_vars)
        variables = dict((name, resolver.resolve_variable_expression(name)) for name in names if name in task_vars)
        if len(variables) == len(names):
            shared = shared_inputs_checksum(sources, settings, variables)
            if plain:
                return make_plain_renderer(sources, variables), shared
            return make_renderer(templar, sources, task_vars, searchpath), shared
    return make_renderer(templar, sources, task_vars, searchpath), None


# ---------------------------------------------------------------- the inputs checksum

def _plain(value):
    """``value`` as plain JSON types, for checksums (anything else by its repr)."""
    if isinstance(value, dict):
        return dict((str(key), _plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value) if isinstance(value, str) else repr(value)


def _checksum(value):
    return sha256_text(json.dumps(value, sort_keys=True, separators=(",", ":")))


def _code_checksum():
    """A new version of the code files are rendered with (this file, the view, the
    defaults it fills in, the vocabulary) may render differently: part of the inputs."""
    texts = []
    for path in (__file__, _router_view.__file__, _defaults.__file__, _vocabulary.__file__):
        with open(path, encoding="utf-8") as source:
            texts.append(source.read())
    return sha256_text("\0".join(texts))


CODE_CHECKSUM = _code_checksum()


def shared_inputs_checksum(sources, settings, variables):
    """Checksum of what every router's files are rendered from besides its plan entry: the
    code, the template texts, the template settings and the variables the templates read."""
    return _checksum({"code": CODE_CHECKSUM, "templates": _plain(sources), "template_settings": _plain(settings),
                      "variables": _plain(variables)})


def router_inputs_checksum(shared, router):
    """Checksum of everything one router's files are rendered from (files given in the plan
    entry included: they are merged into the rendered ones); the previous checksum
    (``inputs_checksum``) left out."""
    entry = dict((key, value) for key, value in router.items() if key != "inputs_checksum")
    return _checksum({"context": shared, "router": _plain(entry)})
