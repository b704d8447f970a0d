"""Workload controllers (job, cronjob, ttl-after-finished, daemonset, statefulset) in-process against
a real etcd and api-server. The test plays the kubelet: it patches pod status to Running/Ready or
Succeeded, and registers nodes through the API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import (
    CRONJOBS,
    DAEMONSETS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    SERVICEACCOUNTS,
    STATEFULSETS,
    ref_for,
)
from kubeha.controllers.context import ControllerContext, ControllerOptions
from kubeha.machinery.informer import SharedInformerFactory
from tests.support import waiting
from tests.support.apiserver import ApiServer

Obj = dict[str, Any]


class Harness:
    def __init__(self, client: ApiClient, ns: str) -> None:
        self.client = client
        self.ns = ns
        self.ctx = ControllerContext(client, SharedInformerFactory(client), ControllerOptions())
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self, *controllers: Any) -> None:
        await self.ctx.informers.start()
        for ctl in controllers:
            self.tasks.append(asyncio.create_task(ctl.run()))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.ctx.informers.stop()

    async def pods(self, selector: str | None = None) -> list[Obj]:
        items: list[Obj] = (await self.client.list(PODS, self.ns, label_selector=selector))["items"]
        return items

    async def set_pod_phase(self, pod: Obj, phase: str, ready: bool = False) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status: Obj = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}],
        }
        await self.client.patch(PODS, pod["metadata"]["name"], {"status": status}, self.ns, subresource="status")


# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=20.0, every=0.2)


@pytest.fixture
async def h(apiservers: list[ApiServer]) -> AsyncIterator[Harness]:
    client = ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig)), user_agent="workload-test", timeout=10)
    ns = f"wl-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    # the serviceaccount controller's part: pods are admitted only with the namespace's default SA
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, ns)
    harness = Harness(client, ns)
    try:
        yield harness
    finally:
        await harness.stop()
        with contextlib.suppress(StatusError):
            await client.delete(NAMESPACES, ns)
        await client.close()


def container() -> Obj:
    return {"name": "c", "image": "busybox:1.36", "command": ["true"]}


# -- job --------------------------------------------------------------------------------------


async def test_job_runs_pods_to_completion(h: Harness) -> None:
    from kubeha.controllers.job import JobController

    await h.run(JobController(h.ctx))
    job = {
        "metadata": {"name": "calc"},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "template": {"spec": {"containers": [container()], "restartPolicy": "Never"}},
        },
    }
    created = await h.client.create(JOBS, job, h.ns)
    sel = f"batch.kubernetes.io/controller-uid={created['metadata']['uid']}"

    async def two_pods() -> list[Obj]:
        pods = await h.pods(sel)
        return pods if len(pods) == 2 else []

    pods = await eventually(two_pods)
    for p in pods:
        assert "batch.kubernetes.io/job-tracking" in p["metadata"]["finalizers"]
        assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
    for p in pods:
        await h.set_pod_phase(p, "Succeeded")

    async def complete() -> Obj | None:
        got = await h.client.get(JOBS, "calc", h.ns)
        conds = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
        return got if conds.get("Complete") == "True" else None

    done = await eventually(complete)
    st = done["status"]
    assert st["succeeded"] == 2 and st.get("failed", 0) == 0 and st["active"] == 0
    assert st["completionTime"] and st["startTime"]
    assert {c["type"] for c in st["conditions"]} >= {"SuccessCriteriaMet", "Complete"}
    # finalizers are gone once counted
    for p in await h.pods(sel):
        assert "batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or [])


async def test_job_fails_after_backoff_limit(h: Harness) -> None:
    from kubeha.controllers.job import JobController

    await h.run(JobController(h.ctx))
    job = {
        "metadata": {"name": "doomed"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [container()], "restartPolicy": "Never"}}},
    }
    await h.client.create(JOBS, job, h.ns)
    pods = await eventually(lambda: h.pods("batch.kubernetes.io/job-name=doomed"))
    await h.set_pod_phase(pods[0], "Failed")

    async def failed() -> Obj | None:
        got = await h.client.get(JOBS, "doomed", h.ns)
        conds = {c["type"]: c for c in (got.get("status") or {}).get("conditions") or []}
        return got if conds.get("Failed", {}).get("status") == "True" else None

    got = await eventually(failed)
    assert got["status"]["failed"] == 1
    assert next(c for c in got["status"]["conditions"] if c["type"] == "Failed")["reason"] == "BackoffLimitExceeded"


async def test_cronjob_creates_job_and_ttl_deletes_finished_jobs(h: Harness) -> None:
    from kubeha.controllers.cronjob import CronJobController
    from kubeha.controllers.job import JobController
    from kubeha.controllers.ttlafterfinished import TTLAfterFinishedController

    # the cronjob controller's clock runs two minutes ahead, so a "* * * * *" schedule is due at once
    await h.run(
        CronJobController(h.ctx, wall=lambda: time.time() + 120),
        JobController(h.ctx),
        TTLAfterFinishedController(h.ctx),
    )
    cj = {
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "ttlSecondsAfterFinished": 0,
                    "template": {"spec": {"containers": [container()], "restartPolicy": "OnFailure"}},
                }
            },
        },
    }
    await h.client.create(CRONJOBS, cj, h.ns)

    async def one_job() -> list[Obj]:
        return (await h.client.list(JOBS, h.ns))["items"]

    jobs = await eventually(one_job)
    assert len(jobs) == 1  # Forbid: one at a time
    job = jobs[0]
    assert job["metadata"]["name"].startswith("tick-")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

    async def active() -> Obj | None:
        got = await h.client.get(CRONJOBS, "tick", h.ns)
        st = got.get("status") or {}
        return got if st.get("active") and st.get("lastScheduleTime") else None

    got = await eventually(active)
    assert got["status"]["active"][0]["name"] == job["metadata"]["name"]
    pods = await eventually(lambda: h.pods(f"batch.kubernetes.io/job-name={job['metadata']['name']}"))
    await h.set_pod_phase(pods[0], "Succeeded")

    # the job completes, the cronjob notes it, and the TTL controller deletes the job (in the
    # foreground: without a garbage collector here it stays, marked for deletion)
    async def job_gone() -> bool:
        try:
            got = await h.client.get(JOBS, job["metadata"]["name"], h.ns)
        except StatusError as err:
            return err.code == 404
        return bool(got["metadata"].get("deletionTimestamp"))

    await eventually(job_gone)

    async def success_noted() -> Obj | None:
        got = await h.client.get(CRONJOBS, "tick", h.ns)
        return got if (got.get("status") or {}).get("lastSuccessfulTime") else None

    await eventually(success_noted)


# -- daemonset ----------------------------------------------------------------------------------


def node_obj(name: str, *, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


async def test_daemonset_one_pod_per_eligible_node(h: Harness) -> None:
    from kubeha.controllers.daemonset import REVISION_HASH_LABEL, DaemonSetController

    tag = uuid.uuid4().hex[:6]
    names = [f"ds-{tag}-w1", f"ds-{tag}-w2", f"ds-{tag}-cp"]
    cp_taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    for name in names:
        cp = name.endswith("cp")
        await h.client.create(NODES, node_obj(name, labels={"pool": tag}, taints=[cp_taint] if cp else None))
    try:
        await h.run(DaemonSetController(h.ctx))

        def ds(name: str, tolerate_cp: bool) -> Obj:
            spec: Obj = {"containers": [{"name": "agent", "image": "busybox:1.36"}], "nodeSelector": {"pool": tag}}
            if tolerate_cp:
                spec["tolerations"] = [
                    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
                ]
            return {
                "metadata": {"name": name},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
                },
            }

        await h.client.create(DAEMONSETS, ds("everywhere", True), h.ns)
        await h.client.create(DAEMONSETS, ds("workers", False), h.ns)

        def pinned(p: Obj) -> str:
            terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            return str(terms["nodeSelectorTerms"][0]["matchFields"][0]["values"][0])

        async def pods_of(app: str, n: int) -> list[Obj]:
            pods = await h.pods(f"app={app}")
            return pods if len(pods) == n else []

        everywhere = await eventually(lambda: pods_of("everywhere", 3))
        assert sorted(pinned(p) for p in everywhere) == sorted(names)
        workers = await eventually(lambda: pods_of("workers", 2))
        assert sorted(pinned(p) for p in workers) == sorted(names[:2])
        for p in everywhere:
            assert not p["spec"].get("nodeName")  # binding is the scheduler's job
            assert p["metadata"]["labels"][REVISION_HASH_LABEL]
            keys = {t.get("key") for t in p["spec"]["tolerations"]}
            assert {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"} <= keys

        # the kubelet's part: pods become ready; status counts them
        for p in everywhere:
            await h.set_pod_phase(p, "Running", ready=True)

        async def status_ready() -> Obj | None:
            got = await h.client.get(DAEMONSETS, "everywhere", h.ns)
            st = got.get("status") or {}
            return got if st.get("numberReady") == 3 and st.get("numberAvailable") == 3 else None

        got = await eventually(status_ready)
        st = got["status"]
        assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["updatedNumberScheduled"]) == (3, 3, 3)
        assert st["numberMisscheduled"] == 0 and st["observedGeneration"] == got["metadata"]["generation"]
        revs = (await h.client.list(ref_for("apps/v1", "ControllerRevision"), h.ns))["items"]
        assert any(r["metadata"]["name"].startswith("everywhere-") for r in revs)
    finally:
        for name in names:
            with contextlib.suppress(StatusError):
                await h.client.delete(NODES, name)


# -- statefulset --------------------------------------------------------------------------------


async def test_statefulset_ordered_creation_and_rolling_update(h: Harness) -> None:
    from kubeha.controllers.statefulset import POD_INDEX_LABEL, POD_NAME_LABEL, StatefulSetController

    await h.run(StatefulSetController(h.ctx))
    sts = {
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 3,
            "serviceName": "db-headless",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "busybox:1.36"}]},
            },
        },
    }
    await h.client.create(STATEFULSETS, sts, h.ns)

    async def names() -> list[str]:
        return sorted(
            p["metadata"]["name"] for p in await h.pods("app=db") if not p["metadata"].get("deletionTimestamp")
        )

    async def exactly(want: list[str]) -> bool:
        got = await names()
        return got == want

    # OrderedReady: db-1 only after db-0 is Running and Ready, and so on
    for i in range(3):
        want = [f"db-{j}" for j in range(i + 1)]
        await eventually(functools.partial(exactly, want))
        await asyncio.sleep(0.5)
        assert await names() == [f"db-{j}" for j in range(i + 1)]  # nothing ahead of a not-ready pod
        pod = await h.client.get(PODS, f"db-{i}", h.ns)
        assert pod["metadata"]["labels"][POD_NAME_LABEL] == f"db-{i}"
        assert pod["metadata"]["labels"][POD_INDEX_LABEL] == str(i)
        assert pod["spec"]["hostname"] == f"db-{i}" and pod["spec"]["subdomain"] == "db-headless"
        await h.set_pod_phase(pod, "Running", ready=True)

    async def all_ready() -> Obj | None:
        got = await h.client.get(STATEFULSETS, "db", h.ns)
        st = got.get("status") or {}
        return got if st.get("readyReplicas") == 3 and st.get("currentRevision") else None

    got = await eventually(all_ready)
    first_rev = got["status"]["currentRevision"]
    assert got["status"]["updateRevision"] == first_rev

    # a template change rolls from the highest ordinal down, one pod at a time
    got["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"
    await h.client.update(STATEFULSETS, got)

    async def revisions() -> dict[str, str]:
        pods = await h.pods("app=db")
        return {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"] for p in pods}

    async def replaced(name: str) -> Obj | None:
        revs = await revisions()
        if revs.get(name) in (None, first_rev):
            return None
        return await h.client.get(PODS, name, h.ns)

    new_pod = await eventually(lambda: replaced("db-2"))
    await asyncio.sleep(0.5)
    revs = await revisions()
    assert revs["db-1"] == first_rev and revs["db-0"] == first_rev  # the others wait while db-2 is replaced
    await h.set_pod_phase(new_pod, "Running", ready=True)
    new_pod = await eventually(lambda: replaced("db-1"))
    assert (await revisions())["db-0"] == first_rev
    await h.set_pod_phase(new_pod, "Running", ready=True)
    new_pod = await eventually(lambda: replaced("db-0"))
    await h.set_pod_phase(new_pod, "Running", ready=True)

    async def rolled() -> Obj | None:
        got = await h.client.get(STATEFULSETS, "db", h.ns)
        st = got.get("status") or {}
        done = st.get("currentRevision") == st.get("updateRevision") != first_rev and st.get("updatedReplicas") == 3
        return got if done else None

    await eventually(rolled)


async def test_job_tracking_finalizer_released_when_job_is_gone(h: Harness) -> None:
    from kubeha.controllers.job import JobController

    await h.run(JobController(h.ctx))
    job = {
        "metadata": {"name": "gone"},
        "spec": {"template": {"spec": {"containers": [container()], "restartPolicy": "Never"}}},
    }
    await h.client.create(JOBS, job, h.ns)
    pods = await eventually(lambda: h.pods("batch.kubernetes.io/job-name=gone"))

    async def job_missing(job_name: str) -> bool:
        try:
            await h.client.get(JOBS, job_name, h.ns)
        except StatusError as err:
            return err.code == 404
        return False

    name = pods[0]["metadata"]["name"]
    await h.client.delete(JOBS, "gone", h.ns, propagation_policy="Background")
    await eventually(lambda: job_missing("gone"))
    # the garbage collector's part (deleting the dependents) played by the test
    await h.client.delete(PODS, name, h.ns, grace_period_seconds=0)

    async def pod_gone() -> bool:
        try:
            await h.client.get(PODS, name, h.ns)
        except StatusError as err:
            return err.code == 404
        return False

    await eventually(pod_gone)
