"""The one small storage interface the api-server depends on.

:class:`KV` is what an etcd v3 client must offer (implemented in ``kubeha.storage.etcd``).
Everything above it (object encoding, resourceVersion, compare-and-swap updates, the watch
cache) is written against this protocol only, so the client library can be swapped.

Revisions are etcd revisions: an object's resourceVersion is its ``mod_revision`` and a list's
resourceVersion is the revision it was read at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """Base of storage failures that are not outcomes (etcd unreachable, timeouts...)."""


class Compacted(StorageError):
    """The requested revision has been compacted away (the API answers 410 Expired)."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (compacted at {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class Unavailable(StorageError):
    """etcd could not be reached or did not answer in time."""


class KeyExists(StorageError):
    """A create found the key already present (the API answers 409 AlreadyExists)."""


class KeyNotFound(StorageError):
    """The key is absent (the API answers 404 NotFound)."""


class Conflict(StorageError):
    """A compare-and-swap lost: the key's mod_revision is not the expected one (409 Conflict)."""


class RevisionTooLarge(StorageError):
    """A read asked for a revision newer than etcd's current one (the API answers 504 Timeout)."""

    def __init__(self, requested: int, current: int = 0) -> None:
        super().__init__(f"Too large resource version: {requested}, current: {current}")
        self.requested = requested
        self.current = current


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class Range:
    items: list[KeyValue]
    revision: int  # the revision the range was read at
    more: bool  # more keys exist past `limit`
    count: int  # total keys in the range (for remainingItemCount)


@dataclass(frozen=True)
class Event:
    # "PUT", "DELETE", or "PROGRESS": no change, the watch has delivered everything up to
    # mod_revision (etcd progress notifications; key is "" and value b"")
    type: str
    key: str
    value: bytes  # new value (PUT) or b"" (DELETE)
    prev_value: bytes | None  # previous value, when known
    create_revision: int
    mod_revision: int  # revision of this change
    prev_mod_revision: int = 0  # mod_revision of prev_value (0 = unknown)


@dataclass(frozen=True)
class Compare:
    """A transaction guard on one key: ``mod_revision`` (0 = key must not exist) equals value."""

    key: str
    mod_revision: int


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes


@dataclass(frozen=True)
class Delete:
    key: str


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int  # header revision after the transaction
    # when not succeeded: the current state of each compared key (None = absent)
    current: dict[str, KeyValue | None]


class KV(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0, start: str | None = None) -> Range:
        """Keys under ``prefix`` (starting at ``start`` when given) at ``revision`` (0 = latest)."""
        ...

    async def txn(self, compares: list[Compare], ops: list[Put | Delete]) -> TxnResult:
        """Apply ``ops`` atomically iff every compare holds."""
        ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Changes under ``prefix`` from ``start_revision`` (inclusive), in revision order.

        Raises :class:`Compacted` when start_revision is older than the compaction point.
        """
        ...

    async def request_progress(self, prefix: str | None = None) -> None:
        """Ask open watches (on ``prefix``, or all) to report their revision with a PROGRESS event."""
        ...

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
