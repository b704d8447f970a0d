"""Leader election through real api-servers: two candidates on two api-servers share one Lease;
killing the leader (no release) hands over within lease_duration + retry_period, a graceful stop
(release) hands over within about one retry period. The measured gaps are printed (-s)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from kubeha.api.errors import StatusError
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import LEASES, NAMESPACES
from kubeha.machinery.leaderelection import (
    DEFAULT_LEASE_DURATION,
    DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD,
    LeaderElector,
)
from tests.support.apiserver import ApiServer

MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# One API round trip on a loaded 2-core machine: the bound is lease + retry + a write.
ROUND_TRIP = 0.5


@pytest.fixture
async def clients(apiservers: list[ApiServer]) -> AsyncIterator[list[ApiClient]]:
    async with contextlib.AsyncExitStack() as stack:
        out = [
            await stack.enter_async_context(
                ApiClient(load_kubeconfig(str(s.kubeconfig)), user_agent="kubeha-le-test", max_retries=1, timeout=5)
            )
            for s in apiservers[:2]
        ]
        yield out


@pytest.fixture
async def namespace(clients: list[ApiClient]) -> AsyncIterator[str]:
    name = f"le-{uuid.uuid4().hex[:10]}"
    await clients[0].create(NAMESPACES, {"metadata": {"name": name}})
    yield name
    with contextlib.suppress(StatusError):
        await clients[0].delete(NAMESPACES, name)


class Candidate:
    def __init__(self, client: ApiClient, namespace: str, identity: str, release: bool) -> None:
        self.identity = identity
        self.started_at: float | None = None
        self.stopped = False
        self.leading = asyncio.Event()
        self.elector = LeaderElector(
            client,
            namespace,
            "kube-controller-manager",
            identity,
            on_started_leading=self._work,
            on_stopped_leading=self._stopped,
            release_on_cancel=release,
        )
        self.task = asyncio.ensure_future(self.elector.run())

    async def _work(self) -> None:
        self.started_at = time.monotonic()
        self.leading.set()
        await asyncio.Event().wait()

    def _stopped(self) -> None:
        self.stopped = True

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _handover(clients: list[ApiClient], namespace: str, release: bool) -> tuple[float, dict[str, object]]:
    a = Candidate(clients[0], namespace, "cm-a", release)
    await asyncio.wait_for(a.leading.wait(), 10)
    b = Candidate(clients[1], namespace, "cm-b", release)
    try:
        await asyncio.sleep(1.5)  # b is a standby, polling; a keeps renewing
        assert not b.leading.is_set() and a.elector.is_leader()
        assert b.elector.get_leader() == "cm-a"
        killed = time.monotonic()
        await a.cancel()  # the leader's process "dies" (with release: stops gracefully)
        assert a.stopped
        await asyncio.wait_for(b.leading.wait(), DEFAULT_LEASE_DURATION * 3)
        assert b.started_at is not None
        gap = b.started_at - killed
        lease = await clients[0].get(LEASES, "kube-controller-manager", namespace)
        return gap, lease
    finally:
        await a.cancel()
        await b.cancel()


async def test_killed_leader_is_replaced_within_lease_plus_retry(clients: list[ApiClient], namespace: str) -> None:
    gap, lease = await _handover(clients, namespace, release=False)
    print(f"\ntakeover gap after kill: {gap:.2f}s (lease {DEFAULT_LEASE_DURATION}s, retry {DEFAULT_RETRY_PERIOD}s)")
    assert gap < DEFAULT_LEASE_DURATION + DEFAULT_RETRY_PERIOD + ROUND_TRIP
    assert gap > DEFAULT_LEASE_DURATION - DEFAULT_RENEW_DEADLINE  # it did have to wait for expiry
    spec = lease["spec"]
    assert isinstance(spec, dict)
    assert spec["holderIdentity"] == "cm-b"
    assert spec["leaseTransitions"] == 1
    assert spec["leaseDurationSeconds"] == round(DEFAULT_LEASE_DURATION)
    assert MICROTIME.match(str(spec["renewTime"])) and MICROTIME.match(str(spec["acquireTime"]))


async def test_released_lease_is_taken_over_at_once(clients: list[ApiClient], namespace: str) -> None:
    gap, lease = await _handover(clients, namespace, release=True)
    print(f"\ntakeover gap after release: {gap:.2f}s")
    assert gap < DEFAULT_RETRY_PERIOD + ROUND_TRIP
    spec = lease["spec"]
    assert isinstance(spec, dict)
    assert spec["holderIdentity"] == "cm-b" and spec["leaseTransitions"] == 1


async def test_leader_steps_down_when_its_lease_is_taken(clients: list[ApiClient], namespace: str) -> None:
    a = Candidate(clients[0], namespace, "cm-a", release=False)
    try:
        await asyncio.wait_for(a.leading.wait(), 10)
        # Someone overwrites the lease (e.g. an operator forcing a handover).
        lease = await clients[1].get(LEASES, "kube-controller-manager", namespace)
        lease["spec"]["holderIdentity"] = "intruder"
        await clients[1].update(LEASES, lease, namespace)
        await asyncio.wait_for(a.task, DEFAULT_RENEW_DEADLINE + 2)
        assert a.stopped and not a.elector.is_leader()
    finally:
        await a.cancel()
