"""Liveness, readiness and startup probes with upstream timing.

Each probed container gets one task per probe kind. A probe runs every ``periodSeconds`` once
``initialDelaySeconds`` have passed since the container started; ``successThreshold``
consecutive successes make the result Success, ``failureThreshold`` consecutive failures make it
Failure. Until the startup probe succeeds the other two do not run. Initial results: liveness
Success (a container is alive until shown otherwise), readiness Failure, startup Failure. A new
container (a restart) starts over from the initial result. The kubelet's pod worker is woken
whenever a result flips: it restarts on liveness Failure and reports readiness in the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from kubeha.kubelet.runtime import RUNNING, ContainerState, Runtime

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
KINDS = (LIVENESS, READINESS, STARTUP)
SPEC_FIELDS = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}


def _int(probe: Obj, key: str, default: int) -> int:
    value = probe.get(key)
    return int(value) if isinstance(value, int) and value > 0 else default


@dataclass
class ProbeTracker:
    """The result of one probe of one container, from consecutive outcomes (pure: no I/O)."""

    kind: str
    probe: Obj
    container_id: str = ""
    result: bool = False
    failed: bool = False  # failureThreshold consecutive failures seen (startup: the container is restarted)
    _run: int = 0  # consecutive outcomes equal to the last one
    _last: bool | None = None

    def __post_init__(self) -> None:
        self.reset(self.container_id)

    @property
    def initial_delay(self) -> float:
        return float(self.probe.get("initialDelaySeconds") or 0)

    @property
    def period(self) -> float:
        return float(_int(self.probe, "periodSeconds", 10))

    @property
    def timeout(self) -> float:
        return float(_int(self.probe, "timeoutSeconds", 1))

    @property
    def success_threshold(self) -> int:
        return _int(self.probe, "successThreshold", 1)

    @property
    def failure_threshold(self) -> int:
        return _int(self.probe, "failureThreshold", 3)

    def reset(self, container_id: str) -> None:
        self.container_id = container_id
        self.result = self.kind == LIVENESS
        self.failed = False
        self._run, self._last = 0, None

    def due(self, started_at: datetime | None, now: datetime) -> bool:
        """Whether the initial delay has passed for a container started at ``started_at``."""
        if started_at is None:
            return False
        return (now - started_at).total_seconds() >= self.initial_delay

    def observe(self, ok: bool) -> bool:
        """Record one outcome; True when the result flipped."""
        self._run = self._run + 1 if self._last == ok else 1
        self._last = ok
        threshold = self.success_threshold if ok else self.failure_threshold
        if not ok and self._run >= threshold and not self.failed:
            self.failed = True
            if self.result is False:  # startup and readiness start out False: still a change to act on
                return True
        if ok:
            self.failed = False
        if self._run >= threshold and self.result != ok:
            self.result = ok
            return True
        return False


async def run_probe(probe: Obj, runtime: Runtime, st: ContainerState, container: Obj, pod_ip: str) -> bool:
    """One attempt of ``probe`` against the running container: True on success."""
    timeout = float(_int(probe, "timeoutSeconds", 1))
    try:
        if "exec" in probe:
            cmd = [str(a) for a in (probe["exec"] or {}).get("command") or []]
            code, _, _ = await runtime.exec_sync(st.id, cmd, timeout)
            return code == 0
        if "httpGet" in probe:
            return await http_get(probe["httpGet"] or {}, container, pod_ip, timeout)
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"] or {}
            port = resolve_port(tcp.get("port"), container)
            _, writer = await asyncio.wait_for(asyncio.open_connection(tcp.get("host") or pod_ip, port), timeout)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
    except (TimeoutError, OSError, aiohttp.ClientError, ValueError) as e:
        log.debug("probe of %s failed: %s", st.id, e)
        return False
    log.warning("probe of %s has no supported handler (exec, httpGet, tcpSocket)", st.id)
    return False


def resolve_port(port: Any, container: Obj) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or ():
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unknown port {port!r}")


async def http_get(action: Obj, container: Obj, pod_ip: str, timeout: float) -> bool:  # noqa: ASYNC109
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = action.get("host") or pod_ip
    port = resolve_port(action.get("port"), container)
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    headers = {"User-Agent": "kube-probe/1.32"}
    for h in action.get("httpHeaders") or ():
        headers[str(h.get("name"))] = str(h.get("value") or "")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # upstream probes skip verification
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.get(f"{scheme}://{host}:{port}{path}", headers=headers, ssl=ctx, allow_redirects=True) as resp,
    ):
        return 200 <= resp.status < 400


Current = Callable[[str, str], tuple[Obj, Obj, ContainerState] | None]  # (uid, name) -> (pod, container, state)


@dataclass
class _Entry:
    tracker: ProbeTracker
    task: asyncio.Task[None] | None = None
    probes_run: int = field(default=0)


class ProbeManager:
    """Probe tasks for the containers of running pods, and their latest results."""

    def __init__(
        self,
        runtime: Runtime,
        current: Current,
        on_change: Callable[[str], None],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        probe: Callable[[Obj, Runtime, ContainerState, Obj, str], Awaitable[bool]] = run_probe,
    ) -> None:
        self.runtime = runtime
        self._current = current
        self._on_change = on_change
        self._sleep = sleep
        self._now = now
        self._probe = probe
        self._entries: dict[tuple[str, str, str], _Entry] = {}

    def ensure(self, uid: str, pod: Obj) -> None:
        """Probe tasks for every probe in ``pod``'s containers (idempotent)."""
        for c in (pod.get("spec") or {}).get("containers") or ():
            for kind in KINDS:
                probe = c.get(SPEC_FIELDS[kind])
                key = (uid, str(c.get("name")), kind)
                if not isinstance(probe, dict) or key in self._entries:
                    continue
                entry = self._entries[key] = _Entry(ProbeTracker(kind, probe))
                entry.task = asyncio.get_running_loop().create_task(self._loop(key, entry), name=f"probe {key}")

    def remove(self, uid: str) -> None:
        for key in [k for k in self._entries if k[0] == uid]:
            entry = self._entries.pop(key)
            if entry.task is not None:
                entry.task.cancel()

    def result(self, uid: str, name: str, kind: str, container_id: str) -> bool | None:
        """The result for this container instance (None: the container has no such probe)."""
        entry = self._entries.get((uid, name, kind))
        if entry is None:
            return None
        if entry.tracker.container_id != container_id:
            return LIVENESS == kind  # not probed yet: the initial result
        return entry.tracker.result

    def seed(self, uid: str, name: str, kind: str, container_id: str, result: bool) -> None:
        """Start a never-probed container's result at ``result`` (an adopted container's last
        known state) instead of the initial one."""
        entry = self._entries.get((uid, name, kind))
        if entry is not None and entry.probes_run == 0:
            entry.tracker.reset(container_id)
            entry.tracker.result = result

    def startup_failed(self, uid: str, name: str, container_id: str) -> bool:
        entry = self._entries.get((uid, name, STARTUP))
        return entry is not None and entry.tracker.container_id == container_id and entry.tracker.failed

    def started(self, uid: str, name: str, container_id: str) -> bool:
        r = self.result(uid, name, STARTUP, container_id)
        return True if r is None else r

    async def _loop(self, key: tuple[str, str, str], entry: _Entry) -> None:
        while True:
            await self.tick(key, entry)
            await self._sleep(entry.tracker.period)

    async def tick(self, key: tuple[str, str, str], entry: _Entry) -> None:
        """One period of one probe: run it when due and record the outcome."""
        uid, name, kind = key
        tracker = entry.tracker
        cur = self._current(uid, name)
        if cur is None:
            return
        pod, container, st = cur
        if st.state != RUNNING:
            return
        if st.id != tracker.container_id:
            tracker.reset(st.id)
        started = self.started(uid, name, st.id)
        if (kind == STARTUP and started and tracker.result) or (kind != STARTUP and not started):
            return
        if not tracker.due(st.started_at, self._now()):
            return
        ip = str((pod.get("status") or {}).get("podIP") or "") or "127.0.0.1"
        ok = await self._probe(tracker.probe, self.runtime, st, container, ip)
        entry.probes_run += 1
        if tracker.observe(ok):
            log.info("%s probe of %s/%s: %s", kind, uid, name, "success" if ok else "failure")
            self._on_change(uid)

    async def stop(self) -> None:
        tasks = [e.task for e in self._entries.values() if e.task is not None]
        self._entries.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
