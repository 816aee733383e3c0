"""The lab: nodes, a switch and endpoints built from namespaced boxes, and its verbs.

Everything the lab creates lives inside boxes it started (no named namespaces, no
mounts in the host), so ending the boxes by their recorded pids removes every link,
namespace, mount and process. Machine nodes (l3ha_lab.machine) add the one thing of a
lab in the host: a management bridge for SSH, and a cgroup per node. State is a JSON
file in the lab directory.
"""

import contextlib
import copy
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time

import yaml

from l3ha_lab import host, kernel, machine, model
from l3ha_lab.model import LabError

DEFAULT_LAB_DIR = "/run/l3ha-lab"
SWITCH = "switch"
UNDERLAY_NETWORK = model.UNDERLAY_NAME
UNDERLAY_BRIDGE = "br-ul"
NODE_UNDERLAY_IF = "ul0"
NFT_TABLE = "l3lab"
NAMESPACE = "namespace"
KINDS = (NAMESPACE, machine.KIND)
FRAGMENT_GROUP = "l3ha_lab_nodes"


def default_lab_dir():
    return os.environ.get("L3HA_LAB_DIR") or DEFAULT_LAB_DIR


NODE_MAC_PREFIX = "02:1a:b0"
ENDPOINT_MAC_PREFIX = "02:1a:b1"


def _mac(prefix, box_index, port_index):
    """Lab NICs keep their MAC when their box is re-created (`boot`, an endpoint whose
    addresses changed), as real hardware does: peers' ARP caches stay valid."""
    return "%s:%02x:%02x:%02x" % (prefix, box_index >> 8, box_index & 0xff, port_index)


def _ifname_for(network, index):
    if model.IFNAME_RE.match(network) and network not in ("lo", NODE_UNDERLAY_IF):
        return network
    return "net%d" % index


