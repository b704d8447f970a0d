"""The event recorder against a real api-server: repeated events become one Event with a count
(as `kubectl describe` shows them), similar ones are combined, and the events list by object."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import CONFIGMAPS, EVENTS, NAMESPACES, NODES
from kubeha.machinery.events import COMBINED_PREFIX, EventRecorder
from tests.support.apiserver import ApiServer


@pytest.fixture
async def client(apiservers: list[ApiServer]) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig)), user_agent="kubeha-ev-test") as c:
        yield c


@pytest.fixture
async def namespace(client: ApiClient) -> AsyncIterator[str]:
    name = f"evr-{uuid.uuid4().hex[:10]}"
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    yield name
    with contextlib.suppress(StatusError):
        await client.delete(NAMESPACES, name)


async def _events_for(client: ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    listing = await client.list(EVENTS, namespace, field_selector=f"involvedObject.name={name}")
    return list(listing["items"])


async def test_repeats_are_counted_and_similar_ones_combined(client: ApiClient, namespace: str) -> None:
    cm = await client.create(
        CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}, namespace
    )
    cm.setdefault("apiVersion", "v1")
    cm.setdefault("kind", "ConfigMap")
    rec = EventRecorder(client, "test-controller", "host-1")
    try:
        for _ in range(3):
            rec.event(cm, "Warning", "BackOff", "Back-off restarting")
        await rec.flush()
        [ev] = await _events_for(client, namespace, "cfg")
        assert ev["count"] == 3 and ev["reason"] == "BackOff" and ev["type"] == "Warning"
        assert ev["involvedObject"]["uid"] == cm["metadata"]["uid"]
        assert ev["source"] == {"component": "test-controller", "host": "host-1"}
        assert ev["firstTimestamp"] <= ev["lastTimestamp"]

        for i in range(12):
            rec.event(cm, "Normal", "Sync", f"step {i}")
        await rec.flush()
        events = await _events_for(client, namespace, "cfg")
        sync = [e for e in events if e["reason"] == "Sync"]
        combined = [e for e in sync if e["message"].startswith(COMBINED_PREFIX)]
        assert len(sync) == 11 and len(combined) == 1
        assert combined[0]["count"] == 2 and combined[0]["message"] == COMBINED_PREFIX + "step 11"
    finally:
        await rec.stop()


async def test_cluster_scoped_object_events_go_to_default(client: ApiClient) -> None:
    name = f"node-{uuid.uuid4().hex[:8]}"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": str(uuid.uuid4())}}
    rec = EventRecorder(client, "node-controller")
    try:
        rec.event(node, "Normal", "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller")
        await rec.flush()
        [ev] = await _events_for(client, "default", name)
        assert ev["involvedObject"]["kind"] == "Node" and ev["metadata"]["namespace"] == "default"
        assert rec.dropped == 0
    finally:
        await rec.stop()
    assert NODES.namespaced is False
