"""Machine nodes: systemd-nspawn containers with systemd as PID 1, reached over SSH.

A machine node is a lab box, as a namespace node is (its network namespace holds the
node's links: ul0, the uplinks, and mgmt0), in which systemd-nspawn boots a Debian image:
systemd is PID 1, sshd runs, user `l3ha` has passwordless sudo and the lab's SSH key.
Its root file system is an overlay, mounted inside the box (never in the host): the
image below, the node's own disk (LAB_DIR/nodes/NODE/upper) above.

The image and a package repository for it are built once with mmdebstrap and cached in
/var/cache/l3ha-lab/<key> (or $L3HA_LAB_CACHE), keyed by a hash of the package lists and
this recipe. The image holds what a fresh cloud image has; the repository holds what the
role installs (REPO_PACKAGES and the dependencies the image lacks), bind-mounted read-only
into every node as its only apt source: nodes have no route to a mirror.

What a lab puts in the host: a bridge l3lab-m<K> with 198.18.x.1/24, the lab's /24 of the
benchmarking range 198.18.0.0/15, where every node's mgmt0 has an address for the
controller's SSH (ports isolated from each other: nodes reach only the host there); and
a cgroup per node (l3ha-lab-m<K>/<node>) in the hierarchies systemd uses, because nspawn
needs one of its own and the host runs no systemd to make it.
"""

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid

from l3ha_lab import kernel
from l3ha_lab.model import LabError

KIND = "machine"
DEFAULT_CACHE_DIR = "/var/cache/l3ha-lab"
SUITE = "bookworm"
IMAGE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3")
# python3-apt: Ansible's apt module (behind ansible.builtin.package) installs it first.
REPO_PACKAGES = ("keepalived", "nftables", "python3-pyroute2", "conntrackd", "radvd",
                 "iproute2", "iputils-ping", "python3-apt")
ADMIN_USER = "l3ha"
REPO_MOUNT = "/srv/l3ha-lab-repo"
NODE_DIR_IN_BOX = "/run/l3ha-node"     # the node's disk directory, seen from its box
NODE_ROOT = NODE_DIR_IN_BOX + "/root"  # where the box mounts the node's root overlay
MGMT_RANGE = ipaddress.ip_network("198.18.0.0/15")
MGMT_BRIDGE_PREFIX = "l3lab-m"
OWNER_ALIAS = "l3ha-lab:"              # + the lab directory: the ifalias of its host links
MGMT_MAC_PREFIX = "02:1a:b2"
NODE_MGMT_IF = "mgmt0"
FIRST_MGMT_HOST = 10                   # node N gets .(10 + N)
SSH_PORT = 22
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = (("mmdebstrap", "mmdebstrap"), ("systemd-nspawn", "systemd-container"),
         ("dpkg-scanpackages", "dpkg-dev"), ("ssh", "openssh-client"),
         ("ssh-keygen", "openssh-client"))

# mmdebstrap's customize hook: sh CUSTOMIZE ROOT REPO USER REPO_MOUNT PACKAGE...
CUSTOMIZE = r"""set -eu
root=$1 repo=$2 user=$3 repo_mount=$4
shift 4
# The repository: the packages and their dependencies (recommends too, as apt installs
# them) that the image lacks, fetched now, while the image's package state is known.
mkdir -p "$root/tmp/l3ha-repo/partial"
chroot "$root" apt-get -q -y -o Dir::Cache::Archives=/tmp/l3ha-repo \
    -o APT::Install-Recommends=true install --download-only "$@"
mv "$root"/tmp/l3ha-repo/*.deb "$repo/"
rm -rf "$root/tmp/l3ha-repo"
# The admin user: passwordless sudo; the lab writes its key per node.
chroot "$root" useradd --create-home --shell /bin/bash --user-group --password '*' "$user"
install -d -m 0700 "$root/home/$user/.ssh"
chroot "$root" chown "$user:$user" "/home/$user/.ssh"
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" > "$root/etc/sudoers.d/$user"
chmod 0440 "$root/etc/sudoers.d/$user"
# Written per node by the lab: host key, hostname, /etc/hosts, machine-id.
rm -f "$root"/etc/ssh/ssh_host_* "$root/etc/hostname" "$root/etc/hosts" "$root/etc/resolv.conf"
: > "$root/etc/machine-id"
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\n' > "$root/etc/ssh/sshd_config.d/l3ha-lab.conf"
# Packages come from the lab's repository only.
rm -f "$root/etc/apt/sources.list"
printf 'deb [trusted=yes] file:%s ./\n' "$repo_mount" > "$root/etc/apt/sources.list.d/l3ha-lab.list"
"""


