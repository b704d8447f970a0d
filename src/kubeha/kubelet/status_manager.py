"""Pod status: computed from the runtime's view (pure functions) and written through
``pods/<name>/status`` only when it changed (upstream's status manager).

Writes happen in the background: a pod worker only records the status it wants, so pods keep
running (static pods above all) while the api-server is unreachable; the newest wanted status
is written once it is back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import PODS
from kubeha.client.rest import ApiClient
from kubeha.kubelet.runtime import EXITED, RUNNING, ContainerState

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# Fields the kubelet owns in pod status; everything else (qosClass, nominatedNodeName, resize,
# conditions of others) is left as the api-server has it.
OWNED = (
    "phase",
    "conditions",
    "containerStatuses",
    "initContainerStatuses",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "reason",
    "message",
)
WRITE_PARALLELISM = 8  # status writes in flight at once (a node starting many pods)
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def fmt_time(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


@dataclass
class ContainerView:
    """What the kubelet knows of one container of the pod, for its status."""

    latest: ContainerState | None = None
    previous: ContainerState | None = None  # the attempt before ``latest`` (for lastState)
    waiting: tuple[str, str] | None = None  # (reason, message): e.g. CrashLoopBackOff
    ready: bool = False
    started: bool = False


def _terminated(st: ContainerState, runtime: str) -> Obj:
    out: Obj = {
        "exitCode": st.exit_code if st.exit_code is not None else 0,
        "reason": st.reason or ("Completed" if st.exit_code == 0 else "Error"),
        "startedAt": fmt_time(st.started_at),
        "finishedAt": fmt_time(st.finished_at),
        "containerID": f"{runtime}://{st.id}",
    }
    if st.message:
        out["message"] = st.message
    return out


def container_status(spec: Obj, view: ContainerView, runtime: str, *, not_started: str = "ContainerCreating") -> Obj:
    latest = view.latest
    out: Obj = {
        "name": spec.get("name"),
        "image": spec.get("image") or "",
        "imageID": (latest.image_id if latest else "") or "",
        "ready": view.ready,
        "restartCount": latest.attempt if latest else 0,
        "started": view.started,
    }
    if latest is not None and latest.state != "created":
        out["containerID"] = f"{runtime}://{latest.id}"
    if view.waiting is not None:
        reason, message = view.waiting
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    elif latest is not None and latest.state == RUNNING:
        out["state"] = {"running": {"startedAt": fmt_time(latest.started_at)}}
    elif latest is not None and latest.state == EXITED:
        out["state"] = {"terminated": _terminated(latest, runtime)}
    else:
        out["state"] = {"waiting": {"reason": not_started}}
    last: Obj = {}
    if view.waiting is not None and latest is not None and latest.state == EXITED:
        last = {"terminated": _terminated(latest, runtime)}
    elif view.previous is not None and view.previous.state == EXITED:
        last = {"terminated": _terminated(view.previous, runtime)}
    out["lastState"] = last
    return out


def _state(cs: Obj) -> str:
    return next(iter(cs.get("state") or {"waiting": {}}))


def pod_phase(spec: Obj, init_statuses: list[Obj], statuses: list[Obj]) -> str:
    """Upstream's getPhase over the computed container statuses."""
    policy = spec.get("restartPolicy") or "Always"
    for cs in init_statuses:
        st = _state(cs)
        term = (cs.get("state") or {}).get("terminated") or {}
        if st == "terminated" and term.get("exitCode") == 0:
            continue
        last_failed = bool(((cs.get("lastState") or {}).get("terminated") or {}).get("exitCode"))
        if policy == "Never" and (st == "terminated" or last_failed):
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for cs in statuses:
        st = _state(cs)
        if st == "running":
            running += 1
        elif st == "terminated":
            stopped += 1
            if ((cs.get("state") or {}).get("terminated") or {}).get("exitCode") == 0:
                succeeded += 1
        elif (cs.get("lastState") or {}).get("terminated"):
            stopped += 1  # waiting to restart after a crash: counts as stopped, as upstream
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if policy == "OnFailure" else "Failed"
    return "Pending"


