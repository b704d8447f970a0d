"""Several runtimes behind one: the kubelet's runtime when it serves more than one handler.

Pods go to the runtime named by their ``runtimeClassName`` (``docker`` by default, ``host``);
container calls go by the id's shape, which says which runtime made it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from kubeha.kubelet.runtime import ContainerState, ExecProcess, Mount, Obj, RuntimePod, Sandbox
from kubeha.kubelet.runtime.dockerspec import HANDLER

_END = object()


class MultiRuntime:
    """The kubelet's runtime when it serves several handlers (``docker`` by default, ``host``):
    sandbox calls go by the pod's ``runtimeClassName``, container calls by the id's shape
    (Docker ids are our ``k8s_...`` names; host ids are ``<uid>_<name>_<attempt>``)."""

    def __init__(self, runtimes: Mapping[str, Any], default: str) -> None:
        self.runtimes = dict(runtimes)
        self.default = default
        self.name = default

    @property
    def version(self) -> str:
        return str(self.runtimes[self.default].version)

    def handler(self, pod: Obj) -> str:
        return str((pod.get("spec") or {}).get("runtimeClassName") or self.default)

    def serves(self, runtime_class: str) -> bool:
        return (runtime_class or self.default) in self.runtimes

    def _by_id(self, cid: str) -> Any:
        if cid.startswith("k8s_") and HANDLER in self.runtimes:
            return self.runtimes[HANDLER]
        return self.runtimes.get("host") or self.runtimes[self.default]

    def handler_of(self, cid: str) -> str:
        rt = self._by_id(cid)
        return next(h for h, r in self.runtimes.items() if r is rt)

    async def list_pods(self) -> list[RuntimePod]:
        listed = await asyncio.gather(*(rt.list_pods() for rt in self.runtimes.values()))
        return [p for pods in listed for p in pods]

    async def _holder(self, uid: str) -> Any:
        for rt in self.runtimes.values():
            if any(p.uid == uid for p in await rt.list_pods()):
                return rt
        return None

    async def run_sandbox(self, pod: Obj) -> Sandbox:
        return await self.runtimes[self.handler(pod)].run_sandbox(pod)  # type: ignore[no-any-return]

    async def stop_sandbox(self, pod_uid: str) -> None:
        rt = await self._holder(pod_uid)
        if rt is not None:
            await rt.stop_sandbox(pod_uid)

    async def remove_sandbox(self, pod_uid: str) -> None:
        rt = await self._holder(pod_uid)
        if rt is not None:
            await rt.remove_sandbox(pod_uid)

    async def create_container(
        self, pod: Obj, container: Obj, sandbox: Sandbox, env: Mapping[str, str], mounts: list[Mount], attempt: int
    ) -> str:
        rt = self.runtimes[self.handler(pod)]
        return await rt.create_container(pod, container, sandbox, env, mounts, attempt)  # type: ignore[no-any-return]

    async def start_container(self, container_id: str) -> None:
        await self._by_id(container_id).start_container(container_id)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        await self._by_id(container_id).stop_container(container_id, grace_seconds)

    async def remove_container(self, container_id: str) -> None:
        await self._by_id(container_id).remove_container(container_id)

    async def container_status(self, container_id: str) -> ContainerState | None:
        return await self._by_id(container_id).container_status(container_id)  # type: ignore[no-any-return]

    async def exec_sync(
        self,
        container_id: str,
        cmd: list[str],
        timeout: float,  # noqa: ASYNC109
    ) -> tuple[int, bytes, bytes]:
        return await self._by_id(container_id).exec_sync(container_id, cmd, timeout)  # type: ignore[no-any-return]

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        return self._by_id(container_id).logs(  # type: ignore[no-any-return]
            container_id, follow=follow, tail=tail, since=since, timestamps=timestamps, previous=previous
        )

    async def exec_stream(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecProcess:
        return await self._by_id(container_id).exec_stream(container_id, cmd, stdin=stdin, tty=tty)  # type: ignore[no-any-return]

    def attach(self, container_id: str) -> AsyncIterator[tuple[str, bytes]]:
        return self._by_id(container_id).attach(container_id)  # type: ignore[no-any-return]

    async def watch_events(self) -> AsyncIterator[str]:
        """The merged event streams of the runtimes that have one (``Runtime.watch_events``);
        the others (the host runtime) contribute nothing. Ends at once when none has events."""
        sources = [rt.watch_events() for rt in self.runtimes.values() if hasattr(rt, "watch_events")]
        if not sources:
            return
        queue: asyncio.Queue[object] = asyncio.Queue()

        async def forward(events: AsyncIterator[str]) -> None:
            try:
                async for uid in events:
                    queue.put_nowait(uid)
            except Exception as e:  # handed to the consumer: a broken source is not silently dropped
                queue.put_nowait(e)
            finally:
                queue.put_nowait(_END)

        tasks = [asyncio.create_task(forward(src)) for src in sources]
        try:
            ended = 0
            while ended < len(tasks):
                item = await queue.get()
                if item is _END:
                    ended += 1
                    continue
                if isinstance(item, Exception):
                    raise item
                yield str(item)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
