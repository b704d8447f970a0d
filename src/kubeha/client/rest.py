"""The async REST client every component uses to talk to the api-server.

One aiohttp session per client (keep-alive, TLS from the :class:`ClientConfig`), JSON bodies via
orjson, objects as plain dicts. Errors come back the way the server sent them: every non-2xx
answer raises :class:`kubeha.api.errors.StatusError` built from the server's ``Status``.

In an HA cluster the client usually talks to a load balancer in front of several api-servers,
so any single server may vanish mid-request. Requests that are safe to repeat (GET, PUT with the
object's resourceVersion, DELETE) are retried on connection failures, and every verb is retried
when the server answered 429 (it did not process the request). What cannot be retried surfaces as
:class:`ApiConnectionError` (a ``ConnectionError``): callers treat it as "try again later".
A watch whose connection drops simply ends; the reflector then watches again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from kubeha.api.errors import StatusError
from kubeha.client.flowcontrol import TokenBucket
from kubeha.client.kubeconfig import ClientConfig
from kubeha.client.resources import ResourceRef

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
# Verbs whose repetition cannot do harm: a repeated PUT carries the same resourceVersion (409 at
# worst), a repeated DELETE finds the object gone (404 at worst).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# HTTP code -> upstream StatusReason, for error answers that carry no Status body
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
MAX_RETRY_AFTER = 30.0


class ApiConnectionError(ConnectionError):
    """The api-server could not be reached or the connection broke; the request may be retried."""


class ApiTimeoutError(ApiConnectionError):
    """No answer within the client's timeout (the outcome of a write is unknown)."""


def status_error(code: int, body: bytes, headers: Mapping[str, str] | None = None) -> StatusError:
    """A StatusError from an error answer: the server's Status when it sent one, else a generic one."""
    extra = {"Retry-After": headers["Retry-After"]} if headers and "Retry-After" in headers else {}
    try:
        obj = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and obj.get("kind") == "Status":
        return status_from_object(obj, code, extra)
    text = body.decode("utf-8", "replace").strip()
    return StatusError(code, REASONS.get(code, "Unknown"), text or f"the server answered HTTP {code}", None, extra)


def status_from_object(obj: Obj, code: int = 500, headers: dict[str, str] | None = None) -> StatusError:
    code = int(obj.get("code") or code)
    reason = obj.get("reason") or REASONS.get(code, "Unknown")
    return StatusError(code, str(reason), str(obj.get("message") or ""), obj.get("details") or None, headers or {})


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 1.0


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _namespace_of(res: ResourceRef, obj: Obj, namespace: str | None) -> str | None:
    if not res.namespaced:
        return None
    return namespace or (obj.get("metadata") or {}).get("namespace")


def _name_of(obj: Obj) -> str:
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    return str(name)


