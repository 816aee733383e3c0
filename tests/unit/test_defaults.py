"""Every default is defined once (plugins/module_utils/_defaults.py); the role's defaults,
its argument specs and the modules' documentation (doc fragments included) repeat it for
their readers, and this test fails when one of them is changed in one place only."""
import importlib
import json
import pathlib

import jinja2
import pytest
import yaml
from ansible.utils.plugin_docs import add_fragments

from ansible_collections.l3ha.routers.plugins.module_utils import _defaults
from ansible_collections.l3ha.routers.plugins.module_utils._entry import (
    CLUSTER_RECORD_ARGS, HA_ROUTERS_ARGS, ROUTER_FACTS_ARGS)
from ansible_collections.l3ha.routers.plugins.modules import cluster_record, ha_routers, plan, router_facts

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "l3ha"
ROLE_DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]


class CollectionFragments:
    """The doc fragment loader that ansible-doc's ``add_fragments`` asks, for this
    collection's fragments (``l3ha.routers.<name>``)."""

    @staticmethod
    def get(name):
        parts = name.split(".")
        if parts[:2] != ["l3ha", "routers"] or len(parts) != 3:
            return None  # another collection's, or NAME.VARIABLE: add_fragments then asks for NAME
        fragment = importlib.import_module("ansible_collections.l3ha.routers.plugins.doc_fragments." + parts[2])
        return type("Fragment", (fragment.ModuleDocFragment,), {"ansible_name": name})


def documented_options(module):
    """A module's options as ansible-doc shows them: its DOCUMENTATION merged with its doc
    fragments, by ansible-doc's own merge (as plain YAML types)."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    add_fragments(doc, module.__file__, CollectionFragments, is_module=True)
    return json.loads(json.dumps(doc["options"]))


MODULE_DOCS = {name: documented_options(module)
               for name, module in (("ha_routers", ha_routers), ("router_facts", router_facts), ("plan", plan),
                                    ("cluster_record", cluster_record))}
# Computed from another variable in defaults/main.yml; checked by test_profile_advert_int.
COMPUTED = {"l3ha_advert_int"}


def spec_defaults():
    """(entry point, variable, default) of every option of every entry point that has one."""
    for entry, spec in SPECS.items():
        for name, option in (spec.get("options") or {}).items():
            if "default" in option:
                yield entry, name, option["default"]


def same(left, right):
    return left == right and type(left) is type(right) or (left in ([], {}) and right in ([], {}) and left == right)


@pytest.mark.parametrize("name", sorted(set(ROLE_DEFAULTS) - COMPUTED))
def test_role_default_is_the_plugins_default(name):
    assert name in _defaults.ROLE_DEFAULTS, "%s has a role default but none in _defaults.ROLE_DEFAULTS" % name
    assert same(ROLE_DEFAULTS[name], _defaults.ROLE_DEFAULTS[name]), (
        "%s: defaults/main.yml has %r, _defaults.py has %r" % (name, ROLE_DEFAULTS[name], _defaults.ROLE_DEFAULTS[name]))


def test_every_plugin_role_default_is_in_the_role():
    assert sorted(set(_defaults.ROLE_DEFAULTS) - set(ROLE_DEFAULTS)) == []


@pytest.mark.parametrize("entry,name,default", sorted(spec_defaults(), key=lambda item: item[:2]))
def test_argument_spec_default_is_the_plugins_default(entry, name, default):
    assert name in _defaults.ROLE_DEFAULTS, "%s (entry point %s) has a default in argument_specs only" % (name, entry)
    assert same(default, _defaults.ROLE_DEFAULTS[name]), (
        "%s (entry point %s): argument_specs.yml has %r, _defaults.py has %r"
        % (name, entry, default, _defaults.ROLE_DEFAULTS[name]))


def test_every_role_default_is_in_the_argument_specs():
    """Documented with its default, or as required (l3ha_drain_node: drain names a node)."""
    documented = set(name for _entry, name, _default in spec_defaults()) | COMPUTED
    required = set(name for spec in SPECS.values() for name, option in (spec.get("options") or {}).items()
                   if option.get("required"))
    assert sorted(set(ROLE_DEFAULTS) - documented - required) == []


def test_profile_advert_int():
    """l3ha_advert_int's expression gives PROFILES' interval for every profile choice."""
    choices = SPECS["main"]["options"]["l3ha_profile"]["choices"]
    assert sorted(choices) == sorted(_defaults.PROFILES)
    for profile in choices:
        text = jinja2.Template(ROLE_DEFAULTS["l3ha_advert_int"]).render(l3ha_profile=profile)
        assert float(text) == _defaults.PROFILES[profile], profile
    assert _defaults.RENDER_SETTINGS["advert_int"] == _defaults.PROFILES[ROLE_DEFAULTS["l3ha_profile"]]


@pytest.mark.parametrize("module", sorted(_defaults.MODULE_DEFAULTS))
def test_module_documentation_defaults(module):
    options = MODULE_DOCS[module]
    for option, default in sorted(_defaults.MODULE_DEFAULTS[module].items()):
        documented = options[option].get("default")
        if default is None:
            assert documented is None, "%s: %s documents %r" % (module, option, documented)
        else:
            assert same(documented, default), "%s: %s is documented as %r, _defaults.py has %r" % (
                module, option, documented, default)


@pytest.mark.parametrize("module,spec", [("ha_routers", HA_ROUTERS_ARGS), ("router_facts", ROUTER_FACTS_ARGS),
                                         ("cluster_record", CLUSTER_RECORD_ARGS)])
def test_module_argument_spec_defaults(module, spec):
    for option, default in sorted(_defaults.MODULE_DEFAULTS[module].items()):
        assert spec[option].get("default") == default, (module, option)
