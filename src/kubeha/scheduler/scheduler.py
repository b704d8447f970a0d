"""The scheduling loop: pop a pod, run its profile's plugins over a snapshot, assume it on the
chosen node and bind it in the background while the next pod's cycle runs.

Informer events feed the cache (bound pods, nodes, namespaces) and the queue (pending pods of
our profiles); cluster events move unschedulable pods back according to the plugins that
rejected them. Failures set ``PodScheduled=False`` (reason Unschedulable, upstream's
``0/N nodes are available: ...`` message) and record a FailedScheduling event; successes record
``Scheduled``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import PODS
from kubeha.scheduler import framework as fw
from kubeha.scheduler.cache import Cache
from kubeha.scheduler.framework import (
    SUCCESS,
    Action,
    ClusterEvent,
    Code,
    CycleState,
    NodeInfo,
    PodInfo,
    QueuedPodInfo,
    Resource_,
    Snapshot,
    Status,
)
from kubeha.scheduler.nodeinfo import Resource
from kubeha.scheduler.plugins.preemption import fit_error_message
from kubeha.scheduler.profile import Profile, num_feasible_nodes_to_find
from kubeha.scheduler.queue import QueueClosed, SchedulingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NO_NODES = "no nodes available to schedule pods"
FILTERED_BY_PRE_FILTER = "node is filtered out by the prefilter result"
BIND_CONCURRENCY = 256

ASSIGNED_POD_ADD = ClusterEvent(Resource_.ASSIGNED_POD, Action.ADD, "AssignedPodAdd")
ASSIGNED_POD_DELETE = fw.ASSIGNED_POD_DELETE
NODE_ADD = fw.NODE_ADD


class FitError(Exception):
    """No node fits: the per-node statuses make upstream's message."""

    def __init__(self, num_all_nodes: int, statuses: dict[str, Status], pre_filter_msg: str = "") -> None:
        super().__init__()
        self.num_all_nodes = num_all_nodes
        self.statuses = statuses
        self.pre_filter_msg = pre_filter_msg
        self.post_filter_msg = ""

    def message(self) -> str:
        if self.num_all_nodes == 0:
            return NO_NODES
        msg = fit_error_message(self.num_all_nodes, self.statuses, self.pre_filter_msg)
        if self.post_filter_msg:
            msg += f" {self.post_filter_msg}"
            if not msg.endswith("."):
                msg += "."
        return msg

    def plugins(self) -> set[str]:
        return {st.plugin for st in self.statuses.values() if st.plugin}


def is_assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def node_update_action(old: Obj, new: Obj) -> Action:
    """Which kinds of node change happened (what may make a rejected pod fit)."""
    a = Action(0)
    os_, ns_ = old.get("status") or {}, new.get("status") or {}
    if os_.get("allocatable") != ns_.get("allocatable"):
        a |= Action.UPDATE_NODE_ALLOCATABLE
    if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
        a |= Action.UPDATE_NODE_LABEL
    ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
    if ospec.get("taints") != nspec.get("taints") or bool(ospec.get("unschedulable")) != bool(
        nspec.get("unschedulable")
    ):
        a |= Action.UPDATE_NODE_TAINT
    if os_.get("conditions") != ns_.get("conditions"):
        a |= Action.UPDATE_NODE_CONDITION
    return a


def _scaled_down(old: Resource, new: Resource) -> bool:
    return new.milli_cpu < old.milli_cpu or new.memory < old.memory


