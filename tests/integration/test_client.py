"""The async REST client against real api-server processes (shared etcd)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from kubeha.api.errors import StatusError
from kubeha.client import ApiClient, ApiConnectionError, load_kubeconfig
from kubeha.client.resources import CONFIGMAPS, NAMESPACES, PODS
from tests.support.apiserver import ApiServer


@pytest.fixture
async def client(apiservers: list[ApiServer]) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig)), user_agent="kubeha-test") as c:
        yield c


@pytest.fixture
async def namespace(client: ApiClient) -> AsyncIterator[str]:
    name = f"cl-{uuid.uuid4().hex[:10]}"
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    yield name
    with contextlib.suppress(StatusError):
        await client.delete(NAMESPACES, name)


def _cm(name: str, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "t"}}, "data": data}


async def test_crud_and_patches(client: ApiClient, namespace: str) -> None:
    created = await client.create(CONFIGMAPS, _cm("a", x="1"), namespace, field_manager="test")
    assert created["metadata"]["namespace"] == namespace and created["metadata"]["uid"]

    got = await client.get(CONFIGMAPS, "a", namespace)
    assert got["data"] == {"x": "1"}

    listing = await client.list(CONFIGMAPS, namespace, label_selector="app=t")
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a"]
    assert listing["items"][0]["kind"] == "ConfigMap" and listing["items"][0]["apiVersion"] == "v1"
    assert listing["metadata"]["resourceVersion"]

    got["data"]["y"] = "2"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"] == {"x": "1", "y": "2"}

    # stale resourceVersion: 409 Conflict from the server's Status
    with pytest.raises(StatusError) as exc:
        await client.update(CONFIGMAPS, got)
    assert exc.value.code == 409 and exc.value.reason == "Conflict"

    merged = await client.patch(CONFIGMAPS, "a", {"data": {"x": None, "z": "3"}}, namespace)
    assert merged["data"] == {"y": "2", "z": "3"}
    smp = await client.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"k": "v"}}}, namespace, patch_type="strategic")
    assert smp["metadata"]["labels"] == {"app": "t", "k": "v"}
    jp = await client.patch(
        CONFIGMAPS, "a", [{"op": "replace", "path": "/data/z", "value": "4"}], namespace, patch_type="json"
    )
    assert jp["data"]["z"] == "4"
    # a failing JSON patch test is 422
    with pytest.raises(StatusError) as exc:
        await client.patch(
            CONFIGMAPS, "a", [{"op": "test", "path": "/data/z", "value": "no"}], namespace, patch_type="json"
        )
    assert exc.value.code == 422

    applied = await client.patch(
        CONFIGMAPS, "b", _cm("b", w="1"), namespace, patch_type="apply", field_manager="test-apply"
    )
    assert applied["data"] == {"w": "1"}
    assert any(m["manager"] == "test-apply" for m in applied["metadata"]["managedFields"])

    dry = await client.create(CONFIGMAPS, _cm("c"), namespace, dry_run=True)
    assert dry["metadata"]["name"] == "c"
    with pytest.raises(StatusError) as exc:
        await client.get(CONFIGMAPS, "c", namespace)
    assert exc.value.code == 404 and exc.value.reason == "NotFound"
    assert exc.value.details and exc.value.details["name"] == "c"

    rv = (await client.get(CONFIGMAPS, "a", namespace))["metadata"]["resourceVersion"]
    with pytest.raises(StatusError) as exc:
        await client.delete(CONFIGMAPS, "a", namespace, preconditions={"resourceVersion": "1"})
    assert exc.value.code == 409
    await client.delete(CONFIGMAPS, "a", namespace, preconditions={"resourceVersion": rv})
    with pytest.raises(StatusError) as exc:
        await client.get(CONFIGMAPS, "a", namespace)
    assert exc.value.code == 404


async def test_errors_are_statuses(client: ApiClient, namespace: str) -> None:
    await client.create(CONFIGMAPS, _cm("dup"), namespace)
    with pytest.raises(StatusError) as exc:
        await client.create(CONFIGMAPS, _cm("dup"), namespace)
    assert (exc.value.code, exc.value.reason) == (409, "AlreadyExists")

    bad = {"metadata": {"name": "p"}, "spec": {"containers": []}}
    with pytest.raises(StatusError) as exc:
        await client.create(PODS, bad, namespace)
    assert exc.value.code == 422 and exc.value.reason == "Invalid"
    assert exc.value.details and exc.value.details["causes"]

    with pytest.raises(StatusError) as exc:
        await client.list(CONFIGMAPS, namespace, field_selector="spec.nope=1")
    assert exc.value.code == 400

    version = await client.request("GET", "/version")
    assert version["major"] == "1"


async def test_paging(client: ApiClient, namespace: str) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, _cm(f"p{i}"), namespace)
    first = await client.list(CONFIGMAPS, namespace, limit=2)
    assert len(first["items"]) == 2 and first["metadata"]["continue"]
    everything = await client.list_all(CONFIGMAPS, namespace, page_size=2)
    assert sorted(i["metadata"]["name"] for i in everything["items"]) == [f"p{i}" for i in range(5)]


async def test_watch_events_and_expired(client: ApiClient, namespace: str) -> None:
    # The api-server starts a resource's watch cache on first use, at the then-current revision:
    # a watch from an older list would be 410. Warm it first (resourceVersion=0 lists use it).
    await client.list(CONFIGMAPS, namespace, resource_version="0")
    rv = (await client.list(CONFIGMAPS, namespace))["metadata"]["resourceVersion"]
    events: list[tuple[str, str]] = []

    async def consume() -> None:
        stream = client.watch(CONFIGMAPS, namespace, resource_version=rv, timeout_seconds=20)
        async with contextlib.aclosing(stream):
            async for typ, obj in stream:
                if typ == "BOOKMARK":
                    continue
                events.append((typ, obj["metadata"]["name"]))
                if typ == "DELETED":
                    return

    task = asyncio.create_task(consume())
    await client.create(CONFIGMAPS, _cm("w"), namespace)
    await client.patch(CONFIGMAPS, "w", {"data": {"a": "b"}}, namespace)
    await client.delete(CONFIGMAPS, "w", namespace)
    await asyncio.wait_for(task, 15)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]

    # A resourceVersion older than the watch cache keeps: an ERROR event raised as 410.
    with pytest.raises(StatusError) as exc:
        async for _ in client.watch(CONFIGMAPS, namespace, resource_version="1", timeout_seconds=5):
            pass
    assert exc.value.code == 410 and exc.value.reason == "Expired"


async def test_server_timeout_ends_watch(client: ApiClient, namespace: str) -> None:
    await client.list(CONFIGMAPS, namespace, resource_version="0")
    rv = (await client.list(CONFIGMAPS, namespace))["metadata"]["resourceVersion"]
    seen = [t async for t, _ in client.watch(CONFIGMAPS, namespace, resource_version=rv, timeout_seconds=1)]
    assert all(t == "BOOKMARK" for t in seen)


async def test_connection_refused(apiservers: list[ApiServer]) -> None:
    config = load_kubeconfig(str(apiservers[0].kubeconfig))
    config.server = "https://127.0.0.1:1"
    async with ApiClient(config, max_retries=1, retry_backoff=0.01) as c:
        with pytest.raises(ApiConnectionError):
            await c.get(CONFIGMAPS, "x", "default")
        with pytest.raises(ConnectionError):
            async for _ in c.watch(CONFIGMAPS, "default"):
                pass


async def test_rate_limit(apiservers: list[ApiServer]) -> None:
    config = load_kubeconfig(str(apiservers[0].kubeconfig))
    async with ApiClient(config, qps=20, burst=2) as c:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(c.request("GET", "/version") for _ in range(8)))
        # 2 at once, then 6 more at 20/s: at least ~0.3 s
        assert loop.time() - start >= 0.25
