"""The audit log: one ``audit.k8s.io/v1`` Event per request stage, as JSON lines, chosen and shaped by an
audit Policy (``--audit-policy-file``), written to ``--audit-log-path`` (``-`` = stdout) with
size/count/age rotation (``--audit-log-maxsize/maxbackup/maxage``).

Events are queued and written by a background task in a worker thread, so a slow disk never holds
up a request; the queue is bounded and drops (and counts) events past its size rather than grow.
Every response carries the request's ``Audit-ID`` header, as upstream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kubeha.apiserver import admission, objmeta
from kubeha.apiserver.authn import CURRENT_USER, USER
from kubeha.apiserver.httpserver import App, AppKey, Request, RequestKey, Response, StreamResponse
from kubeha.apiserver.requestinfo import of_request

log = logging.getLogger(__name__)

NONE, METADATA, REQUEST, REQUEST_RESPONSE = "None", "Metadata", "Request", "RequestResponse"
_LEVEL_ORDER = {NONE: 0, METADATA: 1, REQUEST: 2, REQUEST_RESPONSE: 3}
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
QUEUE_SIZE = 10_000
AUDIT_ID_HEADER = "Audit-ID"

Handler = Callable[[Request], Awaitable[StreamResponse]]


# -- policy -----------------------------------------------------------------------------------------


@dataclass
class RequestAttrs:
    """What the policy matches on (a subset of upstream's authorizer.Attributes)."""

    user: str
    groups: tuple[str, ...]
    verb: str
    is_resource: bool
    path: str = ""
    group: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


@dataclass
class Rule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[dict[str, Any], ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()

    def matches(self, a: RequestAttrs) -> bool:
        if self.users and a.user not in self.users:
            return False
        if self.user_groups and not set(self.user_groups) & set(a.groups):
            return False
        if self.verbs and a.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            if not a.is_resource:
                return False
            if self.namespaces and a.namespace not in self.namespaces:
                return False
            if self.resources and not any(_resource_matches(gr, a) for gr in self.resources):
                return False
        if self.non_resource_urls:
            if a.is_resource:
                return False
            if not any(_url_matches(u, a.path) for u in self.non_resource_urls):
                return False
        return True


def _resource_matches(gr: dict[str, Any], a: RequestAttrs) -> bool:
    if (gr.get("group") or "") != a.group:
        return False
    names = gr.get("resourceNames") or []
    if names and a.name not in names:
        return False
    resources = gr.get("resources") or []
    if not resources:
        return True
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    for r in resources:
        if r in ("*", combined):
            return True
        if r == "*/*" and a.subresource:
            return True
        if r.startswith("*/") and a.subresource == r[2:]:
            return True
        if r.endswith("/*") and a.subresource and a.resource == r[:-2]:
            return True
    return False


def _url_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


@dataclass
class Policy:
    rules: list[Rule] = field(default_factory=list)
    omit_stages: tuple[str, ...] = ()

    def level_for(self, a: RequestAttrs) -> tuple[str, tuple[str, ...]]:
        """The level of the first matching rule (None when none matches) and the stages to omit."""
        for r in self.rules:
            if r.matches(a):
                return r.level, tuple(set(self.omit_stages) | set(r.omit_stages))
        return NONE, self.omit_stages


def parse_policy(doc: dict[str, Any]) -> Policy:
    """An audit.k8s.io/v1 Policy document; ValueError when it is not one."""
    if doc.get("kind") != "Policy" or doc.get("apiVersion") not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        raise ValueError("the audit policy must be an audit.k8s.io/v1 Policy")
    rules = []
    for i, r in enumerate(doc.get("rules") or []):
        level = r.get("level")
        if level not in _LEVEL_ORDER:
            raise ValueError(f'rules[{i}].level: Unsupported value: "{level}"')
        stages = tuple(r.get("omitStages") or ())
        for s in stages:
            if s not in STAGES:
                raise ValueError(f'rules[{i}].omitStages: Unsupported value: "{s}"')
        if r.get("nonResourceURLs") and (r.get("resources") or r.get("namespaces")):
            raise ValueError(f"rules[{i}]: rules cannot apply to both regular resources and non-resource URLs")
        rules.append(
            Rule(
                level,
                tuple(r.get("users") or ()),
                tuple(r.get("userGroups") or ()),
                tuple(r.get("verbs") or ()),
                tuple(r.get("resources") or ()),
                tuple(r.get("namespaces") or ()),
                tuple(r.get("nonResourceURLs") or ()),
                stages,
            )
        )
    return Policy(rules, tuple(doc.get("omitStages") or ()))


def load_policy(path: str) -> Policy:
    import yaml

    with open(path) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not an audit policy")
    return parse_policy(doc)


# -- the log file -----------------------------------------------------------------------------------


class RotatingFile:
    """Append-only JSON-lines file rotated by size (MB), keeping at most ``max_backups`` old files
    no older than ``max_age_days`` (0 = unlimited), named like upstream's lumberjack backups."""

    def __init__(self, path: str, max_size_mb: int = 0, max_backups: int = 0, max_age_days: int = 0) -> None:
        self.path = path
        self.max_bytes = max_size_mb * 1024 * 1024
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self._f: IO[str] | None = None
        self._size = 0

    def _open(self) -> IO[str]:
        if self._f is None:
            if self.path == "-":
                self._f = sys.stdout
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._f = open(self.path, "a", encoding="utf-8")
                self._size = self._f.tell()
        return self._f

    def write_lines(self, lines: list[str]) -> None:
        f = self._open()
        data = "".join(lines)
        if self.path != "-" and self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
            f = self._open()
        f.write(data)
        f.flush()
        self._size += len(data)

    def _rotate(self) -> None:
        if self._f is not None and self._f is not sys.stdout:
            self._f.close()
        self._f = None
        p = Path(self.path)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        backup = p.with_name(f"{p.stem}-{stamp}{p.suffix}")
        os.replace(p, backup)
        self._prune()

    def backups(self) -> list[Path]:
        p = Path(self.path)
        return sorted(p.parent.glob(f"{p.stem}-*{p.suffix}"))

    def _prune(self) -> None:
        old = self.backups()
        if self.max_age_days:
            cutoff = time.time() - self.max_age_days * 86400
            for b in list(old):
                if b.stat().st_mtime < cutoff:
                    b.unlink(missing_ok=True)
                    old.remove(b)
        if self.max_backups and len(old) > self.max_backups:
            for b in old[: len(old) - self.max_backups]:
                b.unlink(missing_ok=True)

    def close(self) -> None:
        if self._f is not None and self._f is not sys.stdout:
            self._f.close()
        self._f = None


class AuditBackend:
    """Buffers events and writes them off the request path (one background task, one thread)."""

    def __init__(self, sink: RotatingFile, queue_size: int = QUEUE_SIZE) -> None:
        self.sink = sink
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(queue_size)
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def emit(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-log")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            ev = await self.queue.get()
            batch = [ev]
            while not self.queue.empty() and len(batch) < 1000:
                batch.append(self.queue.get_nowait())
            if None in batch:
                stop = True
            lines = [json.dumps(e, separators=(",", ":")) + "\n" for e in batch if e is not None]
            if lines:
                try:
                    await loop.run_in_executor(None, self.sink.write_lines, lines)
                except OSError as e:
                    log.error("writing the audit log failed: %s", e)

    async def stop(self) -> None:
        if self._task is not None:
            await self.queue.put(None)
            await self._task
            self._task = None
        self.sink.close()


# -- events -----------------------------------------------------------------------------------------


def micro_time(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _user_dict(user: Any) -> dict[str, Any]:
    if user is None:
        return {}
    to_api = getattr(user, "to_api", None)
    if callable(to_api):
        return dict(to_api())
    out: dict[str, Any] = {"username": getattr(user, "name", "")}
    if getattr(user, "uid", ""):
        out["uid"] = user.uid
    if getattr(user, "groups", ()):
        out["groups"] = list(user.groups)
    return out


def source_ips(request: Request) -> list[str]:
    ips = [ip.strip() for ip in request.headers.get("X-Forwarded-For", "").split(",") if ip.strip()]
    real = request.headers.get("X-Real-Ip")
    if real and real not in ips:
        ips.append(real)
    remote = request.remote
    if remote and remote not in ips:
        ips.append(remote)
    return ips


@dataclass
class AuditContext:
    """One request's audit state (the event is built once the user and outcome are known)."""

    audit_id: str
    received: float
    level: str = NONE
    omit: tuple[str, ...] = ()
    started_logged: bool = False
    body: bytes = b""
    event: dict[str, Any] = field(default_factory=dict)


class Auditor:
    def __init__(self, policy: Policy, backend: AuditBackend) -> None:
        self.policy = policy
        self.backend = backend

    def base_event(self, request: Request, actx: AuditContext, user: Any, real_user: Any) -> dict[str, Any]:
        ri = of_request(request.method, request.path, request.query)
        ev: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": actx.level,
            "auditID": actx.audit_id,
            "stage": "",
            "requestURI": request.path_qs,
            "verb": ri.verb if ri.is_resource else request.method.lower(),
            "user": _user_dict(real_user if real_user is not None else user),
            "sourceIPs": source_ips(request),
        }
        if real_user is not None and user is not None:
            ev["impersonatedUser"] = _user_dict(user)
        ua = request.headers.get("User-Agent")
        if ua:
            ev["userAgent"] = ua
        if ri.is_resource:
            ref: dict[str, Any] = {"resource": ri.resource}
            if ri.namespace:
                ref["namespace"] = ri.namespace
            if ri.name:
                ref["name"] = ri.name
            if ri.group:
                ref["apiGroup"] = ri.group
            ref["apiVersion"] = ri.version
            if ri.subresource:
                ref["subresource"] = ri.subresource
            ev["objectRef"] = ref
        ev["requestReceivedTimestamp"] = micro_time(actx.received)
        return ev

    def decide(self, request: Request, user: Any) -> tuple[str, tuple[str, ...]]:
        ri = of_request(request.method, request.path, request.query)
        attrs = RequestAttrs(
            str(getattr(user, "name", "") or ""),
            tuple(getattr(user, "groups", ()) or ()),
            ri.verb if ri.is_resource else request.method.lower(),
            ri.is_resource,
            request.path,
            ri.group,
            ri.namespace,
            ri.resource,
            ri.subresource,
            ri.name,
        )
        return self.policy.level_for(attrs)

    def emit(self, ev: dict[str, Any], stage: str, actx: AuditContext, when: float) -> None:
        if stage in actx.omit:
            return
        out = dict(ev)
        out["stage"] = stage
        out["stageTimestamp"] = micro_time(when)
        self.backend.emit(out)


AUDIT_KEY = AppKey("auditor", Auditor)
_ACTX = RequestKey("audit_ctx", AuditContext)
_SCOPE = RequestKey("request_scope", admission.RequestScope)


def _impersonating(request: Request) -> bool:
    return any(h.lower().startswith("impersonate-") for h in request.headers)


async def _real_user(request: Request) -> Any:
    """The authenticated (not impersonated) user of an impersonating request."""
    from kubeha.apiserver.app import AUTHN

    chain = request.app.get(AUTHN)
    if chain is None:
        return None
    try:
        return await chain.authenticate(request)
    except Exception:
        return None


async def scope_middleware(request: Request, handler: Handler) -> StreamResponse:
    """Outermost: the request scope (warnings, audit annotations) and the audit events."""
    scope = admission.RequestScope()
    admission.SCOPE.set(scope)
    request[_SCOPE] = scope
    auditor = request.app.get(AUDIT_KEY)
    actx = AuditContext(objmeta.new_uid(), time.time())
    request[_ACTX] = actx
    if auditor is None:
        return await handler(request)
    code = 500
    response: StreamResponse | None = None
    status: dict[str, Any] | None = None
    try:
        response = await handler(request)
        code = response.status
        return response
    except BaseException:
        code = 500
        raise
    finally:
        try:
            await _finish(request, auditor, actx, scope, response, code, status)
        except Exception:
            log.exception("building an audit event failed")


async def _prepare_event(request: Request, auditor: Auditor, actx: AuditContext) -> dict[str, Any] | None:
    if actx.event:
        return actx.event
    user = _caller(request)
    level, omit = auditor.decide(request, user)
    if level == NONE:
        return None
    actx.level, actx.omit = level, omit
    real = await _real_user(request) if _impersonating(request) else None
    actx.event = auditor.base_event(request, actx, user, real)
    if actx.body:
        try:
            actx.event["requestObject"] = json.loads(actx.body)
        except ValueError:
            pass
    return actx.event


async def _capture_body(request: Request, actx: AuditContext) -> None:
    """Keep a copy of the body for Request-level events (the handler reads the same bytes)."""
    actx.body = await request.read()


def _request_user(request: Request) -> Any:
    return request.get(USER)


def _caller(request: Request) -> Any:
    """The authenticated user, or the one the authentication filter recorded for this task."""
    return request.get(USER) or CURRENT_USER.get()


async def _finish(
    request: Request,
    auditor: Auditor,
    actx: AuditContext,
    scope: admission.RequestScope,
    response: StreamResponse | None,
    code: int,
    status: dict[str, Any] | None,
) -> None:
    ev = await _prepare_event(request, auditor, actx)
    if ev is None:
        return
    resp_obj: Any = None
    body = getattr(response, "body", None) if isinstance(response, Response) else None
    if isinstance(body, bytes) and body[:1] == b"{":
        try:
            resp_obj = json.loads(body)
        except ValueError:
            resp_obj = None
    rs: dict[str, Any] = {"metadata": {}, "code": code}
    if isinstance(resp_obj, dict) and resp_obj.get("kind") == "Status" and code >= 400:
        rs["status"] = resp_obj.get("status", "Failure")
        if resp_obj.get("message"):
            rs["message"] = resp_obj["message"]
        if resp_obj.get("reason"):
            rs["reason"] = resp_obj["reason"]
    ev["responseStatus"] = rs
    annotations = dict(scope.annotations)
    if _request_user(request) is not None:
        # the authorizer let the request through unless it was refused before reaching a handler
        if "authorization.k8s.io/decision" not in annotations:
            authorized = request.get(_AUTHORIZED, False)
            annotations["authorization.k8s.io/decision"] = "allow" if authorized or code != 403 else "forbid"
            annotations.setdefault("authorization.k8s.io/reason", "")
    if annotations:
        ev["annotations"] = annotations
    if actx.level == REQUEST_RESPONSE and resp_obj is not None:
        ev["responseObject"] = resp_obj
    now = time.time()
    if not actx.started_logged:
        auditor.emit(ev, "RequestReceived", actx, actx.received)
    auditor.emit(ev, "ResponseComplete", actx, now)


_AUTHORIZED = RequestKey("audit_authorized", bool)


async def authorized_middleware(request: Request, handler: Handler) -> StreamResponse:
    """Innermost: reaching it means authentication and authorization passed."""
    request[_AUTHORIZED] = True
    scope = request.get(_SCOPE)
    if scope is not None and scope.user is None:
        scope.user = _caller(request)
    auditor = request.app.get(AUDIT_KEY)
    actx = request.get(_ACTX)
    if auditor is not None and actx is not None and request.method in ("POST", "PUT", "PATCH", "DELETE"):
        level, _ = auditor.decide(request, _caller(request))
        if _LEVEL_ORDER[level] >= _LEVEL_ORDER[REQUEST] and request.body_exists:
            await _capture_body(request, actx)
    return await handler(request)


def on_response_prepare(request: Request, response: StreamResponse) -> Awaitable[None] | None:
    """Every response gets the Audit-ID and the request's warnings; a watch logs ResponseStarted
    (the only case with something to wait for)."""
    actx = request.get(_ACTX)
    if actx is None:
        return None
    response.headers[AUDIT_ID_HEADER] = actx.audit_id
    scope = request.get(_SCOPE)
    if scope is not None and scope.warnings:
        extra = ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in scope.warnings)
        have = response.headers.get("Warning")
        response.headers["Warning"] = f"{have}, {extra}" if have else extra
    auditor = request.app.get(AUDIT_KEY)
    if auditor is None or isinstance(response, Response):
        return None
    return _log_stream_started(request, auditor, actx, response)


async def _log_stream_started(request: Request, auditor: Auditor, actx: AuditContext, response: StreamResponse) -> None:
    """A streamed response (watch, logs): its events so far, before the stream runs for long."""
    ev = await _prepare_event(request, auditor, actx)
    if ev is None:
        return
    started = dict(ev)
    started["responseStatus"] = {"metadata": {}, "code": response.status}
    auditor.emit(started, "RequestReceived", actx, actx.received)
    auditor.emit(started, "ResponseStarted", actx, time.time())
    actx.started_logged = True


def install(app: App, config: Any) -> None:
    """Request scopes (admission warnings), Audit-ID headers and, with --audit-log-path and
    --audit-policy-file, the audit log."""
    from kubeha.apiserver.app import FILTERS

    app[FILTERS].insert(0, scope_middleware)
    app[FILTERS].append(authorized_middleware)
    app.on_response_prepare.append(on_response_prepare)
    path = getattr(config, "audit_log_path", "")
    policy_file = getattr(config, "audit_policy_file", "")
    if not path or not policy_file:
        return  # as upstream: no policy, no events
    policy = load_policy(policy_file)
    sink = RotatingFile(
        path,
        getattr(config, "audit_log_maxsize", 0),
        getattr(config, "audit_log_maxbackup", 0),
        getattr(config, "audit_log_maxage", 0),
    )
    backend = AuditBackend(sink)
    app[AUDIT_KEY] = Auditor(policy, backend)

    async def start(app: App) -> None:
        backend.start()

    async def stop(app: App) -> None:
        await backend.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