def check_tools():
    missing = sorted({package for tool, package in TOOLS if shutil.which(tool) is None})
    if missing:
        raise LabError("machine nodes need %s (apt-get install %s; scripts/setup.sh installs "
                       "them)" % (", ".join(missing), " ".join(missing)))


# ---- the image and its package repository ---------------------------------------------

def cache_dir():
    return os.environ.get("L3HA_LAB_CACHE") or DEFAULT_CACHE_DIR


def image_key():
    """Hash of everything that decides the image's and the repository's content."""
    recipe = {"suite": SUITE, "variant": "minbase", "image": IMAGE_PACKAGES,
              "repo": REPO_PACKAGES, "user": ADMIN_USER, "repo_mount": REPO_MOUNT,
              "customize": CUSTOMIZE}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def image_paths(key):
    base = os.path.join(cache_dir(), key)
    return {"key": key, "rootfs": os.path.join(base, "rootfs"), "repo": os.path.join(base, "repo")}


@contextlib.contextmanager
def _flock(path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_image(log_path):
    """The image of the current recipe, built if it is not cached (one build at a time)."""
    base = cache_dir()
    os.makedirs(base, mode=0o755, exist_ok=True)
    key = image_key()
    with _flock(os.path.join(base, ".lock")):
        if not os.path.isdir(os.path.join(base, key)):
            _build(base, key, log_path)
    return image_paths(key)


def _build(base, key, log_path):
    for name in os.listdir(base):          # left by an interrupted build (we hold the lock)
        if name.startswith(".build-"):
            shutil.rmtree(os.path.join(base, name))
    work = os.path.join(base, ".build-" + key)
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    script = os.path.join(work, "customize.sh")
    with open(script, "w") as handle:
        handle.write(CUSTOMIZE)
    hook = "sh %s \"$1\" %s" % (shlex.quote(script), shlex.join(
        [repo, ADMIN_USER, REPO_MOUNT] + list(REPO_PACKAGES)))
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(IMAGE_PACKAGES),
            "--customize-hook=" + hook, SUITE, os.path.join(work, "rootfs")]
    started = time.monotonic()
    with open(log_path, "a") as log:
        log.write("building the machine image %s: %s\n" % (key, shlex.join(argv)))
        log.flush()
        built = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, check=False)
        if built.returncode != 0:
            raise LabError("building the machine image failed (mmdebstrap exit %d; log: %s)"
                           % (built.returncode, log_path))
        with open(os.path.join(repo, "Packages"), "w") as packages:
            subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=repo,
                           stdout=packages, stderr=log, check=True)
    with open(os.path.join(work, "recipe.json"), "w") as handle:
        json.dump({"key": key, "suite": SUITE, "image": IMAGE_PACKAGES, "repo": REPO_PACKAGES,
                   "debs": len([n for n in os.listdir(repo) if n.endswith(".deb")]),
                   "build_seconds": round(time.monotonic() - started, 1)}, handle, indent=1)
    os.rename(work, os.path.join(base, key))


# ---- per lab: SSH key, management network, cgroups ----------------------------------------

def ssh_dir(lab_dir):
    return os.path.join(lab_dir, "ssh")


def ensure_lab_key(lab_dir):
    """The lab's SSH key pair (LAB_DIR/ssh/id_ed25519), made on first use."""
    key = os.path.join(ssh_dir(lab_dir), "id_ed25519")
    if not os.path.exists(key):
        os.makedirs(os.path.join(ssh_dir(lab_dir), "cp"), mode=0o700, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "l3ha-lab",
                        "-f", key], check=True, capture_output=True)
    return key


def _host_links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines()}


def _host_networks():
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [ipaddress.ip_interface(line.split()[3]).network for line in out.splitlines()]


