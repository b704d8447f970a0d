"""``kubeha controller-manager``: every controller in one leader-elected process.

Like kube-controller-manager: it imports every controller module (each registers itself), waits
for the ``kube-system/kube-controller-manager`` Lease, then starts the enabled controllers and the
shared informers. Losing the lease stops everything and exits non-zero, since caches and
in-flight work can no longer be trusted; the process supervisor restarts it as a standby.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import logging
import pkgutil
import signal
import sys

import kubeha.controllers as controllers_pkg
from kubeha.client.kubeconfig import load_kubeconfig
from kubeha.client.rest import ApiClient
from kubeha.controllers.context import CONTROLLERS, ControllerContext, ControllerOptions, enabled
from kubeha.machinery import process
from kubeha.machinery.informer import SharedInformerFactory
from kubeha.machinery.leaderelection import LeaderElectionConfig, add_leader_election_flags
from kubeha.machinery.tasks import TaskSet

log = logging.getLogger("kubeha.controller-manager")

LEASE_NAME = "kube-controller-manager"
# exit code when leadership is lost (upstream exits via klog.Fatal: 255)
EXIT_LEADERSHIP_LOST = 255


def load_controllers() -> list[str]:
    """Import every module of ``kubeha.controllers`` so their ``@register`` run; returns names."""
    for mod in pkgutil.iter_modules(controllers_pkg.__path__):
        if mod.name in ("manager", "context"):
            continue
        try:
            importlib.import_module(f"{controllers_pkg.__name__}.{mod.name}")
        except Exception:
            # one broken controller module must not take every other controller down
            log.exception("loading controller module %s failed", mod.name)
    return sorted(CONTROLLERS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubeha controller-manager", description="The kubeha controller manager (kube-controller-manager twin)."
    )
    d = ControllerOptions()
    p.add_argument("--kubeconfig", default=None, help="kubeconfig with the api-server address and credentials")
    p.add_argument(
        "--controllers",
        default="*",
        help="comma-separated controllers to enable: '*' = all on by default, 'foo' enables, '-foo' disables",
    )
    p.add_argument("--cluster-cidr", default=d.cluster_cidr, help="CIDR range for pods")
    p.add_argument(
        "--allocate-node-cidrs", type=process.parse_bool, nargs="?", const=True, default=d.allocate_node_cidrs
    )
    p.add_argument("--node-cidr-mask-size", type=int, default=d.node_cidr_mask_size)
    p.add_argument("--service-cluster-ip-range", default=d.service_cluster_ip_range)
    p.add_argument("--cluster-signing-cert-file", default=d.cluster_signing_cert_file)
    p.add_argument("--cluster-signing-key-file", default=d.cluster_signing_key_file)
    p.add_argument("--cluster-signing-duration", type=process.parse_duration, default=d.cluster_signing_duration)
    p.add_argument("--node-monitor-period", type=process.parse_duration, default=d.node_monitor_period)
    p.add_argument("--node-monitor-grace-period", type=process.parse_duration, default=d.node_monitor_grace_period)
    p.add_argument("--node-startup-grace-period", type=process.parse_duration, default=d.node_startup_grace_period)
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=d.terminated_pod_gc_threshold)
    p.add_argument("--root-ca-file", default=d.root_ca_file, help="CA published to every namespace as kube-root-ca.crt")
    for name in ("deployment", "replicaset", "gc", "endpoint", "namespace"):
        flag = f"--concurrent-{name}-syncs"
        p.add_argument(flag, type=int, default=getattr(d, f"concurrent_{name}_syncs"))
    for name in ("daemonset", "job", "statefulset", "cron-job", "service-endpoint", "endpointslice", "serviceaccount"):
        # accepted for compatibility; those controllers share concurrent_syncs
        p.add_argument(f"--concurrent-{name}-syncs", type=int, default=None, dest=f"concurrent_extra_{name}")
    p.add_argument("--kube-api-qps", type=float, default=0, help="client rate limit (0: none)")
    p.add_argument("--kube-api-burst", type=int, default=0)
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    add_leader_election_flags(p, LEASE_NAME)
    return p


def options_from_args(args: argparse.Namespace) -> ControllerOptions:
    return ControllerOptions(
        cluster_cidr=args.cluster_cidr,
        allocate_node_cidrs=args.allocate_node_cidrs,
        node_cidr_mask_size=args.node_cidr_mask_size,
        service_cluster_ip_range=args.service_cluster_ip_range,
        node_monitor_period=args.node_monitor_period,
        node_monitor_grace_period=args.node_monitor_grace_period,
        node_startup_grace_period=args.node_startup_grace_period,
        concurrent_deployment_syncs=args.concurrent_deployment_syncs,
        concurrent_replicaset_syncs=args.concurrent_replicaset_syncs,
        concurrent_gc_syncs=args.concurrent_gc_syncs,
        concurrent_endpoint_syncs=args.concurrent_endpoint_syncs,
        concurrent_namespace_syncs=args.concurrent_namespace_syncs,
        cluster_signing_cert_file=args.cluster_signing_cert_file,
        cluster_signing_key_file=args.cluster_signing_key_file,
        cluster_signing_duration=args.cluster_signing_duration,
        terminated_pod_gc_threshold=args.terminated_pod_gc_threshold,
        root_ca_file=args.root_ca_file,
    )


async def run_controllers(ctx: ControllerContext, names: list[str]) -> None:
    """Start the named controllers as guarded tasks, then the informers; run until cancelled."""
    tasks = TaskSet("controller-manager", log)
    try:
        for name in names:
            spec = CONTROLLERS[name]
            log.info("starting controller %s", name)
            tasks.guard(f"controller {name}", functools.partial(spec.start, ctx), restart_on_return=True)
        # let every start function run up to its first await, so it has asked for its informers
        await asyncio.sleep(0)
        await ctx.informers.start()
        await asyncio.Event().wait()
    finally:
        await tasks.stop(timeout=5.0)
        await ctx.informers.stop()
        for rec in ctx.recorders.values():
            with contextlib.suppress(Exception):
                await rec.stop(flush=True)


async def serve(args: argparse.Namespace) -> int:
    load_controllers()
    names = enabled([c.strip() for c in args.controllers.split(",") if c.strip()])
    config = load_kubeconfig(args.kubeconfig)
    client = ApiClient(
        config, user_agent="kube-controller-manager/kubeha", qps=args.kube_api_qps, burst=args.kube_api_burst
    )
    ctx = ControllerContext(client, SharedInformerFactory(client), options_from_args(args))
    le = LeaderElectionConfig.from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    lost = False

    async def lead() -> None:
        log.info("leading: starting controllers %s", ",".join(names))
        await run_controllers(ctx, names)

    def stopped() -> None:
        nonlocal lost
        if not stop.is_set():
            lost = True
            log.error("leaderelection lost")
        stop.set()

    try:
        if le.enabled:
            elector = le.elector(client, lead, on_stopped_leading=stopped)
            work: asyncio.Task[None] = loop.create_task(elector.run(), name="leader-election")
        else:
            work = loop.create_task(lead(), name="controllers")
        waiter = loop.create_task(stop.wait())
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
        for t in (work, waiter):
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        if work.done() and not work.cancelled() and work.exception() is None and not stop.is_set():
            lost = True  # the elector returned by itself: leadership ended
    finally:
        await client.close()
    return EXIT_LEADERSHIP_LOST if lost else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    process.setup_logging(args.v)
    return process.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
