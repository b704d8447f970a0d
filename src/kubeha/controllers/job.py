"""job: runs a Job's pods to completion (upstream's job controller, reduced to its core).

Per sync of a Job, from the informer caches:

1. **Tracking.** Pods carry the ``batch.kubernetes.io/job-tracking`` finalizer so a finished pod
   cannot vanish before it is counted. A finished pod's UID first goes into
   ``status.uncountedTerminatedPods``, then its finalizer is removed, then the UID moves into the
   ``succeeded``/``failed`` counters: a crash between the steps never counts twice or loses one.
2. **Outcome.** Failures over ``backoffLimit`` (restarts included for ``OnFailure``) or running past
   ``activeDeadlineSeconds`` add ``FailureTarget``; enough successes add ``SuccessCriteriaMet``.
   Remaining pods are then deleted, and once none is left the terminal ``Failed`` or ``Complete``
   condition follows (with ``completionTime`` for Complete), as upstream since 1.31.
3. **Pods.** Otherwise keep ``parallelism`` pods active (fewer when fewer completions are left).
   After failures new pods wait an exponential backoff (10 s doubling, at most 6 min).
   ``Indexed`` Jobs give each pod a completion index (annotation, label, hostname, env).
   ``suspend`` deletes active pods and stops the clock.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from typing import Any

from kubeha.api.apps.v1 import selector_matches
from kubeha.api.batch.v1 import INDEXED, JOB_COMPLETION_INDEX, JOB_TRACKING_FINALIZER, is_finished
from kubeha.api.errors import StatusError
from kubeha.client.resources import JOBS, PODS
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.podcontrol import (
    Expectations,
    PodControl,
    format_time,
    is_pod_ready,
    meta,
    parse_time,
    pod_from_template,
    pods_to_delete,
    slow_start_batch,
)
from kubeha.machinery.controller import Controller, Requeue, controller_ref, enqueue_on, object_of, owner_key
from kubeha.machinery.indexer import meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Clock = Callable[[], float]

# queue keys for pods whose Job is gone (they are not Job keys: those never contain "!")
ORPHAN_PREFIX = "orphan-pod!"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0
OWNER_UID_INDEX = "job/controller-uid"  # unique per process: informers are shared


# -- pure status math ---------------------------------------------------------------------------


def pod_finished(pod: Obj) -> str | None:
    """ "Succeeded" or "Failed" for a pod that is done, else None. A pod being deleted before it
    succeeded counts as failed (its kubelet may never report again)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return str(phase)
    if meta(pod).get("deletionTimestamp"):
        return "Failed"
    return None


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Delay before the next pod after ``failures`` failed ones (0 for none)."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 30)))


def completion_index(pod: Obj) -> int | None:
    raw = (meta(pod).get("annotations") or {}).get(JOB_COMPLETION_INDEX)
    if raw is None:
        raw = (meta(pod).get("labels") or {}).get(JOB_COMPLETION_INDEX)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def format_indexes(indexes: set[int]) -> str:
    """``1,3-5,7``: ascending, runs of three or more as ranges (upstream's compressed form)."""
    out: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j - i >= 2:
            out.append(f"{ordered[i]}-{ordered[j]}")
        else:
            out.extend(str(x) for x in ordered[i : j + 1])
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str | None, limit: int | None = None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b) if b else int(a)
        except ValueError:
            continue
        out.update(x for x in range(lo, hi + 1) if limit is None or x < limit)
    return out


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) else default


def want_active(spec: Obj, succeeded: int, completed_indexes: int) -> int:
    """How many pods should be active now (upstream's parallelism/completions arithmetic)."""
    parallelism = _int(spec.get("parallelism"), 1)
    completions = spec.get("completions")
    if spec.get("completionMode") == INDEXED:
        left = int(completions or 0) - completed_indexes
        return max(0, min(parallelism, left))
    if completions is None:
        # work-queue style: once one pod succeeded no new pods start
        return 0 if succeeded > 0 else parallelism
    return max(0, min(parallelism, int(completions) - succeeded))


