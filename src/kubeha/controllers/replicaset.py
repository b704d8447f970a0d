"""The replicaset controller: keeps ``spec.replicas`` pods matching each ReplicaSet's selector.

Upstream semantics (``pkg/controller/replicaset``): adopt matching orphan pods, release pods that
stopped matching, create or delete pods (at most ``BURST_REPLICAS`` per sync, creates in slow-start
batches) and do not act again on a ReplicaSet until the pod informer has observed those writes
(expectations). Status counts replicas, fully labeled, ready and available (``minReadySeconds``)
pods, and a ``ReplicaFailure`` condition reports failed creates/deletes.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kubeha.api.apps.v1 import selector_matches
from kubeha.api.errors import StatusError
from kubeha.client.resources import PODS, REPLICASETS
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.podcontrol import (
    BURST_REPLICAS,
    Expectations,
    PodControl,
    claim,
    format_time,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    meta,
    owner_reference,
    pods_to_delete,
    slow_start_batch,
)
from kubeha.machinery.controller import Controller, Requeue, controller_ref, object_of
from kubeha.machinery.indexer import NAMESPACE_INDEX, meta_namespace_key, split_meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "ReplicaSet"
COMPONENT = "replicaset-controller"


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _replicas(rs: Obj) -> int:
    value = _spec(rs).get("replicas")
    return 1 if value is None else int(value)


def rs_matches(rs: Obj, pod: Obj) -> bool:
    """Whether the ReplicaSet's selector selects the pod (an absent selector selects nothing)."""
    sel = _spec(rs).get("selector")
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return False
    return selector_matches(sel, meta(pod).get("labels") or {})


def get_condition(status: Obj, typ: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == typ), None)


def calculate_status(rs: Obj, pods: list[Obj], manage_error: BaseException | None, now: float | None = None) -> Obj:
    """The ReplicaSet status for its (active, owned) ``pods``; JSON zero values are left out as
    upstream's ``omitempty`` does, except ``replicas``."""
    spec = _spec(rs)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in pods:
        labels = meta(pod).get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    old = rs.get("status") or {}
    status: Obj = {"replicas": len(pods)}
    for key, value in (
        ("fullyLabeledReplicas", fully),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("observedGeneration", int(meta(rs).get("generation") or 0)),
    ):
        if value:
            status[key] = value
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = get_condition(old, "ReplicaFailure")
    if manage_error is not None:
        if failure is None:
            reason = "FailedCreate" if len(pods) < _replicas(rs) else "FailedDelete"
            failure = {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": format_time(now),
                "reason": reason,
                "message": str(manage_error),
            }
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    return status


def _normalized(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if v not in (0, None, [], {}) or k == "replicas"}


