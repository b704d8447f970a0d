"""``kubeha scheduler``: flags, informers, leader election around :class:`Scheduler`.

Informers run on every replica (a standby keeps a warm cache and queue); only the leader runs
the scheduling loop. Losing the lease cancels the loop at once and the process exits non-zero,
as upstream's kube-scheduler does: its cache may no longer be trusted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from kubeha.client.kubeconfig import load_kubeconfig
from kubeha.client.resources import NAMESPACES, NODES, PODS, REPLICASETS, SERVICES, STATEFULSETS
from kubeha.client.rest import ApiClient
from kubeha.machinery import process
from kubeha.machinery.events import EventRecorder
from kubeha.machinery.informer import SharedInformerFactory
from kubeha.machinery.leaderelection import LeaderElectionConfig, add_leader_election_flags
from kubeha.scheduler.nodeinfo import PodInfo, Selector, compile_selector
from kubeha.scheduler.profile import ConfigError, Profile, SchedulerConfig, load_config
from kubeha.scheduler.scheduler import Scheduler

log = logging.getLogger("kubeha.scheduler")

Obj = dict[str, Any]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeha scheduler", description="Bind pending pods to nodes (kube-scheduler).")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig with the api-server address and credentials")
    p.add_argument("--config", default=None, help="KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1)")
    p.add_argument("--kube-api-qps", type=float, default=0, help="client requests per second (0: unlimited)")
    p.add_argument("--kube-api-burst", type=int, default=0, help="client burst")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    add_leader_election_flags(p, "kube-scheduler")
    return p


class OwnerSelectors:
    """Selectors of the Services, ReplicaSets and StatefulSets that own a pod (for the default
    spread constraints). ReplicaSets and StatefulSets are found through the controller ref."""

    def __init__(self, informers: SharedInformerFactory) -> None:
        self.services = informers.informer_for(SERVICES)
        self.replicasets = informers.informer_for(REPLICASETS)
        self.statefulsets = informers.informer_for(STATEFULSETS)

    def __call__(self, pod: PodInfo) -> list[Selector]:
        out: list[Selector] = []
        for svc in self.services.indexer.by_index("namespace", pod.namespace):
            sel = (svc.get("spec") or {}).get("selector")
            if sel and all(pod.labels.get(k) == v for k, v in sel.items()):
                out.append(compile_selector({"matchLabels": sel}))
        for ref in (pod.pod.get("metadata") or {}).get("ownerReferences") or ():
            if not ref.get("controller"):
                continue
            inf = {"ReplicaSet": self.replicasets, "StatefulSet": self.statefulsets}.get(ref.get("kind", ""))
            if inf is None:
                continue
            owner = inf.indexer.get(f"{pod.namespace}/{ref.get('name')}")
            if owner is not None:
                out.append(compile_selector((owner.get("spec") or {}).get("selector")))
        return out


def build(cfg: SchedulerConfig, client: ApiClient, informers: SharedInformerFactory) -> Scheduler:
    owners = OwnerSelectors(informers)
    profiles = [
        Profile(
            pc,
            client=client,
            recorder=EventRecorder(client, pc.scheduler_name),
            owner_selectors=owners,
            percentage_of_nodes_to_score=cfg.percentage_of_nodes_to_score,
        )
        for pc in cfg.profiles
    ]
    sched = Scheduler(
        profiles,
        client=client,
        percentage_of_nodes_to_score=cfg.percentage_of_nodes_to_score,
        initial_backoff=cfg.pod_initial_backoff,
        max_backoff=cfg.pod_max_backoff,
    )
    # Terminal pods hold no resources: the server leaves them out of the pods we cache.
    pods = informers.informer_for(PODS, field_selector="status.phase!=Succeeded,status.phase!=Failed")
    pods.add_event_handler(sched.on_pod_add, sched.on_pod_update, sched.on_pod_delete)
    nodes = informers.informer_for(NODES)
    nodes.add_event_handler(sched.on_node_add, sched.on_node_update, sched.on_node_delete)
    namespaces = informers.informer_for(NAMESPACES)
    namespaces.add_event_handler(
        sched.cache.set_namespace, lambda old, new: sched.cache.set_namespace(new), sched.cache.remove_namespace
    )
    return sched


async def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except (ConfigError, OSError) as err:
        log.error("invalid configuration: %s", err)
        return 1
    client = ApiClient(
        load_kubeconfig(args.kubeconfig),
        user_agent="kube-scheduler/kubeha",
        qps=args.kube_api_qps,
        burst=args.kube_api_burst,
    )
    informers = SharedInformerFactory(client)
    sched = build(cfg, client, informers)
    lost = False
    try:
        await informers.start()
        await informers.wait_for_cache_sync()
        log.info("caches synced: %d nodes, %d pending pods", len(sched.cache.nodes), len(sched.queue))
        le = LeaderElectionConfig.from_args(args)
        if not le.enabled:
            await sched.run()
            return 0

        def stopped() -> None:
            nonlocal lost
            lost = True

        elector = le.elector(client, sched.run, on_stopped_leading=stopped)
        await elector.run()
        if lost:
            log.error("leaderelection lost")
            return 1
        return 0
    finally:
        sched.queue.close()
        for p in sched.profiles.values():
            if p.recorder is not None:
                with contextlib.suppress(Exception):
                    await p.recorder.stop(flush=not lost)
        await informers.stop()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    process.setup_logging(args.v)

    async def guarded() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await run(args)
        except asyncio.CancelledError:
            return 0

    return process.run(guarded())
