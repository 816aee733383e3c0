"""The example execution environment (examples/awx) through `ansible-builder create`, which
needs no container engine: the build context must hold the collection and its controller
side Python and system dependencies (meta/ee-requirements.txt, meta/ee-bindep.txt)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BUILDER = Path(sys.executable).with_name("ansible-builder")


def _requirements(path):
    return sorted(line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip())


def test_build_context_holds_the_collection_and_its_dependencies(tmp_path):
    context = tmp_path / "context"
    result = subprocess.run([str(BUILDER), "create", "-f", str(REPO / "examples" / "awx" / "execution-environment.yml"),
                             "-c", str(context)], capture_output=True, text=True, timeout=120, check=False,
                            env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert result.returncode == 0, result.stdout + result.stderr
    build = context / "_build"
    assert _requirements(build / "requirements.txt") == _requirements(REPO / "meta" / "ee-requirements.txt")
    assert _requirements(build / "bindep.txt") == _requirements(REPO / "meta" / "ee-bindep.txt")
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    wanted = "%s.%s" % (galaxy["namespace"], galaxy["name"])
    assert [entry["name"] for entry in yaml.safe_load((build / "requirements.yml").read_text())["collections"]] == [wanted]
    # the collection's own meta/execution-environment.yml is introspected at build time
    assert "introspect" in next(context.glob("*file")).read_text()
