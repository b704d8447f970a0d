"""The api-server as an application: routing, error mapping, metrics, authn/authz.

``build_app`` knows nothing about how it is served (``server.py`` adds TLS, flags, signals).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kubeha.api import errors
from kubeha.api.registry import RESOURCES, group_versions, load_all
from kubeha.apiserver import health
from kubeha.apiserver import negotiation as neg
from kubeha.apiserver.authn import CURRENT_USER, USER, AuthenticationChain, UserInfo, impersonation
from kubeha.apiserver.authz import CURRENT_AUTHZ, Attributes, AuthorizationChain
from kubeha.apiserver.authz.sync import PolicySync
from kubeha.apiserver.config import VERSION_INFO, ServerConfig
from kubeha.apiserver.context import ApiContext, CacherFactory
from kubeha.apiserver.handlers import handle_resource, not_found_path
from kubeha.apiserver.httpserver import App, AppKey, Request, RequestKey, Response, StreamResponse
from kubeha.apiserver.metrics import Metrics
from kubeha.apiserver.requestinfo import RequestInfo, of_request
from kubeha.apiserver.rest import Rest
from kubeha.storage.interface import Compacted, Conflict, KeyExists, KeyNotFound, StorageError, Unavailable

log = logging.getLogger(__name__)

CTX = AppKey("ctx", ApiContext)
REST = AppKey("rest", Rest)
METRICS = AppKey("metrics", Metrics)
AUTHN = AppKey("authn", AuthenticationChain)
AUTHZ = AppKey("authz", AuthorizationChain)
# feeds RBAC and the Node graph from the watch caches (absent with AlwaysAllow)
POLICY = AppKey("policy", PolicySync)
# per request: what the caller asked for (USER, who is calling, lives with authentication)
REQUEST_INFO = RequestKey("request_info", RequestInfo)

Handler = Callable[[Request], Awaitable[StreamResponse]]
# a filter is called as f(request, handler=next_handler)
Filter = Callable[..., Awaitable[StreamResponse]]

# The filters around every request, outermost first (upstream's handler chain: audit scope,
# metrics and errors, in-flight limit, authentication, authorization, ...), chained once as plain
# calls (no framework middlewares: aiohttp's, which this replaced, wrapped each one anew for every
# request, about 20 µs apiece).
FILTERS = AppKey("filters", list)  # list[Filter]


def chained(filters: Sequence[Filter], endpoint: Handler) -> Handler:
    """``endpoint`` wrapped in ``filters`` (the first one outermost)."""
    handler = endpoint
    for f in reversed(filters):
        handler = functools.partial(f, handler=handler)
    return handler


def storage_error_status(e: StorageError) -> errors.StatusError:
    if isinstance(e, KeyNotFound):
        return errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})
    if isinstance(e, KeyExists):
        return errors.StatusError(409, "AlreadyExists", "the object already exists", {})
    if isinstance(e, Conflict):
        return errors.StatusError(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest "
            "version and try again",
            {},
        )
    if isinstance(e, Compacted):
        return errors.expired(f"too old resource version: {e.requested} ({e.compact_revision})")
    if isinstance(e, Unavailable):
        return errors.service_unavailable(f"etcd is unavailable: {e}")
    return errors.service_unavailable(f"storage error: {e}")


def _status_response(err: errors.StatusError) -> Response:
    return neg.json_response(err.to_status(), status=err.code, headers=err.headers or None)


def _request_info(request: Request) -> RequestInfo:
    ri = request.get(REQUEST_INFO)
    if ri is None:
        ri = of_request(request.method, request.path, request.query)
        request[REQUEST_INFO] = ri
    return ri


async def request_middleware(request: Request, handler: Handler) -> StreamResponse:
    """Every request between the audit scope and the handler, in upstream's filter order: metrics
    and the mapping of every failure to a Status (outermost), then --max-requests-inflight, then
    authentication, impersonation and authorization. One middleware rather than four: each
    layer costs a coroutine per request, and they share the RequestInfo parsed here."""
    app = request.app
    metrics = app[METRICS]
    ri = _request_info(request)
    long_running = ri.verb == "watch"
    start = time.monotonic()
    kind = "mutating" if request.method in ("POST", "PUT", "PATCH", "DELETE") else "readOnly"
    if long_running:
        metrics.watch_started()
    else:
        metrics.request_started(kind)
    code = 500
    ctx = app[CTX]
    counted = False
    try:
        # --max-requests-inflight: shed load with 429 + Retry-After, watches excluded (as upstream)
        if not long_running:
            limit = ctx.config.max_requests_inflight
            if limit > 0 and ctx.inflight >= limit:
                raise errors.too_many_requests()
            ctx.inflight += 1
            counted = True
        resp = await _authenticate_and_authorize(request, app, ri, handler)
        code = resp.status
        return resp
    except errors.StatusError as e:
        code = e.code
        return _status_response(e)
    except StorageError as e:
        st = storage_error_status(e)
        code = st.code
        return _status_response(st)
    except (ConnectionResetError, ConnectionError):
        code = 499
        raise
    except Exception as e:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        code = 500
        return _status_response(errors.internal(type(e).__name__ + ": " + str(e)[:200]))
    finally:
        if counted:
            ctx.inflight -= 1
        if long_running:
            metrics.watch_ended()
        else:
            metrics.request_ended(kind)
        scope = ("namespace" if ri.namespace else "cluster") if ri.is_resource else ""
        verb = (ri.verb or request.method.lower()).upper()
        labels = (verb, ri.group, ri.version, ri.resource, ri.subresource, scope)
        metrics.count_request((*labels, str(code)))
        if not long_running:
            metrics.observe_latency(labels, time.monotonic() - start)


async def _authenticate_and_authorize(request: Request, app: App, ri: RequestInfo, handler: Handler) -> StreamResponse:
    user: UserInfo = await app[AUTHN].authenticate(request)
    chain = app[AUTHZ]
    wanted = impersonation.requested(request.headers)
    if wanted is not None:
        user = await impersonation.impersonate(user, wanted, _impersonation_check(chain))
    request[USER] = user
    # write hooks (escalation checks, CSR requester) and the review handlers read these
    CURRENT_USER.set(user)
    CURRENT_AUTHZ.set(chain)
    allowed, reason = await chain.authorize(Attributes.from_request(user, ri, request.query))
    if not allowed:
        if ri.is_resource:
            raise errors.forbidden(
                user.name,
                ri.verb,
                ri.group,
                ri.resource + (f"/{ri.subresource}" if ri.subresource else ""),
                ri.name,
                ri.namespace,
                reason,
            )
        raise errors.StatusError(
            403,
            "Forbidden",
            f'forbidden: User "{user.name}" cannot {ri.verb} path "{request.path}"' + (f": {reason}" if reason else ""),
            {},
        )
    return await handler(request)


def _impersonation_check(chain: AuthorizationChain) -> impersonation.Check:
    async def check(
        real: UserInfo, verb: str, group: str, resource: str, namespace: str, name: str
    ) -> tuple[bool, str]:
        res, _, sub = resource.partition("/")
        return await chain.authorize(Attributes(real, verb, True, "", group, "", res, sub, namespace, name))

    return check


# -- non-resource endpoints ---------------------------------------------------------------------------------


def _fallback_api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    items = [i for i in RESOURCES.values() if i.group == group and i.version == version]
    if not items:
        return None
    resources = []
    for i in items:
        resources.append(
            {
                "name": i.resource,
                "singularName": i.singular,
                "namespaced": i.namespaced,
                "kind": i.kind,
                "verbs": list(i.verbs),
                **({"shortNames": list(i.short_names)} if i.short_names else {}),
            }
        )
        for s in i.subresources:
            resources.append(
                {
                    "name": f"{i.resource}/{s.name}",
                    "singularName": "",
                    "namespaced": i.namespaced,
                    "kind": s.kind,
                    "verbs": list(s.verbs),
                }
            )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _fallback_group(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs[0]}


def _discovery() -> Any:
    try:
        from kubeha.apiserver import discovery

        return discovery
    except ImportError:
        return None


async def handle_discovery(request: Request, ri: RequestInfo) -> StreamResponse:
    disc = _discovery()
    parts = [p for p in request.path.strip("/").split("/") if p]
    accept = request.headers.get("Accept", "")
    if parts in (["api"], ["apis"]):
        if disc is not None:
            which = disc.negotiate_discovery(accept)
            if which is not None:
                doc = disc.aggregated_discovery(parts == ["api"], which)
                ct = f"application/json;g=apidiscovery.k8s.io;v={which};as=APIGroupDiscoveryList"
                return Response(body=neg.dumps(doc), content_type=None, headers={"Content-Type": ct, "Vary": "Accept"})
        if parts == ["api"]:
            if disc is not None:
                return neg.json_response(
                    disc.api_versions(
                        request.app[CTX].config.advertise_address + ":" + str(request.app[CTX].config.secure_port)
                    )
                )
            return neg.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {
                            "clientCIDR": "0.0.0.0/0",
                            "serverAddress": f"{request.app[CTX].config.advertise_address}:"
                            f"{request.app[CTX].config.secure_port}",
                        }
                    ],
                }
            )
        if disc is not None:
            return neg.json_response(disc.api_group_list())
        groups = [_fallback_group(g, vs) for g, vs in group_versions().items() if g]
        return neg.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    if parts[0] == "api" and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[0] == "apis" and len(parts) == 3:
        group, version = parts[1], parts[2]
    elif parts[0] == "apis" and len(parts) == 2:
        group_doc = disc.api_group(parts[1]) if disc is not None and hasattr(disc, "api_group") else None
        if group_doc is None:
            versions = group_versions().get(parts[1])
            if not versions:
                raise not_found_path()
            group_doc = _fallback_group(parts[1], versions)
        return neg.json_response(group_doc)
    else:
        raise not_found_path()
    doc = disc.api_resource_list(group, version) if disc is not None else _fallback_api_resource_list(group, version)
    if doc is None:
        raise not_found_path()
    return neg.json_response(doc)


async def handle_openapi(request: Request) -> StreamResponse:
    path = request.path
    if path == "/openapi/v2":
        # kubectl 1.27/1.28 only need the fetch to succeed; an empty document is enough
        return Response(body=b"", content_type="application/octet-stream")
    try:
        from kubeha.api import openapi
    except ImportError:
        raise not_found_path() from None
    if path.rstrip("/") == "/openapi/v3":
        return neg.json_response(openapi.v3_index())
    sub = path[len("/openapi/v3/") :]
    res = openapi.v3_document(sub)
    if res is None:
        raise not_found_path()
    body, digest = res
    headers = {"Etag": f'"{digest}"'}
    if request.query.get("hash") == digest:
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = "Thu, 01 Jan 2099 00:00:00 GMT"
    if request.headers.get("If-None-Match") == f'"{digest}"':
        return Response(status=304, headers=headers)
    return Response(body=body, content_type="application/json", headers=headers)


async def dispatch(request: Request) -> StreamResponse:
    app = request.app
    ctx = app[CTX]
    ri = _request_info(request)
    path = request.path
    if ri.is_resource:
        return await handle_resource(request, ri, ctx, app[REST])
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed(request.method, path)
    if path == "/version":
        return neg.json_response(ctx.config.version or VERSION_INFO)
    for endpoint in ("healthz", "livez", "readyz"):
        if path == f"/{endpoint}" or path.startswith(f"/{endpoint}/"):
            return await health.handle(request, ctx, endpoint, path[len(endpoint) + 2 :])
    if path == "/metrics":
        return Response(body=app[METRICS].render(), headers={"Content-Type": "text/plain; version=0.0.4"})
    if path.startswith("/openapi/"):
        return await handle_openapi(request)
    if path.startswith("/api"):
        return await handle_discovery(request, ri)
    if path == "/":
        return neg.json_response(
            {
                "paths": sorted(
                    {
                        "/api",
                        "/api/v1",
                        "/apis",
                        "/healthz",
                        "/livez",
                        "/metrics",
                        "/openapi/v2",
                        "/openapi/v3",
                        "/readyz",
                        "/version",
                    }
                )
            }
        )
    raise not_found_path()


def build_app(
    config: ServerConfig,
    store: Any,
    cacher_factory: CacherFactory | None = None,
    *,
    authn: AuthenticationChain | None = None,
    authz: AuthorizationChain | None = None,
) -> App:
    """The api-server application over ``store`` (a kubeha.storage.store.Store)."""
    load_all_safely()
    ctx = ApiContext(config, store, cacher_factory)
    app = App(client_max_size=config.max_body_bytes)
    app.body_read_timeout = config.request_timeout
    app[FILTERS] = [request_middleware]
    app[CTX] = ctx
    app[REST] = Rest(ctx)
    app[METRICS] = Metrics()
    app[AUTHN] = authn or _authn_chain(config, ctx)
    app[AUTHZ] = authz or AuthorizationChain(config.authorization_modes)
    _install_hooks()
    _install_admission_and_audit(app, config, ctx)
    _install_auth(app, config)
    filters: list[Filter] = app[FILTERS]
    app.handler = chained(filters, dispatch)

    async def on_shutdown(app: App) -> None:
        ctx.begin_shutdown()

    async def on_cleanup(app: App) -> None:
        await ctx.close()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def _install_admission_and_audit(app: App, config: ServerConfig, ctx: ApiContext) -> None:
    from kubeha.apiserver import admission, audit

    names = config.admission_plugins
    # in-process apps (tests) run no service-account controller, so the default service account
    # never appears: they leave ServiceAccount out (`kubeha apiserver` runs upstream's full set)
    admission.install(ctx, admission.plugin_names(disable=["ServiceAccount"]) if names is None else names)
    audit.install(app, config)


def _install_hooks() -> None:
    from kubeha.apiserver import allocator

    allocator.install()


def _authn_chain(config: ServerConfig, ctx: ApiContext) -> AuthenticationChain:
    from kubeha.apiserver.authn.setup import build_chain

    return build_chain(config, ctx)


def _install_auth(app: App, config: ServerConfig) -> None:
    """Review APIs, TokenRequest, escalation checks and the authorizers' feed from the caches."""
    from kubeha.apiserver import reviews
    from kubeha.apiserver.authn.setup import issuer_for
    from kubeha.apiserver.authz import escalation

    reviews.install(lambda request: request.app[AUTHN])
    escalation.install()
    issuer = issuer_for(config)
    if issuer is not None:
        app[reviews.ISSUER_KEY] = issuer
    chain = app[AUTHZ]
    if not chain.needs_policy:
        return
    sync = PolicySync(app[CTX], chain, app[REST])
    app[POLICY] = sync

    async def start_sync(app: App) -> None:
        sync.start()

    async def stop_sync(app: App) -> None:
        await sync.stop()

    app.on_startup.append(start_sync)
    app.on_shutdown.append(stop_sync)


def load_all_safely() -> None:
    """Import every API group module that exists (some land later)."""
    try:
        load_all()
    except ImportError as e:
        import importlib

        log.warning("some API groups are missing: %s", e)
        for mod in (
            "kubeha.api.meta.v1",
            "kubeha.api.core.v1",
            "kubeha.api.apps.v1",
            "kubeha.api.autoscaling.v1",
            "kubeha.api.policy.v1",
            "kubeha.api.coordination.v1",
            "kubeha.api.discovery.v1",
            "kubeha.api.events.v1",
        ):
            try:
                importlib.import_module(mod)
            except ImportError:
                pass
