"""cronjob: creates Jobs on a CronJob's schedule (upstream's cronjob controller v2).

A sync reconciles ``status.active`` with the CronJob's Jobs (noting completions in
``lastSuccessfulTime``), trims finished Jobs to the history limits, and then looks for the most
recent scheduled time in ``(lastScheduleTime or creation, now]`` (at most ``startingDeadlineSeconds``
back). When there is one it creates the Job ``<cronjob>-<scheduled minutes since the epoch>``,
respecting ``concurrencyPolicy``. Every sync ends with a delayed requeue at the next scheduled
time: the controller sleeps until then instead of polling. Schedules are matched in
``spec.timeZone`` (the process's zone when unset).
"""

from __future__ import annotations

import copy
import logging
import time
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from kubeha.api.batch.cron import CronError, Schedule, parse
from kubeha.api.batch.v1 import CRONJOB_SCHEDULED_TIMESTAMP, is_finished
from kubeha.api.errors import StatusError
from kubeha.client.resources import CRONJOBS, JOBS
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.podcontrol import meta, parse_time
from kubeha.machinery.controller import Controller, Requeue, controller_ref, enqueue_on, enqueue_owner
from kubeha.machinery.indexer import meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# upstream wakes a little after the scheduled second so "now" is surely past it
NEXT_SCHEDULE_DELTA = 0.1
TOO_MANY_MISSED = 100


