"""``kubeha kubelet``: flags as upstream's kubelet, then run the node agent until SIGTERM.

SIGTERM stops the kubelet only: the containers it runs keep running and are re-adopted by the
next kubelet on this node (as with upstream's kubelet and its container runtime).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.kubeconfig import load_kubeconfig
from kubeha.client.rest import ApiClient
from kubeha.kubelet import bootstrap
from kubeha.kubelet.kubelet import Kubelet, KubeletConfig
from kubeha.kubelet.node import NodeConfig, NodeManager, detect_node_ip
from kubeha.kubelet.runtime.docker import DockerRuntime
from kubeha.kubelet.runtime.dockerspec import DEFAULT_SANDBOX_IMAGE
from kubeha.kubelet.runtime.host import HostRuntime
from kubeha.kubelet.runtime.multi import MultiRuntime
from kubeha.kubelet.server import KubeletServer
from kubeha.kubelet.server import ServerConfig as HttpConfig
from kubeha.kubelet.volumes import VolumeManager
from kubeha.machinery import process

log = logging.getLogger("kubeha.kubelet")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid label {item!r}: want key=value")
        out[key] = value
    return out


def parse_taints(text: str) -> list[dict[str, str]]:
    """``key[=value]:Effect,...`` (``--register-with-taints``)."""
    out: list[dict[str, str]] = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        kv, sep, effect = item.rpartition(":")
        key, _, value = kv.partition("=")
        if not sep or not key or effect not in TAINT_EFFECTS:
            raise ValueError(f"invalid taint {item!r}: want key[=value]:{'|'.join(TAINT_EFFECTS)}")
        out.append({"key": key, "effect": effect, **({"value": value} if value else {})})
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeha kubelet", description="Run the pods bound to this node.")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig for the api-server (default: $KUBECONFIG)")
    p.add_argument(
        "--bootstrap-kubeconfig",
        default="",
        help="kubeconfig (bootstrap token) to request a client certificate with when --kubeconfig is missing "
        "or its certificate expired; the result is written to --kubeconfig",
    )
    p.add_argument("--cert-dir", default="", help="client certificate directory (default: <root-dir>/pki)")
    p.add_argument(
        "--rotate-certificates",
        type=process.parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="request a new client certificate at 70-90%% of the current one's lifetime",
    )
    p.add_argument("--hostname-override", default="", help="node name (default: the host name)")
    p.add_argument("--node-ip", default="", help="the node's InternalIP (default: detected)")
    p.add_argument("--node-labels", default="", help="labels to add at registration, k=v,...")
    p.add_argument("--register-with-taints", default="", help="taints at registration, k=v:Effect,...")
    p.add_argument("--pod-manifest-path", default="", help="directory of static pod manifests")
    p.add_argument("--root-dir", default="/var/lib/kubeha/kubelet", help="kubelet state directory")
    p.add_argument("--cluster-dns", default="", help="comma-separated DNS server IPs for pods")
    p.add_argument("--cluster-domain", default="cluster.local", help="the cluster's DNS domain")
    p.add_argument("--max-pods", type=int, default=110, help="pods this node can run")
    p.add_argument(
        "--container-runtime-endpoint",
        default="",
        help="the Docker socket (unix:///var/run/docker.sock); empty: host-runtime pods only",
    )
    p.add_argument(
        "--cni-bin-dir", default="/usr/lib/cni:/opt/cni/bin", help="CNI plugin directories (colon-separated)"
    )
    p.add_argument("--cni-conf-dir", default="", help="CNI network config directory (default: generated from podCIDR)")
    p.add_argument(
        "--host-gw-routes",
        type=process.parse_bool,
        nargs="?",
        const=True,
        default=True,
        help="with the Docker runtime: route to every other node's podCIDR via its InternalIP (flannel host-gw)",
    )
    p.add_argument(
        "--pod-infra-container-image",
        default=DEFAULT_SANDBOX_IMAGE,
        help="the pod sandbox image (kubeha image build-demo)",
    )
    p.add_argument(
        "--node-status-update-frequency", type=process.parse_duration, default=10.0, help="node status check period"
    )
    p.add_argument("--node-lease-duration-seconds", type=int, default=40, help="lease duration (renewed every 1/4)")
    p.add_argument("--sync-frequency", type=process.parse_duration, default=60.0, help="max period between pod syncs")
    p.add_argument("--port", type=int, default=10250, help="HTTPS port for logs/exec/port-forward (0: do not serve)")
    p.add_argument("--address", default="0.0.0.0", help="address the HTTPS server listens on")
    p.add_argument(
        "--tls-cert-file", default="", help="serving certificate (default: self-signed under --root-dir/pki)"
    )
    p.add_argument("--tls-private-key-file", default="", help="key of --tls-cert-file")
    p.add_argument("--client-ca-file", default="", help="CA bundle that signs the client certificates accepted")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (0 info, 2+ debug)")
    return p


async def serve(args: argparse.Namespace) -> int:
    name = (args.hostname_override or socket.gethostname()).lower()
    node_ip = args.node_ip or detect_node_ip()
    cert_dir = args.cert_dir or os.path.join(args.root_dir, "pki")
    if args.bootstrap_kubeconfig:
        try:
            await bootstrap.load_client_cert(args.kubeconfig, args.bootstrap_kubeconfig, cert_dir, name)
        except (bootstrap.BootstrapError, StatusError, OSError) as e:
            # as upstream: the kubelet exits and its supervisor starts it again (same key, same request)
            log.error("failed to run kubelet: unable to load bootstrap kubeconfig or obtain a certificate: %s", e)
            return 1
    client = ApiClient(load_kubeconfig(args.kubeconfig), user_agent=f"kubelet/{name}")
    host = HostRuntime(args.root_dir, node_ip)
    runtime: Any = host
    docker: DockerRuntime | None = None
    node_ref: list[NodeManager] = []
    if args.container_runtime_endpoint:
        docker = DockerRuntime(
            args.container_runtime_endpoint,
            name,
            args.root_dir,
            node_ip=node_ip,
            pod_cidr=lambda: node_ref[0].pod_cidr if node_ref else "",
            cni_bin_dirs=[d for d in args.cni_bin_dir.split(":") if d],
            cni_conf_dir=args.cni_conf_dir,
            cluster_dns=[s for s in args.cluster_dns.split(",") if s],
            cluster_domain=args.cluster_domain,
            sandbox_image=args.pod_infra_container_image,
        )
        await docker.connect()
        runtime = MultiRuntime({"docker": docker, "host": host}, default="docker")
    node_cfg = NodeConfig(
        name=name,
        node_ip=node_ip,
        runtime_version=runtime.version,
        max_pods=args.max_pods,
        labels=parse_labels(args.node_labels),
        taints=parse_taints(args.register_with_taints),
        root_dir=args.root_dir,
        port=args.port,
        cni=docker is not None,
        cni_conf_dir=args.cni_conf_dir,
    )
    node = NodeManager(
        client,
        node_cfg,
        lease_duration=args.node_lease_duration_seconds,
        status_frequency=args.node_status_update_frequency,
    )
    node_ref.append(node)
    cfg = KubeletConfig(
        node_name=name,
        node_ip=node_ip,
        root_dir=args.root_dir,
        pod_manifest_path=args.pod_manifest_path,
        sync_frequency=args.sync_frequency,
        cluster_dns=[s for s in args.cluster_dns.split(",") if s],
        cluster_domain=args.cluster_domain,
        host_gw_routes=docker is not None and args.host_gw_routes,
    )
    kubelet = Kubelet(client, cfg, runtime, node)
    if docker is not None:
        kubelet.volumes = VolumeManager(
            args.root_dir, kubelet.lookup_config, kubelet.request_token, lambda: dict(node.allocatable)
        )
    server = None
    if args.port:
        http_cfg = HttpConfig(
            node_name=name,
            root_dir=args.root_dir,
            node_ip=node_ip,
            address=args.address,
            port=args.port,
            tls_cert_file=args.tls_cert_file,
            tls_private_key_file=args.tls_private_key_file,
            client_ca_file=args.client_ca_file,
        )

        def running_pods() -> list[dict[str, object]]:
            return [p for uid in list(kubelet.workers.uids()) if (p := kubelet.workers.pod(uid)) is not None]

        server = KubeletServer(http_cfg, runtime, running_pods, client)
        try:
            await server.start()
        except OSError as e:
            # the pods matter more than their logs: keep running, loudly
            log.error("cannot serve on port %d: %s", args.port, e)
            server = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(kubelet.run(), name="kubelet")
    rotator = None
    if args.rotate_certificates:
        boot_cfg = None
        if args.bootstrap_kubeconfig:
            try:
                boot_cfg = bootstrap.load_bootstrap_config(args.bootstrap_kubeconfig)
            except bootstrap.BootstrapError as e:
                log.warning("bootstrap kubeconfig %s unusable for renewals: %s", args.bootstrap_kubeconfig, e)
        rotator = asyncio.create_task(
            bootstrap.ClientCertRotator(client, cert_dir, name, bootstrap=boot_cfg).run(), name="cert-rotation"
        )
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()
            return 1
        log.info("stopping (containers keep running)")
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        return 0
    finally:
        stopper.cancel()
        if rotator is not None:
            rotator.cancel()
        if server is not None:
            await server.stop()
        await client.close()
        if docker is not None:
            await docker.close()


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    process.setup_logging(args.v, debug_from=2)
    try:
        parse_labels(args.node_labels)
        parse_taints(args.register_with_taints)
    except ValueError as e:
        parser.error(str(e))
    if args.bootstrap_kubeconfig and not args.kubeconfig:
        parser.error("--bootstrap-kubeconfig needs --kubeconfig: the path the obtained credentials are written to")
    # asyncio's own loop: the host runtime's container processes and ptys stop being supervised
    # correctly under uvloop (probes and restarts never happen; seen in test_kubelet_host)
    return process.run(serve(args), use_uvloop=False)
