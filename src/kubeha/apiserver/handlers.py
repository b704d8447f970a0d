"""HTTP dispatch for resource paths: RequestInfo -> verb handler -> rendered JSON response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, lookup
from kubeha.api.schema import Obj
from kubeha.apiserver import negotiation as neg
from kubeha.apiserver import subresources as subs
from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.delete import delete_object, parse_delete_options
from kubeha.apiserver.httpserver import Request, StreamResponse
from kubeha.apiserver.requestinfo import RequestInfo
from kubeha.apiserver.rest import Rest, warning_headers, write_options

# extra subresources served by other modules (log, exec, portforward, proxy...):
# (group, resource, subresource) -> handler(request, ctx, info, namespace, name)
SubresourceHandler = Callable[[Request, ApiContext, ResourceInfo, str, str], Awaitable[StreamResponse]]
SUBRESOURCE_HANDLERS: dict[tuple[str, str, str], SubresourceHandler] = {}
# resources whose create is answered by another module (the never-stored review kinds):
# (group, resource) -> handler(request, ctx, info, namespace)
CreateHandler = Callable[[Request, ApiContext, ResourceInfo, str], Awaitable[StreamResponse]]
CREATE_HANDLERS: dict[tuple[str, str], CreateHandler] = {}

# resources whose DELETE answers with the deleted object rather than a Status (as upstream)
_RETURN_DELETED_OBJECT = {("", "pods"), ("", "services"), ("", "namespaces")}


def not_found_path() -> errors.StatusError:
    return errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})


# -- response shapes -------------------------------------------------------------------------------------


def _partial(obj: Obj, version: str) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata") or {},
    }


def _fallback_table(
    info: ResourceInfo, objs: list[Obj], include: str, with_columns: bool, list_meta: Obj | None
) -> Obj:
    from kubeha.apiserver import objmeta

    now = objmeta.now()

    def age(o: Obj) -> str:
        ts = (o.get("metadata") or {}).get("creationTimestamp")
        if not ts:
            return "<unknown>"
        secs = int((now - objmeta.parse_rfc3339(ts)).total_seconds())
        return f"{secs}s" if secs < 120 else f"{secs // 60}m" if secs < 7200 else f"{secs // 3600}h"

    rows = []
    for o in objs:
        row: Obj = {"cells": [(o.get("metadata") or {}).get("name", ""), age(o)]}
        if include == "Object":
            row["object"] = o
        elif include == "Metadata":
            row["object"] = _partial(o, "v1")
        rows.append(row)
    t: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {}, "rows": rows}
    if with_columns:
        t["columnDefinitions"] = [
            {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0},
        ]
    return t


def table(
    info: ResourceInfo,
    objs: list[Obj],
    request: Request,
    *,
    with_columns: bool = True,
    list_meta: Obj | None = None,
) -> Obj:
    include = request.query.get("includeObject", "Metadata")
    if include not in ("None", "Metadata", "Object"):
        raise errors.bad_request(f'includeObject: Unsupported value: "{include}"')
    try:
        from kubeha.apiserver import tables
    except ImportError:
        return _fallback_table(info, objs, include, with_columns, list_meta)
    return dict(tables.table_for(info, objs, include_object=include, with_columns=with_columns, list_meta=list_meta))


def render_object(info: ResourceInfo, obj: Obj, request: Request, shape: neg.Shape) -> Obj:
    if shape.table:
        md = obj.get("metadata") or {}
        return table(info, [obj], request, list_meta={"resourceVersion": md.get("resourceVersion", "")})
    if shape.metadata_only:
        return _partial(obj, shape.version)
    return obj


def render_list(info: ResourceInfo, lst: Obj, request: Request, shape: neg.Shape) -> Obj:
    if shape.table:
        return table(info, lst["items"], request, list_meta=lst.get("metadata"))
    if shape.metadata_only:
        return {
            "kind": "PartialObjectMetadataList",
            "apiVersion": f"meta.k8s.io/{shape.version}",
            "metadata": lst.get("metadata") or {},
            "items": [_partial(o, shape.version) for o in lst["items"]],
        }
    return lst


# -- dispatch ------------------------------------------------------------------------------------------------


def _typed_body(request: Request, body: bytes, struct: str) -> Obj:
    """Decode a subresource body of its own kind (Binding, Eviction, Scale...) and type-check it
    against its schema first, as upstream's decoder would: the handlers then read its fields
    without meeting a number where an object belongs."""
    from kubeha.api import decode

    obj = neg.decode_object(request.headers.get("Content-Type"), body)
    causes = decode.check_types(struct, obj)
    if causes:
        raise errors.bad_request(causes[0].message or f"{causes[0].field}: invalid type", causes)
    return obj


async def _body(request: Request, ctx: ApiContext) -> bytes:
    return await neg.read_body(request, ctx.config.max_body_bytes)


async def handle_resource(request: Request, ri: RequestInfo, ctx: ApiContext, rest: Rest) -> StreamResponse:
    info = lookup(ri.group, ri.version, ri.resource)
    if info is None:
        raise not_found_path()
    namespace = ri.namespace if info.namespaced else ""
    name = ri.name
    sub = ri.subresource
    verb = ri.verb
    if info.namespaced and not namespace and verb not in ("list", "watch"):
        raise not_found_path()
    if not info.namespaced and ri.namespace and ri.resource != "namespaces":
        raise not_found_path()
    shape = neg.parse_accept(request.headers.get("Accept"))
    if sub:
        handler = SUBRESOURCE_HANDLERS.get((info.group, info.resource, sub))
        if handler is not None:
            return await handler(request, ctx, info, namespace, name)
        if info.subresource(sub) is None:
            raise not_found_path()
        return await _handle_subresource(request, ri, ctx, rest, info, namespace, name, sub, shape)
    if verb not in info.verbs:
        raise errors.method_not_allowed(request.method, f"{info.kind}")

    if verb == "get":
        obj = await rest.get_object(info, namespace, name)
        return neg.json_response(render_object(info, obj, request, shape))
    if verb == "list":
        params = rest.list_params(request, info)
        lst = await rest.list_objects(info, namespace, params)
        return neg.json_response(render_list(info, lst, request, shape))
    if verb == "watch":
        from kubeha.apiserver.watch import serve_watch

        return await serve_watch(request, ctx, rest, info, namespace, name, shape)
    if verb == "create":
        create_handler = CREATE_HANDLERS.get((info.group, info.resource))
        if create_handler is not None:
            if name:
                raise errors.method_not_allowed("POST", info.kind)
            return await create_handler(request, ctx, info, namespace)
        if info.group == "" and info.resource == "bindings":
            body = await _body(request, ctx)
            binding = _typed_body(request, body, "io.k8s.api.core.v1.Binding")
            opts = write_options(request, "create")
            bname = (binding.get("metadata") or {}).get("name", "")
            return neg.json_response(await subs.bind_pod(rest, namespace, bname, binding, opts), status=201)
        if name:
            raise errors.method_not_allowed("POST", info.kind)
        body = await _body(request, ctx)
        obj = neg.decode_object(request.headers.get("Content-Type"), body)
        opts = write_options(request, "create")
        created = await rest.create(info, namespace, obj, opts, body)
        return neg.json_response(render_object(info, created, request, shape), 201, warning_headers(opts))
    if verb == "update":
        body = await _body(request, ctx)
        obj = neg.decode_object(request.headers.get("Content-Type"), body)
        opts = write_options(request, "update")
        stored, code = await rest.update(info, namespace, name, obj, opts, body)
        return neg.json_response(render_object(info, stored, request, shape), code, warning_headers(opts))
    if verb == "patch":
        body = await _body(request, ctx)
        ptype, patch = neg.decode_patch(request.headers.get("Content-Type"), body)
        opts = write_options(request, "apply" if ptype == neg.APPLY_PATCH else "patch")
        stored, code = await rest.patch(info, namespace, name, ptype, patch, opts)
        return neg.json_response(render_object(info, stored, request, shape), code, warning_headers(opts))
    if verb == "delete":
        body = await _body(request, ctx)
        dbody = neg.decode_object(request.headers.get("Content-Type"), body) if body.strip() else None
        dopts = parse_delete_options(request, dbody)
        obj, gone = await delete_object(rest, info, namespace, name, dopts)
        code = 202 if (not gone and dopts.orphan_dependents is False) else 200
        if gone and (info.group, info.resource) not in _RETURN_DELETED_OBJECT:
            from kubeha.apiserver.rest import _status_success

            return neg.json_response(_status_success(info, obj), code)
        return neg.json_response(render_object(info, obj, request, shape), code)
    if verb == "deletecollection":
        body = await _body(request, ctx)
        dbody = neg.decode_object(request.headers.get("Content-Type"), body) if body.strip() else None
        dopts = parse_delete_options(request, dbody)
        params = rest.list_params(request, info)
        params.limit = 0
        params.continue_token = ""
        lst = await rest.list_objects(info, namespace, params)
        deleted = []
        for item in lst["items"]:
            md = item.get("metadata") or {}
            try:
                obj, _ = await delete_object(rest, info, md.get("namespace", ""), md.get("name", ""), dopts)
                deleted.append(obj)
            except errors.StatusError as e:
                if e.code != 404:
                    raise
        lst["items"] = deleted
        return neg.json_response(render_list(info, lst, request, shape))
    raise errors.method_not_allowed(request.method, info.kind)


async def _handle_subresource(
    request: Request,
    ri: RequestInfo,
    ctx: ApiContext,
    rest: Rest,
    info: ResourceInfo,
    namespace: str,
    name: str,
    sub: str,
    shape: neg.Shape,
) -> StreamResponse:
    method = request.method
    sinfo = info.subresource(sub)
    assert sinfo is not None
    verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "POST": "create", "DELETE": "delete"}.get(method, "")
    if verb not in sinfo.verbs:
        raise errors.method_not_allowed(method, f"{sinfo.kind}")
    if sub == "status":
        if verb == "get":
            obj = await rest.get_object(info, namespace, name)
            return neg.json_response(render_object(info, obj, request, shape))
        body = await _body(request, ctx)
        if verb == "update":
            obj = neg.decode_object(request.headers.get("Content-Type"), body)
            opts = write_options(request, "update")
            stored, code = await rest.update(info, namespace, name, obj, opts, body, subresource="status")
            return neg.json_response(render_object(info, stored, request, shape), code, warning_headers(opts))
        ptype, patch = neg.decode_patch(request.headers.get("Content-Type"), body)
        opts = write_options(request, "apply" if ptype == neg.APPLY_PATCH else "patch")
        stored, code = await rest.patch(info, namespace, name, ptype, patch, opts, subresource="status")
        return neg.json_response(render_object(info, stored, request, shape), code, warning_headers(opts))
    if sub == "scale":
        if verb == "get":
            return neg.json_response(await subs.get_scale(rest, info, namespace, name))
        body = await _body(request, ctx)
        if verb == "update":
            scale = _typed_body(request, body, "io.k8s.api.autoscaling.v1.Scale")
            opts = write_options(request, "update")
            return neg.json_response(await subs.write_scale(rest, info, namespace, name, opts, scale=scale))
        ptype, patch = neg.decode_patch(request.headers.get("Content-Type"), body)
        if ptype == neg.APPLY_PATCH:
            raise errors.StatusError(415, "UnsupportedMediaType", "apply is not supported on the scale subresource")
        opts = write_options(request, "patch")
        res = await subs.write_scale(rest, info, namespace, name, opts, patch_type=ptype, patch=patch)
        return neg.json_response(res)
    if sub == "binding" and info.resource == "pods":
        body = await _body(request, ctx)
        binding = _typed_body(request, body, "io.k8s.api.core.v1.Binding")
        bname = (binding.get("metadata") or {}).get("name") or name
        if bname != name:
            raise errors.bad_request("name in URL does not match name in Binding object")
        return neg.json_response(
            await subs.bind_pod(rest, namespace, name, binding, write_options(request, "create")), 201
        )
    if sub == "eviction" and info.resource == "pods":
        body = await _body(request, ctx)
        eviction = _typed_body(request, body, "io.k8s.api.policy.v1.Eviction")
        return neg.json_response(await subs.evict_pod(rest, namespace, name, eviction), 201)
    if sub == "approval" and info.resource == "certificatesigningrequests":
        from kubeha.apiserver.reviews import write_csr_approval

        body = await _body(request, ctx)
        if verb == "get":
            return neg.json_response(render_object(info, await rest.get_object(info, namespace, name), request, shape))
        if verb != "update":
            raise errors.method_not_allowed(method, sinfo.kind)
        obj = _typed_body(request, body, "io.k8s.api.certificates.v1.CertificateSigningRequest")
        stored = await write_csr_approval(rest, info, name, obj, write_options(request, "update"))
        return neg.json_response(render_object(info, stored, request, shape))
    if sub == "finalize" and info.resource == "namespaces":
        body = await _body(request, ctx)
        obj = _typed_body(request, body, "io.k8s.api.core.v1.Namespace")
        stored = await subs.finalize_namespace(rest, info, name, obj, write_options(request, "update"))
        return neg.json_response(stored)
    raise not_found_path()


def query_flag(request: Request, name: str) -> bool:
    return request.query.get(name, "") in ("true", "1")


def _install_pod_streaming() -> None:
    # pods/log, exec, attach and portforward are relayed to the kubelets
    from kubeha.apiserver import proxy

    proxy.install(SUBRESOURCE_HANDLERS)


_install_pod_streaming()
