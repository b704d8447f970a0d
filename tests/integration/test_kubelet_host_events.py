"""The host runtime's event stream: a pidfd per container shim (real shim and command processes)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubeha.kubelet.runtime import EXITED, RUNNING
from kubeha.kubelet.runtime.host import HostRuntime


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())}}


@pytest.fixture
async def host() -> AsyncIterator[HostRuntime]:
    root = Path(tempfile.mkdtemp(prefix="kubelet-host-events-"))
    rt = HostRuntime(str(root), "127.0.0.1")
    try:
        yield rt
    finally:
        for pod in await rt.list_pods():
            await rt.remove_sandbox(pod.uid)  # stops what still runs, by its shim's pid
        shutil.rmtree(root, ignore_errors=True)


async def _start(rt: HostRuntime, command: str) -> tuple[str, str]:
    pod = _pod(f"p-{uuid.uuid4().hex[:6]}")
    sandbox = await rt.run_sandbox(pod)
    cid = await rt.create_container(pod, {"name": "main", "command": ["sh", "-c", command]}, sandbox, {}, [], 0)
    await rt.start_container(cid)
    return pod["metadata"]["uid"], cid


async def _next(events: AsyncIterator[str], within: float = 10.0) -> str:
    return await asyncio.wait_for(anext(events), within)  # type: ignore[arg-type]


async def test_exits_are_events_for_containers_started_before_and_during_the_stream(host: HostRuntime) -> None:
    before_uid, before_cid = await _start(host, "sleep 2")
    events = host.watch_events()
    first = asyncio.ensure_future(_next(events))
    await asyncio.sleep(0.2)  # the stream has found the running shim
    assert not first.done(), "an event before anything exited"
    assert await first == before_uid
    st = await host.container_status(before_cid)
    assert st is not None and st.state == EXITED and st.exit_code == 0  # recorded before the shim went

    during_uid, during_cid = await _start(host, "sleep 0.5; exit 3")
    assert await _next(events) == during_uid
    st = await host.container_status(during_cid)
    assert st is not None and st.state == EXITED and st.exit_code == 3

    # a stopped container is an event too; a running one is none
    _, quiet_cid = await _start(host, "sleep 1000")
    stop_uid, stop_cid = await _start(host, "sleep 1000")
    await host.stop_container(stop_cid, 1)
    assert await _next(events) == stop_uid
    with pytest.raises(TimeoutError):
        await _next(events, within=0.5)
    st = await host.container_status(quiet_cid)
    assert st is not None and st.state == RUNNING

    await events.aclose()  # type: ignore[attr-defined]
    assert host._shims == {}  # the last stream closed every pidfd


async def test_a_container_gone_before_it_is_watched_is_reported_at_once(host: HostRuntime) -> None:
    events = host.watch_events()
    waiting = asyncio.ensure_future(_next(events))
    await asyncio.sleep(0.1)
    uid, _ = await _start(host, "true")  # may well be over before start_container returns
    assert await waiting == uid
    with contextlib.suppress(TimeoutError):
        # its shim may have been watched and reported, or found gone at once: never both
        extra = await _next(events, within=0.5)
        pytest.fail(f"a second event for one exit: {extra}")
    await events.aclose()  # type: ignore[attr-defined]