def _host_ip(commands):
    subprocess.run(["ip", "-batch", "-"], input="\n".join(commands) + "\n", text=True,
                   capture_output=True, check=True)


def allocate_mgmt(lab_dir, lock):
    """A free /24 of MGMT_RANGE and its bridge in the host, for the lab in lab_dir.

    `lock` is the host-wide lock (other labs allocate at the same time)."""
    with lock():
        links, networks = _host_links(), _host_networks()
        for index, subnet in enumerate(MGMT_RANGE.subnets(new_prefix=24)):
            bridge = "%s%d" % (MGMT_BRIDGE_PREFIX, index)
            if bridge in links or any(subnet.overlaps(n) for n in networks):
                continue
            mgmt = {"index": index, "bridge": bridge, "network": str(subnet),
                    "host_ip": str(subnet[1]), "owner": OWNER_ALIAS + lab_dir}
            _add_bridge(mgmt)
            return mgmt
    raise LabError("no free /24 left in %s for a management network" % MGMT_RANGE)


def _add_bridge(mgmt):
    _host_ip(["link add %s type bridge" % mgmt["bridge"],
              "link set %s alias %s" % (mgmt["bridge"], mgmt["owner"]),
              "addr add %s/24 dev %s" % (mgmt["host_ip"], mgmt["bridge"]),
              "link set %s up" % mgmt["bridge"]])


def ensure_bridge(mgmt):
    """The bridge again, if it is gone (the machine restarted)."""
    if mgmt["bridge"] not in _host_links():
        _add_bridge(mgmt)


def mgmt_ip(mgmt, index):
    return str(ipaddress.ip_network(mgmt["network"])[FIRST_MGMT_HOST + index])


def mgmt_port(mgmt, index):
    return "%sn%d" % (mgmt["bridge"], index)


def wire_mgmt(mgmt, index, box_pid):
    """The node's mgmt0, on the lab's bridge in the host (if it is not there yet)."""
    port = mgmt_port(mgmt, index)
    if port in _host_links():
        return
    mac = "%s:%02x:%02x:00" % (MGMT_MAC_PREFIX, index >> 8, index & 0xff)
    _host_ip(["link add %s type veth peer name %s address %s netns %d"
              % (port, NODE_MGMT_IF, mac, box_pid),
              "link set %s alias %s" % (port, mgmt["owner"]),
              "link set %s master %s up" % (port, mgmt["bridge"])])
    subprocess.run(["bridge", "link", "set", "dev", port, "isolated", "on"], check=True,
                   capture_output=True)
    kernel.ip_batch(box_pid, ["addr add %s/24 dev %s" % (mgmt_ip(mgmt, index), NODE_MGMT_IF),
                              "link set %s up" % NODE_MGMT_IF])


def wait_port_gone(mgmt, index, timeout=5.0):
    """A dead box's veth goes away asynchronously; wait for its host end."""
    port = mgmt_port(mgmt, index)
    deadline = time.monotonic() + timeout
    while port in _host_links():
        if time.monotonic() > deadline:
            raise LabError("management port %s did not go away" % port)
        time.sleep(0.01)


def cgroup_roots():
    """Mount points of the hierarchies systemd uses: cgroup2, and v1's name=systemd."""
    roots = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            rest = fields[fields.index("-") + 1:]
            if rest[0] == "cgroup2" or (rest[0] == "cgroup" and "name=systemd" in rest[2].split(",")):
                roots.append(fields[4])
    return roots


def cgroup_dirs(mgmt, node=None):
    top = "l3ha-lab-m%d" % mgmt["index"]
    return [os.path.join(root, top, node) if node else os.path.join(root, top)
            for root in cgroup_roots()]


def remove_cgroups(mgmt, node=None, timeout=5.0):
    """Remove a node's (or the whole lab's) cgroups, once their processes are gone."""
    deadline = time.monotonic() + timeout
    for top in cgroup_dirs(mgmt, node):
        while os.path.isdir(top):
            busy = []
            for path, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(path)
                except OSError as exc:
                    busy.append("%s (%s)" % (path, exc.strerror))
            if not busy:
                break
            if time.monotonic() > deadline:
                raise LabError("cgroups not removed: %s" % ", ".join(busy))
            time.sleep(0.05)


