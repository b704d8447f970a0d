"""``kubeha fake-nodes``: many Nodes without a kubelet, for tests and benchmarks (like kwok).

One process plays the kubelet of N nodes:

- registers the Nodes (capacity, addresses, node info, Ready conditions, labels and taints);
- keeps each node's ``kube-node-lease`` Lease renewed from one task, the renewals spread evenly
  over the heartbeat period so the api-server sees a steady trickle instead of bursts; on the same
  tick it re-reports Ready when the node lifecycle controller marked the node otherwise (a
  kubelet's status sync);
- watches bound pods (one watch on all pods with ``spec.nodeName!=``, filtered by its node set),
  reports those on its nodes Running and Ready after ``--pod-startup``, and confirms the deletion
  of terminating ones at once (DELETE with grace period 0, as a kubelet does after stopping them).

Writes are merge patches (no read-modify-write) with bounded concurrency. Nothing polls: pods
and nodes come from watches, and the only timer is the heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubeha.api.errors import StatusError
from kubeha.client.kubeconfig import load_kubeconfig
from kubeha.client.resources import LEASES, NODES, PODS
from kubeha.client.rest import ApiClient
from kubeha.fakenode import objects
from kubeha.fakenode.objects import NODE_LEASE_NAMESPACE, NodeTemplate, Obj, PodIPs
from kubeha.machinery import process
from kubeha.machinery.controller import Controller, Requeue
from kubeha.machinery.informer import SharedInformer, SharedInformerFactory
from kubeha.machinery.tasks import TaskSet

log = logging.getLogger("kubeha.fakenode")


@dataclass
class FakeNodeOptions:
    kubeconfig: str | None = None
    count: int = 1
    name_prefix: str = "fake-"
    start_index: int = 0
    template: NodeTemplate = field(default_factory=NodeTemplate)
    lease_duration: int = 40
    heartbeat: float = 10.0  # 0: create the leases once, never renew them
    node_status_report: float = 300.0  # upstream nodeStatusReportFrequency
    pod_startup: float = 0.0
    manage_pods: bool = True
    concurrency: int = 16
    cleanup: bool = False

    def node_names(self) -> list[str]:
        return [f"{self.name_prefix}{i}" for i in range(self.start_index, self.start_index + self.count)]


def _now() -> datetime:
    return datetime.now(UTC)


class FakeNodes:
    def __init__(self, client: ApiClient, opts: FakeNodeOptions) -> None:
        self.client = client
        self.opts = opts
        self.names = opts.node_names()
        self.name_set = frozenset(self.names)
        self.uids: dict[str, str] = {}
        self._sem = asyncio.Semaphore(max(1, opts.concurrency))
        self._tasks = TaskSet("fake-nodes", log)
        self._factory = SharedInformerFactory(client)
        self.nodes: SharedInformer = self._factory.informer_for(NODES)
        self.pods: SharedInformer | None = None
        self._pod_ips: dict[str, PodIPs] = {}  # node -> its pod addresses
        self._pod_node: dict[str, str] = {}  # pod key -> node, for releasing addresses
        self._first_seen: dict[str, float] = {}  # pod key -> when we first saw it bound here
        self._last_status: dict[str, float] = {}  # node -> monotonic time of our last status write
        self._pod_ctl: Controller | None = None
        self.started_pods = 0
        self.deleted_pods = 0
        self.registered = asyncio.Event()
        if opts.manage_pods:
            # Bound pods only: pending pods (a benchmark's thousands) never reach this process.
            self.pods = self._factory.informer_for(PODS, namespace=None, field_selector="spec.nodeName!=")
            self._pod_ctl = Controller("fake-kubelet", self._sync_pod, workers=max(1, opts.concurrency))
            self.pods.add_event_handler(
                on_add=self._on_pod, on_update=lambda _old, new: self._on_pod(new), on_delete=self._on_pod_gone
            )

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Register the nodes, then heartbeat and run pods until cancelled."""
        await self._factory.start()
        await self.register_all()
        self.registered.set()
        log.info("registered %d nodes (%s...)", len(self.names), self.names[0] if self.names else "")
        if self.opts.heartbeat > 0:
            self._tasks.guard("heartbeat", self._heartbeat_loop)
        if self._pod_ctl is not None and self.pods is not None:
            self._tasks.spawn("pods", self._pod_ctl.run(wait_for=[self.pods]))
        try:
            await asyncio.Event().wait()
        finally:
            await self._tasks.stop(timeout=5)
            await self._factory.stop()

    async def cleanup(self) -> None:
        """Delete our nodes and their leases (``--cleanup`` on SIGTERM)."""

        async def one(name: str) -> None:
            async with self._sem:
                for res, ns in ((NODES, None), (LEASES, NODE_LEASE_NAMESPACE)):
                    with contextlib.suppress(StatusError, ConnectionError):
                        await self.client.delete(res, name, ns)

        await asyncio.gather(*(one(n) for n in self.names))

    # -- registration ---------------------------------------------------------------------------------------

    async def register_all(self) -> None:
        await asyncio.gather(*(self._register(n) for n in self.names))

    async def _register(self, name: str) -> None:
        tpl = self.opts.template
        async with self._sem:
            now = _now()
            try:
                node = await self.client.create(NODES, objects.new_node(name, tpl, now))
            except StatusError as e:
                if e.code != 409:
                    raise
                # A node from an earlier run: refresh labels and report it healthy (a restarted
                # kubelet does the same; taints are only set at first registration, as upstream).
                meta = {"labels": objects.node_labels(name, tpl), "annotations": objects.node_annotations()}
                node = await self.client.patch(NODES, name, {"metadata": meta})
                await self.client.patch(NODES, name, objects.node_status_patch(node, now), subresource="status")
            self.uids[name] = str(node["metadata"].get("uid") or "")
            self._last_status[name] = time.monotonic()
            lease = objects.new_lease(name, self.uids[name], self.opts.lease_duration, now)
            try:
                await self.client.create(LEASES, lease, NODE_LEASE_NAMESPACE)
            except StatusError as e:
                if e.code != 409:
                    raise
                await self._renew(name)

    # -- heartbeats -----------------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """One task renews every lease, node i at offset i * period / N within each period."""
        period = self.opts.heartbeat
        step = period / max(1, len(self.names))
        inflight: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        next_at = loop.time() + step
        while True:
            for name in self.names:
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at = max(next_at + step, loop.time())  # a stalled loop does not burst to catch up
                if len(inflight) >= self.opts.concurrency:
                    # the api-server is slower than our schedule: wait instead of piling up requests
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                task = loop.create_task(self._beat(name))
                inflight.add(task)
                task.add_done_callback(inflight.discard)

    async def _beat(self, name: str) -> None:
        try:
            await self._renew(name)
            node = self.nodes.indexer.get(name)
            stale = time.monotonic() - self._last_status.get(name, 0.0) >= self.opts.node_status_report
            if node is not None and (stale or not objects.node_ready(node)):
                await self.client.patch(NODES, name, objects.node_status_patch(node, _now()), subresource="status")
                self._last_status[name] = time.monotonic()
        except (StatusError, ConnectionError) as e:
            log.warning("heartbeat for node %s failed: %s", name, e)

    async def _renew(self, name: str) -> None:
        now = _now()
        try:
            await self.client.patch(
                LEASES, name, objects.lease_renewal(name, self.opts.lease_duration, now), NODE_LEASE_NAMESPACE
            )
        except StatusError as e:
            if e.code != 404:
                raise
            lease = objects.new_lease(name, self.uids.get(name), self.opts.lease_duration, now)
            await self.client.create(LEASES, lease, NODE_LEASE_NAMESPACE)

    # -- pods -----------------------------------------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self.name_set or self._pod_ctl is None:
            return
        key = objects.pod_key(pod)
        ip = (pod.get("status") or {}).get("podIP")
        if ip and key not in self._pod_node:
            self._ips_for(node).claim(key, ip)  # running before we (re)started
            self._pod_node[key] = node
        if objects.is_terminating(pod) or objects.needs_start(pod):
            self._first_seen.setdefault(key, time.monotonic())
            self._pod_ctl.queue.add(key)

    def _on_pod_gone(self, pod: Obj) -> None:
        key = objects.pod_key(pod)
        self._first_seen.pop(key, None)
        node = self._pod_node.pop(key, None)
        if node is not None:
            self._ips_for(node).release(key)

    def _ips_for(self, node: str) -> PodIPs:
        ips = self._pod_ips.get(node)
        cidr = (((self.nodes.indexer.get(node) or {}).get("spec")) or {}).get("podCIDR")
        if ips is None or (cidr and ips.cidr != cidr and not ips.used):
            ips = self._pod_ips[node] = PodIPs(cidr or objects.fallback_pod_cidr(node))
        return ips

    async def _sync_pod(self, key: str) -> Requeue | None:
        assert self.pods is not None
        pod = self.pods.indexer.get(key)
        if pod is None:
            return None
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self.name_set:
            return None
        ns, name = key.split("/", 1)
        if objects.is_terminating(pod):
            uid = (pod.get("metadata") or {}).get("uid")
            async with self._sem:
                try:
                    await self.client.delete(
                        PODS, name, ns, grace_period_seconds=0, preconditions={"uid": uid} if uid else None
                    )
                except StatusError as e:
                    if e.code not in (404, 409):  # gone already, or a new pod by that name
                        raise
            self.deleted_pods += 1
            return None
        if not objects.needs_start(pod):
            return None
        now = time.monotonic()
        waited = now - self._first_seen.setdefault(key, now)
        if waited < self.opts.pod_startup:
            return Requeue(after=self.opts.pod_startup - waited)
        pod_ip = self._ips_for(node).allocate(key)
        self._pod_node[key] = node
        patch = objects.running_status_patch(pod, objects.node_ip(node), pod_ip, _now())
        async with self._sem:
            try:
                await self.client.patch(PODS, name, patch, ns, subresource="status")
            except StatusError as e:
                if e.code != 404:
                    raise
                return None
        self.started_pods += 1
        return None