def fmt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    """Upstream's deterministic name: one Job per scheduled minute, so a retry never duplicates."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def schedule_zone(spec: Obj) -> tzinfo:
    tz = spec.get("timeZone")
    if tz:
        return zoneinfo.ZoneInfo(str(tz))
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC


def most_recent(schedule: Schedule, cj: Obj, now: datetime, tz: tzinfo) -> tuple[datetime | None, int]:
    """(latest scheduled time that is due and not yet run, how many were missed in all)."""
    spec = cj.get("spec") or {}
    status = cj.get("status") or {}
    start_ts = parse_time(status.get("lastScheduleTime")) or parse_time(meta(cj).get("creationTimestamp"))
    earliest = datetime.fromtimestamp(start_ts, UTC) if start_ts is not None else now
    sds = spec.get("startingDeadlineSeconds")
    if sds is not None:
        window_start = datetime.fromtimestamp(now.timestamp() - int(sds), UTC)
        earliest = max(earliest, window_start)
    if earliest >= now:
        return None, 0
    times = schedule.times_between(earliest, now, tz, limit=TOO_MANY_MISSED + 1)
    if not times:
        return None, 0
    if len(times) > TOO_MANY_MISSED:
        # do not walk thousands of minutes: the latest due time is all that matters
        last = times[-1]
        while True:
            nxt = schedule.next_after(last, tz)
            if nxt > now:
                break
            last = nxt
        return last, len(times)
    return times[-1], len(times)


def next_wakeup(schedule: Schedule, now: datetime, tz: tzinfo) -> float:
    """Seconds from ``now`` until just after the next scheduled time."""
    try:
        nxt = schedule.next_after(now, tz)
    except CronError:
        return 24 * 3600.0
    return max(0.0, (nxt - now).total_seconds()) + NEXT_SCHEDULE_DELTA


def history_to_delete(jobs: list[Obj], successful_limit: int | None, failed_limit: int | None) -> list[Obj]:
    """Oldest finished Jobs beyond the history limits (None = keep all)."""
    out: list[Obj] = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        if limit is None:
            continue
        done = [j for j in jobs if is_finished(j) == (True, kind)]
        done.sort(
            key=lambda j: (
                parse_time((j.get("status") or {}).get("startTime"))
                or parse_time(meta(j).get("creationTimestamp"))
                or 0.0
            )
        )
        if len(done) > limit:
            out += done[: len(done) - limit]
    return out


def job_from_template(cj: Obj, scheduled: datetime, tz: tzinfo) -> Obj:
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    md: Obj = {
        "name": job_name(meta(cj)["name"], scheduled),
        "namespace": meta(cj).get("namespace"),
        "labels": dict(tmeta.get("labels") or {}),
        "annotations": dict(tmeta.get("annotations") or {}),
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": meta(cj)["name"],
                "uid": meta(cj)["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    md["annotations"][CRONJOB_SCHEDULED_TIMESTAMP] = scheduled.astimezone(tz).isoformat()
    if not md["labels"]:
        md.pop("labels")
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}


def job_ref(job: Obj) -> Obj:
    md = meta(job)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": md.get("name"),
        "namespace": md.get("namespace"),
        "uid": md.get("uid"),
        "resourceVersion": md.get("resourceVersion"),
    }


class CronJobController:
    def __init__(self, ctx: ControllerContext, *, wall: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder("cronjob-controller")
        self.wall = wall
        self.cronjobs = ctx.informers.informer_for(CRONJOBS)
        self.jobs = ctx.informers.informer_for(JOBS)
        self.queue = RateLimitingQueue(name="cronjob")
        self.controller = Controller("cronjob", self.sync, self.queue, workers=ctx.options.concurrent_syncs)
        enqueue_on(self.cronjobs, self.queue)
        enqueue_owner(self.jobs, self.queue, "CronJob", "batch")

    def owned_jobs(self, cj: Obj) -> list[Obj]:
        uid = meta(cj).get("uid")
        out = []
        for job in self.jobs.indexer.by_index("namespace", meta(cj).get("namespace", "")):
            ref = controller_ref(job)
            if ref is not None and ref.get("uid") == uid:
                out.append(job)
        return out

    async def sync(self, key: str) -> Requeue | None:
        cj = self.cronjobs.indexer.get(key)
        if cj is None:
            return None
        spec = cj.get("spec") or {}
        old_status = cj.get("status") or {}
        status = copy.deepcopy(old_status)
        jobs = self.owned_jobs(cj)
        by_uid = {meta(j).get("uid"): j for j in jobs}

        # 1. status.active from the Jobs we own
        active: list[Obj] = []
        for ref in status.get("active") or []:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                self.recorder.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                continue
            if not is_finished(job)[0]:
                active.append(ref)
        listed = {r.get("uid") for r in active}
        for job in jobs:
            done, kind = is_finished(job)
            if not done and meta(job).get("uid") not in listed:
                active.append(job_ref(job))
            if done and meta(job).get("uid") in {r.get("uid") for r in status.get("active") or []}:
                self.recorder.event(
                    cj, "Normal", "SawCompletedJob", f"Saw completed job: {meta(job)['name']}, status: {kind}"
                )
            if kind == "Complete":
                ct = parse_time((job.get("status") or {}).get("completionTime"))
                last = parse_time(status.get("lastSuccessfulTime"))
                if ct is not None and (last is None or ct > last):
                    status["lastSuccessfulTime"] = datetime.fromtimestamp(ct, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status["active"] = active

        # 2. history limits
        for job in history_to_delete(jobs, spec.get("successfulJobsHistoryLimit"), spec.get("failedJobsHistoryLimit")):
            await self._delete_job(cj, job)

        requeue: float | None = None
        if not meta(cj).get("deletionTimestamp") and not spec.get("suspend"):
            requeue = await self._schedule(cj, status, jobs)
        if not status.get("active"):
            status.pop("active", None)
        if status != old_status:
            new = copy.deepcopy(cj)
            new["status"] = status
            await self.client.update(CRONJOBS, new, subresource="status")
        return Requeue(after=requeue) if requeue is not None else None

    async def _schedule(self, cj: Obj, status: Obj, jobs: list[Obj]) -> float | None:
        spec = cj.get("spec") or {}
        try:
            tz = schedule_zone(spec)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.recorder.event(cj, "Warning", "UnknownTimeZone", f"invalid timeZone: {spec.get('timeZone')!r}")
            return None
        try:
            schedule = parse(str(spec.get("schedule") or ""))
        except CronError as err:
            self.recorder.event(
                cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {spec.get('schedule')!r} : {err}"
            )
            return None
        now = datetime.fromtimestamp(self.wall(), UTC)
        wake = next_wakeup(schedule, now, tz)
        scheduled, missed = most_recent(schedule, {**cj, "status": status}, now, tz)
        if scheduled is None:
            return wake
        if missed > TOO_MANY_MISSED:
            self.recorder.event(
                cj,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            )
        sds = spec.get("startingDeadlineSeconds")
        if sds is not None and scheduled.timestamp() + int(sds) < now.timestamp():
            self.recorder.event(
                cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {fmt(scheduled)}"
            )
            return wake
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            log.info("cronjob %s: not starting a job, the prior one is still running", meta_namespace_key(cj))
            return wake
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                job = next((j for j in jobs if meta(j).get("uid") == ref.get("uid")), None)
                if job is not None:
                    await self._delete_job(cj, job)
            status["active"] = []
        job = job_from_template(cj, scheduled, tz)
        try:
            created = await self.client.create(JOBS, job, meta(cj).get("namespace"))
            self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {meta(created)['name']}")
        except StatusError as err:
            if err.code != 409:
                self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {err}")
                raise
            # already created (by us, before a crash or a lost status write): adopt it in status
            try:
                created = await self.client.get(JOBS, job["metadata"]["name"], meta(cj).get("namespace"))
            except StatusError:
                return wake
            if (controller_ref(created) or {}).get("uid") != meta(cj).get("uid"):
                return wake
        if not is_finished(created)[0] and meta(created).get("uid") not in {
            r.get("uid") for r in status.get("active") or []
        }:
            status.setdefault("active", []).append(job_ref(created))
        status["lastScheduleTime"] = fmt(scheduled)
        return wake

    async def _delete_job(self, cj: Obj, job: Obj) -> None:
        md = meta(job)
        try:
            await self.client.delete(JOBS, md["name"], md.get("namespace"), propagation_policy="Background")
        except StatusError as err:
            if err.code != 404:
                self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {err}")
                raise
            return
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {md['name']}")

    async def run(self) -> None:
        await self.controller.run([self.cronjobs, self.jobs])


@register("cronjob")
async def start(ctx: ControllerContext) -> None:
    ctl = CronJobController(ctx)
    await ctx.informers.start()
    await ctl.run()