def remove_bridge(mgmt):
    if mgmt["bridge"] in _host_links():
        _host_ip(["link del %s" % mgmt["bridge"]])


def close_ssh_masters(lab_dir, node=None):
    """Ask the controller's SSH master connections to a node (or to all) to exit.

    Ansible keeps them open (ControlPersist); one to a crashed node would hang the next
    run on a dead TCP connection, and they would outlive the lab."""
    directory = os.path.join(ssh_dir(lab_dir), "cp")
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if node is None or name.split("@", 1)[0] == node:
            subprocess.run(["ssh", "-o", "ControlPath=" + os.path.join(directory, name),
                            "-O", "exit", "lab-node"], capture_output=True, check=False,
                           timeout=10)


# ---- a node ------------------------------------------------------------------------

def box_options(disk, image):
    """spawn_box options: fresh /run, the disk bound back in, the root overlay mounted."""
    for part in ("upper", "work", "root"):
        os.makedirs(os.path.join(disk, part), mode=0o755, exist_ok=True)
    return {"run_tmpfs": True, "sysfs": False, "keep": [(disk, NODE_DIR_IN_BOX)],
            "overlays": [(image["rootfs"], NODE_DIR_IN_BOX + "/upper",
                          NODE_DIR_IN_BOX + "/work", NODE_ROOT)]}


def disk_info(disk):
    """What the node's disk was made from ({image, host_key}), or None for a new disk."""
    try:
        with open(os.path.join(disk, "machine.json")) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def init_disk(name, disk, box_pid, image, lab_key):
    """First boot: what makes the node itself. Written once; its disk keeps it."""
    root = "/proc/%d/root%s" % (box_pid, NODE_ROOT)

    def write(path, text, mode=0o644, owner=None):
        target = root + path
        with open(target, "w") as handle:
            handle.write(text)
        os.chmod(target, mode)
        if owner:
            os.chown(target, *owner)

    write("/etc/hostname", name + "\n")
    write("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost "
                        "ip6-loopback\n" % name)
    write("/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    host_key = root + "/etc/ssh/ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@" + name,
                    "-f", host_key], check=True, capture_output=True)
    with open(host_key + ".pub") as handle:
        public = " ".join(handle.read().split()[:2])
    with open(root + "/etc/passwd") as handle:
        user = next(line.split(":") for line in handle if line.startswith(ADMIN_USER + ":"))
    with open(lab_key + ".pub") as handle:
        write("/home/%s/.ssh/authorized_keys" % ADMIN_USER, handle.read(), 0o600,
              (int(user[2]), int(user[3])))
    info = {"image": image["key"], "host_key": public}
    with open(os.path.join(disk, "machine.json"), "w") as handle:
        json.dump(info, handle)
    return info


def nspawn_argv(name, image):
    # --register=no --keep-unit: the host runs no systemd (no machined, no scopes).
    # --private-network with the box's namespace: the links the lab made there, and a
    # writable /proc/sys/net as on a real host. --console=read-only drains the console
    # into the node's log: with `passive` nobody read it, and a shutdown that logs much
    # (a node with 60+ routers) blocked systemd in a full tty write, so it never ended.
    return ["systemd-nspawn", "--directory", NODE_ROOT, "--machine", name, "--boot",
            "--register=no", "--keep-unit", "--console=read-only",
            "--network-namespace-path=/proc/1/ns/net", "--private-network",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no",
            "--bind-ro=%s:%s" % (image["repo"], REPO_MOUNT)]


def start(name, box_pid, cgroups, image, log_path, timeout=60.0):
    """Start systemd-nspawn inside the node's box (all its namespaces, so that the box's
    end takes the container with it). Returns the records of the launcher (nsenter, in
    the host), of systemd-nspawn and of the container's PID 1."""
    for path in cgroups:
        os.makedirs(path, exist_ok=True)
    # nspawn moves itself below its own cgroup: give it one of its own first.
    script = "".join("echo 0 > %s && " % shlex.quote(os.path.join(path, "cgroup.procs"))
                     for path in cgroups) + "exec " + shlex.join(nspawn_argv(name, image))
    launcher = kernel.spawn_detached(kernel.nsenter_argv(box_pid) + ["sh", "-c", script],
                                     log_path)
    records = {"launcher": {"pid": launcher, "start": kernel.start_time(launcher)}}
    deadline = time.monotonic() + timeout
    while True:
        nspawn = kernel.children(launcher)
        pid1 = [p for n in nspawn[:1] for p in kernel.children(n) if _nspid(p)[-1:] == [1]]
        if pid1:
            records["nspawn"] = {"pid": nspawn[0], "start": kernel.start_time(nspawn[0])}
            records["pid1"] = {"pid": pid1[0], "start": kernel.start_time(pid1[0])}
            return records
        if not kernel.is_alive(launcher, records["launcher"]["start"]) \
                or time.monotonic() > deadline:
            kernel.kill_box(records["launcher"])
            raise LabError("node %s: systemd-nspawn did not start its container (log: %s)"
                           % (name, log_path))
        time.sleep(0.01)


