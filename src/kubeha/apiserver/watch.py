"""Watch streaming: one ``{"type":..., "object":...}`` JSON line per event, flushed at once.

Served from the watch cache. resourceVersion semantics as upstream: unset/"0" = the current
state as ADDED events then changes; N = changes after N; a revision older than the cache keeps
answers HTTP 200 with one ERROR event carrying a 410 Expired Status.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo
from kubeha.api.schema import Obj
from kubeha.apiserver import negotiation as neg
from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.httpserver import Request, StreamResponse
from kubeha.apiserver.rest import Rest
from kubeha.storage.interface import Compacted, StorageError

log = logging.getLogger(__name__)

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _too_old(requested: int, current: int) -> Obj:
    return errors.expired(f"too old resource version: {requested} ({current})").to_status()


def _parse_rv(rv: str) -> int:
    try:
        n = int(rv)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer') from None


def watch_timeout(request: Request, ctx: ApiContext) -> float:
    ts = request.query.get("timeoutSeconds")
    if ts:
        try:
            return max(float(int(ts)), 0.0)
        except ValueError:
            raise errors.bad_request(f'timeoutSeconds: Invalid value: "{ts}"') from None
    base = ctx.config.min_request_timeout
    return float(base) * (1 + random.random())


async def serve_watch(
    request: Request,
    ctx: ApiContext,
    rest: Rest,
    info: ResourceInfo,
    namespace: str,
    name: str,
    shape: neg.Shape,
) -> StreamResponse:
    q = request.query
    params = rest.list_params(request, info)
    pred = rest.predicate(info, params)
    if name:
        base = pred

        def pred(obj: Obj) -> bool:  # a watch on one object (legacy /watch/.../name form)
            return (obj.get("metadata") or {}).get("name") == name and (base is None or base(obj))

    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    send_initial = q.get("sendInitialEvents")
    rv = params.resource_version
    if send_initial is not None:
        if send_initial not in ("true", "false"):
            raise errors.bad_request(f'sendInitialEvents: Invalid value: "{send_initial}"')
        if params.resource_version_match != "NotOlderThan":
            raise errors.invalid(
                "",
                "ListOptions",
                "",
                [
                    errors.forbidden_field(
                        "resourceVersionMatch",
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                ],
            )
        if send_initial == "true" and not bookmarks:
            raise errors.invalid(
                "",
                "ListOptions",
                "",
                [
                    errors.forbidden_field(
                        "allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true"
                    )
                ],
            )
    elif params.resource_version_match:
        raise errors.bad_request("resourceVersionMatch is forbidden for watch")
    timeout = watch_timeout(request, ctx)
    cacher = await ctx.cacher(info)
    prefix = rest.list_prefix(info, namespace)
    key_prefix = prefix if info.namespaced and namespace else None

    initial_end: int | None = None  # send the initial-events-end bookmark after this many events
    error_event: Obj | None = None
    watcher: Any = None
    try:
        if send_initial == "true":
            min_rev = await ctx.current_revision() if rv == "" else (0 if rv == "0" else _parse_rv(rv))
            if min_rev:
                await cacher.wait_fresh(min_rev)
            watcher = cacher.watch(0, predicate=pred, key_prefix=key_prefix)
            initial_end = watcher.pending
        elif send_initial == "false":
            min_rev = await ctx.current_revision() if rv in ("", "0") else _parse_rv(rv)
            await cacher.wait_fresh(min_rev)
            watcher = cacher.watch(
                max(min_rev, cacher.revision) if rv in ("", "0") else min_rev, predicate=pred, key_prefix=key_prefix
            )
        elif rv in ("", "0"):
            watcher = cacher.watch(0, predicate=pred, key_prefix=key_prefix)
        else:
            watcher = cacher.watch(_parse_rv(rv), predicate=pred, key_prefix=key_prefix)
    except Compacted as e:
        error_event = _too_old(e.requested, e.compact_revision)
    init_rev = cacher.revision

    resp = StreamResponse(
        status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
    )
    await resp.prepare(request)
    if error_event is not None:
        await resp.write(neg.dumps({"type": "ERROR", "object": error_event}) + b"\n")
        await resp.write_eof()
        return resp

    render = _renderer(info, request, shape)
    # the plain object in API form is the same line for every watcher: encode each event once
    shared_lines = not shape.table and not shape.metadata_only and info.from_storage is None
    ctx.watches += 1
    ctx.active_watchers.add(watcher)
    sent = 0
    try:
        if initial_end == 0:
            await _bookmark(resp, info, init_rev, initial=True)
            initial_end = None
        deadline = time.monotonic() + timeout
        interval = ctx.config.bookmark_interval
        next_bookmark = time.monotonic() + interval
        while not ctx.shutting_down.is_set():
            now = time.monotonic()
            if now >= deadline:
                if bookmarks:
                    await _bookmark(resp, info, watcher.bookmark_revision)
                break
            wait = min(deadline, next_bookmark) - now if bookmarks else deadline - now
            try:
                ev = await watcher.next(timeout=max(wait, 0.0))
            except Compacted as e:
                await resp.write(
                    neg.dumps({"type": "ERROR", "object": _too_old(e.requested, e.compact_revision)}) + b"\n"
                )
                break
            except StorageError:  # WatcherTooSlow / Unavailable: end the stream, the client re-watches
                break
            if ev is None:
                if watcher.done:
                    break
                if bookmarks and time.monotonic() >= next_bookmark:
                    await _bookmark(resp, info, watcher.bookmark_revision)
                    next_bookmark = time.monotonic() + interval
                continue
            if shared_lines:
                line = ev.line
                if line is None:
                    line = ev.line = neg.dumps({"type": ev.type, "object": ev.obj}) + b"\n"
            else:
                line = neg.dumps({"type": ev.type, "object": render(info.decode(ev.obj))}) + b"\n"
            await resp.write(line)
            sent += 1
            if initial_end is not None and sent >= initial_end:
                await _bookmark(resp, info, init_rev, initial=True)
                initial_end = None
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        watcher.close()
        ctx.active_watchers.discard(watcher)
        ctx.watches -= 1
    try:
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    return resp


async def _bookmark(resp: StreamResponse, info: ResourceInfo, rev: int, initial: bool = False) -> None:
    md: Obj = {"resourceVersion": str(rev)}
    if initial:
        md["annotations"] = {INITIAL_EVENTS_END: "true"}
    obj = {"kind": info.kind, "apiVersion": info.group_version, "metadata": md}
    await resp.write(neg.dumps({"type": "BOOKMARK", "object": obj}) + b"\n")


def _renderer(info: ResourceInfo, request: Request, shape: neg.Shape) -> Callable[[Obj], Obj]:
    if shape.table:
        from kubeha.apiserver.handlers import table

        first = [True]

        def as_table(obj: Obj) -> Obj:
            with_columns = first[0]
            first[0] = False
            md = obj.get("metadata") or {}
            return table(
                info,
                [obj],
                request,
                with_columns=with_columns,
                list_meta={"resourceVersion": md.get("resourceVersion", "")},
            )

        return as_table
    if shape.metadata_only:
        version = shape.version

        def partial(obj: Obj) -> Obj:
            return {
                "kind": "PartialObjectMetadata",
                "apiVersion": f"meta.k8s.io/{version}",
                "metadata": obj.get("metadata") or {},
            }

        return partial
    return lambda obj: obj