class ReplicaSetController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.rs_informer = ctx.informers.informer_for(REPLICASETS)
        self.pod_informer = ctx.informers.informer_for(PODS)
        self.recorder = ctx.recorder(COMPONENT)
        self.pod_control = PodControl(ctx.client, self.recorder)
        self.expectations = Expectations()
        self.queue = RateLimitingQueue(name="replicaset")
        self.controller = Controller("replicaset", self.sync, self.queue, ctx.options.concurrent_replicaset_syncs)
        self.burst_replicas = BURST_REPLICAS
        self.rs_informer.add_event_handler(on_add=self._enqueue, on_update=self._update_rs, on_delete=self._delete_rs)
        self.pod_informer.add_event_handler(
            on_add=self._add_pod, on_update=self._update_pod, on_delete=self._delete_pod
        )

    async def run(self) -> None:
        await self.informers.start()  # idempotent: starts the informers we just asked for
        await self.controller.run([self.rs_informer, self.pod_informer])

    # -- event handlers (must not block) ----------------------------------------------------------

    def _enqueue(self, rs: Obj) -> None:
        self.queue.add(meta_namespace_key(rs))

    def _update_rs(self, old: Obj, new: Obj) -> None:
        self._enqueue(new)

    def _delete_rs(self, obj: Any) -> None:
        rs = object_of(obj)
        if rs is None:
            return
        key = meta_namespace_key(rs)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        """The ReplicaSet a controller reference points at (None if not a ReplicaSet we know)."""
        if ref is None or ref.get("kind") != KIND or not str(ref.get("apiVersion", "")).startswith("apps/"):
            return None
        rs = self.rs_informer.indexer.get(f"{namespace}/{ref.get('name', '')}")
        if rs is None or meta(rs).get("uid") != ref.get("uid"):
            return None
        return rs

    def _matching_replicasets(self, pod: Obj) -> list[Obj]:
        ns = meta(pod).get("namespace", "")
        return [rs for rs in self.rs_informer.indexer.by_index(NAMESPACE_INDEX, ns) if rs_matches(rs, pod)]

    def _add_pod(self, pod: Obj) -> None:
        if meta(pod).get("deletionTimestamp"):
            # seen for the first time already being deleted (e.g. after a restart)
            self._delete_pod(pod)
            return
        ns = meta(pod).get("namespace", "")
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._resolve(ns, ref)
            if rs is not None:
                key = meta_namespace_key(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for rs in self._matching_replicasets(pod):  # an orphan: whoever matches may adopt it
            self._enqueue(rs)

    def _update_pod(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return  # a resync: nothing changed
        label_changed = meta(old).get("labels") != meta(new).get("labels")
        if meta(new).get("deletionTimestamp"):
            self._delete_pod(new)
            if label_changed:
                self._delete_pod(old)
            return
        ns = meta(new).get("namespace", "")
        new_ref, old_ref = controller_ref(new), controller_ref(old)
        ref_changed = new_ref != old_ref
        if ref_changed and old_ref is not None:
            old_rs = self._resolve(ns, old_ref)
            if old_rs is not None:
                self._enqueue(old_rs)
        if new_ref is not None:
            rs = self._resolve(ns, new_ref)
            if rs is None:
                return
            self._enqueue(rs)
            min_ready = int(_spec(rs).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                # it becomes available minReadySeconds from now: look again then
                self.queue.add_after(meta_namespace_key(rs), float(min_ready))
            return
        if label_changed or ref_changed:
            for rs in self._matching_replicasets(new):
                self._enqueue(rs)

    def _delete_pod(self, obj: Any) -> None:
        pod = object_of(obj)
        if pod is None:
            return
        rs = self._resolve(meta(pod).get("namespace", ""), controller_ref(pod))
        if rs is None:
            return
        key = meta_namespace_key(rs)
        self.expectations.deletion_observed(key, meta_namespace_key(pod))
        self.queue.add(key)

    # -- reconcile --------------------------------------------------------------------------------

    async def sync(self, key: str) -> Requeue | None:
        ns, _name = split_meta_namespace_key(key)
        rs = self.rs_informer.indexer.get(key)
        if rs is None:
            self.expectations.delete(key)
            return None
        needs_sync = self.expectations.satisfied(key)
        active = [p for p in self.pod_informer.indexer.by_index(NAMESPACE_INDEX, ns) if is_pod_active(p)]
        ref = owner_reference(rs, API_VERSION, KIND)
        pods = await claim(self.client, PODS, rs, ref, active, lambda p: rs_matches(rs, p))
        manage_error: BaseException | None = None
        if needs_sync and not meta(rs).get("deletionTimestamp"):
            try:
                await self.manage_replicas(key, rs, pods)
            except StatusError as err:
                manage_error = err
        status = calculate_status(rs, pods, manage_error)
        updated = await self.update_status(rs, status)
        if manage_error is not None:
            raise manage_error
        min_ready = int(_spec(rs).get("minReadySeconds") or 0)
        if (
            updated is not None
            and min_ready > 0
            and status.get("readyReplicas", 0) == _replicas(rs)
            and status.get("availableReplicas", 0) != _replicas(rs)
        ):
            return Requeue(after=float(min_ready))
        return None

    async def manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        """Create or delete pods to reach ``spec.replicas``; raises the first API error."""
        diff = len(pods) - _replicas(rs)
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            template = _spec(rs).get("template") or {}
            ref = owner_reference(rs, API_VERSION, KIND)
            log.info("replicaset %s: too few replicas, need %d, creating %d", key, _replicas(rs), count)
            done, err = await slow_start_batch(count, lambda: self.pod_control.create_pod(template, rs, ref))
            # creates that failed or were never tried will not show up in the informer
            skipped = count - done
            if skipped > 0:
                self.expectations.creation_observed(key, skipped)
            if err is not None:
                raise err
        elif diff > 0:
            count = min(diff, self.burst_replicas)
            log.info("replicaset %s: too many replicas, need %d, deleting %d", key, _replicas(rs), count)
            victims = pods_to_delete(pods, self._related_pods(rs), count)
            keys = [meta_namespace_key(p) for p in victims]
            self.expectations.expect_deletions(key, keys)
            ns = meta(rs).get("namespace", "")
            results = await asyncio.gather(
                *(self.pod_control.delete_pod(ns, meta(p)["name"], rs) for p in victims), return_exceptions=True
            )
            first: BaseException | None = None
            for pod_key, result in zip(keys, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.deletion_observed(key, pod_key)  # it will not be deleted after all
                    first = first or result
            if first is not None:
                raise first

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """Pods of every ReplicaSet with the same controlling owner (one Deployment's ReplicaSets):
        deleting where they are crowded spreads what remains."""
        owner = controller_ref(rs)
        ns = meta(rs).get("namespace", "")
        if owner is None:
            return []
        siblings = {
            meta(other).get("uid")
            for other in self.rs_informer.indexer.by_index(NAMESPACE_INDEX, ns)
            if (controller_ref(other) or {}).get("uid") == owner.get("uid")
        }
        return [
            p
            for p in self.pod_informer.indexer.by_index(NAMESPACE_INDEX, ns)
            if (controller_ref(p) or {}).get("uid") in siblings
        ]

    async def update_status(self, rs: Obj, status: Obj) -> Obj | None:
        """Write ``status`` unless it is what the ReplicaSet already says; returns the written object."""
        if _normalized(rs.get("status") or {}) == _normalized(status):
            return None
        new = copy.deepcopy(rs)
        new["status"] = status
        for attempt in range(2):
            try:
                return await self.client.update(REPLICASETS, new, subresource="status")
            except StatusError as err:
                if err.code != 409 or attempt:
                    raise
                # someone (the deployment controller) changed the spec: retry on the fresh object
                md = meta(rs)
                fresh = await self.client.get(REPLICASETS, md["name"], md.get("namespace"))
                # keep our observedGeneration: we have not looked at the newer spec yet
                new = {**fresh, "status": status}
        return None


@register("replicaset")
async def start(ctx: ControllerContext) -> None:
    await ReplicaSetController(ctx).run()
