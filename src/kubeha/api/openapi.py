"""OpenAPI v3 documents per group-version, derived from the schema and the resource table.

kubectl needs them: ``apply`` and ``create -f`` refuse to run without OpenAPI, ``explain`` reads the
``components.schemas`` (found through ``x-kubernetes-group-version-kind``), client-side apply
builds strategic merge patches from ``x-kubernetes-patch-strategy`` / ``-merge-key``, and the
``fieldValidation`` query parameter on each kind's ``patch`` operation tells kubectl the server
validates fields itself.

The documents follow upstream's v3 layout (refs wrapped in ``allOf`` next to a description,
special apimachinery types as their own components) and are built once, lazily, then cached;
the cache is rebuilt when declarations or resources are added. The hash in the index is the
upper-case SHA-512 hex of the document bytes, as upstream, so kubectl's disk cache follows any
change.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from kubeha.api import registry, schema
from kubeha.api.registry import ResourceInfo, SubresourceInfo
from kubeha.api.schema import META, Field, ListOf, MapOf, Ref, Scalar, Struct, TypeSpec

Doc = dict[str, Any]

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
TIME = META + "Time"
MICROTIME = META + "MicroTime"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
PATCH = META + "Patch"
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"

# Components for the special scalar types (their JSON form is not an object with properties).
_SPECIAL: dict[str, tuple[str, Doc]] = {
    "quantity": (
        QUANTITY,
        {
            "description": 'A fixed-point number with an optional suffix: plain ("1.5"), binary SI '
            '("128Mi"), decimal SI ("100m", "2k") or decimal exponent ("1e3").',
            "oneOf": [{"type": "string"}, {"type": "number"}],
        },
    ),
    "time": (
        TIME,
        {
            "description": "A timestamp in RFC 3339 form with second precision.",
            "type": "string",
            "format": "date-time",
        },
    ),
    "microtime": (
        MICROTIME,
        {
            "description": "A timestamp in RFC 3339 form with microsecond precision.",
            "type": "string",
            "format": "date-time",
        },
    ),
    "intorstring": (
        INT_OR_STRING,
        {
            "description": "A value that is either an integer or a string (a port number or its name, a "
            'count or a percentage like "25%").',
            "type": "string",
            "format": "int-or-string",
            "x-kubernetes-int-or-string": True,
        },
    ),
    "rawextension": (
        RAW_EXTENSION,
        {"description": "An embedded object in its JSON form.", "type": "object"},
    ),
}
_PATCH_SCHEMA: Doc = {
    "description": "The body of a PATCH request; its format follows the Content-Type.",
    "type": "object",
}

_SCALAR_SCHEMAS: dict[str, Doc] = {
    "string": {"type": "string"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"},
    "double": {"type": "number", "format": "double"},
    "bytes": {"type": "string", "format": "byte"},
    # free-form JSON (FieldsV1 and similar)
    "any": {"type": "object"},
}

_MEDIA = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_PATCH_MEDIA = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


# -- schemas ---------------------------------------------------------------------------------------


def _type_schema(t: TypeSpec) -> Doc:
    """Schema of a value of type ``t``."""
    if isinstance(t, Scalar):
        if t.name in _SPECIAL:
            return _ref(_SPECIAL[t.name][0])
        return dict(_SCALAR_SCHEMAS[t.name])
    if isinstance(t, Ref):
        # Upstream adds `default: {}` to non-pointer structs; left out because an empty default
        # does not validate against a struct with required fields.
        return {"allOf": [_ref(t.name)]}
    if isinstance(t, ListOf):
        return {"type": "array", "items": _type_schema(t.item)}
    if isinstance(t, MapOf):
        return {"type": "object", "additionalProperties": _type_schema(t.value)}
    raise TypeError(f"unknown type {t!r}")


def field_schema(fl: Field) -> Doc:
    out = _type_schema(fl.type)
    if fl.doc:
        out["description"] = fl.doc
    if fl.enum:
        out["enum"] = list(fl.enum)
    if fl.default is not None:
        out["default"] = fl.default
    if fl.strategy:
        out["x-kubernetes-patch-strategy"] = fl.strategy
    if fl.merge_key:
        out["x-kubernetes-patch-merge-key"] = fl.merge_key
    if fl.list_type:
        out["x-kubernetes-list-type"] = fl.list_type
    if fl.map_keys:
        out["x-kubernetes-list-map-keys"] = list(fl.map_keys)
    return out


def _gvk(gvk: tuple[str, str, str]) -> Doc:
    return {"group": gvk[0], "kind": gvk[2], "version": gvk[1]}


def struct_schema(s: Struct, gvk: tuple[str, str, str] | None = None) -> Doc:
    # fields with JSON name "" are protobuf-only embeddings whose JSON fields the struct declares itself
    fields = [fl for fl in s.fields if fl.json]
    out: Doc = {"description": s.doc, "type": "object", "properties": {fl.json: field_schema(fl) for fl in fields}}
    required = [fl.json for fl in fields if fl.required]
    if required:
        out["required"] = required
    gvk = gvk or s.gvk
    if gvk is not None:
        out["x-kubernetes-group-version-kind"] = [_gvk(gvk)]
    return out


def _list_schema(info: ResourceInfo) -> Doc:
    """A ``<Kind>List`` schema for a resource whose declarations do not carry one."""
    return {
        "description": f"A list of {info.kind} objects.",
        "type": "object",
        "properties": {
            "apiVersion": {"description": "Versioned schema of this representation of an object.", "type": "string"},
            "items": {
                "description": f"The {info.kind} objects.",
                "type": "array",
                "items": _type_schema(Ref(info.schema)),
            },
            "kind": {"description": "REST resource kind this object represents.", "type": "string"},
            "metadata": {"description": "Standard list metadata.", "allOf": [_ref(META + "ListMeta")]},
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [_gvk((info.group, info.version, info.list_kind))],
    }


def _refs_of(t: TypeSpec) -> list[str]:
    if isinstance(t, Ref):
        return [t.name]
    if isinstance(t, ListOf):
        return _refs_of(t.item)
    if isinstance(t, MapOf):
        return _refs_of(t.value)
    if isinstance(t, Scalar) and t.name in _SPECIAL:
        return [_SPECIAL[t.name][0]]
    return []


def _components(roots: list[str], extra: dict[str, Doc]) -> dict[str, Doc]:
    """Schemas of every struct reachable from ``roots`` (plus the special type components)."""
    special = {name: doc for name, doc in _SPECIAL.values()}
    out: dict[str, Doc] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        if name in special:
            out[name] = special[name]
            continue
        if name in extra:
            out[name] = extra[name]
            # a synthesized list refers to its items and ListMeta
            todo.extend(r["$ref"].rsplit("/", 1)[-1] for r in _find_refs(extra[name]))
            continue
        s = schema.STRUCTS.get(name)
        if s is None:
            continue  # a dangling reference: leave it out rather than fail the whole document
        out[name] = struct_schema(s)
        for fl in s.fields:
            if fl.json:
                todo.extend(_refs_of(fl.type))
    return dict(sorted(out.items()))


def _find_refs(doc: Any) -> list[Doc]:
    found: list[Doc] = []
    if isinstance(doc, dict):
        if "$ref" in doc:
            found.append(doc)
        for v in doc.values():
            found.extend(_find_refs(v))
    elif isinstance(doc, list):
        for v in doc:
            found.extend(_find_refs(v))
    return found


# -- paths -----------------------------------------------------------------------------------------


def _query(name: str, description: str, type_: str = "string") -> Doc:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_, "uniqueItems": True}}


_P_DRY_RUN = _query("dryRun", "When present (All), the change is validated but not persisted.")
_P_FIELD_MANAGER = _query("fieldManager", "Name of the actor making the change, recorded in managedFields.")
_P_FIELD_VALIDATION = _query(
    "fieldValidation", "How to treat unknown and duplicate fields in the body: Ignore, Warn or Strict."
)
_P_FORCE = _query("force", "Apply only: take ownership of fields other managers own.", "boolean")
_P_LIST = [
    _query("allowWatchBookmarks", "Ask for BOOKMARK events on a watch.", "boolean"),
    _query("continue", "Continue token from a previous limited list."),
    _query("fieldSelector", "Restrict the result by field values."),
    _query("labelSelector", "Restrict the result by labels."),
    _query("limit", "Maximum number of items to return.", "integer"),
    _query("resourceVersion", "Which version of the collection to read or watch from."),
    _query("resourceVersionMatch", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    _query("sendInitialEvents", "Start a watch with synthetic ADDED events for the current state.", "boolean"),
    _query("timeoutSeconds", "Timeout of the list or watch call.", "integer"),
    _query("watch", "Watch for changes instead of listing.", "boolean"),
]
_P_DELETE = [
    _P_DRY_RUN,
    _query("gracePeriodSeconds", "Seconds before the object is deleted; 0 deletes at once.", "integer"),
    _query("orphanDependents", "Deprecated: use propagationPolicy.", "boolean"),
    _query("propagationPolicy", "Garbage collection of dependents: Orphan, Background or Foreground."),
]
_P_PRETTY = _query("pretty", "Pretty-print the output.")


def _path_param(name: str, description: str) -> Doc:
    return {
        "name": name,
        "in": "path",
        "description": description,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


def _responses(codes: dict[str, str], schema_ref: Doc) -> Doc:
    out: Doc = {}
    for code, description in codes.items():
        out[code] = {"description": description, "content": {mt: {"schema": schema_ref} for mt in _MEDIA}}
    out["401"] = {"description": "Unauthorized"}
    return out


def _camel_group(group: str) -> str:
    if not group:
        return "Core"
    parts = group.removesuffix(".k8s.io").replace("-", ".").split(".")
    return "".join(p[:1].upper() + p[1:] for p in parts)


def _tag(group: str, version: str) -> str:
    g = _camel_group(group)
    return f"{g[:1].lower()}{g[1:]}_{version}"


def _op(
    action: str,
    op_id: str,
    description: str,
    tag: str,
    gvk: tuple[str, str, str],
    params: list[Doc],
    responses: Doc,
    body: Doc | None = None,
) -> Doc:
    out: Doc = {"tags": [tag], "description": description, "operationId": op_id}
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = body
    out["responses"] = responses
    out["x-kubernetes-action"] = action
    out["x-kubernetes-group-version-kind"] = _gvk(gvk)
    return out


def _body(schema_ref: Doc, media: tuple[str, ...] = _MEDIA) -> Doc:
    return {"content": {mt: {"schema": schema_ref} for mt in media}, "required": True}


def _resource_paths(info: ResourceInfo) -> dict[str, Doc]:
    gv_prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    gvk = (info.group, info.version, info.kind)
    tag = _tag(info.group, info.version)
    ids = f"{_camel_group(info.group)}{info.version[:1].upper()}{info.version[1:]}"
    scope = "Namespaced" if info.namespaced else ""
    kind_ref = _ref(info.schema)
    list_ref = _ref(_list_name(info))
    status_ref = _ref(STATUS)
    verbs = set(info.verbs)
    paths: dict[str, Doc] = {}

    ns_param = (
        [_path_param("namespace", "Object name and auth scope, such as for teams and projects.")]
        if info.namespaced
        else []
    )
    collection = (
        f"{gv_prefix}/namespaces/{{namespace}}/{info.resource}" if info.namespaced else f"{gv_prefix}/{info.resource}"
    )
    item = collection + "/{name}"

    coll: Doc = {}
    if "list" in verbs:
        coll["get"] = _op(
            "list", f"list{ids}{scope}{info.kind}", f"list or watch objects of kind {info.kind}", tag, gvk,
            list(_P_LIST), _responses({"200": "OK"}, list_ref),
        )  # fmt: skip
    if "create" in verbs:
        coll["post"] = _op(
            "post", f"create{ids}{scope}{info.kind}", f"create a {info.kind}", tag, gvk,
            [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION],
            _responses({"200": "OK", "201": "Created", "202": "Accepted"}, kind_ref), _body(kind_ref),
        )  # fmt: skip
    if "deletecollection" in verbs:
        coll["delete"] = _op(
            "deletecollection", f"deleteCollection{ids}{scope}{info.kind}", f"delete collection of {info.kind}",
            tag, gvk, [*_P_DELETE, *_P_LIST], _responses({"200": "OK"}, status_ref), _delete_body(),
        )  # fmt: skip
    if coll:
        coll["parameters"] = [*ns_param, _P_PRETTY]
        paths[collection] = coll

    if info.namespaced and "list" in verbs:
        paths[f"{gv_prefix}/{info.resource}"] = {
            "get": _op(
                "list", f"list{ids}{info.kind}ForAllNamespaces", f"list or watch objects of kind {info.kind}",
                tag, gvk, list(_P_LIST), _responses({"200": "OK"}, list_ref),
            ),
            "parameters": [_P_PRETTY],
        }  # fmt: skip

    one: Doc = {}
    name_param = _path_param("name", f"name of the {info.kind}")
    if "get" in verbs:
        one["get"] = _op(
            "get", f"read{ids}{scope}{info.kind}", f"read the specified {info.kind}", tag, gvk, [],
            _responses({"200": "OK"}, kind_ref),
        )  # fmt: skip
    if "update" in verbs:
        one["put"] = _op(
            "put", f"replace{ids}{scope}{info.kind}", f"replace the specified {info.kind}", tag, gvk,
            [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION],
            _responses({"200": "OK", "201": "Created"}, kind_ref), _body(kind_ref),
        )  # fmt: skip
    if "patch" in verbs:
        one["patch"] = _patch_op(
            f"patch{ids}{scope}{info.kind}", f"partially update the specified {info.kind}", tag, gvk, kind_ref
        )
    if "delete" in verbs:
        one["delete"] = _op(
            "delete", f"delete{ids}{scope}{info.kind}", f"delete a {info.kind}", tag, gvk, list(_P_DELETE),
            _responses({"200": "OK", "202": "Accepted"}, status_ref), _delete_body(),
        )  # fmt: skip
    if one:
        one["parameters"] = [name_param, *ns_param, _P_PRETTY]
        paths[item] = one

    for sub in info.subresources:
        sub_doc = _subresource_ops(info, sub, ids, scope, tag)
        if sub_doc:
            sub_doc["parameters"] = [name_param, *ns_param, _P_PRETTY]
            paths[f"{item}/{sub.name}"] = sub_doc
    return paths


def _patch_op(op_id: str, description: str, tag: str, gvk: tuple[str, str, str], response_ref: Doc) -> Doc:
    return _op(
        "patch", op_id, description, tag, gvk,
        [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION, _P_FORCE],
        _responses({"200": "OK", "201": "Created"}, response_ref), _body(_ref(PATCH), _PATCH_MEDIA),
    )  # fmt: skip


def _delete_body() -> Doc:
    return {"content": {mt: {"schema": _ref(DELETE_OPTIONS)} for mt in _MEDIA[:2]}}


def _sub_kind(info: ResourceInfo, sub: SubresourceInfo) -> tuple[tuple[str, str, str], str | None]:
    """(gvk, struct name or None) of a subresource's body."""
    group = sub.group if sub.group or sub.version else info.group
    version = sub.version or info.version
    gvk = (group, version, sub.kind)
    if sub.kind == info.kind and not sub.group and not sub.version:
        return gvk, info.schema
    s = schema.KINDS.get(gvk)
    return gvk, (s.name if s else None)