class ApiClient:
    def __init__(
        self,
        config: ClientConfig,
        *,
        user_agent: str = "kubeha",
        timeout: float = 30.0,
        qps: float = 0,
        burst: int = 0,
        max_retries: int = 5,
        retry_backoff: float = 0.2,
    ) -> None:
        self.config = config
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._limiter = TokenBucket(qps, burst) if qps > 0 else None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            tls: Any = self.config.ssl_context() if self.config.server.startswith("https:") else False
            connector = aiohttp.TCPConnector(ssl=tls, limit=0, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent, "Accept": "application/json"},
                auto_decompress=True,
            )
        return self._session

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        h: dict[str, str] = {}
        token = self.config.bearer_token()
        if token:
            h["Authorization"] = f"Bearer {token}"
        elif self.config.username is not None:
            cred = f"{self.config.username}:{self.config.password or ''}".encode()
            h["Authorization"] = "Basic " + base64.b64encode(cred).decode("ascii")
        if content_type:
            h["Content-Type"] = content_type
        return h

    def _backoff(self, attempt: int) -> float:
        base = min(self.retry_backoff * (2 ** (attempt - 1)), 5.0)
        return base * (0.5 + random.random())

    # -- the wire -----------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request with retries; returns (status, headers, body) of the final answer."""
        url = self.config.server + path
        query = _params(params)
        attempt = 0
        while True:
            attempt += 1
            if self._limiter is not None:
                await self._limiter.acquire()
            session = self._get_session()
            try:
                async with session.request(
                    method,
                    url,
                    params=query,
                    data=data,
                    headers=self._headers(content_type if data is not None else None),
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                    server_hostname=self.config.tls_server_name,
                ) as resp:
                    body = await resp.read()
                    status, headers = resp.status, resp.headers
            except TimeoutError as e:
                if method not in IDEMPOTENT or attempt > self.max_retries:
                    raise ApiTimeoutError(f"{method} {path}: no answer within {self.timeout}s") from e
                log.debug("%s %s timed out, retrying (attempt %d)", method, path, attempt)
                await asyncio.sleep(self._backoff(attempt))
                continue
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as e:
                # A connect failure means the request never left: safe to repeat for any verb.
                never_sent = isinstance(e, aiohttp.ClientConnectorError)
                if (method not in IDEMPOTENT and not never_sent) or attempt > self.max_retries:
                    raise ApiConnectionError(f"{method} {path}: {e or type(e).__name__}") from e
                log.debug("%s %s failed (%s), retrying (attempt %d)", method, path, e, attempt)
                await asyncio.sleep(self._backoff(attempt))
                continue
            if status == 429 or (status >= 500 and "Retry-After" in headers):
                # The server refused to process the request (overload): any verb may be repeated.
                wait = _retry_after(headers)
                if attempt <= max(self.max_retries, 10):
                    await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
                    continue
            return status, headers, body

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        status, headers, raw = await self._send(method, path, params=params, data=data, content_type=content_type)
        if status >= 300:
            raise status_error(status, raw, headers)
        if not raw:
            return {}
        out = orjson.loads(raw)
        if not isinstance(out, dict):
            raise ValueError(f"{method} {path}: expected a JSON object, got {type(out).__name__}")
        return out

    # -- verbs --------------------------------------------------------------------------------

    async def get(
        self, res: ResourceRef, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        return await self._json("GET", res.path(namespace, name, subresource))

    async def list(
        self,
        res: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Obj:
        """The List object. Items get ``apiVersion``/``kind`` (the server leaves them out)."""
        params = {
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "limit": limit or None,
            "continue": continue_ or None,
            "resourceVersion": resource_version,
            "resourceVersionMatch": resource_version_match,
        }
        out = await self._json("GET", res.path(namespace), params=params)
        for item in out.get("items") or ():
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        return out

    async def list_all(
        self,
        res: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> Obj:
        """Every page of a list joined into one List object (the last page's metadata)."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.list(
                res,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_=token,
            )
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                page["items"] = items
                meta.pop("remainingItemCount", None)
                return page

    async def watch(
        self,
        res: ResourceRef,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        read_timeout: float | None = None,
    ) -> AsyncGenerator[tuple[str, Obj], None]:
        """(type, object) events. An ERROR event raises StatusError (410 Expired: re-list).
        The iterator ends when the server closes the stream or the connection drops.

        Close it when done early (``contextlib.aclosing``) to release the connection at once.
        ``read_timeout``: give up on a silent connection after this long (default: the watch's
        timeout plus a margin, or never), so a vanished peer does not hang the watch forever.
        """
        params = _params(
            {
                "watch": True,
                "resourceVersion": resource_version or None,
                "labelSelector": label_selector or None,
                "fieldSelector": field_selector or None,
                "timeoutSeconds": timeout_seconds,
                "allowWatchBookmarks": True if allow_bookmarks else None,
            }
        )
        if read_timeout is None and timeout_seconds:
            read_timeout = timeout_seconds + 30.0
        if self._limiter is not None:
            await self._limiter.acquire()
        path = res.path(namespace)
        session = self._get_session()
        try:
            resp = await session.get(
                self.config.server + path,
                params=params,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=read_timeout),
                server_hostname=self.config.tls_server_name,
            )
        except TimeoutError as e:
            raise ApiTimeoutError(f"WATCH {path}: no answer within {self.timeout}s") from e
        except (aiohttp.ClientConnectionError, OSError) as e:
            raise ApiConnectionError(f"WATCH {path}: {e or type(e).__name__}") from e
        async with resp:
            if resp.status != 200:
                try:
                    body = await resp.read()
                except (aiohttp.ClientError, OSError, TimeoutError) as e:
                    raise ApiConnectionError(f"WATCH {path}: {e or type(e).__name__}") from e
                raise status_error(resp.status, body, resp.headers)
            buf = bytearray()
            scanned = 0  # bytes of buf known to hold no newline
            try:
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while (i := buf.find(b"\n", scanned)) >= 0:
                        line = bytes(buf[:i])
                        del buf[: i + 1]
                        scanned = 0
                        if not line.strip():
                            continue
                        ev = orjson.loads(line)
                        typ, obj = ev.get("type"), ev.get("object") or {}
                        if typ == "ERROR":
                            raise status_from_object(obj)
                        yield str(typ), obj
                    scanned = len(buf)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError, TimeoutError) as e:
                # the server went away (or the stream broke): the watch just ends
                log.debug("watch %s ended: %s", path, e or type(e).__name__)

    async def create(
        self,
        res: ResourceRef,
        obj: Obj,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        name: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """POST ``obj``; with ``subresource`` (binding, eviction, token) it goes to
        ``<name>/<subresource>`` (``name`` defaults to the object's)."""
        ns = _namespace_of(res, obj, namespace)
        if subresource:
            path = res.path(ns, name or _name_of(obj), subresource)
        else:
            path = res.path(ns)
        params = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return await self._json("POST", path, params=params, body=obj)

    async def update(
        self,
        res: ResourceRef,
        obj: Obj,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PUT ``obj`` (its metadata.resourceVersion makes this a compare-and-swap)."""
        path = res.path(_namespace_of(res, obj, namespace), _name_of(obj), subresource)
        params = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return await self._json("PUT", path, params=params, body=obj)

    async def patch(
        self,
        res: ResourceRef,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        """PATCH with ``patch_type`` merge | strategic | json | apply (server-side apply needs a
        field manager: the user agent's product name when none is given)."""
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        if patch_type == "apply" and not field_manager:
            field_manager = self.user_agent.split("/", 1)[0]
        params = {
            "fieldManager": field_manager,
            "force": True if force else None,
            "dryRun": "All" if dry_run else None,
        }
        body = patch.encode() if isinstance(patch, str) else patch
        return await self._json(
            "PATCH", res.path(namespace, name, subresource), params=params, body=body, content_type=content_type
        )

    async def delete(
        self,
        res: ResourceRef,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE; returns what the server answers (the object, or a Success Status)."""
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            opts["preconditions"] = preconditions
        if dry_run:
            opts["dryRun"] = ["All"]
        return await self._json("DELETE", res.path(namespace, name), body=opts)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Any request; answers JSON-decoded when the server sent JSON, else as text."""
        if body is None or isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = orjson.dumps(body)
        status, headers, raw = await self._send(
            method.upper(), path, params=params, data=data, content_type=content_type
        )
        if status >= 300:
            raise status_error(status, raw, headers)
        ctype = headers.get("Content-Type", "")
        if "json" in ctype:
            return orjson.loads(raw) if raw else None
        return raw.decode("utf-8", "replace")