# -- command line ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubeha fake-nodes", description="Register nodes that have no kubelet (kwok-like)."
    )
    p.add_argument("--kubeconfig", default=None, help="kubeconfig of an admin-like user (default: $KUBECONFIG)")
    p.add_argument("--count", type=int, default=1, help="number of nodes")
    p.add_argument("--name-prefix", default="fake-", help="node names are <prefix><index>")
    p.add_argument("--start-index", type=int, default=0, help="index of the first node")
    p.add_argument("--cpu", default="32", help="cpu capacity of each node")
    p.add_argument("--memory", default="256Gi", help="memory capacity of each node")
    p.add_argument("--pods", default="110", help="pod capacity of each node")
    p.add_argument("--labels", default="", help="extra node labels, k=v,...")
    p.add_argument("--taints", default="", help="taints at registration, k=v:Effect,...")
    p.add_argument("--kubelet-version", default=NodeTemplate.kubelet_version, help="reported kubelet version")
    p.add_argument("--lease-duration", type=int, default=40, help="node lease duration in seconds")
    p.add_argument(
        "--heartbeat",
        type=process.parse_duration,
        default=10.0,
        help="lease renewal period (0: never renew; default 10s)",
    )
    p.add_argument(
        "--node-status-report-frequency",
        type=process.parse_duration,
        default=300.0,
        help="re-post node status this often even when unchanged (default 5m)",
    )
    p.add_argument("--pod-startup", type=process.parse_duration, default=0.0, help="delay before a bound pod runs")
    p.add_argument(
        "--manage-pods",
        type=lambda s: s.lower() in ("1", "t", "true", "yes"),
        nargs="?",
        const=True,
        default=True,
        help="run pods bound to the nodes (default true; --manage-pods=false: nodes and leases only)",
    )
    p.add_argument("--concurrency", type=int, default=16, help="maximum API requests in flight")
    p.add_argument("--cleanup", action="store_true", help="delete the nodes and their leases on SIGTERM")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (0 info, 2+ debug)")
    return p