def _nspid(pid):
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return [int(p) for p in line.split()[1:]]
    except OSError:
        pass
    return []


def is_running(entry):
    records = entry.get("machine") or {}
    pid1 = records.get("pid1") or {}
    return kernel.is_alive(pid1.get("pid"), pid1.get("start"))


def records(entry):
    """The node's process records besides its box (for kill and wait)."""
    found = entry.get("machine") or {}
    return [found[k] for k in ("pid1", "nspawn", "launcher") if found.get(k)]


def power_off(entry):
    """SIGKILL the container's PID 1: the kernel ends every process of the container."""
    pid1 = (entry.get("machine") or {}).get("pid1")
    if pid1 and kernel.is_alive(pid1["pid"], pid1["start"]):
        try:
            os.kill(pid1["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_ssh(name, ip, entry, timeout=120.0):
    """Until sshd on the node answers with its banner."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((ip, SSH_PORT), timeout=2) as sock:
                sock.settimeout(5)
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if not is_running(entry):
            raise LabError("node %s: the container ended while booting" % name)
        if time.monotonic() > deadline:
            raise LabError("node %s: sshd did not answer on %s:%d within %d s"
                           % (name, ip, SSH_PORT, timeout))
        time.sleep(0.1)


def reboot(name, entry, timeout=120.0):
    """`systemctl reboot` inside; wait until systemd-nspawn has exited ("Rebooting.")."""
    subprocess.run(exec_argv(entry["machine"]["pid1"]["pid"], ["systemctl", "reboot"]),
                   capture_output=True, check=False, timeout=60)
    nspawn = entry["machine"]["nspawn"]
    if kernel.wait_gone([nspawn["pid"]], timeout=timeout):
        raise LabError("node %s: still running %d s after `systemctl reboot`" % (name, timeout))


def exec_argv(pid1, argv):
    """Run inside the container: all its namespaces and its root, a clean environment."""
    env = ["PATH=" + PATH, "HOME=/root", "LANG=C.UTF-8"]
    if os.environ.get("TERM"):
        env.append("TERM=" + os.environ["TERM"])
    return ["nsenter", "--target", str(pid1), "--all", "env", "-i"] + env + list(argv)


def fragment_vars(lab_dir, name, ip, lab_key):
    """SSH connection variables, with the lab's known_hosts (host keys are checked)."""
    directory = ssh_dir(lab_dir)
    args = ["-o UserKnownHostsFile=%s" % os.path.join(directory, "known_hosts"),
            "-o StrictHostKeyChecking=yes", "-o IdentitiesOnly=yes",
            # per node, so that a crash can close its master connection
            "-o ControlPath=%s" % os.path.join(directory, "cp", name + "@%r")]
    return {"ansible_connection": "ssh", "ansible_host": ip, "ansible_port": SSH_PORT,
            "ansible_user": ADMIN_USER, "ansible_ssh_private_key_file": lab_key,
            "ansible_ssh_host_key_checking": True, "ansible_ssh_common_args": " ".join(args),
            "ansible_python_interpreter": "/usr/bin/python3"}


def write_known_hosts(lab_dir, hosts):
    """hosts: [(ip, "ssh-ed25519 AAAA...")]."""
    path = os.path.join(ssh_dir(lab_dir), "known_hosts")
    with open(path + ".tmp", "w") as handle:
        handle.writelines("%s %s\n" % (ip, key) for ip, key in hosts)
    os.rename(path + ".tmp", path)
