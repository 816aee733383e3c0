"""File and secret hygiene (issue 7, part 3), on a converged lab (tests/lab/inventory.yml).

- Router files and directories: keepalived.conf, nftables.nft, router.json 0600 root,
  notify.sh 0700 root, the config/run router directories and the state directory 0700.
- Every script keepalived runs (notify FIFO reader, health check) and the FIFO itself,
  and every directory of notify.sh's PATH: no component writable by anyone but root
  (keepalived's enable_script_security refuses such scripts; this checks it beforehand).
- A vault-encrypted l3ha_vrrp_auth_pass reaches keepalived.conf and appears nowhere in
  the output of `--diff -vvv` runs (default and JSON callback) or the Ansible log.

Injection through names and fields (`r1;reboot`, `$(id)`, backticks, newlines) is in
tests/lab/test_bad_input.py: such input fails before any node changes.
"""

import json
import os
import subprocess

import pytest

from l3ha_lab.collection import vocabulary
from l3ha_lab.testing import (CONFIG_DIR, PYTHON, RUN_DIR, STATE_DIR, VENV_BIN, converge, node_sh, router_config_dir,
                              run_playbook, wait_settled)

NODES = ["net1", "net2"]
ROUTER = "r1"

# Runs inside a node: mode, owner and the components of paths, as JSON.
INSPECT_SCRIPT = r'''
import json, os, re, stat, sys

def entry(path):
    info = os.lstat(path)
    return {"mode": stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid,
            "dir": stat.S_ISDIR(info.st_mode), "link": stat.S_ISLNK(info.st_mode)}

def components(path):
    """Every path the kernel walks to reach `path`, symlink targets included."""
    seen, todo, found = set(), [path], []
    while todo:
        current = todo.pop()
        parts = current.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i]) or "/"
            if prefix in seen or not os.path.lexists(prefix):
                continue
            seen.add(prefix)
            found.append(prefix)
            if os.path.islink(prefix):
                todo.append(os.path.realpath(prefix))
    return {p: entry(p) for p in found}

config_dir, run_dir, state_dir = sys.argv[1:4]
routers = sorted(os.listdir(os.path.join(config_dir, "routers")))
files = {}
for top in (os.path.join(config_dir, "routers"), os.path.join(run_dir, "routers")):
    files[top] = entry(top)
    for root, dirs, names in os.walk(top):
        for name in dirs + names:
            files[os.path.join(root, name)] = entry(os.path.join(root, name))
if os.path.exists(state_dir):
    files[state_dir] = entry(state_dir)
scripts = {}
for router in routers:
    with open(os.path.join(config_dir, "routers", router, "keepalived.conf")) as handle:
        conf = handle.read()
    paths = re.findall(r'^\s*(?:notify_fifo_script|script)\s+"?(/[^\s"]+)', conf, re.M)
    paths += re.findall(r'^\s*notify_fifo\s+(/\S+)', conf, re.M)
    with open(os.path.join(config_dir, "routers", router, "notify.sh")) as handle:
        search = re.search(r'^PATH=(\S+)', handle.read(), re.M).group(1).split(":")
    for path in paths + search:
        scripts[path] = components(path)
print(json.dumps({"routers": routers, "files": files, "scripts": scripts}))
'''

FILE_MODES = {"keepalived.conf": 0o600, "nftables.nft": 0o600, "router.json": 0o600, "notify.sh": 0o700}


@pytest.fixture(scope="module")
def converged(lab):
    converge(lab)
    wait_settled(lab, NODES, [ROUTER])
    return lab


