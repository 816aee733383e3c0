"""Every module, plugin and role entry point of the collection renders in ansible-doc, and
the role's argument specs reject bad input with a message naming the option."""
import importlib
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
# ansible-doc from the same venv as the running pytest, with this checkout's collection.
BIN = pathlib.Path(sys.executable).parent
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}",
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
PLUGIN_TYPES = {"modules": "module", "filter": "filter", "lookup": "lookup", "inventory": "inventory"}
ARGUMENT_SPECS = ROOT / "roles" / "l3ha" / "meta" / "argument_specs.yml"


def _public(folder):
    return sorted(path for path in (ROOT / "plugins" / folder).glob("*.py")
                  if not path.name.startswith("_") and path.name != "__init__.py")


def _plugins():
    found = []
    for folder, doc_type in PLUGIN_TYPES.items():
        found.extend((doc_type, "l3ha.routers." + path.stem) for path in _public(folder) if folder != "filter")
    # A filter file may hold several filters: document each name it registers.
    for path in _public("filter"):
        module = importlib.import_module("ansible_collections.l3ha.routers.plugins.filter." + path.stem)
        found.extend(("filter", "l3ha.routers." + name) for name in sorted(module.FilterModule().filters()))
    for role in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        found.append(("role", "l3ha.routers." + role.parent.parent.name))
    return found


def _ansible_doc(*args):
    return subprocess.run(["ansible-doc", *args], env=ENV, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("doc_type,name", _plugins())
def test_ansible_doc_renders(doc_type, name):
    result = _ansible_doc("-t", doc_type, "--json", name)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[name]
    assert doc, f"{name}: empty documentation"
    if doc_type == "module":
        assert doc["doc"]["short_description"]
        assert doc["examples"].strip()
        assert doc["return"] is not None
    if doc_type == "filter":
        assert doc["doc"]["short_description"]
        assert doc["doc"]["options"]
    if doc_type == "role":
        with open(ARGUMENT_SPECS) as handle:
            specs = yaml.safe_load(handle)["argument_specs"]
        assert sorted(doc["entry_points"]) == sorted(specs)
        for entry, spec in specs.items():
            rendered = doc["entry_points"][entry]
            assert rendered["short_description"], f"{name} {entry}: no short_description"
            assert sorted(rendered["options"]) == sorted(spec["options"]), f"{name} {entry}: options differ"
            undocumented = [option for option, value in rendered["options"].items() if not value.get("description")]
            assert undocumented == [], f"{name} {entry}: options without description"


def test_every_module_is_listed():
    listed = _ansible_doc("-t", "module", "-l", "l3ha.routers")
    assert listed.returncode == 0, listed.stderr
    for path in (ROOT / "plugins" / "modules").glob("*.py"):
        assert f"l3ha.routers.{path.stem}" in listed.stdout


@pytest.mark.parametrize("action", [path.stem for path in _public("action")])
def test_every_action_has_a_documented_module(action):
    """An action plugin is documented by the module stub of the same name."""
    assert (ROOT / "plugins" / "modules" / f"{action}.py").is_file(), f"action {action} has no module documentation"


# (entry point, extra vars, what the failure must say). The node cannot run a module
# (python is /bin/false), so nothing runs on this machine even if validation passed.
BAD_ROLE_INPUT = [
    ("main", {"l3ha_max_nodes_per_router": "lots"}, "argument 'l3ha_max_nodes_per_router' is of type str"),
    ("main", {"l3ha_ha_network_type": "ethernet"}, "l3ha_ha_network_type must be one of: vxlan, bridge"),
    ("main", {"l3ha_routers": "r1"}, "Elements value for option 'l3ha_routers' is of type str"),
    ("status", {"l3ha_status_drift": "maybe"}, "argument 'l3ha_status_drift' is of type str"),
    # The role default is "", so the role's own check reports the missing node.
    ("drain", {}, "l3ha_drain_node:  is not a host of group l3ha_network_nodes"),
    ("drain", {"l3ha_drain_node": "net1", "l3ha_drain_timeout": "soon"}, "argument 'l3ha_drain_timeout'"),
    ("undrain", {"l3ha_drain_node": "node", "l3ha_purge": "sometimes"}, "argument 'l3ha_purge' is of type str"),
]


@pytest.mark.parametrize("entry,extra_vars,message", BAD_ROLE_INPUT,
                         ids=[f"{case[0]}-{'-'.join(case[1]) or 'none'}" for case in BAD_ROLE_INPUT])
def test_argument_specs_name_the_bad_option(tmp_path, entry, extra_vars, message):
    playbook = tmp_path / "play.yml"
    role = {"name": "l3ha.routers.l3ha"}
    if entry != "main":
        role["tasks_from"] = entry
    playbook.write_text(yaml.safe_dump([{
        "name": "Argument spec check", "hosts": "l3ha_network_nodes", "gather_facts": False,
        "tasks": [{"name": "Run the entry point", "ansible.builtin.import_role": role}]}]))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"l3ha_network_nodes": {"hosts": {"node": {
        "ansible_connection": "local", "ansible_python_interpreter": "/bin/false"}}}}}}))
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps(extra_vars))
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "-e", "@" + str(variables),
                             str(playbook)], env=ENV, cwd=tmp_path, capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode != 0, result.stdout[-3000:]
    assert message in result.stdout, result.stdout[-3000:]


def test_changelog_fragments_pass_lint():
    result = subprocess.run([str(BIN / "antsibull-changelog"), "lint"], cwd=ROOT, capture_output=True, text=True,
                            check=False, timeout=120)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_the_changelog_has_the_release_of_galaxy_yml():
    result = subprocess.run([str(BIN / "antsibull-changelog"), "lint-changelog-yaml", "changelogs/changelog.yaml"],
                            cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert version in yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert "v%s" % version in (ROOT / "CHANGELOG.rst").read_text()
