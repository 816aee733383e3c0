"""The collection as users get it (issue 8): `ansible-galaxy collection build` leaves the
lab, bench and test clutter out, the tarball installs offline into an empty collections
path, and `ansible-playbook l3ha.routers.site` from there (not from this checkout)
converges the lab so traffic flows through the router.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import types
from pathlib import Path

import pytest
import yaml

from l3ha_lab.testing import answers, wait_until  # on sys.path through conftest.py

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INVENTORY = REPO / "tests" / "lab" / "inventory.yml"
# Where the venv's `ansible` package keeps its collections (community.docker for the
# lab's nsenter connection): site-packages, the parent of its ansible_collections.
VENV_COLLECTIONS = sysconfig.get_paths()["purelib"]

# Clutter planted in the build copy: none of it may reach the tarball.
CLUTTER = [
    ".venv/bin/python", ".venv-sanity/x", ".build/collections/x", ".pytest_cache/x", ".hypothesis/x",
    ".cache/x", "results/x.json", "plugins/module_utils/__pycache__/_node.cpython-311.pyc",
    "plugins/modules/stray.pyc", "roles/l3ha/__pycache__/x.pyc",
]
FORBIDDEN_PARTS = {"lab", "bench", "tests", "molecule", "scripts", ".venv", ".venv-sanity", ".build", "results",
                   "__pycache__", ".pytest_cache", ".hypothesis", ".cache", ".git"}


def _run(argv, env, cwd, timeout):
    result = subprocess.run(argv, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=timeout,
                            check=False)
    assert result.returncode == 0, "%s failed:\n%s\n%s" % (argv[:3], result.stdout[-6000:], result.stderr[-3000:])
    return result


def _copy_checkout(dest):
    """The checkout's tracked and new files (what a release is built from), plus clutter."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=str(REPO),
                            capture_output=True, check=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = REPO / relative
        if source.is_file():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(str(source), str(dest / relative))
    for relative in CLUTTER:
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        (dest / relative).write_text("clutter\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the tarball from a copy of the checkout and install it offline; returns the
    tarball's member names, the collections path, an environment that sees only that
    path (and the venv's collections) and a working directory outside the checkout."""
    work = tmp_path_factory.mktemp("galaxy")
    source, build, collections = work / "source", work / "build", work / "collections"
    source.mkdir()
    _copy_checkout(source)
    # An ansible.cfg of its own: the checkout's points at .build/collections.
    config = work / "ansible.cfg"
    config.write_text("[defaults]\ninterpreter_python = auto_silent\nhost_key_checking = False\n"
                      "retry_files_enabled = False\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH="%s:%s" % (BIN, os.environ["PATH"]),
               ANSIBLE_COLLECTIONS_PATH="%s:%s" % (collections, VENV_COLLECTIONS),
               # Only the paths above: nothing found through sys.path or next to the playbook.
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    for name in ("ANSIBLE_COLLECTIONS_PATHS", "ANSIBLE_ROLES_PATH"):
        env.pop(name, None)
    _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(build)], env, source, 120)
    tarballs = sorted(build.glob("l3ha-routers-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    with tarfile.open(str(tarballs[0])) as archive:
        members = archive.getnames()
    # --offline and --no-deps: Galaxy is unreachable; dependencies come from the venv.
    _run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(collections),
          str(tarballs[0])], env, work, 120)
    return types.SimpleNamespace(members=members, collections=collections, env=env, work=work)


def test_tarball_leaves_out_lab_bench_and_test_clutter(installed):
    members = installed.members
    clutter = sorted(m for m in members if FORBIDDEN_PARTS & set(m.split("/")) or m.endswith(".pyc"))
    assert clutter == []
    for needed in ("MANIFEST.json", "playbooks/site.yml", "roles/l3ha/meta/argument_specs.yml",
                   "plugins/modules/ha_routers.py", "plugins/module_utils/_reconciler.py", "plugins/action/plan.py",
                   "meta/runtime.yml", "meta/execution-environment.yml", "changelogs/changelog.yaml"):
        assert needed in members, "%s missing from the tarball" % needed


def test_collection_list_shows_only_the_installed_copy(installed):
    listed = _run([str(BIN / "ansible-galaxy"), "collection", "list", "l3ha.routers", "--format", "json"],
                  installed.env, installed.work, 60)
    paths = [path for path, found in json.loads(listed.stdout).items() if "l3ha.routers" in found]
    assert paths == [str(installed.collections / "ansible_collections")]


def test_execution_environment_gets_the_controller_dependencies(installed):
    """ansible-builder reads meta/execution-environment.yml of the installed collection:
    netaddr (the planner) for the EE; pyroute2 belongs on the nodes, not in the EE."""
    result = _run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(installed.collections)],
                  installed.env, installed.work, 120)
    found = yaml.safe_load(result.stdout)
    python = [line.split("#")[0].strip() for line in found.get("python") or []]
    assert python == ["netaddr>=1.0"], found
    assert all("from collection l3ha.routers" in line for line in found.get("system") or []), found


def test_site_from_the_installed_collection_converges_the_lab(installed, lab):
    with open(str(INVENTORY)) as handle:
        router = yaml.safe_load(handle)["all"]["children"]["l3ha_network_nodes"]["vars"]["l3ha_routers"][0]
    installed_root = installed.collections / "ansible_collections" / "l3ha" / "routers"
    env = dict(installed.env, ANSIBLE_SHOW_CUSTOM_STATS="true")
    result = _run([str(BIN / "ansible-playbook"), "-vv", "-i", str(INVENTORY), "-i", lab.fragment_path,
                   "l3ha.routers.site"], env, installed.work, 600)
    # -vv prints the file of every task: all of them must come from the installed copy.
    task_files = [line.split("task path:", 1)[1].strip() for line in result.stdout.splitlines()
                  if "task path:" in line]
    assert task_files, "no task path lines in the -vv output"
    elsewhere = sorted({path for path in task_files if not path.startswith(str(installed_root) + "/")})
    assert elsewhere == [], "tasks loaded from outside %s" % installed_root
    # What AWX keeps as artifacts (set_stats): the plan summary, r1 on both nodes.
    run_stats = [line.split("RUN:", 1)[1] for line in result.stdout.split("CUSTOM STATS:", 1)[-1].splitlines()
                 if line.strip().startswith("RUN:")]
    assert len(run_stats) == 1, result.stdout[-2000:]
    summary = json.loads(run_stats[0])["l3ha_plan_summary"]
    assert sorted(summary) == [router["name"]] and sorted(summary[router["name"]]["replicas"]) == ["net1", "net2"]

    # The router forwards: the tenant client reaches upstream through it (SNAT).
    upstream = router["gateway"]["gateway_ip"][0]
    client = "client-" + router["interfaces"][0]["network"]
    wait_until(lambda: answers(lab, client, upstream), 30,
               "%s to reach %s through %s" % (client, upstream, router["name"]), interval=0.2)
