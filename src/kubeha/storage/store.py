"""Objects on top of the KV protocol: JSON values, resourceVersion = mod_revision, CAS writes.

The stored JSON never contains ``metadata.resourceVersion``: the revision is etcd's, set on every
object read back (``str(mod_revision)``), as upstream does. Keys are full etcd keys such as
``/registry/pods/default/web-0``; list and watch prefixes should end with ``/`` so that
``/registry/pods/`` does not also match ``/registry/podsecuritypolicies/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from kubeha.storage.interface import (
    KV,
    Compare,
    Conflict,
    Delete,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Put,
)

Obj = dict[str, Any]
T = TypeVar("T")

# guaranteed_update gives up after this many lost compare-and-swaps in a row
MAX_UPDATE_TRIES = 20


@dataclass
class ListResult:
    items: list[Obj]
    revision: int  # the revision the list was read at (the list's resourceVersion)
    more: bool  # more keys exist past `limit`
    remaining: int  # keys left after this page (remainingItemCount); 0 when not `more`
    last_key: str | None  # key of the last item; the next page starts at last_key + "\0"
    keys: list[str] = field(default_factory=list)  # the etcd key of each item


@dataclass
class ObjEvent:
    type: str  # "ADDED" | "MODIFIED" | "DELETED" (| "BOOKMARK" for progress, only when asked for)
    obj: Obj
    prev: Obj | None
    revision: int
    key: str
    # the event's JSON line as a plain watch sends it, encoded by the first watcher to send it
    # and reused by the others (a watch cache hands the same event to every watcher)
    line: bytes | None = field(default=None, compare=False, repr=False)


def decode(value: bytes, revision: int) -> Obj:
    """A stored value as an object whose resourceVersion is ``revision``."""
    obj: Obj = orjson.loads(value)
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = obj["metadata"] = {}
    md["resourceVersion"] = str(revision)
    return obj


def _without_rv(obj: Obj) -> Obj:
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        md = dict(md)
        del md["resourceVersion"]
        return {**obj, "metadata": md}
    return obj


def encode(obj: Obj) -> bytes:
    """The stored form of ``obj``: its JSON without metadata.resourceVersion."""
    return orjson.dumps(_without_rv(obj))


def _with_rv(obj: Obj, revision: int) -> Obj:
    """A shallow copy of ``obj`` (as stored) carrying resourceVersion ``revision``."""
    md = obj.get("metadata")
    md = dict(md) if isinstance(md, dict) else {}
    md["resourceVersion"] = str(revision)
    return {**obj, "metadata": md}


def resource_version(obj: Obj) -> str:
    md = obj.get("metadata")
    return str(md.get("resourceVersion") or "") if isinstance(md, dict) else ""


class Store:
    """Create / get / list / update / delete / watch of JSON objects in a :class:`KV`."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def get(self, key: str) -> Obj:
        kv = await self.kv.get(key)
        if kv is None:
            raise KeyNotFound(key)
        return decode(kv.value, kv.mod_revision)

    async def create(
        self,
        key: str,
        obj: Obj,
        *,
        also: list[Put | Delete] | None = None,
        guards: list[Compare] | None = None,
        value: bytes | None = None,
    ) -> Obj:
        """Store ``obj`` at ``key`` iff the key is absent and every guard holds, with ``also`` in
        the same transaction. Raises KeyExists, or Conflict when a guard fails. ``value`` is
        ``encode(obj)`` when the caller has it already."""
        if value is None:
            value = encode(obj)
        res = await self.kv.txn([Compare(key, 0), *(guards or [])], [Put(key, value), *(also or [])])
        if not res.succeeded:
            if res.current.get(key) is not None:
                raise KeyExists(key)
            raise Conflict(f"precondition failed creating {key}")
        return _with_rv(obj, res.revision)

    async def update(
        self,
        key: str,
        obj: Obj,
        *,
        expected_mod_revision: int,
        also: list[Put | Delete] | None = None,
        guards: list[Compare] | None = None,
    ) -> Obj:
        """Replace the object at ``key`` iff its mod_revision is ``expected_mod_revision``."""
        value = encode(obj)
        res = await self.kv.txn(
            [Compare(key, expected_mod_revision), *(guards or [])], [Put(key, value), *(also or [])]
        )
        if not res.succeeded:
            cur = res.current.get(key)
            if cur is None and expected_mod_revision != 0:
                raise KeyNotFound(key)
            raise Conflict(key)
        return _with_rv(obj, res.revision)

    async def guaranteed_update(
        self,
        key: str,
        fn: Callable[[Obj], Awaitable[Obj | None]],
        *,
        precondition_rv: str | None = None,
        ignore_not_found: bool = False,
    ) -> Obj:
        """Read-modify-write with retries on lost races.

        ``fn`` gets a private copy of the current object (``{}`` when absent and
        ``ignore_not_found``, which then creates) and returns the new object, or None for "no
        change". Writes that would not change the stored JSON are skipped, so they do not bump the
        resourceVersion. With ``precondition_rv``, a current object at any other resourceVersion
        raises Conflict instead of being retried.
        """
        cur = await self.kv.get(key)
        for _ in range(MAX_UPDATE_TRIES):
            if cur is None:
                if not ignore_not_found:
                    raise KeyNotFound(key)
                new = await fn({})
                if new is None:
                    raise KeyNotFound(key)
                value = encode(new)
                res = await self.kv.txn([Compare(key, 0)], [Put(key, value)])
                if res.succeeded:
                    return _with_rv(new, res.revision)
                cur = res.current.get(key)
                continue
            if precondition_rv and precondition_rv != str(cur.mod_revision):
                raise Conflict(f"{key}: resourceVersion {precondition_rv} is not the current {cur.mod_revision}")
            # decoding again is the cheapest deep copy, and keeps `fn` from touching ours
            new = await fn(decode(cur.value, cur.mod_revision))
            if new is None:
                return decode(cur.value, cur.mod_revision)
            value = encode(new)
            if value == cur.value:
                return decode(cur.value, cur.mod_revision)
            res = await self.kv.txn([Compare(key, cur.mod_revision)], [Put(key, value)])
            if res.succeeded:
                return _with_rv(new, res.revision)
            cur = res.current.get(key)
        raise Conflict(f"{key}: too many concurrent updates")

    async def delete(
        self, key: str, *, expected_mod_revision: int | None = None, also: list[Put | Delete] | None = None
    ) -> Obj:
        """Delete ``key`` (iff at ``expected_mod_revision`` when given); returns the deleted object
        at its last resourceVersion. Raises KeyNotFound / Conflict."""
        cur: KeyValue | None = await self.kv.get(key)
        for _ in range(MAX_UPDATE_TRIES):
            if cur is None:
                raise KeyNotFound(key)
            if expected_mod_revision is not None and cur.mod_revision != expected_mod_revision:
                raise Conflict(f"{key}: resourceVersion {expected_mod_revision} is not the current {cur.mod_revision}")
            # guard on the revision we read so the object we return is exactly the one deleted
            res = await self.kv.txn([Compare(key, cur.mod_revision)], [Delete(key), *(also or [])])
            if res.succeeded:
                return decode(cur.value, cur.mod_revision)
            cur = res.current.get(key)
        raise Conflict(f"{key}: too many concurrent updates")

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start: str | None = None) -> ListResult:
        """Objects under ``prefix`` (from key ``start`` inclusive) at ``revision`` (0 = latest).

        Raises Compacted for a compacted revision, RevisionTooLarge for a future one."""
        r = await self.kv.range(prefix, revision=revision, limit=limit, start=start)
        items = [decode(kv.value, kv.mod_revision) for kv in r.items]
        remaining = max(r.count - len(items), 0) if r.more else 0
        keys = [kv.key for kv in r.items]
        return ListResult(items, r.revision, r.more, remaining, keys[-1] if keys else None, keys)

    async def count(self, prefix: str) -> int:
        r = await self.kv.range(prefix, limit=1)
        return r.count

    def watch(self, prefix: str, from_revision: int, *, progress: bool = False) -> AsyncIterator[ObjEvent]:
        """Changes under ``prefix`` from ``from_revision`` **inclusive** (0 = from now).

        To continue after a list at revision R, watch from R + 1. With ``progress``, etcd progress
        notifications come through as ``BOOKMARK`` events (obj ``{}``, key ``""``). Raises
        Compacted / Unavailable like :meth:`KV.watch`.
        """
        return self._watch(prefix, from_revision, progress)

    async def _watch(self, prefix: str, from_revision: int, progress: bool) -> AsyncIterator[ObjEvent]:
        async with closing(self.kv.watch(prefix, from_revision)) as batches:
            async for batch in batches:
                for ev in batch:
                    oe = to_obj_event(ev)
                    if oe is not None and (progress or oe.type != "BOOKMARK"):
                        yield oe


@contextlib.asynccontextmanager
async def closing(it: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Like contextlib.aclosing for any async iterator: close generators (and so their etcd
    streams) as soon as we stop iterating, not when the garbage collector finds them."""
    try:
        yield it
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()


def to_obj_event(ev: Event) -> ObjEvent | None:
    """Decode a KV event. DELETED carries the last object with resourceVersion = the delete revision."""
    if ev.type == "PROGRESS":
        return ObjEvent("BOOKMARK", {}, None, ev.mod_revision, "")
    prev = decode(ev.prev_value, ev.prev_mod_revision) if ev.prev_value is not None else None
    if ev.type == "DELETE":
        if ev.prev_value is not None:
            obj = decode(ev.prev_value, ev.mod_revision)
        else:  # etcd lost the previous value (should not happen with prev_kv): say what we know
            obj = {"metadata": {"resourceVersion": str(ev.mod_revision)}}
        return ObjEvent("DELETED", obj, prev, ev.mod_revision, ev.key)
    kind = "ADDED" if ev.create_revision == ev.mod_revision else "MODIFIED"
    return ObjEvent(kind, decode(ev.value, ev.mod_revision), prev, ev.mod_revision, ev.key)