def inspect(lab, node):
    result = lab.run(node, [PYTHON, "-c", INSPECT_SCRIPT, CONFIG_DIR, RUN_DIR, STATE_DIR], timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("node", NODES)
def test_router_files_and_directories_are_private(converged, node):
    found = inspect(converged, node)
    assert found["routers"] == [ROUTER]
    wrong = []
    for path, info in sorted(found["files"].items()):
        name = path.rsplit("/", 1)[1]
        if info["dir"]:
            wanted = 0o700
        elif path.startswith(CONFIG_DIR + "/"):
            wanted = FILE_MODES.get(name, 0o600)
        else:
            wanted = None  # run-time files: only their directory (0700) keeps others out
        if info["uid"] != 0 or info["gid"] != 0 or (wanted is not None and info["mode"] != wanted):
            wrong.append("%s: mode %o uid %d gid %d (want %s root)" % (
                path, info["mode"], info["uid"], info["gid"], "%o" % wanted if wanted else "any"))
        if not info["dir"] and info["mode"] & 0o022:
            wrong.append("%s: writable by group or others (%o)" % (path, info["mode"]))
    assert not wrong, "\n".join(wrong)
    for name, mode in FILE_MODES.items():
        assert found["files"][os.path.join(router_config_dir(ROUTER), name)]["mode"] == mode


@pytest.mark.parametrize("node", NODES)
def test_no_script_path_is_writable_by_others(converged, node):
    found = inspect(converged, node)
    scripts = found["scripts"]
    # The FIFO reader, the FIFO, and notify.sh's PATH entries are all there.
    assert any(path.endswith("/notify.sh") for path in scripts), scripts.keys()
    assert any(path.endswith("/notify.fifo") for path in scripts), scripts.keys()
    assert "/usr/sbin" in scripts
    wrong = []
    for path, parts in sorted(scripts.items()):
        for part, info in sorted(parts.items()):
            if info["link"]:
                continue  # a symlink's own mode means nothing; its target is listed too
            if info["uid"] != 0 or info["mode"] & 0o002 or (info["mode"] & 0o020 and info["gid"] != 0):
                wrong.append("%s: component %s mode %o uid %d gid %d" % (
                    path, part, info["mode"], info["uid"], info["gid"]))
    assert not wrong, "\n".join(wrong)


VAULT_PASSWORD = "l3ha-hygiene-vault-key"
# keepalived uses at most 8 characters; these are 8, so the whole secret reaches the file.
SECRETS = ["Hq7xZ2pK", "Wm4vT9rB"]


def vault_vars_file(directory, secret):
    """A vars file whose only value, l3ha_vrrp_auth_pass, is vault-encrypted as a whole."""
    password_file = directory / "vault-password"
    password_file.write_text(VAULT_PASSWORD + "\n")
    vars_file = directory / ("secret-%s.yml" % secret[:2])
    vars_file.write_text("l3ha_vrrp_auth_pass: %s\n" % secret)
    subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt", "--vault-password-file",
                    str(password_file), str(vars_file)], check=True, capture_output=True, timeout=120)
    assert secret not in vars_file.read_text()
    return password_file, vars_file


def test_vault_auth_pass_never_shown(converged, tmp_path):
    """Set a vaulted password, change it, remove it: three --diff -vvv runs. The diffs of
    keepalived.conf would show the old and the new password; neither may appear."""
    lab = converged
    outputs = {}
    restored = False
    steps = [(SECRETS[0], "ansible.builtin.default"), (SECRETS[1], "ansible.builtin.json"),
             (None, "ansible.builtin.default")]
    try:
        for index, (secret, callback) in enumerate(steps):
            args = ["--diff", "-vvv"]
            if secret:
                password_file, vars_file = vault_vars_file(tmp_path, secret)
                args += ["-e", "@%s" % vars_file, "--vault-password-file", str(password_file)]
            log_file = tmp_path / ("ansible-%d.log" % index)
            result = run_playbook(lab, args=args,
                                  env={"ANSIBLE_STDOUT_CALLBACK": callback, "ANSIBLE_LOG_PATH": str(log_file)})
            output = result.stdout + result.stderr
            assert result.returncode == 0, output[-4000:]
            if callback.endswith("json"):
                json.loads(result.stdout[result.stdout.index("{"):])  # the result JSON is complete
            else:
                assert "keepalived.conf" in result.stdout, "the run showed no diff of keepalived.conf"
            # The password did reach the nodes (or is gone from them), so the run did carry it.
            for node in NODES:
                conf = node_sh(lab, node, "cat %s/%s" % (router_config_dir(ROUTER), vocabulary.KEEPALIVED_CONF))
                if secret:
                    assert "auth_pass %s" % secret in conf, node
                else:
                    assert "auth_pass" not in conf, node
            outputs["%d %s" % (index, callback)] = output + log_file.read_text()
        restored = True
        for step, text in outputs.items():
            for secret in SECRETS:
                assert secret not in text, "run %s shows the VRRP password %s" % (step, secret)
        # Nor is it anywhere under the run directory (state, transitions log).
        for node in NODES:
            leaked = lab.run(node, ["grep", "-rl", "-e", SECRETS[0], "-e", SECRETS[1], RUN_DIR], timeout=30)
            assert leaked.returncode == 1, leaked.stdout
    finally:
        if not restored:
            converge(lab)
        wait_settled(lab, NODES, [ROUTER])