def success_reached(spec: Obj, succeeded: int, completed_indexes: int, active: int) -> bool:
    completions = spec.get("completions")
    if spec.get("completionMode") == INDEXED:
        return completions is not None and completed_indexes >= int(completions)
    if completions is None:
        return succeeded > 0 and active == 0
    return succeeded >= int(completions)


def set_condition(status: Obj, typ: str, value: str, reason: str, message: str, now: str) -> bool:
    """Add or change a condition; True when something changed."""
    conds: list[Obj] = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == typ:
            if c.get("status") == value and c.get("reason") == reason:
                return False
            if c.get("status") != value:
                c["lastTransitionTime"] = now
            c.update(status=value, reason=reason, message=message, lastProbeTime=now)
            return True
    conds.append(
        {
            "type": typ,
            "status": value,
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }
    )
    return True


def has_condition(status: Obj, typ: str) -> Obj | None:
    for c in status.get("conditions") or []:
        if c.get("type") == typ and c.get("status") == "True":
            return c
    return None


def _owner_uid_index(pod: Obj) -> list[str]:
    ref = controller_ref(pod)
    if ref is None or ref.get("kind") != "Job":
        return []
    return [str(ref.get("uid") or "")]


# -- the controller -----------------------------------------------------------------------------


class JobController:
    def __init__(self, ctx: ControllerContext, *, wall: Clock = time.time, mono: Clock = time.monotonic) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder("job-controller")
        self.pod_control = PodControl(ctx.client, self.recorder)
        self.wall = wall
        self.mono = mono
        self.jobs = ctx.informers.informer_for(JOBS)
        self.pods = ctx.informers.informer_for(PODS, indexers={OWNER_UID_INDEX: _owner_uid_index})
        self.queue = RateLimitingQueue(name="job")
        self.controller = Controller("job", self.sync, self.queue, workers=ctx.options.concurrent_syncs)
        self.expectations = Expectations()
        self.uids: dict[str, str] = {}  # job key -> uid (to clean finalizers after the job is gone)
        self.next_create: dict[str, float] = {}  # job key -> monotonic time new pods may start
        self.seen_failed: dict[str, int] = {}
        enqueue_on(self.jobs, self.queue)
        self.jobs.add_event_handler(on_add=self._job_seen, on_update=lambda o, n: self._job_seen(n))
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    def _job_seen(self, job: Obj) -> None:
        self.uids[meta_namespace_key(job)] = str(meta(job).get("uid") or "")

    def _pod_added(self, pod: Obj) -> None:
        key = owner_key(pod, "Job", "batch")
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
            self._check_orphan(key, pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = owner_key(new, "Job", "batch")
        if key is not None:
            if meta(new).get("deletionTimestamp") and not meta(old).get("deletionTimestamp"):
                self.expectations.deletion_observed(key, meta_namespace_key(new))
            self.queue.add(key)
            self._check_orphan(key, new)

    def _check_orphan(self, job_key: str, pod: Obj) -> None:
        """A finished or deleted pod still held by our finalizer whose Job is gone (deleted while
        we were not watching): release it, or it could never be removed."""
        if not self.jobs.has_synced() or JOB_TRACKING_FINALIZER not in (meta(pod).get("finalizers") or []):
            return
        if pod_finished(pod) is None:
            return
        job = self.jobs.indexer.get(job_key)
        if job is None or meta(job).get("uid") != (controller_ref(pod) or {}).get("uid"):
            self.queue.add(ORPHAN_PREFIX + meta_namespace_key(pod))

    def _pod_deleted(self, obj: Any) -> None:
        pod = object_of(obj)
        if pod is None:
            return
        key = owner_key(pod, "Job", "batch")
        if key is not None:
            self.expectations.deletion_observed(key, meta_namespace_key(pod))
            self.queue.add(key)

    # -- helpers ----------------------------------------------------------------------------

    def job_pods(self, job: Obj) -> list[Obj]:
        uid = str(meta(job).get("uid") or "")
        sel = (job.get("spec") or {}).get("selector") or {}
        return [
            p
            for p in self.pods.indexer.by_index(OWNER_UID_INDEX, uid)
            if selector_matches(sel, meta(p).get("labels") or {})
        ]

    async def remove_finalizer(self, pod: Obj) -> bool:
        md = meta(pod)
        fins = [f for f in md.get("finalizers") or [] if f != JOB_TRACKING_FINALIZER]
        patch = {"metadata": {"finalizers": fins or None, "resourceVersion": md.get("resourceVersion")}}
        try:
            await self.client.patch(PODS, md["name"], patch, md.get("namespace"))
        except StatusError as err:
            if err.code == 404:
                return True
            if err.code == 409:
                return False
            raise
        return True

    async def _clean_orphans(self, key: str) -> None:
        uid = self.uids.pop(key, "")
        self.expectations.delete(key)
        self.next_create.pop(key, None)
        self.seen_failed.pop(key, None)
        if not uid:
            return
        for pod in self.pods.indexer.by_index(OWNER_UID_INDEX, uid):
            if JOB_TRACKING_FINALIZER in (meta(pod).get("finalizers") or []):
                await self.remove_finalizer(pod)

    async def write_status(self, job: Obj, status: Obj) -> Obj:
        new = copy.deepcopy(job)
        new["status"] = status
        return await self.client.update(JOBS, new, subresource="status")

    # -- sync ---------------------------------------------------------------------------------

    async def sync(self, key: str) -> Requeue | None:
        if key.startswith(ORPHAN_PREFIX):
            pod = self.pods.indexer.get(key[len(ORPHAN_PREFIX) :])
            if pod is not None and JOB_TRACKING_FINALIZER in (meta(pod).get("finalizers") or []):
                if not await self.remove_finalizer(pod):
                    return Requeue()
            return None
        job = self.jobs.indexer.get(key)
        if job is None:
            await self._clean_orphans(key)
            return None
        if (job.get("spec") or {}).get("managedBy") not in (None, "kubernetes.io/job-controller"):
            return None
        pods = self.job_pods(job)
        done, _ = is_finished(job)
        if done:
            # finished: nothing runs any more; just let go of pods still held by our finalizer
            for pod in pods:
                if JOB_TRACKING_FINALIZER in (meta(pod).get("finalizers") or []) and pod_finished(pod):
                    await self.remove_finalizer(pod)
            return None
        if not self.expectations.satisfied(key):
            return None
        return await self._sync_active(key, job, pods)

    async def _sync_active(self, key: str, job: Obj, pods: list[Obj]) -> Requeue | None:
        spec = job.get("spec") or {}
        old_status = job.get("status") or {}
        status = copy.deepcopy(old_status)
        now_s = format_time(self.wall())
        indexed = spec.get("completionMode") == INDEXED
        completions = spec.get("completions")

        # 1. tracking: finished pods with our finalizer enter uncountedTerminatedPods
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        unc_s: list[str] = list(uncounted.get("succeeded") or [])
        unc_f: list[str] = list(uncounted.get("failed") or [])
        by_uid = {str(meta(p).get("uid")): p for p in pods}
        newly = False
        for pod in pods:
            uid = str(meta(pod).get("uid"))
            outcome = pod_finished(pod)
            if outcome is None or JOB_TRACKING_FINALIZER not in (meta(pod).get("finalizers") or []):
                continue
            if uid in unc_s or uid in unc_f:
                continue
            (unc_s if outcome == "Succeeded" else unc_f).append(uid)
            newly = True
        if newly:
            uncounted["succeeded"], uncounted["failed"] = unc_s, unc_f
            job = await self.write_status(job, status)
            status = copy.deepcopy(job.get("status") or {})
            uncounted = status.setdefault("uncountedTerminatedPods", {})
        # then release their finalizers and move them into the counters
        succeeded = int(status.get("succeeded") or 0)
        failed = int(status.get("failed") or 0)
        completed = parse_indexes(status.get("completedIndexes"), completions if indexed else None)
        still_s, still_f = [], []
        for uid in unc_s:
            held = by_uid.get(uid)
            if held is not None and JOB_TRACKING_FINALIZER in (meta(held).get("finalizers") or []):
                if not await self.remove_finalizer(held):
                    still_s.append(uid)
                    continue
            if indexed and held is not None:
                idx = completion_index(held)
                if idx is not None and idx not in completed and (completions is None or idx < int(completions)):
                    completed.add(idx)
                    succeeded += 1
            else:
                succeeded += 1
        for uid in unc_f:
            held = by_uid.get(uid)
            if held is not None and JOB_TRACKING_FINALIZER in (meta(held).get("finalizers") or []):
                if not await self.remove_finalizer(held):
                    still_f.append(uid)
                    continue
            failed += 1
        uncounted["succeeded"], uncounted["failed"] = still_s, still_f
        status["succeeded"], status["failed"] = succeeded, failed
        if indexed:
            status["completedIndexes"] = format_indexes(completed)

        active_pods = [p for p in pods if pod_finished(p) is None]
        terminating = [
            p
            for p in pods
            if meta(p).get("deletionTimestamp") and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        status["active"] = len(active_pods)
        status["ready"] = sum(1 for p in active_pods if is_pod_ready(p))
        status["terminating"] = len(terminating)
        requeue: float | None = None

        # 2. suspend / resume
        if spec.get("suspend"):
            if set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now_s):
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
            status.pop("startTime", None)
            await self._delete_pods(job, active_pods)
            return await self._finish_sync(job, old_status, status)
        if has_condition(status, "Suspended"):
            set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", now_s)
            self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            status.pop("startTime", None)
        if not status.get("startTime"):
            status["startTime"] = now_s

        # 3. outcome
        failure = has_condition(status, "FailureTarget")
        success = has_condition(status, "SuccessCriteriaMet")
        if failure is None and success is None:
            restarts = 0
            if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure":
                restarts = sum(
                    int(cs.get("restartCount") or 0)
                    for p in active_pods
                    for cs in (p.get("status") or {}).get("containerStatuses") or []
                )
            limit = _int(spec.get("backoffLimit"), 6)
            deadline = spec.get("activeDeadlineSeconds")
            started = parse_time(status.get("startTime"))
            if failed + restarts > limit:
                msg = "Job has reached the specified backoff limit"
                set_condition(status, "FailureTarget", "True", "BackoffLimitExceeded", msg, now_s)
                failure = has_condition(status, "FailureTarget")
            elif deadline is not None and started is not None and self.wall() - started >= int(deadline):
                msg = "Job was active longer than specified deadline"
                set_condition(status, "FailureTarget", "True", "DeadlineExceeded", msg, now_s)
                failure = has_condition(status, "FailureTarget")
            elif success_reached(spec, succeeded, len(completed), len(active_pods)):
                set_condition(
                    status,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now_s,
                )
                success = has_condition(status, "SuccessCriteriaMet")
            elif deadline is not None and started is not None:
                requeue = max(0.0, started + int(deadline) - self.wall())
        if failure is not None or success is not None:
            await self._delete_pods(job, active_pods)
            if not active_pods and not terminating and not still_s and not still_f:
                if failure is not None:
                    set_condition(status, "Failed", "True", failure["reason"], failure["message"], now_s)
                    self.recorder.event(job, "Warning", str(failure["reason"]), str(failure["message"]))
                else:
                    set_condition(
                        status,
                        "Complete",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                        now_s,
                    )
                    status["completionTime"] = now_s
                    self.recorder.event(job, "Normal", "Completed", "Job completed")
                status["active"] = 0
                status["ready"] = 0
            return await self._finish_sync(job, old_status, status)

        # 4. pods: backoff after failures, then create or delete to reach the wanted count
        if failed > self.seen_failed.get(key, 0):
            self.next_create[key] = self.mono() + backoff_delay(failed)
        self.seen_failed[key] = failed
        wanted = want_active(spec, succeeded, len(completed))
        if len(active_pods) > wanted:
            await self._delete_pods(job, pods_to_delete(active_pods, None, len(active_pods) - wanted))
        elif len(active_pods) < wanted and not (still_s or still_f):
            wait = self.next_create.get(key, 0.0) - self.mono()
            if wait > 0:
                requeue = wait if requeue is None else min(requeue, wait)
            else:
                await self._create_pods(key, job, wanted - len(active_pods), active_pods, completed)
        if still_s or still_f:
            requeue = 1.0 if requeue is None else min(requeue, 1.0)
        result = await self._finish_sync(job, old_status, status)
        return Requeue(after=requeue) if requeue is not None and result is None else result

    async def _finish_sync(self, job: Obj, old_status: Obj, status: Obj) -> Requeue | None:
        unc = status.get("uncountedTerminatedPods") or {}
        if not unc.get("succeeded") and not unc.get("failed"):
            status["uncountedTerminatedPods"] = {}
        if status != old_status:
            await self.write_status(job, status)
        return None

    async def _delete_pods(self, job: Obj, pods: list[Obj]) -> None:
        if not pods:
            return
        key = meta_namespace_key(job)
        self.expectations.expect_deletions(key, [meta_namespace_key(p) for p in pods])
        for pod in pods:
            try:
                await self.pod_control.delete_pod(meta(pod).get("namespace", ""), meta(pod)["name"], job)
            except StatusError:
                self.expectations.deletion_observed(key, meta_namespace_key(pod))
                raise

    def pod_template(self, job: Obj, index: int | None) -> Obj:
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        md = template.setdefault("metadata", {})
        fins = md.setdefault("finalizers", [])
        if JOB_TRACKING_FINALIZER not in fins:
            fins.append(JOB_TRACKING_FINALIZER)
        if index is not None:
            md.setdefault("annotations", {})[JOB_COMPLETION_INDEX] = str(index)
            md.setdefault("labels", {})[JOB_COMPLETION_INDEX] = str(index)
            pspec = template.setdefault("spec", {})
            pspec.setdefault("hostname", f"{meta(job)['name']}-{index}")
            env = {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {
                    "fieldRef": {
                        "apiVersion": "v1",
                        "fieldPath": f"metadata.annotations['{JOB_COMPLETION_INDEX}']",
                    }
                },
            }
            for c in [*(pspec.get("initContainers") or []), *(pspec.get("containers") or [])]:
                c.setdefault("env", [])
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in c["env"]):
                    c["env"].append(dict(env))
        return template

    async def _create_pods(self, key: str, job: Obj, count: int, active: list[Obj], completed: set[int]) -> None:
        spec = job.get("spec") or {}
        indexes: list[int | None]
        if spec.get("completionMode") == INDEXED:
            running = {completion_index(p) for p in active}
            free = [i for i in range(int(spec.get("completions") or 0)) if i not in completed and i not in running]
            indexes = list(free[:count])
        else:
            indexes = [None] * count
        if not indexes:
            return
        ref = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": meta(job)["name"],
            "uid": meta(job)["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        self.expectations.expect_creations(key, len(indexes))
        pending = list(indexes)
        invoked = 0

        async def create_one() -> None:
            nonlocal invoked
            invoked += 1
            index = pending.pop(0)
            pod = pod_from_template(self.pod_template(job, index), job, ref)
            if index is not None:
                pod["metadata"]["generateName"] = f"{meta(job)['name']}-{index}-"  # upstream's indexed names
            try:
                created = await self.client.create(PODS, pod, meta(job).get("namespace"))
            except StatusError as err:
                self.expectations.creation_observed(key)
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {err}")
                raise
            except BaseException:
                self.expectations.creation_observed(key)
                raise
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {meta(created).get('name', '')}")

        _, err = await slow_start_batch(len(indexes), create_one)
        for _ in range(len(indexes) - invoked):
            self.expectations.creation_observed(key)  # never attempted: do not wait for them
        if err is not None:
            raise err

    async def run(self) -> None:
        await self.controller.run([self.jobs, self.pods])


@register("job")
async def start(ctx: ControllerContext) -> None:
    ctl = JobController(ctx)
    await ctx.informers.start()
    await ctl.run()
