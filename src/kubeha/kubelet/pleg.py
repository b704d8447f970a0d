"""Pod lifecycle event generator: the kubelet's view of the runtime, kept current by relists
(upstream's generic PLEG) or by the runtime's events (upstream's evented PLEG).

A relist lists the runtime, compares each container's (state, exit code) with the previous
snapshot and wakes the worker of every pod where something changed: a container that started,
died or vanished behind the kubelet's back. The latest listing is also the kubelet's cache of the
runtime (``pods``), so probes and syncs read it instead of asking the runtime again.

How the view is kept current, per runtime:

* a runtime with ``watch_events()`` (Docker's event stream; the host runtime's pidfds on its
  containers' shims) wakes the worker of each pod it names at once; it is relisted after a
  reconnect (the stream yields ``""``: events may have been missed) and every ``slow_period``
  (300 s, as upstream's evented PLEG), so an idle node lists nothing in between;
* a runtime without events is relisted every ``period`` (1 s).

Pod workers ask for a listing that started after their call (:meth:`Pleg.fresh`): concurrent
callers share one, so 30 pods starting at once cost a few listings, not one each. With events,
a pod's cached state is used as it is when no event about the pod arrived since the last full
listing began (what upstream's evented PLEG cache gives its syncs): a steady node's periodic
resyncs list nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kubeha.kubelet.runtime import Runtime, RuntimePod

log = logging.getLogger(__name__)

Snapshot = dict[str, dict[str, tuple[str, int | None]]]  # pod uid -> container id -> (state, exit code)
SLOW_PERIOD = 300.0  # upstream's evented PLEG relists this often in case an event was lost


def snapshot(pods: list[RuntimePod]) -> Snapshot:
    return {p.uid: {c.id: (c.state, c.exit_code) for c in p.containers} for p in pods}


def changed_pods(old: Snapshot, new: Snapshot) -> set[str]:
    """Uids of pods whose containers differ between two listings (appeared, changed, vanished)."""
    return {uid for uid in old.keys() | new.keys() if old.get(uid) != new.get(uid)}


def has_events(runtime: object) -> bool:
    # looked up on the class: a runtime answering unknown attributes through __getattr__ (as
    # MultiRuntime once did) must not pass for one with events
    return callable(getattr(type(runtime), "watch_events", None))


class Pleg:
    def __init__(
        self,
        runtime: Runtime,
        on_change: Callable[[str], None],
        period: float = 1.0,
        slow_period: float = SLOW_PERIOD,
    ) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.period = period
        self.slow_period = slow_period
        self.pods: dict[str, RuntimePod] = {}
        subs = getattr(runtime, "runtimes", None)
        self._runtimes: dict[str, Any] = dict(subs) if isinstance(subs, Mapping) else {runtime.name: runtime}
        self._parts: dict[str, list[RuntimePod]] = {name: [] for name in self._runtimes}
        self._snaps: dict[str, Snapshot] = {name: {} for name in self._runtimes}
        self._lock = asyncio.Lock()  # one listing at a time: an older one never overwrites a newer
        self._started = 0  # full listings begun
        self._finished = 0  # full listings completed (successfully or not)
        self._inflight: asyncio.Future[None] | None = None
        self._quiet: set[str] = set()  # pods whose workers asked for the next listing themselves
        self.relists = 0
        self.events = 0  # runtime events received (also the sequence number of the latest)
        self.evented = False
        self._event_seq: dict[str, int] = {}  # pod uid -> number of the latest event about it
        self._listed_seq = -1  # the cache reflects every event up to this number
        self._connect_seq = 0  # the number of the stream's latest (re)connect: listings begun before it do not count

    # -- listing -------------------------------------------------------------------------------

    async def _list(self, names: list[str], quiet: set[str]) -> set[str]:
        """List the named runtimes, update the cache and wake workers of changed pods."""
        async with self._lock:
            changed: set[str] = set()
            for name in names:
                pods = await self._runtimes[name].list_pods()
                snap = snapshot(pods)
                changed |= changed_pods(self._snaps[name], snap)
                self._snaps[name] = snap
                self._parts[name] = pods
            self.pods = {p.uid: p for part in self._parts.values() for p in part}
            self.relists += 1
        for uid in changed - quiet:
            self.on_change(uid)
        return changed

    async def relist(self) -> set[str]:
        """A full listing now (not shared); returns the uids of pods that changed."""
        return await self._list(list(self._runtimes), set())

    def current(self, uid: str) -> bool:
        """Whether the cache holds ``uid`` as the runtime has it: events are flowing, a full
        listing has run since they began, and none about this pod arrived since it began."""
        return (
            self.evented and self._listed_seq >= self._connect_seq and self._event_seq.get(uid, -1) <= self._listed_seq
        )

    async def fresh(self, quiet: str = "") -> None:
        """Wait for a full listing that began after this call; concurrent callers share one.
        ``quiet``: the caller's pod, whose worker is not woken for what this listing shows
        (the caller reads ``pods`` itself); with events, nothing is listed when the cache is
        current for it."""
        if quiet and self.current(quiet):
            return
        if quiet:
            self._quiet.add(quiet)
        want = self._started + 1
        while self._finished < want:
            if self._inflight is None:
                self._inflight = asyncio.ensure_future(self._shared_listing())
            await asyncio.shield(self._inflight)

    async def _shared_listing(self) -> None:
        self._started += 1
        quiet, self._quiet = self._quiet, set()
        seq = self.events
        try:
            await self._list(list(self._runtimes), quiet)
            if self.evented and seq >= self._connect_seq:
                self._listed_seq = max(self._listed_seq, seq)
                self._event_seq = {u: n for u, n in self._event_seq.items() if n > seq}
        finally:
            self._finished += 1
            self._inflight = None

    # -- keeping current -----------------------------------------------------------------------

    async def run(self) -> None:
        evented = [n for n, rt in self._runtimes.items() if has_events(rt)] if has_events(self.runtime) else []
        polled = [n for n in self._runtimes if n not in evented]
        if not evented:
            await self._poll(polled, self.period)
            return
        self.evented = True
        log.info(
            "PLEG: events from %s, relist every %gs; %s relisted every %gs",
            evented,
            self.slow_period,
            polled or "nothing else",
            self.period,
        )
        tasks = [asyncio.create_task(self._poll(list(self._runtimes), self.slow_period), name="pleg slow relist")]
        if polled:
            tasks.append(asyncio.create_task(self._poll(polled, self.period), name="pleg relist"))
        try:
            await self._follow()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _poll(self, names: list[str], period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await self._list(names, set())
            except Exception as e:  # the runtime is down or answered nonsense: try again next period
                log.warning("relist of runtime %s failed: %s", ",".join(names), e)

    async def _follow(self) -> None:
        """Wake workers from the runtime's events; relist after every (re)connect."""
        while True:
            self._reconnected()  # the cache is not trusted until a listing begun after this
            stream: AsyncIterator[str] = self.runtime.watch_events()  # type: ignore[attr-defined]
            # what changed before the stream took over is covered by a listing once it runs
            soon: list[asyncio.Task[None]] = []
            first = asyncio.get_running_loop().call_later(self.period, self._relist_soon, soon)
            try:
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for uid in stream:
                        if uid:
                            self.events += 1
                            self._event_seq[uid] = self.events
                            self.on_change(uid)
                        else:
                            self._reconnected()
                            await self.fresh()  # reconnected: events may have been missed
            except Exception as e:  # a broken stream must not stop the PLEG: relist and follow again
                log.warning("runtime events failed: %s", e)
            finally:
                first.cancel()
                for t in soon:
                    t.cancel()
            self._connect_seq = self.events + 1  # no events now: list until the stream is back
            await asyncio.sleep(self.period)
            with contextlib.suppress(OSError):
                await self.fresh()

    def _reconnected(self) -> None:
        self.events += 1
        self._connect_seq = self.events

    def _relist_soon(self, tasks: list[asyncio.Task[None]]) -> None:
        tasks.append(asyncio.create_task(self._relist_quietly(), name="pleg relist after connect"))

    async def _relist_quietly(self) -> None:
        try:
            await self.fresh()
        except Exception as e:  # the slow relist tries again
            log.warning("relist of runtime %s failed: %s", self.runtime.name, e)