def options_from_args(args: argparse.Namespace) -> FakeNodeOptions:
    template = NodeTemplate(
        cpu=args.cpu,
        memory=args.memory,
        pods=args.pods,
        labels=objects.parse_labels(args.labels),
        taints=objects.parse_taints(args.taints),
        kubelet_version=args.kubelet_version,
    )
    return FakeNodeOptions(
        kubeconfig=args.kubeconfig,
        count=args.count,
        name_prefix=args.name_prefix,
        start_index=args.start_index,
        template=template,
        lease_duration=args.lease_duration,
        heartbeat=args.heartbeat,
        node_status_report=args.node_status_report_frequency,
        pod_startup=args.pod_startup,
        manage_pods=args.manage_pods,
        concurrency=max(1, args.concurrency),
        cleanup=args.cleanup,
    )


async def serve(opts: FakeNodeOptions) -> int:
    client = ApiClient(load_kubeconfig(opts.kubeconfig), user_agent="kubeha-fake-nodes")
    fake = FakeNodes(client, opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(fake.run(), name="fake-nodes")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()  # a failed registration: raise it
            return 1
        log.info("stopping")
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        if opts.cleanup:
            await fake.cleanup()
        return 0
    finally:
        stopper.cancel()
        await client.close()


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    process.setup_logging(args.v, debug_from=2)
    try:
        opts = options_from_args(args)
    except ValueError as e:
        build_parser().error(str(e))
    return process.run(serve(opts))
