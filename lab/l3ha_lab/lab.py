"""The lab: nodes, a switch and endpoints built from namespaced boxes, and its verbs.

Everything the lab creates lives inside boxes it started (nothing in the host's network
namespace, no named namespaces), so ending the boxes by their recorded pids removes
every link, namespace, mount and process. State is a JSON file in the lab directory.
"""

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time

import yaml

from l3ha_lab import host, kernel, model
from l3ha_lab.model import LabError

DEFAULT_LAB_DIR = "/run/l3ha-lab"
SWITCH = "switch"
UNDERLAY_NETWORK = model.UNDERLAY_NAME
UNDERLAY_BRIDGE = "br-ul"
NODE_UNDERLAY_IF = "ul0"
NFT_TABLE = "l3lab"


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

    def _require(self):
        state = self._load()
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
    def up(self, inventories):
        """Create what is missing (idempotent). Crashed nodes stay crashed."""
        inventories = [os.path.abspath(p) for p in inventories]
        topology = model.build_topology(model.load_inventory(inventories))
        self._check_names(topology)
        with self._locked():
            state = self._load()
            if state is not None and not self._switch_alive(state):
                state = self._restart_stale(state)
            state = state or self._new_state()
            state["inventories"] = inventories
            state["group"] = topology["group"]
            host.acquire(self.dir)
            try:
                self._ensure_switch(state)
                self._merge_networks(state, topology)
                for node in topology["nodes"]:
                    self._ensure_node(state, node)
                self._ensure_endpoints(state, topology)
                self._apply_cuts(state)
            finally:
                self._save(state)
                self._write_fragment(state)
        return state

    @staticmethod
    def _check_names(topology):
        endpoint_names = {e["name"] for e in topology["endpoints"]} | {SWITCH}
        clash = [n["name"] for n in topology["nodes"] if n["name"] in endpoint_names]
        if clash:
            raise LabError("node %s: the name is taken by a lab endpoint" % ", ".join(clash))

    def _new_state(self):
        return {"version": 1, "switch": None, "networks": {}, "nodes": {}, "node_order": [],
                "endpoints": {}, "cuts": [], "created_dirs": [], "probes": {}}

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
        fresh["created_dirs"] = state.get("created_dirs", [])
        self._save(fresh)
        return fresh

    @staticmethod
    def _records(state):
        """Every process record of a lab state: probes, endpoints, nodes, the switch."""
        records = list(state.get("probes", {}).values())
        records += [e.get("box") for e in state.get("endpoints", {}).values()]
        records += [e.get("box") for e in state.get("nodes", {}).values()]
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
        name = node["name"]
        entry = state["nodes"].get(name)
        if entry is None:
            index = 1 + max([n["index"] for n in state["nodes"].values()] or [0])
            entry = dict(node, index=index, box=None, crashed=False,
                         disk=os.path.join(self.dir, "nodes", name))
            state["nodes"][name] = entry
            state["node_order"].append(name)
            self._boot_node(state, entry)
            return
        if entry["box"] and kernel.is_alive(entry["box"]["pid"], entry["box"]["start"]):
            self._wire_node(state, entry)   # adds links for networks added since
            return
        entry["crashed"] = True             # stays down until `boot`

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
        binds = self._node_binds(state, entry)
        entry["box"] = kernel.spawn_box(entry["name"], self._log(entry["name"]), binds=binds,
                                        run_tmpfs=True)
        entry["crashed"] = False
        self._save(state)
        self._wire_node(state, entry)

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
                          "addr add %s/%d dev %s" % (entry["tunnel_ip"], model.UNDERLAY.prefixlen,
                                                     NODE_UNDERLAY_IF),
                          "link set %s up" % NODE_UNDERLAY_IF]
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
        kernel.ip_batch(pid, node_cmds)

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
            cmds += ["addr add %s/%d dev %s" % (spec["vtep_ip"], model.UNDERLAY.prefixlen,
                                                NODE_UNDERLAY_IF),
                     "link set %s up" % NODE_UNDERLAY_IF]
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
        hosts = {}
        for name in state["node_order"]:
            entry = state["nodes"][name]
            box = entry["box"]
            alive = bool(box) and not entry["crashed"] and kernel.is_alive(box["pid"], box["start"])
            hosts[name] = {
                "ansible_connection": "community.docker.nsenter",
                # A dead node gets pid 0, so Ansible can never enter a reused pid.
                "ansible_nsenter_pid": box["pid"] if alive else 0,
                "ansible_python_interpreter": sys.executable,
                "l3ha_tunnel_ip": entry["tunnel_ip"],
            }
        vteps = {}
        for name, net in sorted(state["networks"].items()):
            if net["type"] != "vxlan":
                continue
            vteps[name] = [e["spec"]["vtep_ip"] for e in state["endpoints"].values()
                           if any(a["network"] == name for a in e["spec"]["attachments"])]
        fragment = {"all": {"children": {state["group"]: {
            "hosts": hosts,
            "vars": {"l3ha_lab": True, "l3ha_vxlan_remote_vteps": vteps}}}}}
        tmp = self.fragment_path + ".tmp"
        with open(tmp, "w") as handle:
            handle.write("# Written by l3ha-lab up/boot: how Ansible reaches the lab's nodes.\n")
            yaml.safe_dump(fragment, handle, default_flow_style=False, sort_keys=False)
        os.rename(tmp, self.fragment_path)

    # ---- faults ------------------------------------------------------------------
    def _node(self, state, name):
        if name not in state["nodes"]:
            raise LabError("unknown node %s (nodes: %s)" % (name, ", ".join(state["node_order"])))
        return state["nodes"][name]

    def crash(self, name):
        """SIGKILL the node's PID 1: the kernel ends everything in it at once."""
        with self._locked():
            state = self._require()
            entry = self._node(state, name)
            if entry["box"]:
                kernel.kill_box(entry["box"])
            entry["crashed"] = True
            self._save(state)
            self._write_fragment(state)
        if entry["box"]:
            kernel.wait_gone([entry["box"]["pid"]], timeout=5.0)

    def boot(self, name):
        """A fresh node (new /run, no processes), same disk directories and links."""
        with self._locked():
            state = self._require()
            entry = self._node(state, name)
            box = entry["box"]
            if box and kernel.is_alive(box["pid"], box["start"]):
                raise LabError("node %s is running; crash it first" % name)
            if box:
                kernel.wait_gone(kernel.kill_box(box), timeout=5.0)
                self._wait_ports_gone(state, entry)
            try:
                self._boot_node(state, entry)
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
            box = state["nodes"][name]["box"]
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
        """The argv that runs a command inside a node or endpoint."""
        return kernel.nsenter_argv(self.box_pid(name)) + list(argv)

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
            box = entry["box"] or {}
            nodes.append({"name": name, "pid": box.get("pid"),
                          "alive": kernel.is_alive(box.get("pid"), box.get("start")),
                          "tunnel_ip": entry["tunnel_ip"]})
        endpoints = []
        for name, entry in sorted(state["endpoints"].items(), key=lambda kv: kv[1]["index"]):
            box = entry["box"] or {}
            endpoints.append({
                "name": name, "pid": box.get("pid"),
                "alive": kernel.is_alive(box.get("pid"), box.get("start")),
                "vtep_ip": entry["spec"]["vtep_ip"],
                "networks": {a["network"]: a["addresses"] for a in entry["spec"]["attachments"]},
            })
        return {"lab_dir": self.dir, "fragment": self.fragment_path,
                "inventories": state["inventories"], "nodes": nodes, "endpoints": endpoints,
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
            state = self._load()
            records = self._records(state) if state else []
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
