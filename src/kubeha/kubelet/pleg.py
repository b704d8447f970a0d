"""Pod lifecycle event generator: a periodic relist of the runtime (upstream's generic PLEG).

Every ``period`` it lists the runtime, compares each container's (state, exit code) with the
previous snapshot and wakes the worker of every pod where something changed: a container that
started, died or vanished behind the kubelet's back. The latest listing is also the kubelet's
cache of the runtime (``pods``), so syncs read it instead of asking the runtime again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kubeha.kubelet.runtime import Runtime, RuntimePod

log = logging.getLogger(__name__)

Snapshot = dict[str, dict[str, tuple[str, int | None]]]  # pod uid -> container id -> (state, exit code)


def snapshot(pods: list[RuntimePod]) -> Snapshot:
    return {p.uid: {c.id: (c.state, c.exit_code) for c in p.containers} for p in pods}


def changed_pods(old: Snapshot, new: Snapshot) -> set[str]:
    """Uids of pods whose containers differ between two listings (appeared, changed, vanished)."""
    return {uid for uid in old.keys() | new.keys() if old.get(uid) != new.get(uid)}


class Pleg:
    def __init__(self, runtime: Runtime, on_change: Callable[[str], None], period: float = 1.0) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.period = period
        self.pods: dict[str, RuntimePod] = {}
        self._snap: Snapshot = {}
        self.relists = 0

    async def relist(self) -> set[str]:
        pods = await self.runtime.list_pods()
        snap = snapshot(pods)
        changed = changed_pods(self._snap, snap)
        self.pods = {p.uid: p for p in pods}
        self._snap = snap
        self.relists += 1
        for uid in changed:
            self.on_change(uid)
        return changed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.relist()
            except OSError as e:
                log.warning("relist of runtime %s failed: %s", self.runtime.name, e)