class Lab:
    """One lab, identified by its directory (default /run/l3ha-lab or $L3HA_LAB_DIR)."""

    def __init__(self, lab_dir=None):
        self.dir = os.path.abspath(lab_dir or default_lab_dir())
        self.state_path = os.path.join(self.dir, "state.json")
        self.fragment_path = os.path.join(self.dir, "inventory.yml")

    # ---- state -------------------------------------------------------------------
    def _load(self):
        try:
            with open(self.state_path) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

    def _save(self, state):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
        os.rename(tmp, self.state_path)

    def _load_current(self):
        """The state, with what labs started by an older lab have not recorded."""
        state = self._load()
        if state is not None:
            for key, value in self._new_state().items():
                state.setdefault(key, value)
            for entry in state["nodes"].values():
                entry.setdefault("kind", NAMESPACE)
                entry.setdefault("tunnel_cidr", "%s/%d" % (entry["tunnel_ip"],
                                                           model.UNDERLAY.prefixlen))
            state["kind"] = state["kind"] or (NAMESPACE if state["nodes"] else None)
        return state

    def _require(self):
        state = self._load_current()
        if state is None:
            raise LabError("no lab is up in %s (run: l3ha-lab up -i INVENTORY)" % self.dir)
        return state

    @contextlib.contextmanager
    def _locked(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _log(self, name):
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        return os.path.join(self.dir, "logs", name + ".log")

    # ---- up ----------------------------------------------------------------------
    def up(self, inventories, nodes=None):
        """Create what is missing (idempotent). Crashed nodes stay crashed.

        nodes: the kind of node, "namespace" or "machine" (default: the running lab's
        kind, else namespace). `self.notes` says what the lab made of the inventory."""
        inventories = [os.path.abspath(p) for p in inventories]
        if nodes not in (None,) + KINDS:
            raise LabError("unknown kind of node %r (kinds: %s)" % (nodes, ", ".join(KINDS)))
        topology = model.build_topology(model.load_inventory(inventories))
        self._check_names(topology)
        self.notes = topology["notes"]
        with self._locked():
            state = self._load_current()
            if state is not None and not self._switch_alive(state):
                state = self._restart_stale(state)
            state = state or self._new_state()
            kind = nodes or state["kind"] or NAMESPACE
            if state["nodes"] and kind != state["kind"]:
                raise LabError("the lab in %s has %s nodes; take it down first for %s nodes"
                               % (self.dir, state["kind"], kind))
            state["kind"] = kind
            state["inventories"] = inventories
            state["group"] = topology["group"]
            state["underlay"] = model.underlay_prefixes(
                [n["tunnel_cidr"] for n in state["nodes"].values()]
                + [n["tunnel_cidr"] for n in topology["nodes"]])
            host.acquire(self.dir)
            booted = []
            try:
                if kind == machine.KIND:
                    self._ensure_machine_lab(state)
                self._ensure_switch(state)
                self._merge_networks(state, topology)
                for node in topology["nodes"]:
                    booted += self._ensure_node(state, node)
                self._ensure_endpoints(state, topology)
                self._apply_cuts(state)
                for entry in booted:
                    self._wait_booted(entry)
            finally:
                self._save(state)
                self._write_fragment(state)
        return state

    def _ensure_machine_lab(self, state):
        """The image (built on first use), the lab's key and its management network."""
        machine.check_tools()
        machine.ensure_image(self._log("image"))
        machine.ensure_lab_key(self.dir)
        if state["mgmt"] is None:
            state["mgmt"] = machine.allocate_mgmt(self.dir, host._locked)
            self._save(state)
        machine.ensure_bridge(state["mgmt"])

    @staticmethod
    def _check_names(topology):
        endpoint_names = {e["name"] for e in topology["endpoints"]} | {SWITCH}
        clash = [n["name"] for n in topology["nodes"] if n["name"] in endpoint_names]
        if clash:
            raise LabError("node %s: the name is taken by a lab endpoint" % ", ".join(clash))

    def _new_state(self):
        return {"version": 1, "kind": None, "mgmt": None, "switch": None, "networks": {},
                "nodes": {}, "node_order": [], "endpoints": {}, "cuts": [], "created_dirs": [],
                "probes": {}}

    @staticmethod
    def _switch_alive(state):
        box = state.get("switch")
        return bool(box) and kernel.is_alive(box["pid"], box["start"])

    def _restart_stale(self, state):
        """The switch is gone (machine restarted, or someone killed it): every link of
        the lab went with it. End what is left and start over; node disks are kept."""
        records = self._records(state)
        kernel.wait_gone([p for r in records for p in kernel.kill_box(r)], timeout=5.0)
        fresh = self._new_state()
        for key in ("created_dirs", "kind", "mgmt"):
            fresh[key] = state.get(key, fresh[key])
        if fresh["mgmt"]:
            machine.remove_cgroups(fresh["mgmt"])
        self._save(fresh)
        return fresh

    @staticmethod
    def _records(state):
        """Every process record of a lab state: probes, endpoints, nodes, the switch."""
        records = list(state.get("probes", {}).values())
        records += [e.get("box") for e in state.get("endpoints", {}).values()]
        for entry in state.get("nodes", {}).values():
            records += machine.records(entry) + [entry.get("box")]
        records.append(state.get("switch"))
        return [r for r in records if r]

    def _ensure_switch(self, state):
        if self._switch_alive(state):
            return
        state["switch"] = kernel.spawn_box("lab-switch", self._log("switch"))
        self._save(state)
        kernel.ip_batch(state["switch"]["pid"], [
            "link set lo up",
            "link add %s type bridge" % UNDERLAY_BRIDGE,
            "link set %s up" % UNDERLAY_BRIDGE,
        ])

    def _merge_networks(self, state, topology):
        switch_pid = state["switch"]["pid"]
        existing = kernel.link_names(switch_pid)
        for name, net in topology["networks"].items():
            old = state["networks"].get(name)
            index = old["index"] if old else 1 + max(
                [n["index"] for n in state["networks"].values()] or [0])
            entry = dict(net, index=index)
            state["networks"][name] = entry
            if net["type"] == "bridge" and "br-n%d" % index not in existing:
                kernel.ip_batch(switch_pid, ["link add br-n%d type bridge" % index,
                                             "link set br-n%d up" % index])

    def _bridge_networks(self, state):
        return [n for n in state["networks"].values() if n["type"] == "bridge"]

    def _ensure_node(self, state, node):
        """Returns [entry] when it booted the node (see _wait_booted), else []."""
        name = node["name"]
        entry = state["nodes"].get(name)
        if entry is None:
            index = 1 + max([n["index"] for n in state["nodes"].values()] or [0])
            entry = dict(node, index=index, box=None, crashed=False, kind=state["kind"],
                         disk=os.path.join(self.dir, "nodes", name))
            state["nodes"][name] = entry
            state["node_order"].append(name)
            self._boot_node(state, entry)
            return [entry]
        if self._node_alive(entry):
            self._wire_node(state, entry)   # adds links for networks added since
            return []
        entry["crashed"] = True             # stays down until `boot`
        return []

    @staticmethod
    def _node_alive(entry):
        box = entry["box"]
        alive = bool(box) and kernel.is_alive(box["pid"], box["start"])
        return alive and (entry.get("kind") != machine.KIND or machine.is_running(entry))

    def _node_binds(self, state, entry):
        binds = []
        for kind, target in (("config", entry["config_dir"]), ("state", entry["state_dir"])):
            source = os.path.join(entry["disk"], kind)
            os.makedirs(source, mode=0o755, exist_ok=True)
            if not os.path.isdir(target):
                os.makedirs(target, mode=0o755)
                state["created_dirs"].append(target)
                self._save(state)
            binds.append((source, target))
        return binds

    def _boot_node(self, state, entry):
        """Start the node (for a machine: its container too; see _wait_booted)."""
        if entry.get("kind") == machine.KIND:
            self._boot_machine(state, entry)
            return
        binds = self._node_binds(state, entry)
        entry["box"] = kernel.spawn_box(entry["name"], self._log(entry["name"]), binds=binds,
                                        run_tmpfs=True)
        entry["crashed"] = False
        self._save(state)
        self._wire_node(state, entry)

    def _boot_machine(self, state, entry):
        name, disk = entry["name"], entry["disk"]
        info = machine.disk_info(disk)
        image = machine.image_paths(info["image"] if info else machine.image_key())
        if not os.path.isdir(image["rootfs"]):
            raise LabError("node %s: its disk was made from image %s, which is gone from %s "
                           "(take the lab down)" % (name, image["key"], machine.cache_dir()))
        entry["machine"] = None
        entry["box"] = kernel.spawn_box(name, self._log(name),
                                        **machine.box_options(disk, image))
        entry["crashed"] = False
        self._save(state)
        self._wire_node(state, entry)
        if info is None:
            info = machine.init_disk(name, disk, entry["box"]["pid"], image,
                                     machine.ensure_lab_key(self.dir))
        entry["host_key"] = info["host_key"]
        entry["mgmt_ip"] = machine.mgmt_ip(state["mgmt"], entry["index"])
        entry["machine"] = machine.start(name, entry["box"]["pid"],
                                         machine.cgroup_dirs(state["mgmt"], name), image,
                                         self._log(name))
        self._save(state)

    def _wait_booted(self, entry):
        """A machine node is up when its sshd answers."""
        if entry.get("kind") == machine.KIND:
            machine.wait_ssh(entry["name"], entry["mgmt_ip"], entry)

    def _wire_node(self, state, entry):
        """Link a live node to the underlay and to every bridge network (only what is missing)."""
        switch_pid, pid = state["switch"]["pid"], entry["box"]["pid"]
        existing = kernel.link_names(switch_pid)
        i = entry["index"]
        switch_cmds, node_cmds = [], []
        if "n%d-ul" % i not in existing:
            switch_cmds += ["link add n%d-ul type veth peer name %s address %s netns %d"
                            % (i, NODE_UNDERLAY_IF, _mac(NODE_MAC_PREFIX, i, 0), pid),
                            "link set n%d-ul master %s up" % (i, UNDERLAY_BRIDGE)]
            node_cmds += ["link set lo up",
                          "addr add %s dev %s" % (entry["tunnel_cidr"], NODE_UNDERLAY_IF),
                          "link set %s up" % NODE_UNDERLAY_IF]
        routes = _onlink_routes(entry["tunnel_cidr"], state["underlay"])
        node_links = kernel.link_names(pid)
        for net in self._bridge_networks(state):
            j = net["index"]
            port = "n%d-b%d" % (i, j)
            if port in existing:
                continue
            uplink = "uplink%d" % j
            switch_cmds += ["link add %s type veth peer name %s address %s netns %d"
                            % (port, uplink, _mac(NODE_MAC_PREFIX, i, j), pid),
                            "link set %s master br-n%d up" % (port, j)]
            if net["bridge"] not in node_links:
                node_cmds.append("link add %s type bridge" % net["bridge"])
                node_links.add(net["bridge"])
            node_cmds += ["link set %s master %s up" % (uplink, net["bridge"]),
                          "link set %s up" % net["bridge"]]
        kernel.ip_batch(switch_pid, switch_cmds)
        kernel.ip_batch(pid, node_cmds + routes)
        if entry.get("kind") == machine.KIND:
            machine.wire_mgmt(state["mgmt"], i, pid)

    # ---- endpoints ---------------------------------------------------------------
    def _ensure_endpoints(self, state, topology):
        for spec in topology["endpoints"]:
            name = spec["name"]
            old = state["endpoints"].get(name)
            flood = self._flood_targets(state, topology, spec)
            alive = old and old["box"] and kernel.is_alive(old["box"]["pid"], old["box"]["start"])
            # Same addresses and peers: keep it. Otherwise re-create it (its MACs are
            # stable, so routers' ARP caches stay valid).
            if alive and old["spec"] == spec and old["flood"] == flood:
                continue
            if old and old["box"]:
                kernel.wait_gone(kernel.kill_box(old["box"]), timeout=5.0)
            index = old["index"] if old else 1 + max(
                [e["index"] for e in state["endpoints"].values()] or [0])
            entry = {"index": index, "spec": spec, "box": None, "flood": flood}
            state["endpoints"][name] = entry
            entry["box"] = kernel.spawn_box(name, self._log(name),
                                            serve=spec["kind"] == "upstream")
            self._save(state)
            self._wire_endpoint(state, entry)

    def _flood_targets(self, state, topology, spec):
        """Per vxlan network: every node's tunnel IP and the other endpoints' VTEPs."""
        flood = {}
        for attachment in spec["attachments"]:
            net = topology["networks"][attachment["network"]]
            if net["type"] != "vxlan":
                continue
            targets = [state["nodes"][n]["tunnel_ip"] for n in state["node_order"]]
            targets += [e["vtep_ip"] for e in topology["endpoints"]
                        if e["vtep_ip"] and e["name"] != spec["name"]
                        and any(a["network"] == net["name"] for a in e["attachments"])]
            flood[net["name"]] = targets
        return flood

    def _wire_endpoint(self, state, entry):
        spec, pid, k = entry["spec"], entry["box"]["pid"], entry["index"]
        switch_pid = state["switch"]["pid"]
        switch_cmds, cmds = [], ["link set lo up"]
        if spec["vtep_ip"]:
            switch_cmds += ["link add e%d-ul type veth peer name %s address %s netns %d"
                            % (k, NODE_UNDERLAY_IF, _mac(ENDPOINT_MAC_PREFIX, k, 0), pid),
                            "link set e%d-ul master %s up" % (k, UNDERLAY_BRIDGE)]
            cmds += ["addr add %s dev %s" % (spec["vtep_cidr"], NODE_UNDERLAY_IF),
                     "link set %s up" % NODE_UNDERLAY_IF]
            cmds += _onlink_routes(spec["vtep_cidr"], spec["underlay"])
        routes = []
        for attachment in spec["attachments"]:
            net = state["networks"][attachment["network"]]
            ifname = _ifname_for(net["name"], net["index"])
            mac = _mac(ENDPOINT_MAC_PREFIX, k, net["index"])
            if net["type"] == "bridge":
                port = "e%d-b%d" % (k, net["index"])
                switch_cmds += ["link add %s type veth peer name %s address %s netns %d"
                                % (port, ifname, mac, pid),
                                "link set %s master br-n%d up" % (port, net["index"])]
            else:
                cmds.append("link add %s address %s type vxlan id %d dstport %d local %s dev %s"
                            % (ifname, mac, net["vni"], model.VXLAN_PORT, spec["vtep_ip"],
                               NODE_UNDERLAY_IF))
                cmds.append("link set %s mtu %d" % (ifname, model.VXLAN_MTU))
            for address in attachment["addresses"]:
                nodad = " nodad" if ipaddress.ip_interface(address).version == 6 else ""
                cmds.append("addr add %s dev %s%s" % (address, ifname, nodad))
            cmds.append("link set %s up" % ifname)
            for _family, gateway in sorted(attachment["gateways"].items()):
                routes.append("route add default via %s dev %s" % (gateway, ifname))
        for route in spec["routes"]:
            routes.append("route add %s via %s" % (route["destination"], route["via"]))
        kernel.ip_batch(switch_pid, switch_cmds)
        kernel.ip_batch(pid, cmds + routes)
        fdb = []
        for network, targets in entry["flood"].items():
            ifname = _ifname_for(network, state["networks"][network]["index"])
            fdb += ["fdb append 00:00:00:00:00:00 dev %s dst %s" % (ifname, t) for t in targets]
        if fdb:
            kernel.run_in(pid, ["bridge", "-batch", "-"], net_only=True,
                          input_text="\n".join(fdb) + "\n")

    # ---- fragment ----------------------------------------------------------------
    def _write_fragment(self, state):
        """Connection variables of the nodes, in a group of the lab's own: membership of
        the nodes group comes from the user's inventory, which is always passed too."""
        vteps = {}
        for name, net in sorted(state["networks"].items()):
            if net["type"] != "vxlan":
                continue
            vteps[name] = [e["spec"]["vtep_ip"] for e in state["endpoints"].values()
                           if any(a["network"] == name for a in e["spec"]["attachments"])]
        hosts, known_hosts = {}, []
        for name in state["node_order"]:
            entry = state["nodes"][name]
            if entry.get("kind") == machine.KIND:
                hostvars = machine.fragment_vars(self.dir, name, entry["mgmt_ip"],
                                                 machine.ensure_lab_key(self.dir))
                if entry.get("host_key"):
                    known_hosts.append((entry["mgmt_ip"], entry["host_key"]))
            else:
                box = entry["box"]
                alive = bool(box) and not entry["crashed"] and kernel.is_alive(
                    box["pid"], box["start"])
                hostvars = {
                    "ansible_connection": "community.docker.nsenter",
                    # A dead node gets pid 0, so Ansible can never enter a reused pid.
                    "ansible_nsenter_pid": box["pid"] if alive else 0,
                    "ansible_python_interpreter": sys.executable,
                    # A namespace node shares the host's file system: its packages and
                    # /etc/sysctl.d are the host's, which the lab must not change.
                    "l3ha_install_packages": False,
                    "l3ha_sysctl_file": "",
                    # and its /var/lib/prometheus: the metrics go to the node's private state dir
                    "l3ha_metrics_dir": os.path.join(entry["state_dir"], "metrics"),
                }
            # What the lab decided about its networks (host variables: they win over the
            # user's group variables).
            hostvars.update(l3ha_tunnel_ip=entry["tunnel_ip"],
                            l3ha_vxlan_remote_vteps=copy.deepcopy(vteps))  # no YAML aliases
            hosts[name] = hostvars
        if state["kind"] == machine.KIND:
            machine.write_known_hosts(self.dir, known_hosts)
        fragment = {"all": {"children": {FRAGMENT_GROUP: {"hosts": hosts}}}}
        tmp = self.fragment_path + ".tmp"
        with open(tmp, "w") as handle:
            handle.write("# Written by l3ha-lab up/boot: how Ansible reaches the lab's nodes.\n"
                         "# Pass it after your inventory: -i INVENTORY -i %s\n" % self.fragment_path)
            yaml.safe_dump(fragment, handle, default_flow_style=False, sort_keys=False)
        os.rename(tmp, self.fragment_path)

    # ---- faults ------------------------------------------------------------------
    def _node(self, state, name):
        if name not in state["nodes"]:
            raise LabError("unknown node %s (nodes: %s)" % (name, ", ".join(state["node_order"])))
        return state["nodes"][name]

    def crash(self, name):
        """SIGKILL the node's PID 1 (a machine's container, then its box): the kernel ends
        everything in it at once, with the links and namespaces of its network."""
        with self._locked():
            state = self._require()
            entry = self._node(state, name)
            self._power_off(state, entry)
            self._save(state)
            self._write_fragment(state)

    def _power_off(self, state, entry):
        """Everything of the node ends now; returns when its processes are gone."""
        if entry.get("kind") == machine.KIND:
            machine.close_ssh_masters(self.dir, entry["name"])
            machine.power_off(entry)
        records = machine.records(entry) + ([entry["box"]] if entry["box"] else [])
        pids = [p for r in records for p in kernel.kill_box(r)]
        entry["crashed"] = True
        left = kernel.wait_gone(pids, timeout=10.0)
        if left:
            raise LabError("node %s: processes did not end: %s" % (entry["name"], left))
        if entry.get("kind") == machine.KIND:
            machine.remove_cgroups(state["mgmt"], entry["name"])

    def boot(self, name):
        """A fresh node (new /run, no processes), same disk and links. A machine node
        boots its systemd again; this returns once its sshd answers."""
        with self._locked():
            state = self._require()
            entry = self._node(state, name)
            if self._node_alive(entry):
                raise LabError("node %s is running; crash it first" % name)
            self._power_off(state, entry)   # what is left, e.g. the box of a powered-off machine
            self._boot_again(state, entry)

    def reboot(self, name, timeout=120.0):
        """A machine node runs `systemctl reboot` (its units stop in order), then starts
        again, as a real host's firmware would: new box (kernel state is lost), same disk.
        A namespace node has no init to stop anything: crash, then boot."""
        with self._locked():
            state = self._require()
            entry = self._node(state, name)
            if not self._node_alive(entry):
                raise LabError("node %s is not running (use `boot`)" % name)
            if entry.get("kind") == machine.KIND:
                machine.close_ssh_masters(self.dir, name)
                machine.reboot(name, entry, timeout)
            self._power_off(state, entry)
            self._boot_again(state, entry)

    def _boot_again(self, state, entry):
        self._wait_ports_gone(state, entry)
        try:
            self._boot_node(state, entry)
            self._wait_booted(entry)
        finally:
            self._save(state)
            self._write_fragment(state)

    def _wait_ports_gone(self, state, entry, timeout=5.0):
        """The kernel removes a dead node's veth peers asynchronously; wait for it."""
        prefix = "n%d-" % entry["index"]
        deadline = time.monotonic() + timeout
        while any(n.startswith(prefix) for n in kernel.link_names(state["switch"]["pid"])):
            if time.monotonic() > deadline:
                raise LabError("node %s: its old switch ports did not go away" % entry["name"])
            time.sleep(0.01)
        if entry.get("kind") == machine.KIND:
            machine.wait_port_gone(state["mgmt"], entry["index"], timeout)

    def link(self, name, network, up):
        """Cut (up=False) or restore one node's link to one network ('ha' = underlay)."""
        with self._locked():
            state = self._require()
            self._node(state, name)
            if network != UNDERLAY_NETWORK and network not in state["networks"]:
                raise LabError("unknown network %s (networks: %s)" % (
                    network, ", ".join([UNDERLAY_NETWORK] + sorted(state["networks"]))))
            cut = [name, network]
            if up and cut in state["cuts"]:
                state["cuts"].remove(cut)
            elif not up and cut not in state["cuts"]:
                state["cuts"].append(cut)
            self._apply_cuts(state)
            self._save(state)

    def _apply_cuts(self, state):
        rules = []
        for node, network in state["cuts"]:
            i = state["nodes"][node]["index"]
            if network == UNDERLAY_NETWORK:
                match, port = "", "n%d-ul" % i
            elif state["networks"][network]["type"] == "bridge":
                match, port = "", "n%d-b%d" % (i, state["networks"][network]["index"])
            else:
                # Only this VNI: the VXLAN header's VNI sits 12 bytes into the UDP header.
                vni = state["networks"][network]["vni"]
                match = "udp dport %d @th,96,24 %d " % (model.VXLAN_PORT, vni)
                port = "n%d-ul" % i
            rules += ['    iifname "%s" %sdrop' % (port, match),
                      '    oifname "%s" %sdrop' % (port, match)]
        script = ["table bridge %s {}" % NFT_TABLE, "delete table bridge %s" % NFT_TABLE,
                  "table bridge %s {" % NFT_TABLE,
                  "  chain forward {",
                  "    type filter hook forward priority 0; policy accept;"]
        script += rules + ["  }", "}"]
        kernel.run_in(state["switch"]["pid"], ["nft", "-f", "-"], net_only=True,
                      input_text="\n".join(script) + "\n")

    # ---- exec, status --------------------------------------------------------------
    def box_pid(self, name, state=None):
        state = state or self._require()
        if name in state["nodes"]:
            entry = state["nodes"][name]
            box = entry["box"]
            if entry.get("kind") == machine.KIND:
                if not self._node_alive(entry):
                    raise LabError("%s is not running (crashed? use `boot`)" % name)
                return entry["machine"]["pid1"]["pid"]
        elif name in state["endpoints"]:
            box = state["endpoints"][name]["box"]
        elif name == SWITCH:
            box = state["switch"]
        else:
            raise LabError("unknown node or endpoint %s (have: %s)" % (
                name, ", ".join(state["node_order"] + sorted(state["endpoints"]) + [SWITCH])))
        if not box or not kernel.is_alive(box["pid"], box["start"]):
            raise LabError("%s is not running (crashed? use `boot`)" % name)
        return box["pid"]

    def exec_argv(self, name, argv):
        """The argv that runs a command inside a node or endpoint (a machine node: in its
        container, with a clean environment)."""
        state = self._require()
        pid = self.box_pid(name, state)
        if name in state["nodes"] and state["nodes"][name].get("kind") == machine.KIND:
            return machine.exec_argv(pid, argv)
        return kernel.nsenter_argv(pid) + list(argv)

    def run(self, name, argv, check=False, timeout=None, **kwargs):
        """subprocess.run of a command inside a node or endpoint (text, output captured)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.exec_argv(name, argv), check=check, timeout=timeout, **kwargs)

    def status(self):
        state = self._require()
        nodes = []
        for name in state["node_order"]:
            entry = state["nodes"][name]
            alive = self._node_alive(entry)
            pid = (entry["box"] or {}).get("pid")
            if entry.get("kind") == machine.KIND:
                pid = (entry.get("machine") or {}).get("pid1", {}).get("pid")
            nodes.append({"name": name, "kind": entry["kind"], "pid": pid if alive else None,
                          "alive": alive, "tunnel_ip": entry["tunnel_ip"],
                          "mgmt_ip": entry.get("mgmt_ip")})
        endpoints = []
        for name, entry in sorted(state["endpoints"].items(), key=lambda kv: kv[1]["index"]):
            box = entry["box"] or {}
            endpoints.append({
                "name": name, "pid": box.get("pid"),
                "alive": kernel.is_alive(box.get("pid"), box.get("start")),
                "vtep_ip": entry["spec"]["vtep_ip"],
                "networks": {a["network"]: a["addresses"] for a in entry["spec"]["attachments"]},
            })
        return {"lab_dir": self.dir, "fragment": self.fragment_path, "kind": state["kind"],
                "mgmt": state["mgmt"], "inventories": state["inventories"], "nodes": nodes,
                "endpoints": endpoints,
                "cuts": [{"node": n, "network": w} for n, w in state["cuts"]]}

    # ---- probes --------------------------------------------------------------------
    def probe_start(self, name, source, target, interval=0.01, max_seconds=3600.0):
        with self._locked():
            state = self._require()
            if name in state["probes"]:
                raise LabError("probe %s exists; stop it first" % name)
            pid = self.box_pid(source, state)
            box = self._box_record(state, source)
            try:
                ipaddress.ip_address(target)
            except ValueError:
                raise LabError("probe %s: --to must be an IP address, got %r" % (name, target))
            os.makedirs(os.path.join(self.dir, "probes"), exist_ok=True)
            out = os.path.join(self.dir, "probes", name + ".json")
            for stale in (out, out + ".running"):
                if os.path.exists(stale):
                    os.unlink(stale)
            argv = kernel.nsenter_argv(pid, net_only=True) + [
                sys.executable, "-m", "l3ha_lab.probe", "--to", target,
                "--interval", str(interval), "--out", out, "--owner-pid", str(box["pid"]),
                "--owner-start", str(box["start"]), "--max-seconds", str(max_seconds)]
            probe_pid = kernel.spawn_detached(argv, self._log("probe-" + name))
            state["probes"][name] = {"pid": probe_pid, "start": kernel.start_time(probe_pid),
                                     "out": out, "source": source, "target": target}
            self._save(state)
            deadline = time.monotonic() + 10.0
            while not os.path.exists(out + ".running"):
                if kernel.start_time(probe_pid) is None or time.monotonic() > deadline:
                    raise LabError("probe %s did not start (log: %s)"
                                   % (name, self._log("probe-" + name)))
                time.sleep(0.005)

    def _box_record(self, state, name):
        if name in state["nodes"]:
            return state["nodes"][name]["box"]
        if name in state["endpoints"]:
            return state["endpoints"][name]["box"]
        return state["switch"]

    def probe_stop(self, name, timeout=10.0):
        """Stop a probe and return its result dict."""
        with self._locked():
            state = self._require()
            probe = state["probes"].get(name)
            if probe is None:
                raise LabError("no probe named %s" % name)
            if kernel.is_alive(probe["pid"], probe["start"]):
                os.kill(probe["pid"], 15)
            deadline = time.monotonic() + timeout
            while not os.path.exists(probe["out"]):
                if time.monotonic() > deadline:
                    raise LabError("probe %s wrote no result (log: %s)"
                                   % (name, self._log("probe-" + name)))
                time.sleep(0.01)
            with open(probe["out"]) as handle:
                result = json.load(handle)
            del state["probes"][name]
            self._save(state)
        result.update(name=name, source=probe["source"], target=probe["target"])
        return result

    # ---- down ----------------------------------------------------------------------
    def down(self):
        """Remove everything of the lab. Works after crashes and half-done `up`s."""
        with self._locked():
            state = self._load_current()
            records = self._records(state) if state else []
            machine.close_ssh_masters(self.dir)
            pids = []
            for record in records:
                pids += kernel.kill_box(record)
            if kernel.wait_gone(pids, timeout=5.0):
                for record in records:
                    kernel.kill_leftovers(record)
                left = kernel.wait_gone(pids, timeout=5.0)
                if left:
                    raise LabError("processes did not end: %s" % left)
            if state:
                for path in reversed(state.get("created_dirs", [])):
                    _remove_mountpoint_dir(path)
                if state["mgmt"]:
                    machine.remove_cgroups(state["mgmt"])
                    machine.remove_bridge(state["mgmt"])
        shutil.rmtree(self.dir, ignore_errors=True)
        host.release(self.dir)
        # Dead is not gone: the box parents (unshare) and probes are orphans, which the
        # host's init reaps when it gets to it. Return once they have left the process
        # table, so that a caller that is done with the lab finds nothing of it.
        recorded = [(record[pid], record[start]) for record in records
                    for pid, start in (("pid", "start"), ("unshare_pid", "unshare_start"))
                    if record.get(pid) and record.get(start)]
        deadline = time.monotonic() + REAP_TIMEOUT
        while True:
            left = [pid for pid, started in recorded if kernel.process_exists(pid, started)]
            if not left:
                return
            if time.monotonic() > deadline:
                raise LabError("lab processes exited but were not reaped in %d s: %s"
                               % (REAP_TIMEOUT, ", ".join(map(str, left))))
            time.sleep(0.05)


REAP_TIMEOUT = 15


def _onlink_routes(own_cidr, prefixes):
    """One switch, several subnets (mapped tunnel IPs): the others are on-link too."""
    own = str(ipaddress.ip_interface(own_cidr).network)
    return ["route replace %s dev %s" % (p, NODE_UNDERLAY_IF) for p in prefixes if p != own]


def _remove_mountpoint_dir(path):
    """rmdir a directory `up` created, unless it is still in use (another lab's mounts)."""
    if _is_mountpoint_anywhere(path):
        return
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty: someone else put files there; leave it


def _is_mountpoint_anywhere(path):
    seen = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            namespace = os.readlink("/proc/%s/ns/mnt" % pid)
            if namespace in seen:
                continue
            seen.add(namespace)
            with open("/proc/%s/mountinfo" % pid) as handle:
                for line in handle:
                    if line.split()[4] == path:
                        return True
        except OSError:
            continue
    return False