def _subresource_ops(info: ResourceInfo, sub: SubresourceInfo, ids: str, scope: str, tag: str) -> Doc:
    gvk, struct_name = _sub_kind(info, sub)
    ref = _ref(struct_name) if struct_name else {"type": "string"}
    suffix = sub.name[:1].upper() + sub.name[1:]
    base = f"{ids}{scope}{info.kind}{suffix}"
    out: Doc = {}
    verbs = set(sub.verbs)
    if "get" in verbs:
        out["get"] = _op("get", f"read{base}", f"read {sub.name} of the specified {info.kind}", tag, gvk, [],
                         _responses({"200": "OK"}, ref))  # fmt: skip
    if "create" in verbs:
        out["post"] = _op(
            "post", f"create{base}", f"create {sub.name} of a {info.kind}", tag, gvk,
            [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION],
            _responses({"200": "OK", "201": "Created", "202": "Accepted"}, ref), _body(ref),
        )  # fmt: skip
    if "update" in verbs:
        out["put"] = _op(
            "put", f"replace{base}", f"replace {sub.name} of the specified {info.kind}", tag, gvk,
            [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION],
            _responses({"200": "OK", "201": "Created"}, ref), _body(ref),
        )  # fmt: skip
    if "patch" in verbs:
        out["patch"] = _patch_op(
            f"patch{base}", f"partially update {sub.name} of the specified {info.kind}", tag, gvk, ref
        )
    return out