def _condition(type_: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        c["reason"] = reason
        if message:
            c["message"] = message
    return c


def merge_conditions(old: list[Any], fresh: list[Obj], now: datetime) -> list[Obj]:
    """Ours replace same-typed ones (a condition whose status did not change keeps its transition
    time); the others' conditions (PodScheduled, readiness gates, DisruptionTarget) stay."""
    prev = {c.get("type"): c for c in old if isinstance(c, dict)}
    ts = fmt_time(now)
    out: list[Obj] = [c for c in old if isinstance(c, dict) and c.get("type") not in {f["type"] for f in fresh}]
    for c in fresh:
        p = prev.get(c["type"])
        c["lastTransitionTime"] = p.get("lastTransitionTime") if p and p.get("status") == c["status"] else ts
        out.append(c)
    order = {t: i for i, t in enumerate(("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"))}
    out.sort(key=lambda c: order.get(str(c.get("type")), -1 if c.get("type") == "PodScheduled" else 9))
    return out


def compute_status(
    pod: Obj,
    views: dict[str, ContainerView],
    init_views: dict[str, ContainerView],
    *,
    runtime: str,
    host_ip: str,
    pod_ips: list[str],
    sandbox_ready: bool,
    now: datetime,
) -> Obj:
    """The kubelet-owned part of ``pod.status`` for this moment."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    inits = [
        container_status(c, init_views.get(str(c.get("name")), ContainerView()), runtime, not_started="PodInitializing")
        for c in spec.get("initContainers") or ()
    ]
    initialized = all(((c.get("state") or {}).get("terminated") or {}).get("exitCode") == 0 for c in inits)
    conts = [
        container_status(
            c,
            views.get(str(c.get("name")), ContainerView()),
            runtime,
            not_started="ContainerCreating" if initialized else "PodInitializing",
        )
        for c in spec.get("containers") or ()
    ]
    phase = pod_phase(spec, inits, conts)
    done = phase in ("Succeeded", "Failed")
    pending_init = [
        str(c["name"]) for c in inits if ((c.get("state") or {}).get("terminated") or {}).get("exitCode") != 0
    ]
    unready = [str(c["name"]) for c in conts if not c["ready"]]
    names = " ".join(unready)
    fresh = [
        _condition("PodReadyToStartContainers", sandbox_ready and not done),
        _condition(
            "Initialized",
            not pending_init,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(pending_init)}]",
        ),
        _condition(
            "ContainersReady",
            not unready,
            "PodCompleted" if done else "ContainersNotReady",
            "" if done else f"containers with unready status: [{names}]",
        ),
        _condition(
            "Ready",
            not unready,
            "PodCompleted" if done else "ContainersNotReady",
            "" if done else f"containers with unready status: [{names}]",
        ),
    ]
    if done:
        for c in fresh[2:]:
            c["status"], c["reason"] = "False", "PodCompleted"
    status: Obj = {
        "phase": phase,
        "conditions": merge_conditions(list(old.get("conditions") or ()), fresh, now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": old.get("startTime") or fmt_time(now),
        "containerStatuses": conts,
    }
    if pod_ips:
        status["podIP"] = pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in pod_ips]
    if inits:
        status["initContainerStatuses"] = inits
    return status


def owned_part(status: Obj) -> Obj:
    return {k: status[k] for k in OWNED if k in status}


@dataclass
class _Want:
    namespace: str
    name: str
    uid: str
    status: Obj


class StatusManager:
    """Writes the newest wanted status of each pod when it differs from what was last written."""

    def __init__(self, client: ApiClient, retry: float = 2.0, parallel: int = WRITE_PARALLELISM) -> None:
        self.client = client
        self.retry = retry
        self.parallel = parallel
        self._want: dict[str, _Want] = {}  # key: the pod's uid in the kubelet (static: the file's)
        self._written: dict[str, Obj] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self.writes = 0

    def set(self, key: str, api_pod: Obj, status: Obj) -> None:
        """Want ``status`` on ``api_pod`` (for a static pod: its mirror pod)."""
        meta = api_pod.get("metadata") or {}
        if self._written.get(key) is None:
            # first word since (re)start: the api-server may already hold exactly this
            self._written[key] = owned_part(api_pod.get("status") or {})
        if self._written[key] == status:
            self._want.pop(key, None)
            self._dirty.discard(key)
            return
        self._want[key] = _Want(str(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid") or ""), status)
        self._dirty.add(key)
        self._wake.set()

    def forget(self, key: str) -> None:
        self._want.pop(key, None)
        self._written.pop(key, None)
        self._dirty.discard(key)

    async def run(self) -> None:
        limit = asyncio.Semaphore(self.parallel)
        loop = asyncio.get_running_loop()
        inflight: dict[str, asyncio.Task[None]] = {}
        backoff: set[str] = set()  # failed writes wait ``retry`` seconds before the next try

        def retry(key: str) -> None:
            backoff.discard(key)
            self._wake.set()

        async def write(key: str, want: _Want) -> None:
            try:
                async with limit:
                    await self._write(key, want)
            except (StatusError, ConnectionError) as e:
                log.info("status of pod %s/%s not written: %s", want.namespace, want.name, e)
                if not isinstance(e, StatusError) or e.code not in (404, 409, 422):
                    self._dirty.add(key)
                    backoff.add(key)
                    loop.call_later(self.retry, retry, key)
            finally:
                inflight.pop(key, None)
                if key in self._dirty and key not in backoff:
                    self._wake.set()  # a newer status arrived during this write

        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                # one pod's write never waits for another's (pods that start together are
                # reported together); a pod has one write in flight, so its writes stay in order
                for key in list(self._dirty):
                    if key in inflight or key in backoff:
                        continue
                    self._dirty.discard(key)
                    want = self._want.get(key)
                    if want is not None:
                        inflight[key] = loop.create_task(write(key, want), name=f"status {key}")
        finally:
            for t in list(inflight.values()):
                t.cancel()

    async def _write(self, key: str, want: _Want) -> None:
        # the uid pins the write to this pod, never to a newer one of the same name
        patch: Obj = {"metadata": {"uid": want.uid}, "status": want.status} if want.uid else {"status": want.status}
        await self.client.patch(PODS, want.name, patch, want.namespace, subresource="status")
        self.writes += 1
        self._written[key] = want.status
        if self._want.get(key) is want:
            del self._want[key]
