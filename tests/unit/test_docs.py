"""Every module, plugin and role entry point of the collection renders in ansible-doc."""
import json
import os
import pathlib
import subprocess

import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# ansible-doc from the same venv as the running pytest, with this checkout's collection.
BIN = pathlib.Path(sys.executable).parent
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
PLUGIN_TYPES = {"modules": "module", "filter": "filter", "lookup": "lookup", "inventory": "inventory"}


def _plugins():
    found = []
    for folder, doc_type in PLUGIN_TYPES.items():
        for path in sorted((ROOT / "plugins" / folder).glob("*.py")):
            if not path.name.startswith("_") and path.name != "__init__.py":
                found.append((doc_type, "l3ha.routers." + path.stem))
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
    if doc_type == "role":
        assert doc["entry_points"]["main"]["options"]


def test_every_module_is_listed():
    listed = _ansible_doc("-t", "module", "-l", "l3ha.routers")
    assert listed.returncode == 0, listed.stderr
    for path in (ROOT / "plugins" / "modules").glob("*.py"):
        assert f"l3ha.routers.{path.stem}" in listed.stdout