def _list_name(info: ResourceInfo) -> str:
    return info.schema + "List"


# -- documents -------------------------------------------------------------------------------------


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _build(group: str, version: str, infos: list[ResourceInfo]) -> Doc:
    paths: dict[str, Doc] = {}
    roots: list[str] = [PATCH, STATUS, DELETE_OPTIONS]
    extra: dict[str, Doc] = {PATCH: _PATCH_SCHEMA}
    for info in sorted(infos, key=lambda i: i.resource):
        paths.update(_resource_paths(info))
        roots.append(info.schema)
        list_name = _list_name(info)
        roots.append(list_name)
        if list_name not in schema.STRUCTS:
            extra[list_name] = _list_schema(info)
        for sub in info.subresources:
            _, struct_name = _sub_kind(info, sub)
            if struct_name:
                roots.append(struct_name)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": _components(roots, extra)},
    }


_cache: dict[str, tuple[bytes, str]] = {}
_cache_for: tuple[int, int] = (-1, -1)


def reset_cache() -> None:
    global _cache_for
    _cache.clear()
    _cache_for = (-1, -1)


def _documents() -> dict[str, tuple[bytes, str]]:
    global _cache_for
    stamp = (len(registry.RESOURCES), len(schema.STRUCTS))
    if stamp != _cache_for:
        _cache.clear()
        by_gv: dict[tuple[str, str], list[ResourceInfo]] = {}
        for info in registry.RESOURCES.values():
            by_gv.setdefault((info.group, info.version), []).append(info)
        for (group, version), infos in sorted(by_gv.items()):
            data = orjson.dumps(_build(group, version, infos), option=orjson.OPT_SORT_KEYS)
            _cache[_gv_path(group, version)] = (data, hashlib.sha512(data).hexdigest().upper())
        _cache_for = stamp
    return _cache


def v3_index() -> Doc:
    """The ``/openapi/v3`` discovery document."""
    return {
        "paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
            for path, (_, digest) in _documents().items()
        }
    }


def v3_document(path: str) -> tuple[bytes, str] | None:
    """(JSON bytes, hash) of the document for ``api/v1`` or ``apis/<group>/<version>``; None if unknown."""
    return _documents().get(path.strip("/"))
