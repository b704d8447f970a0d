"""MultiRuntime's routing and event merging, with small in-process runtimes standing in for the
runtime objects (the Docker and host runtimes themselves are tested in tests/e2e)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kubeha.kubelet.runtime.multi import MultiRuntime


class Quiet:
    """A runtime without events (as the host runtime)."""

    name = "host"


class Eventful:
    name = "docker"

    def __init__(self, uids: list[str], fail: bool = False, forever: bool = False) -> None:
        self.uids, self.fail, self.forever = uids, fail, forever
        self.closed = asyncio.Event()

    async def watch_events(self) -> AsyncIterator[str]:
        try:
            for uid in self.uids:
                await asyncio.sleep(0)
                yield uid
            if self.fail:
                raise ConnectionError("engine gone")
            if self.forever:
                await asyncio.Event().wait()
        finally:
            self.closed.set()


async def test_merges_the_streams_of_runtimes_with_events() -> None:
    a, b = Eventful(["a1", "a2"]), Eventful(["b1", "", "b2"])
    multi = MultiRuntime({"docker": a, "other": b, "host": Quiet()}, default="docker")
    got = [uid async for uid in multi.watch_events()]
    assert sorted(got) == ["", "a1", "a2", "b1", "b2"]
    assert got.index("a1") < got.index("a2") and got.index("b1") < got.index("") < got.index("b2")


async def test_without_event_sources_it_ends_at_once() -> None:
    assert [x async for x in MultiRuntime({"host": Quiet()}, default="host").watch_events()] == []


async def test_a_failing_source_fails_the_merged_stream() -> None:
    multi = MultiRuntime({"docker": Eventful(["x"], fail=True)}, default="docker")
    with pytest.raises(ConnectionError):
        async for _ in multi.watch_events():
            pass


async def test_closing_the_merged_stream_closes_the_sources() -> None:
    src = Eventful(["x"], forever=True)
    events = MultiRuntime({"docker": src, "host": Quiet()}, default="docker").watch_events()
    assert await anext(events) == "x"
    await events.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(src.closed.wait(), 5)


def test_container_calls_route_by_id_shape() -> None:
    docker, host = Eventful([]), Quiet()
    multi = MultiRuntime({"docker": docker, "host": host}, default="docker")
    assert multi.handler_of("k8s_c_p_ns_uid_0") == "docker"
    assert multi.handler_of("uid_c_0") == "host"
    assert multi.serves("") and multi.serves("host") and not multi.serves("gvisor")
