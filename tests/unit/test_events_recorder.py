"""Event recorder: event shape, dedupe into count patches, aggregation of similar events, the spam
filter, the bounded non-blocking queue. A fake client records the writes; clocks are fake."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.machinery.events import COMBINED_PREFIX, EventRecorder, object_reference

Obj = dict[str, Any]

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "prod", "uid": "u-1", "resourceVersion": "7"},
}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n"}}


class FakeEvents:
    def __init__(self) -> None:
        self.store: dict[tuple[str, str], Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_next: list[Exception] = []

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        self.calls.append(("create", obj["metadata"]["name"]))
        if self.fail_next:
            raise self.fail_next.pop(0)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in self.store:
            raise StatusError(409, "AlreadyExists", "exists")
        self.store[key] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    async def patch(
        self, res: Any, name: str, patch: Any, namespace: str | None = None, *, patch_type: str = ""
    ) -> Obj:
        self.calls.append(("patch", name))
        assert patch_type == "merge"
        key = (namespace or "", name)
        if key not in self.store:
            raise StatusError(404, "NotFound", "gone")
        self.store[key].update(patch)
        return copy.deepcopy(self.store[key])


class Clocks:
    def __init__(self) -> None:
        self.mono = 0.0
        self.wall = datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


def recorder(client: FakeEvents, clocks: Clocks, **kw: Any) -> EventRecorder:
    async def no_sleep(delay: float) -> None:
        pass

    return EventRecorder(
        client,
        "deployment-controller",
        "cp-1",
        clock=lambda: clocks.mono,
        now=lambda: clocks.wall,
        retry_sleep=no_sleep,
        **kw,
    )


async def test_event_shape_and_upstream_name() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    rec.eventf(POD, "Normal", "Scheduled", "Successfully assigned %s to %s", "prod/web-1", "n1")
    await rec.flush()
    [(ns, name)] = client.store
    ev = client.store[(ns, name)]
    nanos = int(clocks.wall.timestamp()) * 10**9 + 250000 * 1000
    assert (ns, name) == ("prod", f"web-1.{nanos:x}")
    assert ev["involvedObject"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "name": "web-1",
        "namespace": "prod",
        "uid": "u-1",
        "resourceVersion": "7",
    }
    assert ev["message"] == "Successfully assigned prod/web-1 to n1"
    assert ev["source"] == {"component": "deployment-controller", "host": "cp-1"}
    assert ev["reportingComponent"] == "deployment-controller" and ev["reportingInstance"] == "cp-1"
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2024-01-02T03:04:05Z"
    assert ev["count"] == 1 and ev["type"] == "Normal" and "eventTime" not in ev
    await rec.stop()


async def test_cluster_scoped_objects_get_events_in_default() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    rec.event(NODE, "Warning", "NodeNotReady", "Node n1 status is now: NodeNotReady")
    await rec.flush()
    [(ns, _)] = client.store
    assert ns == "default"
    assert "namespace" not in object_reference(NODE)
    await rec.stop()


async def test_identical_events_patch_count_and_last_timestamp() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    for _ in range(3):
        rec.event(POD, "Warning", "BackOff", "Back-off restarting failed container")
        clocks.advance(60)
    await rec.flush()
    assert [c[0] for c in client.calls] == ["create", "patch", "patch"]
    [ev] = client.store.values()
    assert ev["count"] == 3
    assert ev["firstTimestamp"] == "2024-01-02T03:04:05Z"
    assert ev["lastTimestamp"] == "2024-01-02T03:06:05Z"
    await rec.stop()


async def test_patch_of_a_vanished_event_creates_a_new_one() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    rec.event(POD, "Normal", "Pulled", "pulled")
    await rec.flush()
    client.store.clear()  # the event TTL expired
    clocks.advance(1)
    rec.event(POD, "Normal", "Pulled", "pulled")
    await rec.flush()
    assert [c[0] for c in client.calls] == ["create", "patch", "create"]
    [ev] = client.store.values()
    assert ev["count"] == 1
    await rec.stop()


async def test_similar_events_beyond_ten_are_combined() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    for i in range(14):
        rec.event(POD, "Warning", "FailedCreate", f"error {i}")
        clocks.advance(1)
    await rec.flush()
    creates = [c for c in client.calls if c[0] == "create"]
    assert len(creates) == 11  # 10 distinct ones, then one combined event ...
    combined = [e for e in client.store.values() if e["message"].startswith(COMBINED_PREFIX)]
    assert len(combined) == 1
    assert combined[0]["count"] == 4  # ... that the later ones count up
    assert combined[0]["message"] == COMBINED_PREFIX + "error 13"
    # After the aggregation window, similar events are counted afresh.
    clocks.advance(601)
    rec.event(POD, "Warning", "FailedCreate", "error new")
    await rec.flush()
    assert any(e["message"] == "error new" for e in client.store.values())
    await rec.stop()


async def test_spam_filter_limits_events_per_object() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks, spam_burst=3, spam_qps=0.1)
    for i in range(5):
        rec.event(POD, "Normal", f"R{i}", "m")
    rec.event(NODE, "Normal", "Other", "another object has its own bucket")
    await rec.flush()
    assert len(client.store) == 4 and rec.dropped == 2
    clocks.advance(10)  # one token back
    rec.event(POD, "Normal", "Late", "m")
    await rec.flush()
    assert len(client.store) == 5
    await rec.stop()


async def test_full_queue_drops_without_blocking() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks, queue_size=2)
    # No awaits in between: the sender cannot run, the third event does not fit.
    for i in range(3):
        rec.event(POD, "Normal", f"R{i}", "m")
    assert rec.dropped == 1
    await rec.flush()
    assert len(client.store) == 2
    await rec.stop()


async def test_transient_errors_are_retried_and_rejections_dropped() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    client.fail_next = [StatusError(503, "ServiceUnavailable", "busy"), ConnectionError("reset")]
    rec.event(POD, "Normal", "Retry", "m")
    await rec.flush()
    assert len(client.store) == 1
    client.fail_next = [StatusError(422, "Invalid", "bad")]
    rec.event(POD, "Normal", "Bad", "m")
    await rec.flush()
    assert len(client.store) == 1 and rec.dropped == 1
    await rec.stop()


async def test_background_sender_runs_without_flush() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    rec.event(POD, "Normal", "Bg", "m")
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(client.store) == 1
    await rec.stop()
    assert rec._task is None


def test_unknown_type_is_not_sent() -> None:
    client, clocks = FakeEvents(), Clocks()
    rec = recorder(client, clocks)
    rec.event(POD, "Error", "X", "m")
    assert rec._pending is None or rec._pending.empty()