class Scheduler:
    def __init__(
        self,
        profiles: list[Profile],
        *,
        cache: Cache | None = None,
        queue: SchedulingQueue | None = None,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        percentage_of_nodes_to_score: int = 0,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
    ) -> None:
        if not profiles:
            raise ValueError("at least one profile is required")
        self.profiles = {p.name: p for p in profiles}
        first = profiles[0]
        events: dict[str, list[ClusterEvent]] = {}
        for p in profiles:
            events.update(p.events_by_plugin())
        self.cache = cache or Cache(clock=clock)
        self.queue = queue or SchedulingQueue(
            first.queue_sort.less,
            clock=clock,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            events_by_plugin=events,
            gated=lambda pi: self._profile_of(pi).gated(pi),
        )
        self.client = client
        self.clock = clock
        self.rng = rng or random.Random()
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.snapshot = Snapshot()
        for p in profiles:
            p.snapshot = self.snapshot
        self.next_start_index = 0
        self.pending_pods: dict[str, Obj] = {}  # key -> latest API object of pods we schedule
        self._bind_slots = asyncio.Semaphore(BIND_CONCURRENCY)
        self._background: set[asyncio.Task[Any]] = set()
        self.scheduled = 0
        self.failed = 0

    def _profile_of(self, pi: PodInfo) -> Profile:
        return self.profiles.get(pi.spec.get("schedulerName") or "default-scheduler") or next(
            iter(self.profiles.values())
        )

    def responsible(self, pod: Obj) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or "default-scheduler") in self.profiles

    # -- informer handlers -------------------------------------------------------------------------

    def on_pod_add(self, pod: Obj) -> None:
        if is_assigned(pod):
            if is_terminal(pod):
                return
            self.cache.add_pod(pod)
            self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_ADD)
        elif (
            self.responsible(pod) and not is_terminal(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp")
        ):
            pi = PodInfo(pod)
            self.pending_pods[pi.key] = pod
            self.queue.add(pi)

    def on_pod_update(self, old: Obj, new: Obj) -> None:
        was, now = is_assigned(old), is_assigned(new)
        if now:
            key = PodInfo(new).key if not was else None
            if not was:
                # bound (by us or anyone): no longer pending
                assert key is not None
                self.pending_pods.pop(key, None)
                self.queue.delete(key)
            if is_terminal(new):
                if not is_terminal(old) or not was:
                    self.cache.remove_pod(new)
                    self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_DELETE)
                return
            if not was:
                self.cache.add_pod(new)
                self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_ADD)
                return
            old_pi = self.cache.pods.get(PodInfo.key_of(new))
            pi = self.cache.update_pod(old, new)
            action = Action(0)
            if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
                action |= Action.UPDATE_POD_LABEL
            if old_pi is not None and _scaled_down(old_pi.requests, pi.requests):
                action |= Action.UPDATE_POD_SCALE_DOWN
            if action:
                self.queue.move_all_to_active_or_backoff(
                    ClusterEvent(Resource_.ASSIGNED_POD, action, "AssignedPodUpdate")
                )
            return
        if not self.responsible(new):
            return
        md = new.get("metadata") or {}
        key = f"{md.get('namespace', '')}/{md.get('name', '')}"
        if is_terminal(new) or md.get("deletionTimestamp"):
            self.pending_pods.pop(key, None)
            self.queue.delete(key)
            return
        self.pending_pods[key] = new
        ospec, nspec = old.get("spec"), new.get("spec")
        changed = ospec != nspec or (old.get("metadata") or {}).get("labels") != md.get("labels")
        self.queue.update(PodInfo(new), spec_changed=changed)

    def on_pod_delete(self, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        key = f"{md.get('namespace', '')}/{md.get('name', '')}"
        self.pending_pods.pop(key, None)
        self.queue.delete(key)
        if self.cache.remove_pod(pod) is not None:
            self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_DELETE)

    def on_node_add(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff(NODE_ADD)

    def on_node_update(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        action = node_update_action(old, new)
        if action:
            self.queue.move_all_to_active_or_backoff(ClusterEvent(Resource_.NODE, action, "NodeUpdate"))

    def on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node)

    # -- the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled (leadership lost or shutdown)."""
        log.info("scheduler: starting the scheduling loop (%d pending)", len(self.queue))
        try:
            while True:
                qpi = self.queue.pop_nowait()
                if qpi is None:
                    try:
                        qpi = await self.queue.pop()
                    except QueueClosed:
                        return
                else:
                    # give informers and binding tasks their turn between back-to-back cycles
                    await asyncio.sleep(0)
                await self.schedule_one(qpi)
        finally:
            for t in list(self._background):
                t.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def schedule_one(self, qpi: QueuedPodInfo) -> None:
        pi = qpi.pod_info
        latest = self.pending_pods.get(pi.key)
        if latest is None:
            self.queue.done(pi.key)  # deleted or bound meanwhile
            return
        if latest is not pi.pod:
            pi = qpi.pod_info = PodInfo(latest)
        profile = self._profile_of(pi)
        state = CycleState()
        try:
            node_name = self.schedule_pod(profile, state, pi)
        except FitError as fe:
            nominated: str | None = None
            if profile.post_filter:
                result, st = await profile.run_post_filter(state, pi, fe.statuses)
                if result is not None:
                    nominated = result.nominated_node_name
                if not st.is_success():
                    fe.post_filter_msg = st.message()
            qpi.unschedulable_plugins = fe.plugins()
            self.handle_failure(profile, qpi, "Unschedulable", fe.message(), nominated)
            return
        except Exception as exc:  # a plugin bug must not stop the loop
            log.exception("scheduling %s failed", pi.key)
            self.handle_failure(profile, qpi, "SchedulerError", str(exc), None, error=True)
            return
        assumed = pi.on_node(node_name)
        try:
            self.cache.assume_pod(assumed)
        except ValueError as exc:
            self.handle_failure(profile, qpi, "SchedulerError", str(exc), None, error=True)
            return
        st = profile.run_reserve(state, assumed, node_name)
        if st.is_success():
            st = profile.run_permit(state, assumed, node_name)
        if not st.is_success():
            profile.run_unreserve(state, assumed, node_name)
            self.cache.forget_pod(pi.key)
            self.handle_failure(
                profile,
                qpi,
                "Unschedulable" if st.is_rejected() else "SchedulerError",
                st.message(),
                None,
                error=not st.is_rejected(),
            )
            return
        self.queue.done(pi.key)
        self._spawn(self.binding_cycle(profile, state, qpi, assumed, node_name))

    def schedule_pod(self, profile: Profile, state: CycleState, pi: PodInfo) -> str:
        """Filter and score; the chosen node's name, or FitError."""
        snap = self.cache.update_snapshot(self.snapshot)
        all_nodes = snap.node_infos
        if not all_nodes:
            raise FitError(0, {})
        pre, st = profile.run_pre_filter(state, pi)
        if not st.is_success():
            if st.is_rejected():
                raise FitError(len(all_nodes), {n.name: st for n in all_nodes}, st.message())
            raise RuntimeError(f"running PreFilter plugin {st.plugin}: {st.message()}")
        statuses: dict[str, Status] = {}
        if pre is not None and pre.node_names is not None:
            nodes = [snap.node_map[n] for n in sorted(pre.node_names) if n in snap.node_map]
            for n in all_nodes:
                if n.name not in pre.node_names:
                    statuses[n.name] = fw.unresolvable("", FILTERED_BY_PRE_FILTER)
        else:
            nodes = all_nodes
        feasible: list[NodeInfo] = []
        nominated = (pi.pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            ni = snap.node_map.get(nominated)
            if ni is not None and profile.run_filters(state, pi, ni).is_success():
                return nominated
        # Filter, from a rotating start, until enough feasible nodes are found.
        n_nodes = len(nodes)
        want = num_feasible_nodes_to_find(
            n_nodes, profile.percentage_of_nodes_to_score or self.percentage_of_nodes_to_score
        )
        start = self.next_start_index % n_nodes if n_nodes else 0
        filters = profile.filters
        skip = state.skip_filter
        active = [p for p in filters if p.name not in skip] if skip else filters
        processed = 0
        for i in range(n_nodes):
            node = nodes[(start + i) % n_nodes]
            processed += 1
            for p in active:
                s = p.filter(state, pi, node)
                if s is not SUCCESS and s.code != Code.SUCCESS:
                    if s.code == Code.ERROR:
                        raise RuntimeError(f"running Filter plugin {p.name}: {s.message()}")
                    statuses[node.name] = s.with_plugin(p.name) if not s.plugin else s
                    break
            else:
                feasible.append(node)
                if len(feasible) >= want:
                    break
        if n_nodes:
            self.next_start_index = (start + processed) % n_nodes
        if not feasible:
            raise FitError(len(all_nodes), statuses)
        if len(feasible) == 1:
            return feasible[0].name
        scores = profile.run_score(state, pi, feasible)
        return self.select_host(feasible, scores)

    def select_host(self, nodes: list[NodeInfo], scores: list[int]) -> str:
        """The highest total; ties broken uniformly at random."""
        best = max(scores)
        tied = [i for i, s in enumerate(scores) if s == best]
        return nodes[tied[0] if len(tied) == 1 else tied[self.rng.randrange(len(tied))]].name

    # -- binding -------------------------------------------------------------------------------------

    async def binding_cycle(
        self, profile: Profile, state: CycleState, qpi: QueuedPodInfo, pi: PodInfo, node: str
    ) -> None:
        async with self._bind_slots:
            try:
                st = await profile.run_pre_bind(state, pi, node)
                if st.is_success():
                    st = await profile.run_bind(state, pi, node)
            except Exception as exc:
                log.exception("binding %s failed", pi.key)
                st = fw.error("", str(exc))
        if not st.is_success():
            self.cache.forget_pod(pi.key)
            profile.run_unreserve(state, pi, node)
            self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_DELETE)
            if pi.key in self.pending_pods:
                self.handle_failure(profile, qpi, "SchedulerError", st.message(), None, error=True)
            return
        self.cache.finish_binding(pi.key)
        log.debug("bound %s to %s", pi.key, node)
        profile.run_post_bind(state, pi, node)
        self.scheduled += 1
        if profile.recorder is not None:
            profile.recorder.event(pi.pod, "Normal", "Scheduled", f"Successfully assigned {pi.key} to {node}")

    # -- failures ------------------------------------------------------------------------------------

    def handle_failure(
        self,
        profile: Profile,
        qpi: QueuedPodInfo,
        reason: str,
        message: str,
        nominated: str | None,
        *,
        error: bool = False,
    ) -> None:
        self.failed += 1
        pi = qpi.pod_info
        pod = self.pending_pods.get(pi.key)
        if pod is None:
            self.queue.done(pi.key)
            return  # deleted or bound meanwhile: nothing to report
        self.queue.add_unschedulable_if_not_present(qpi, backoff_only=error)
        log.info("unable to schedule %s: %s", pi.key, message)
        if profile.recorder is not None:
            profile.recorder.event(pod, "Warning", "FailedScheduling", message)
        if self.client is not None:
            self._spawn(self._update_status(pod, reason, message, nominated))

    async def _update_status(self, pod: Obj, reason: str, message: str, nominated: str | None) -> None:
        """Set PodScheduled=False (and nominatedNodeName) unless the pod already says so."""
        md, status = pod.get("metadata") or {}, pod.get("status") or {}
        cond = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None)
        same_cond = (
            cond is not None
            and cond.get("status") == "False"
            and cond.get("reason") == reason
            and cond.get("message") == message
        )
        nn_current = status.get("nominatedNodeName") or ""
        nn_change = nominated is not None and nominated != nn_current
        if same_cond and not nn_change:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch: Obj = {
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": reason,
                        "message": message,
                        "lastProbeTime": None,
                        "lastTransitionTime": now
                        if cond is None or cond.get("status") != "False"
                        else cond.get("lastTransitionTime"),
                    }
                ]
            }
        }
        if nn_change:
            patch["status"]["nominatedNodeName"] = nominated or None
        try:
            await self.client.patch(
                PODS, md.get("name", ""), patch, md.get("namespace"), patch_type="strategic", subresource="status"
            )
        except StatusError as err:
            if err.code != 404:
                log.warning("updating status of %s/%s: %s", md.get("namespace"), md.get("name"), err)
        except (OSError, ConnectionError) as err:
            log.warning("updating status of %s/%s: %s", md.get("namespace"), md.get("name"), err)
