"""The :class:`~kubeha.storage.interface.KV` protocol over etcd v3 gRPC.

Messages are etcd's generated protobuf classes (shipped by ``aetcd``; aetcd's ``Client`` has no
TLS and no Range revision/limit). Every call goes over our own HTTP/2 client
(:mod:`kubeha.storage.grpc_h2`), one connection per endpoint: unary calls (Range, Txn, Compact,
Status), where ``grpc.aio``'s per-call cost was the largest item of an api-server create or get,
and watches, bidirectional streams on the same connection, where ``grpc.aio``'s read path and its
poller thread cost 2-4 times what ours does per event. ``grpc`` itself is not used.

Each :meth:`EtcdKV.watch` opens its own gRPC Watch stream. The api-server keeps one watch per
resource, so streams stay few, and a broken stream only affects one watch cache (a broken
connection, all of them: they resume from their next revision).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aetcd import rpc

from kubeha.storage import etcdwire as wire
from kubeha.storage.grpc_h2 import (
    CANCELLED,
    DEADLINE_EXCEEDED,
    STATUS_NAMES,
    UNAVAILABLE,
    Channel,
    GrpcError,
    StreamCall,
    client_ssl_context,
)
from kubeha.storage.interface import (
    Compacted,
    Compare,
    Delete,
    Event,
    KeyValue,
    Put,
    Range,
    RevisionTooLarge,
    StorageError,
    TxnResult,
    Unavailable,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# etcd's own health check reads this key; a quorum Range of it is the cheapest linearizable probe.
HEALTH_KEY = b"health"


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end)."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"  # empty prefix (or all 0xff): the whole keyspace


def _kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision)


def _op(op: Put | Delete) -> bytes:
    if isinstance(op, Put):
        return wire.put_op(op.key.encode(), op.value)
    return wire.delete_op(op.key.encode())


# methods, by their gRPC paths
RANGE = "/etcdserverpb.KV/Range"
TXN = "/etcdserverpb.KV/Txn"
COMPACT = "/etcdserverpb.KV/Compact"
STATUS = "/etcdserverpb.Maintenance/Status"
WATCH = "/etcdserverpb.Watch/Watch"
# a watch's progress request, encoded once: WatchRequest{progress_request=3: {}}
_PROGRESS_REQUEST = rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()).SerializeToString()


class EtcdKV:
    """etcd v3 client implementing the storage ``KV`` protocol.

    ``endpoints`` are URLs such as ``https://127.0.0.1:2379``; https endpoints (or any endpoint when
    certificate files are given) use TLS. Calls go to one endpoint at a time and move on to the next
    when it answers UNAVAILABLE.
    """

    def __init__(
        self,
        endpoints: list[str],
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._ca_file, self._cert_file, self._key_file = ca_file, cert_file, key_file
        self._channels: list[Channel | None] = [None] * len(endpoints)
        self._current = 0
        # compaction point learned from watch responses or our own compactions (etcd does not
        # report it on a failed Range)
        self._compacted = 0
        # open watch streams: call -> prefix, so progress requests can target them
        self._streams: dict[StreamCall, str] = {}

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Set up the channel to the first endpoint (it dials on first use)."""
        self._channel(self._current)

    def _target(self, index: int) -> tuple[str, bool]:
        """(host:port, TLS?) of endpoint ``index``."""
        url = self.endpoints[index]
        parts = urlsplit(url if "://" in url else "//" + url)
        secure = parts.scheme == "https" or (parts.scheme == "" and bool(self._ca_file or self._cert_file))
        return parts.netloc or url, secure

    def _channel(self, index: int) -> Channel:
        ch = self._channels[index]
        if ch is None:
            target, secure = self._target(index)
            parts = urlsplit("//" + target)
            tls = client_ssl_context(self._ca_file, self._cert_file, self._key_file) if secure else None
            ch = self._channels[index] = Channel(parts.hostname or "127.0.0.1", parts.port or 2379, tls)
        return ch

    def _fail_over(self, index: int) -> None:
        # Only the first caller seeing endpoint `index` fail moves us on; concurrent failures of
        # the same endpoint must not skip a healthy one.
        if index == self._current and len(self.endpoints) > 1:
            self._current = (index + 1) % len(self.endpoints)
            log.warning(
                "etcd endpoint %s unavailable, switching to %s", self.endpoints[index], self.endpoints[self._current]
            )

    async def __aenter__(self) -> EtcdKV:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for call in list(self._streams):
            call.cancel()
        self._streams.clear()
        channels, self._channels = self._channels, [None] * len(self.endpoints)
        for ch in channels:
            if ch is not None:
                await ch.close()

    # -- error mapping ----------------------------------------------------------------------

    def _map_error(self, e: GrpcError, requested: int = 0) -> StorageError:
        code, details = e.status, e.message
        name = STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else f"status {code}"
        if code in (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED):
            return Unavailable(f"etcd: {name}: {details}")
        if "required revision has been compacted" in details:
            return Compacted(requested, self._compacted)
        if "required revision is a future revision" in details:
            return RevisionTooLarge(requested)
        return StorageError(f"etcd: {name}: {details}")

    async def _unary(
        self, method: str, message: bytes, response: Callable[[bytes], T], *, deadline: float = 0.0, requested: int = 0
    ) -> T:
        """Call ``method`` with the encoded request ``message``, failing over across endpoints on
        UNAVAILABLE."""
        last: GrpcError | None = None
        for _ in range(len(self.endpoints)):
            index = self._current
            try:
                # the deadline is set on the call itself (DEADLINE_EXCEEDED -> Unavailable)
                data = await self._channel(index).unary(method, message, deadline or self.timeout)
            except GrpcError as e:
                if e.status != UNAVAILABLE:
                    raise self._map_error(e, requested) from e
                last = e
                self._fail_over(index)
                continue
            return response(data)
        assert last is not None
        raise self._map_error(last, requested) from last

    # -- KV ---------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._unary(RANGE, wire.range_request(key.encode()), rpc.RangeResponse.FromString)
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0, start: str | None = None) -> Range:
        """Keys in ``[start or prefix, prefix_end)``; ``start`` is inclusive."""
        p = prefix.encode()
        req = wire.range_request(
            (start.encode() if start is not None else p) or b"\0", prefix_end(p), revision=revision, limit=limit
        )
        resp = await self._unary(RANGE, req, rpc.RangeResponse.FromString, requested=revision)
        # The header carries etcd's current revision; a read at an older one is "at" that one.
        return Range([_kv(kv) for kv in resp.kvs], revision or resp.header.revision, resp.more, resp.count)

    async def txn(self, compares: list[Compare], ops: list[Put | Delete]) -> TxnResult:
        keys = list(dict.fromkeys(c.key for c in compares))
        req = wire.txn_request(
            [wire.compare(c.key.encode(), c.mod_revision) for c in compares],
            [_op(o) for o in ops],
            # on failure, read back every guarded key so callers can tell "exists" from "changed"
            [wire.range_op(k.encode()) for k in keys],
        )
        resp = await self._unary(TXN, req, rpc.TxnResponse.FromString)
        current: dict[str, KeyValue | None] = {}
        if not resp.succeeded:
            for k, r in zip(keys, resp.responses, strict=True):
                kvs = r.response_range.kvs
                current[k] = _kv(kvs[0]) if kvs else None
        return TxnResult(resp.succeeded, resp.header.revision, current)

    async def current_revision(self) -> int:
        req = wire.range_request(HEALTH_KEY, count_only=True)
        resp = await self._unary(RANGE, req, rpc.RangeResponse.FromString)
        return int(resp.header.revision)

    async def compact(self, revision: int) -> None:
        req = rpc.CompactionRequest(revision=revision, physical=False).SerializeToString()
        await self._unary(COMPACT, req, rpc.CompactionResponse.FromString, requested=revision)
        self._compacted = max(self._compacted, revision)

    async def healthy(self, probe_timeout: float = 2.0) -> bool:
        req = wire.range_request(HEALTH_KEY, count_only=True)
        try:
            await self._unary(RANGE, req, rpc.RangeResponse.FromString, deadline=probe_timeout)
        except StorageError:
            return False
        return True

    async def status(self) -> dict[str, Any]:
        """The current endpoint's etcd status (version, db size, leader, raft index/term)."""
        resp = await self._unary(STATUS, rpc.StatusRequest().SerializeToString(), rpc.StatusResponse.FromString)
        return {
            "version": resp.version,
            "dbSize": resp.dbSize,
            "leader": resp.leader,
            "raftIndex": resp.raftIndex,
            "raftTerm": resp.raftTerm,
            "revision": resp.header.revision,
        }

    # -- watch ------------------------------------------------------------------------------

    async def request_progress(self, prefix: str | None = None) -> None:
        for call, p in list(self._streams.items()):
            if prefix is None or p == prefix:
                try:
                    await call.send(_PROGRESS_REQUEST)
                except GrpcError:
                    pass  # the stream is going away; its reader will report that

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Batches of changes under ``prefix`` from ``start_revision`` (inclusive; 0 = from now).

        Ends with :class:`Unavailable` when the stream breaks (the caller resumes from the next
        revision), or :class:`Compacted` when ``start_revision`` is no longer available. Empty
        responses (progress notifications) become a single ``PROGRESS`` event.
        """
        index = self._current
        p = prefix.encode()
        create = rpc.WatchRequest(
            create_request=rpc.WatchCreateRequest(
                key=p or b"\0",
                range_end=prefix_end(p),
                start_revision=start_revision,
                progress_notify=True,
                prev_kv=True,
            )
        ).SerializeToString()
        call: StreamCall | None = None
        try:
            call = await self._channel(index).stream(WATCH, connect_timeout=self.timeout)
            self._streams[call] = prefix
            await call.send(create)
            parse = rpc.WatchResponse.FromString
            while True:
                data = await call.recv()
                if data is None:
                    raise Unavailable("etcd watch stream closed")
                resp = parse(data)
                if resp.compact_revision:
                    self._compacted = max(self._compacted, resp.compact_revision)
                    raise Compacted(start_revision, resp.compact_revision)
                if resp.canceled:
                    raise Unavailable(f"etcd canceled the watch: {resp.cancel_reason}")
                if resp.created:
                    continue
                if resp.events:
                    yield [self._event(ev) for ev in resp.events]
                else:
                    yield [Event("PROGRESS", "", b"", None, 0, resp.header.revision)]
        except GrpcError as e:
            if e.status == UNAVAILABLE:
                self._fail_over(index)
            raise self._map_error(e, start_revision) from e
        finally:
            if call is not None:
                self._streams.pop(call, None)
                call.cancel()

    @staticmethod
    def _event(ev: Any) -> Event:
        kv = ev.kv
        has_prev = ev.HasField("prev_kv")
        prev = ev.prev_kv.value if has_prev else None
        prev_rev = ev.prev_kv.mod_revision if has_prev else 0
        if ev.type == rpc.Event.PUT:
            return Event("PUT", kv.key.decode(), kv.value, prev, kv.create_revision, kv.mod_revision, prev_rev)
        return Event("DELETE", kv.key.decode(), b"", prev, 0, kv.mod_revision, prev_rev)
