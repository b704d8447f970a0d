"""A whole kubeha cluster from real parts, for the end-to-end tests.

One :class:`Cluster` is:

- a :class:`~tests.support.netns.NodeNetwork`: a host bridge plus one network namespace per node;
- a PKI whose api-server certificate names the bridge's host address;
- one etcd (loopback), one ``kubeha apiserver`` bound to the bridge's host address (Node,RBAC
  authorization; ServiceAccount and NodeRestriction admission, as kubeadm), one ``kubeha
  controller-manager`` (node IPAM hands out a ``/24`` of a free ``10.x.0.0/16`` per node) and one
  ``kubeha scheduler``, all in the host's namespace;
- one private ``dockerd`` serving every node (each kubelet only sees containers labelled with its
  node name) with the demo image built once;
- one ``kubeha kubelet`` per node inside that node's network namespace, with its own client
  certificate ``CN=system:node:<name>, O=system:nodes`` (so the Node authorizer and NodeRestriction
  apply), the Docker runtime, CNI and host-gw routes.

The kubelets enter their node's namespace with ``nsenter --net`` rather than ``ip netns exec``:
the latter also gives the process a private mount namespace, and tmpfs volumes the kubelet mounts
there would be invisible to the shared dockerd.

Every process is ours by pid, every container is in our dockerd, every link and namespace carries
our random prefix: :meth:`Cluster.teardown` removes exactly those. A failed run's logs are copied
to ``/tmp/kubeha-e2e-logs/<prefix>/`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.bootstrap import pki as kpki
from kubeha.cli.dev import apiserver_args
from kubeha.cli.procs import client_ssl_context, free_port, stop_process, wait_http_ok
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import NODES
from kubeha.kubelet.images import build_demo
from kubeha.kubelet.runtime.shim import proc_start_ticks
from tests.support import waiting
from tests.support.docker import PrivateDocker
from tests.support.etcd import EtcdServer
from tests.support.netns import NodeNet, NodeNetwork, free_subnet, ip
from tests.support.pki import PKI

Obj = dict[str, Any]
DEMO_IMAGE = "kubeha/demo:latest"
LOGS_KEPT = Path("/tmp/kubeha-e2e-logs")
SERVICE_CIDR = "10.96.0.0/12"
KUBELET_PORT = 10250
NODE_LABEL = "kubeha.node"  # the docker runtime's label naming a container's node


def _spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        # own session: a Ctrl-C of the test run does not reach it; we stop it by pid
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill_host_containers(root: Path) -> None:
    """The host runtime's containers outlive their kubelet (a restarted one re-adopts them): kill
    each by the pids its shim recorded (``pods/<uid>/<container>/<attempt>.state.json``), only
    while that pid is still the same process (its start ticks match)."""
    for state_file in root.glob("pods/*/*/*.state.json"):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        for pid_key, ticks_key, group in (("pid", "pidStart", True), ("shimPid", "shimStart", False)):
            pid = state.get(pid_key)
            if not isinstance(pid, int) or pid <= 0 or proc_start_ticks(pid) != state.get(ticks_key):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if group:
                    os.killpg(pid, signal.SIGKILL)  # the shim starts each command in its own group
                else:
                    os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Process:
    """One component process: started from ``argv``, output appended to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.alive():
            return
        self.proc = _spawn(self.argv, self.log_path)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        proc, self.proc = self.proc, None
        return stop_process(proc, timeout) if proc is not None else None

    def kill(self) -> None:
        """SIGKILL (a crash): nothing gets to clean up."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(15)

    def log(self, tail: int = 200) -> str:
        return _tail(self.log_path, tail)


@dataclass
class Kubelet(Process):
    """A node's ``kubeha kubelet`` (runs in the node's network namespace)."""

    root_dir: Path = Path()


@dataclass
class Node:
    """One node: ``name`` (the Node object), ``ip`` (its InternalIP), ``netns`` (its network
    namespace), ``pod_cidr`` (read from the Node once node IPAM assigned it) and ``kubelet``."""

    net: NodeNet
    kubelet: Kubelet
    pod_cidr: str = ""

    @property
    def name(self) -> str:
        return self.net.name

    @property
    def ip(self) -> str:
        return self.net.ip

    @property
    def netns(self) -> str:
        return self.net.netns

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run in this node's network namespace."""
        return self.net.command(argv)

    def run(self, argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion in this node's network namespace (e.g. busybox wget)."""
        return self.net.run(argv, timeout)

    async def wget(self, url: str, within: float = 15.0) -> str:
        """GET ``url`` from inside this node's namespace, retrying until it answers (a Running
        container may not listen yet); fails with the last error after ``within`` seconds."""
        last: list[str] = []

        async def get() -> str:
            # no wget -T: busybox 1.35's static wget crashes with it; the subprocess timeout bounds it
            try:
                res = await asyncio.to_thread(self.run, ["busybox", "wget", "-q", "-O", "-", url], 10.0)
            except subprocess.TimeoutExpired:
                last[:] = ["timed out"]
                return ""
            last[:] = [f"rc={res.returncode} {res.stderr.strip()}"]
            return res.stdout if res.returncode == 0 else ""

        try:
            return str(await waiting.eventually(get, within=within, every=0.3))
        except AssertionError:
            raise AssertionError(f"GET {url} from {self.name} ({self.netns}) failed: {last}") from None


@dataclass
class Cluster:
    node_count: int = 2
    network: NodeNetwork = field(default_factory=NodeNetwork)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubeha-e2e-")))
    nodes: list[Node] = field(default_factory=list)
    cluster_cidr: str = ""
    docker: PrivateDocker | None = None
    etcd: EtcdServer | None = None
    pki: PKI | None = None
    apiserver: Process | None = None
    controller_manager: Process | None = None
    scheduler: Process | None = None
    port: int = 0
    forward_rule: list[str] = field(default_factory=list)  # our iptables FORWARD rule, if added

    # -- what tests use ------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self.network.prefix

    @property
    def host_ip(self) -> str:
        """The host's address on the node bridge (where the api-server listens)."""
        return self.network.host_ip

    @property
    def server(self) -> str:
        return f"https://{self.host_ip}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (``kubernetes-admin``, ``system:masters``)."""
        return self.dir / "admin.kubeconfig"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def processes(self) -> list[Process]:
        procs = [self.apiserver, self.controller_manager, self.scheduler]
        return [p for p in procs if p is not None] + [n.kubelet for n in self.nodes]

    def logs(self, tail: int = 60) -> str:
        """The tail of every component's log (for assertion messages)."""
        return "\n".join(f"--- {p.name} ---\n{p.log(tail)}" for p in self.processes())

    # -- start ---------------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> Cluster:
        try:
            self._start(timeout)
        except BaseException:
            self.teardown(keep_logs=True)
            raise
        return self

    def _start(self, timeout: float) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.network.create()
        self._accept_bridged_forwarding()
        for i in range(self.node_count):
            self.network.add_node(f"node-{i + 1}")
        self.cluster_cidr = free_subnet(prefixlen=16, avoid=[self.network.subnet])
        self.docker = PrivateDocker()
        self.etcd = EtcdServer()
        # the slow parts in parallel: dockerd + demo image, etcd, certificates
        with ThreadPoolExecutor(3) as pool:
            docker_up = pool.submit(self._start_docker, self.docker)
            etcd_up = pool.submit(self.etcd.start)
            pki_made = pool.submit(self._make_pki)
            pki_made.result()
            etcd_up.result()
            self._start_apiserver()
            self._start_control_plane()
            docker_up.result()
        for net in self.network.nodes:
            self.nodes.append(Node(net, self._kubelet(net)))
        for node in self.nodes:
            node.kubelet.start()
        asyncio.run(self._wait_nodes_ready(timeout))

    def _accept_bridged_forwarding(self) -> None:
        """With br_netfilter loaded, frames between two ports of our bridge (node to node) pass
        the host's iptables FORWARD chain, whose policy a system dockerd sets to DROP (Debian's
        docker.io starts one). One rule accepts exactly our bridge's own traffic; removed at
        teardown by the same spec."""
        try:
            bridged = Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1"
        except OSError:
            bridged = False  # br_netfilter not loaded: bridged frames skip iptables
        if not bridged or shutil.which("iptables") is None:
            return
        rule = ["FORWARD", "-i", self.network.bridge, "-o", self.network.bridge, "-j", "ACCEPT"]
        if subprocess.run(["iptables", "-w", "-I", *rule], capture_output=True, check=False).returncode == 0:
            self.forward_rule = rule

    @staticmethod
    def _start_docker(docker: PrivateDocker) -> None:
        docker.start()
        asyncio.run(build_demo(docker.endpoint, DEMO_IMAGE))

    def _make_pki(self) -> None:
        d = self.dir / "pki"
        self.port = free_port(self.host_ip)
        kpki.quickstart(d, [self.host_ip, "127.0.0.1", "localhost"], self.server)
        self.pki = PKI(d)
        shutil.copyfile(d / "admin.kubeconfig", self.kubeconfig)

    def _start_apiserver(self) -> None:
        assert self.pki is not None and self.etcd is not None
        args = apiserver_args(self.etcd.endpoint, self.port, self.pki.dir, bind=self.host_ip)
        args += [
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # as kubeadm: kubelets may only touch their own Node and the pods bound to it
            "--enable-admission-plugins=NodeRestriction",
        ]
        self.apiserver = Process(
            "apiserver", [sys.executable, "-m", "kubeha", "apiserver", *args], self.logs_dir / "apiserver.log"
        )
        self.apiserver.start()
        ctx = client_ssl_context(self.pki.ca_crt, self.pki.admin_crt, self.pki.admin_key)
        wait_http_ok(f"{self.server}/readyz", ctx, timeout=60, proc=self.apiserver.proc)

    def _start_control_plane(self) -> None:
        assert self.pki is not None
        d = self.pki.dir
        cm = [
            f"--kubeconfig={self.kubeconfig}",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={self.cluster_cidr}",
            "--node-cidr-mask-size=24",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--root-ca-file={d / 'ca.crt'}",
            f"--cluster-signing-cert-file={d / 'ca.crt'}",
            f"--cluster-signing-key-file={d / 'ca.key'}",
        ]
        self.controller_manager = Process(
            "controller-manager",
            [sys.executable, "-m", "kubeha", "controller-manager", *cm],
            self.logs_dir / "controller-manager.log",
        )
        self.scheduler = Process(
            "scheduler",
            [sys.executable, "-m", "kubeha", "scheduler", f"--kubeconfig={self.kubeconfig}"],
            self.logs_dir / "scheduler.log",
        )
        self.controller_manager.start()
        self.scheduler.start()

    def add_node(self, name: str, kubelet_args: list[str] | None = None) -> Node:
        """One more node (namespace on the bridge + kubelet, started); it does not wait for the
        Node. :meth:`remove_node` takes it away again (teardown does too)."""
        node = Node(self.network.add_node(name), self._kubelet_for(name, kubelet_args or []))
        self.nodes.append(node)
        node.kubelet.start()
        return node

    def remove_node(self, node: Node) -> None:
        """Stop its kubelet, remove its containers and its namespace (the Node object is the
        caller's to delete)."""
        node.kubelet.stop()
        kill_host_containers(node.kubelet.root_dir)
        if self.docker is not None:
            ids = subprocess.run(
                ["docker", "-H", self.docker.endpoint, "ps", "-aq", "--filter", f"label={NODE_LABEL}={node.name}"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            if ids:
                subprocess.run(
                    ["docker", "-H", self.docker.endpoint, "rm", "-f", *ids], capture_output=True, check=False
                )
        ip("netns", "del", node.netns, check=False)
        ip("link", "del", node.net.host_veth, check=False)
        self.network.nodes.remove(node.net)
        self.nodes.remove(node)

    def _kubelet_for(self, name: str, extra: list[str]) -> Kubelet:
        net = next(n for n in self.network.nodes if n.name == name)
        k = self._kubelet(net)
        k.argv += extra
        return k

    def _kubelet(self, net: NodeNet) -> Kubelet:
        assert self.pki is not None and self.docker is not None
        d = self.dir / "nodes" / net.name
        d.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.pki.kubeconfig(
            self.server, d / "kubelet.kubeconfig", cn=f"system:node:{net.name}", orgs=["system:nodes"]
        )
        argv = [
            sys.executable,
            "-m",
            "kubeha",
            "kubelet",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={net.name}",
            f"--node-ip={net.ip}",
            f"--port={KUBELET_PORT}",
            f"--client-ca-file={self.pki.ca_crt}",
            f"--root-dir={d / 'root'}",
            f"--container-runtime-endpoint={self.docker.endpoint}",
            "--node-status-update-frequency=1s",
        ]
        # only the network namespace: the kubelet's mounts (tmpfs volumes) must stay visible to dockerd
        wrapped = ["nsenter", f"--net=/run/netns/{net.netns}", "--", *argv]
        return Kubelet(f"kubelet-{net.name}", wrapped, self.logs_dir / f"kubelet-{net.name}.log", root_dir=d / "root")

    async def _wait_nodes_ready(self, within: float) -> None:
        async with ApiClient(load_kubeconfig(str(self.kubeconfig))) as client:

            async def ready() -> bool:
                for p in self.processes():
                    if not p.alive():
                        raise RuntimeError(f"{p.name} exited:\n{p.log()}")
                try:
                    nodes = {n["metadata"]["name"]: n for n in (await client.list(NODES)).get("items") or ()}
                except (StatusError, OSError):
                    return False
                for node in self.nodes:
                    obj = nodes.get(node.name)
                    if obj is None or not is_ready(obj) or not (obj.get("spec") or {}).get("podCIDR"):
                        return False
                    node.pod_cidr = str(obj["spec"]["podCIDR"])
                return True

            try:
                await waiting.eventually(ready, within=within, every=0.3)
            except AssertionError as e:
                raise RuntimeError(f"nodes not ready: {e}\n{self.logs()}") from None

    # -- teardown ------------------------------------------------------------------------------

    def teardown(self, keep_logs: bool = False) -> None:
        """Stop every process (kubelets first), remove every container (with the dockerd), the
        namespaces, links and the temporary directory; ``keep_logs`` copies the logs aside."""
        for node in self.nodes:
            node.kubelet.stop()
            kill_host_containers(node.kubelet.root_dir)
        for p in (self.scheduler, self.controller_manager, self.apiserver):
            if p is not None:
                p.stop()
        if self.docker is not None:
            if keep_logs and (self.docker.dir / "dockerd.log").exists():
                with contextlib.suppress(OSError):
                    shutil.copyfile(self.docker.dir / "dockerd.log", self.logs_dir / "dockerd.log")
            self.docker.stop()
        if self.etcd is not None:
            self.etcd.close()
        # after the containers: their veths are in the node namespaces
        self.network.remove()
        if self.forward_rule:
            subprocess.run(["iptables", "-w", "-D", *self.forward_rule], capture_output=True, check=False)
            self.forward_rule = []
        if keep_logs and self.logs_dir.exists():
            dest = LOGS_KEPT / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.prefix}"
            with contextlib.suppress(OSError):
                shutil.copytree(self.logs_dir, dest)
                print(f"e2e cluster logs kept in {dest}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


def is_ready(node: Obj) -> bool:
    conds = (node.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def in_cidr(ip: str, cidr: str) -> bool:
    return bool(ip) and ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
