"""The REST verbs on stored resources, with upstream semantics.

Every handler receives the parsed :class:`RequestInfo` and the :class:`ResourceInfo` it names,
and answers JSON. Writes go straight to etcd through the Store (compare-and-swap on
``mod_revision``); reads of lists and watches go through the watch cache when the requested
resourceVersion allows it.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubeha.api import decode, errors
from kubeha.api.registry import ResourceInfo
from kubeha.api.schema import Obj
from kubeha.api.selectors import FieldSelector, LabelSelector, field_getters, parse_field_selector, parse_label_selector
from kubeha.apiserver import admission, limits, objmeta
from kubeha.apiserver import negotiation as neg
from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.httpserver import Request
from kubeha.apiserver.requestinfo import RequestInfo
from kubeha.storage.interface import Compacted, Compare, Conflict, Delete, KeyExists, KeyNotFound, Put
from kubeha.storage.store import encode as store_encode

log = logging.getLogger(__name__)

CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)

MAX_CONFLICT_RETRIES = 20


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    force: bool = False
    explicit_manager: bool = False  # fieldManager came from the query (apply requires it)
    warnings: list[str] = field(default_factory=list)


@dataclass
class WritePlan:
    """Extra etcd operations that must commit with an object write (allocations, claims)."""

    also: list[Put | Delete] = field(default_factory=list)
    guards: list[Compare] = field(default_factory=list)


# hooks other modules register: resource "group/resource" -> coroutine(ctx, new, old, plan)
WriteHook = Callable[[ApiContext, Obj, Obj | None, WritePlan], Awaitable[None]]
DeleteHook = Callable[[ApiContext, Obj, WritePlan], Awaitable[None]]
WRITE_HOOKS: dict[str, WriteHook] = {}
DELETE_HOOKS: dict[str, DeleteHook] = {}


def _hook_key(info: ResourceInfo) -> str:
    return f"{info.group}/{info.resource}"


# -- optional collaborators (landing from other engineers; the server degrades without them) -------


def _try_import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_MODULES: dict[str, Any] = {}


def _mod(name: str) -> Any:
    # remembered: import_module costs a few microseconds even for a loaded module, and the
    # create path asks several times per request
    mod = _MODULES.get(name)
    if mod is None:
        mod = _try_import(name)
        if mod is not None:
            _MODULES[name] = mod
    return mod


# -- common helpers ----------------------------------------------------------------------------------


def write_options(request: Request, verb: str) -> WriteOptions:
    q = request.query
    opts = WriteOptions()
    for dr in q.getall("dryRun", []):
        if dr != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{dr}": supported values: "All"')
        opts.dry_run = True
    fv = q.get("fieldValidation", "")
    if fv == "":
        fv = "Warn"  # upstream's server default when the client sends nothing
    if fv not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{fv}": supported values: "Ignore", "Strict", "Warn"'
        )
    opts.field_validation = fv
    fm = q.get("fieldManager")
    opts.explicit_manager = bool(fm)
    if fm is None:
        ua = request.headers.get("User-Agent", "")
        fm = ua.split("/", 1)[0][:128] if ua else ""
    elif len(fm) > 128:
        raise errors.bad_request("fieldManager: Too long: must have at most 128 bytes")
    opts.field_manager = fm
    force = q.get("force")
    if force is not None:
        if verb != "apply" and force == "true":
            raise errors.bad_request('force: Invalid value: "true": may not be specified for non-apply patch')
        opts.force = force == "true"
    return opts


def _not_found(info: ResourceInfo, name: str) -> errors.StatusError:
    return errors.not_found(info.group, info.resource, name)


def _conflict(info: ResourceInfo, name: str, detail: str | None = None) -> errors.StatusError:
    return errors.conflict(info.group, info.resource, name, detail)


def _status_success(info: ResourceInfo, obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    details: dict[str, Any] = {"name": md.get("name", "")}
    if info.group:
        details["group"] = info.group
    details["kind"] = info.resource
    if md.get("uid"):
        details["uid"] = md["uid"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def check_type_meta(info: ResourceInfo, obj: Obj, kind: str | None = None, gv: str | None = None) -> None:
    """apiVersion/kind in the body must match the URL's (when the body carries them)."""
    want_gv = gv or info.group_version
    want_kind = kind or info.kind
    have_gv = obj.get("apiVersion")
    have_kind = obj.get("kind")
    if have_gv and have_gv != want_gv:
        raise errors.bad_request(
            f"the API version in the data ({have_gv}) does not match the expected API version ({want_gv})"
        )
    if have_kind and have_kind != want_kind:
        raise errors.bad_request(f"the kind in the data ({have_kind}) does not match the expected kind ({want_kind})")
    obj["apiVersion"] = want_gv
    obj["kind"] = want_kind


def field_checks(
    info: ResourceInfo, obj: Obj, body: bytes | None, opts: WriteOptions, schema: str | None = None
) -> None:
    """fieldValidation (unknown + duplicate fields), type checks, pruning of unknown fields."""
    decode = _mod("kubeha.api.decode")
    if decode is None:
        return
    struct = schema or info.schema

    def decode_error(msg: str) -> str:
        # upstream's transformDecodeError wraps failures to decode a create/update body
        if body is None:
            return msg
        kind = obj.get("kind") or info.kind
        version = str(obj.get("apiVersion") or info.group_version).rsplit("/", 1)[-1]
        return f'{kind} in version "{version}" cannot be handled as a {kind}: {msg}'

    # a type error stops decoding before strict field checks, as in upstream's decoder
    causes = decode.check_types(struct, obj)
    if causes:
        first = causes[0]
        raise errors.bad_request(decode_error(first.message or f"{first.field}: invalid type"), causes)
    problems: list[str] = []
    unknown: list[str] | None = None
    if opts.field_validation != "Ignore":
        if body is not None and body[:1] in (b"{", b" ", b"\n", b"\t"):
            problems += [f'duplicate field "{p}"' for p in decode.find_duplicate_fields(body)]
        unknown = []
    # pruned before a Strict refusal too: the object is thrown away then
    decode.prune_unknown(struct, obj, unknown)
    problems += [f'unknown field "{p}"' for p in unknown or ()]
    if problems:
        if opts.field_validation == "Strict":
            raise errors.bad_request(decode_error("strict decoding error: " + ", ".join(problems)))
        opts.warnings += problems


def apply_schema_defaults(info: ResourceInfo, obj: Obj) -> None:
    decode = _mod("kubeha.api.decode")
    if decode is not None:
        decode.apply_defaults(info.schema, obj)
    info.strategy.default(obj)


def validate_create(info: ResourceInfo, obj: Obj) -> None:
    causes = []
    validation = _mod("kubeha.api.validation")
    if validation is not None:
        causes += validation.validate_object_meta(obj, info.namespaced, info.strategy.name_kind)
    causes += info.strategy.validate(obj)
    if causes:
        raise errors.invalid(info.group, info.kind, objmeta.meta(obj).get("name", ""), causes)


def validate_update(info: ResourceInfo, new: Obj, old: Obj, status: bool = False) -> None:
    causes = []
    validation = _mod("kubeha.api.validation")
    if validation is not None:
        causes += validation.validate_object_meta_update(new, old)
    causes += info.strategy.validate_status_update(new, old) if status else info.strategy.validate_update(new, old)
    if causes:
        raise errors.invalid(info.group, info.kind, objmeta.meta(new).get("name", ""), causes)


def update_managed_fields(
    info: ResourceInfo, live: Obj | None, new: Obj, opts: WriteOptions, operation: str, subresource: str = ""
) -> Obj:
    mf = _mod("kubeha.api.managedfields")
    if mf is None or not opts.field_manager:
        return new
    res = mf.update_managed_fields(
        live, new, opts.field_manager, operation, subresource, info.schema, objmeta.now_rfc3339()
    )
    return res if isinstance(res, dict) else new


def check_size(obj: Obj, limit: int) -> None:
    if len(neg.dumps(obj)) > limit:
        raise errors.StatusError(413, "RequestEntityTooLarge", "etcdserver: request is too large")


def check_value_size(value: bytes, limit: int) -> None:
    if len(value) > limit:
        raise errors.StatusError(413, "RequestEntityTooLarge", "etcdserver: request is too large")


def warning_headers(opts: WriteOptions) -> dict[str, str]:
    # a plain dict cannot repeat a header; multiple warnings are joined with ", "
    # which HTTP allows for list-valued headers such as Warning.
    if not opts.warnings:
        return {}
    return {"Warning": ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in opts.warnings)}


# -- continue tokens -----------------------------------------------------------------------------------


def encode_continue(key: str, rev: int, prefix: str) -> str:
    # upstream shape: base64(json{"v":"meta.k8s.io/v1","rv":N,"start":"<key relative to the prefix>\x00"})
    start = key[len(prefix) :] + "\x00"
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("version")
        rev = int(data["rv"])
        start = str(data["start"])
        if rev <= 0 or ".." in start or start.startswith("/"):
            raise ValueError("start")
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    return prefix + start, rev


# -- the REST handler ----------------------------------------------------------------------------------


@dataclass
class ListParams:
    label: LabelSelector
    fields: FieldSelector
    resource_version: str
    resource_version_match: str
    limit: int
    continue_token: str


class Rest:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    @property
    def store(self) -> Any:
        return self.ctx.store

    # -- reads --------------------------------------------------------------------------------------

    async def get_object(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        try:
            return info.decode(dict(await self.store.get(info.key(namespace, name))))
        except KeyNotFound:
            raise _not_found(info, name) from None

    async def maybe_get(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        try:
            return info.decode(dict(await self.store.get(info.key(namespace, name))))
        except KeyNotFound:
            return None

    def list_params(self, request: Request, info: ResourceInfo) -> ListParams:
        q = request.query
        # an int64, as upstream decodes it (etcd refuses anything wider)
        limit = limits.query_int(q, "limit") or 0
        rvm = q.get("resourceVersionMatch", "")
        rv = q.get("resourceVersion", "")
        if rvm and rvm not in ("Exact", "NotOlderThan"):
            raise errors.bad_request(
                f'resourceVersionMatch: Unsupported value: "{rvm}": supported values: "Exact", "NotOlderThan"'
            )
        if rvm and not rv and q.get("sendInitialEvents") is None:
            raise errors.bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        if rv and rv != "0":
            try:
                if int(rv) < 0:
                    raise ValueError
            except ValueError:
                raise errors.bad_request(
                    f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer'
                ) from None
        if q.get("continue") and rv and rv != "0":
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        # a list ignores timeoutSeconds, but upstream still decodes it: garbage is a 400
        limits.query_int(q, "timeoutSeconds")
        getters = field_getters(info.field_selectors)
        return ListParams(
            parse_label_selector(q.get("labelSelector")),
            parse_field_selector(q.get("fieldSelector"), getters),
            rv,
            rvm,
            max(limit, 0),
            q.get("continue", ""),
        )

    def predicate(self, info: ResourceInfo, p: ListParams) -> Callable[[Obj], bool] | None:
        if p.label.empty() and p.fields.empty():
            return None
        getters = field_getters(info.field_selectors)
        label, fields = p.label, p.fields

        def pred(obj: Obj) -> bool:
            md = obj.get("metadata") or {}
            return label.matches(md.get("labels")) and fields.matches(obj, getters)

        if info.from_storage is not None:
            # predicates run on stored objects (cache, etcd pages); selectors speak the API's form
            return lambda obj: pred(info.decode(obj))
        return pred

    def list_prefix(self, info: ResourceInfo, namespace: str) -> str:
        if info.namespaced and namespace:
            return f"{info.key_prefix()}{namespace}/"
        return info.key_prefix()

    async def list_objects(self, info: ResourceInfo, namespace: str, p: ListParams) -> Obj:
        """The list object (items + metadata) for ``p``."""
        pred = self.predicate(info, p)
        prefix = self.list_prefix(info, namespace)
        # a name-pinning field selector narrows the read to one key
        items: list[Obj]
        meta: dict[str, Any] = {}
        # Consistent lists (resourceVersion "") read etcd: the watch cache can only prove it is
        # fresh through etcd progress notifications, which etcd 3.4 may send early (etcd#15220).
        if p.limit > 0 or p.continue_token or p.resource_version_match == "Exact" or p.resource_version == "":
            items, meta = await self._list_from_etcd(info, prefix, p, pred)
        else:
            cacher = await self.ctx.cacher(info)
            min_rev = 0 if p.resource_version == "0" else int(p.resource_version)
            items, rev = await cacher.list(predicate=pred, namespace_prefix=prefix, min_revision=min_rev)
            items = sorted((info.decode(dict(o)) for o in items), key=_sort_key)
            meta = {"resourceVersion": str(rev)}
        return {"kind": info.list_kind, "apiVersion": info.group_version, "metadata": meta, "items": items}

    async def _list_from_etcd(
        self, info: ResourceInfo, prefix: str, p: ListParams, pred: Callable[[Obj], bool] | None
    ) -> tuple[list[Obj], dict[str, Any]]:
        start: str | None = None
        revision = 0
        if p.continue_token:
            start, revision = decode_continue(p.continue_token, prefix)
        elif p.resource_version and p.resource_version != "0" and p.resource_version_match == "Exact":
            revision = int(p.resource_version)
        items: list[Obj] = []
        limit = p.limit
        more = False
        remaining: int | None = None
        last_key: str | None = None
        while True:
            want = limit - len(items) if limit else 0
            # with a selector, fetch bigger pages so one pass usually fills the limit
            fetch = want if (pred is None or not want) else max(want, 100)
            try:
                res = await self.store.list(prefix, revision=revision, limit=fetch, start=start)
            except Compacted:
                if p.continue_token:
                    raise errors.expired(CONTINUE_TOO_OLD) from None
                raise errors.expired(f"too old resource version: {revision}") from None
            revision = res.revision
            page = [dict(o) for o in res.items]
            more = bool(res.more)
            remaining = getattr(res, "remaining", None)
            for i, obj in enumerate(page):
                if pred is None or pred(obj):
                    items.append(info.decode(obj))
                    if limit and len(items) >= limit:
                        last_key = _obj_key(info, obj)
                        # unread rest of this page means more remain
                        if i < len(page) - 1:
                            more = True
                            remaining = None
                        break
            else:
                if page:
                    last_key = _obj_key(info, page[-1])
                if not more or not limit:
                    break
                start = (last_key or "") + "\x00"
                continue
            break
        if p.resource_version and p.resource_version not in ("0",) and not p.continue_token:
            want_rev = int(p.resource_version)
            if p.resource_version_match != "Exact" and revision < want_rev:
                raise errors.timeout(f"Too large resource version: {want_rev}, current: {revision}")
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if more and last_key is not None:
            meta["continue"] = encode_continue(last_key, revision, prefix)
            if remaining and pred is None:
                meta["remainingItemCount"] = int(remaining)
        return items, meta

    # -- writes -------------------------------------------------------------------------------------

    def bind_namespace(self, info: ResourceInfo, obj: Obj, namespace: str) -> None:
        md = objmeta.meta(obj)
        if info.namespaced:
            body_ns = md.get("namespace")
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)

    async def create(
        self,
        info: ResourceInfo,
        namespace: str,
        obj: Obj,
        opts: WriteOptions,
        body: bytes | None = None,
        *,
        operation: str = "Update",
        prepared: bool = False,
    ) -> Obj:
        """Create ``obj``; returns the stored object (201 by the caller)."""
        if not prepared:
            check_type_meta(info, obj)
            field_checks(info, obj, body, opts)
        self.bind_namespace(info, obj, namespace)
        md = objmeta.meta(obj)
        if md.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        generate = not md.get("name") and md.get("generateName")
        chain = admission.chain_of(self.ctx)
        for attempt in range(8):
            candidate = decode.clone(obj)
            cmd = objmeta.meta(candidate)
            if generate:
                cmd["name"] = objmeta.generate_name(str(md["generateName"]))
            apply_schema_defaults(info, candidate)
            info.strategy.prepare_for_create(candidate)
            cmd.pop("deletionTimestamp", None)
            cmd.pop("deletionGracePeriodSeconds", None)
            cmd.pop("selfLink", None)
            cmd["uid"] = objmeta.new_uid()
            cmd["creationTimestamp"] = objmeta.now_rfc3339()
            if info.strategy.track_generation:
                cmd["generation"] = 1
            else:
                cmd.pop("generation", None)
            # mutating admission after defaulting, validating admission after validation (as upstream)
            attrs = admission.attributes(
                admission.CREATE, info, namespace, cmd.get("name", ""), candidate, dry_run=opts.dry_run
            )
            attrs.attempt = attempt
            await chain.admit(attrs)
            validate_create(info, candidate)
            try:
                await chain.validate(attrs)
            except BaseException:
                await chain.rollback(attrs)
                raise
            if not prepared:
                candidate = update_managed_fields(info, None, candidate, opts, operation)
            plan = WritePlan()
            hook = WRITE_HOOKS.get(_hook_key(info))
            try:
                if hook is not None:
                    await hook(self.ctx, candidate, None, plan)
                # encoded once: the size check and the etcd write use the same bytes
                stored_form = info.encode(candidate)
                value = store_encode(stored_form)
                check_value_size(value, self.ctx.config.max_object_bytes)
            except BaseException:
                await chain.rollback(attrs)
                raise
            if opts.dry_run:
                await chain.rollback(attrs)
                return candidate
            key = info.key(namespace, cmd["name"])
            try:
                try:
                    stored = await self.store.create(
                        key, stored_form, also=plan.also, guards=[*plan.guards, *attrs.guards], value=value
                    )
                except BaseException:
                    # quota charged by admission for a write that did not happen goes back
                    await chain.rollback(attrs)
                    raise
                return info.decode(dict(stored))
            except KeyExists:
                if generate and attempt < 7:
                    continue
                raise errors.already_exists(info.group, info.resource, cmd["name"]) from None
            except Conflict:
                # a guard (an allocation claim, or the namespace admission checked) lost a race: plan
                # again (admission then reads the namespace live)
                if attempt < 7:
                    continue
                raise
        raise errors.internal("could not create the object")  # pragma: no cover

    async def write_update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Awaitable[Obj | None]],
        opts: WriteOptions,
        *,
        status: bool = False,
        validate: bool = True,
        subresource: str | None = None,
    ) -> tuple[Obj, bool]:
        """Read-modify-write with retries; returns (stored object, deleted?).

        ``mutate`` gets a deep copy of the current object and returns the desired object (already
        prepared by the strategy), or None for "no change". A client-side resourceVersion in the
        result that differs from the current one is a 409 Conflict (no retry). ``validate=False``
        is for server-internal writes that bypass the strategy (bindings), as upstream; they skip
        update admission too (their own subresource was admitted by the caller).
        """
        key = info.key(namespace, name)
        chain = admission.chain_of(self.ctx)
        sub = subresource if subresource is not None else ("status" if status else "")
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                current = info.decode(dict(await self.store.get(key)))
            except KeyNotFound:
                raise _not_found(info, name) from None
            cur_rv = objmeta.resource_version(current)
            new = await mutate(decode.clone(current))
            if new is None:
                return current, False
            want_rv = objmeta.resource_version(new)
            if want_rv and want_rv != cur_rv:
                raise _conflict(info, name)
            nmd = objmeta.meta(new)
            cmd = current.get("metadata") or {}
            validation = _mod("kubeha.api.validation")
            if validate and validation is not None:
                # upstream's BeforeUpdate: keep stored system fields the client left out; a changed
                # uid or deletion timestamp is then rejected by validate_object_meta_update (422)
                validation.fill_update_meta(new, current)
            else:
                # server-internal writes: system fields are the server's
                for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                    if k in cmd:
                        nmd[k] = cmd[k]
                    else:
                        nmd.pop(k, None)
            if info.namespaced:
                nmd["namespace"] = namespace
            nmd["resourceVersion"] = cur_rv
            if info.strategy.track_generation:
                gen = int(cmd.get("generation") or 1)
                if not status and objmeta.spec_part(new) != objmeta.spec_part(current):
                    gen += 1
                nmd["generation"] = gen
            elif "generation" in cmd:
                nmd["generation"] = cmd["generation"]
            attrs = admission.attributes(
                admission.UPDATE, info, namespace, name, new, current, subresource=sub, dry_run=opts.dry_run
            )
            if validate:
                await chain.admit(attrs)
                validate_update(info, new, current, status=status)
                await chain.validate(attrs)
            if objmeta.same_ignoring_rv(new, current):
                return current, False
            # the last finalizer of an object being deleted is gone: the object goes too
            if (
                cmd.get("deletionTimestamp")
                and not objmeta.finalizers(new)
                and int(cmd.get("deletionGracePeriodSeconds") or 0) == 0
            ):
                if opts.dry_run:
                    return new, True
                plan = WritePlan()
                dhook = DELETE_HOOKS.get(_hook_key(info))
                if dhook is not None:
                    await dhook(self.ctx, current, plan)
                try:
                    await self.store.delete(key, expected_mod_revision=int(cur_rv), also=plan.also)
                except (Conflict, KeyNotFound):
                    continue
                await chain.released(info, current)
                if info.namespaced and namespace:
                    from kubeha.apiserver.delete import maybe_finish_namespace

                    await maybe_finish_namespace(self, namespace)
                return new, True
            plan = WritePlan()
            hook = WRITE_HOOKS.get(_hook_key(info))
            if hook is not None and not status:
                await hook(self.ctx, new, current, plan)
            check_size(new, self.ctx.config.max_object_bytes)
            if opts.dry_run:
                return new, False
            try:
                stored = await self.store.update(
                    key, info.encode(new), expected_mod_revision=int(cur_rv), also=plan.also, guards=plan.guards
                )
                return info.decode(dict(stored)), False
            except Conflict:
                continue
            except KeyNotFound:
                raise _not_found(info, name) from None
        raise _conflict(info, name)

    async def update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        obj: Obj,
        opts: WriteOptions,
        body: bytes | None,
        subresource: str = "",
    ) -> tuple[Obj, int]:
        """PUT: returns (object, HTTP status: 200 or 201 when created)."""
        check_type_meta(info, obj)
        field_checks(info, obj, body, opts)
        md = objmeta.meta(obj)
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        md["name"] = name
        self.bind_namespace(info, obj, namespace)
        status = subresource == "status"
        if not status:
            existing = await self.maybe_get(info, namespace, name)
            if existing is None:
                if not info.strategy.allow_create_on_update:
                    raise _not_found(info, name)
                md.pop("resourceVersion", None)
                created = await self.create(info, namespace, obj, opts, None, prepared=False)
                return created, 201
        desired = obj

        async def mutate(current: Obj) -> Obj:
            new = decode.clone(desired)
            apply_schema_defaults(info, new)
            if status:
                info.strategy.prepare_for_status_update(new, current)
                # the client's resourceVersion still acts as the precondition
                rv = md.get("resourceVersion")
                if rv:
                    objmeta.meta(new)["resourceVersion"] = rv
                else:
                    objmeta.meta(new).pop("resourceVersion", None)
            else:
                info.strategy.prepare_for_update(new, current)
            return update_managed_fields(info, current, new, opts, "Update", subresource)

        stored, _ = await self.write_update(info, namespace, name, mutate, opts, status=status)
        return stored, 200

    async def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        opts: WriteOptions,
        subresource: str = "",
    ) -> tuple[Obj, int]:
        status = subresource == "status"
        if patch_type == neg.APPLY_PATCH:
            return await self._apply(info, namespace, name, patch, opts, subresource)
        if patch_type == neg.STRATEGIC_PATCH and _mod("kubeha.api.strategicpatch") is None:
            raise errors.StatusError(415, "UnsupportedMediaType", "strategic merge patch is not available")

        async def mutate(current: Obj) -> Obj:
            new = apply_patch(info, current, patch_type, patch)
            if not isinstance(new, dict):
                raise errors.bad_request("the patch produced a non-object")
            check_type_meta(info, new)
            nmd = objmeta.meta(new)
            if nmd.get("name") != name:
                raise errors.bad_request(
                    f"the name of the object ({nmd.get('name')}) does not match the name on the URL ({name})"
                )
            if info.namespaced and nmd.get("namespace") not in (None, namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            field_checks(info, new, None, opts)
            apply_schema_defaults(info, new)
            if status:
                rv = nmd.get("resourceVersion")
                info.strategy.prepare_for_status_update(new, current)
                if rv:
                    objmeta.meta(new)["resourceVersion"] = rv
            else:
                info.strategy.prepare_for_update(new, current)
            return update_managed_fields(info, current, new, opts, "Update", subresource)

        stored, _ = await self.write_update(info, namespace, name, mutate, opts, status=status)
        return stored, 200

    async def _apply(
        self, info: ResourceInfo, namespace: str, name: str, applied: Obj, opts: WriteOptions, subresource: str
    ) -> tuple[Obj, int]:
        mf = _mod("kubeha.api.managedfields")
        if not opts.explicit_manager:
            raise errors.bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
        check_type_meta(info, applied)
        amd = objmeta.meta(applied)
        if amd.get("name") and amd["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({amd['name']}) does not match the name on the URL ({name})"
            )
        amd["name"] = name
        if info.namespaced and amd.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        field_checks(info, applied, None, opts)
        now = objmeta.now_rfc3339()
        existing = await self.maybe_get(info, namespace, name)
        if existing is None:
            if subresource:
                raise _not_found(info, name)
            if mf is not None:
                base: Obj = {"apiVersion": info.group_version, "kind": info.kind, "metadata": {"name": name}}
                if info.namespaced:
                    base["metadata"]["namespace"] = namespace
                new = mf.apply(base, decode.clone(applied), opts.field_manager, opts.force, info.schema, now)
            else:
                new = decode.clone(applied)
            objmeta.meta(new).pop("resourceVersion", None)
            created = await self.create(info, namespace, new, opts, None, operation="Apply", prepared=True)
            return created, 201
        status = subresource == "status"

        async def mutate(current: Obj) -> Obj:
            if mf is not None:
                new = mf.apply(current, decode.clone(applied), opts.field_manager, opts.force, info.schema, now)
            else:
                jm = _mod("kubeha.api.jsonmerge")
                new = jm.apply(current, applied) if jm is not None else {**current, **applied}
            rv = objmeta.resource_version(applied)
            apply_schema_defaults(info, new)
            if status:
                info.strategy.prepare_for_status_update(new, current)
            else:
                info.strategy.prepare_for_update(new, current)
            objmeta.meta(new)["resourceVersion"] = rv or objmeta.resource_version(current)
            return new

        stored, _ = await self.write_update(info, namespace, name, mutate, opts, status=status)
        return stored, 200


def apply_patch(info: ResourceInfo, current: Obj, patch_type: str, patch: Any, schema: str | None = None) -> Any:
    """Apply a JSON / merge / strategic merge patch to a copy of ``current``."""
    orig = decode.clone(current)
    try:
        if patch_type == neg.JSON_PATCH:
            jp = _mod("kubeha.api.jsonpatch")
            if jp is None:
                raise errors.StatusError(415, "UnsupportedMediaType", "json patch is not available")
            return jp.apply(orig, patch)
        if patch_type == neg.MERGE_PATCH:
            jm = _mod("kubeha.api.jsonmerge")
            if jm is None:
                return _merge(orig, patch)
            return jm.apply(orig, patch)
        if patch_type == neg.STRATEGIC_PATCH:
            sp = _mod("kubeha.api.strategicpatch")
            return sp.apply(orig, patch, schema or info.schema)
    except errors.StatusError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise errors.StatusError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {e}"
        ) from None
    raise errors.StatusError(415, "UnsupportedMediaType", f"unsupported patch type {patch_type}")


def _merge(orig: Any, patch: Any) -> Any:
    """RFC 7386 merge patch (fallback while kubeha.api.jsonmerge is absent)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def _sort_key(obj: Obj) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return (str(md.get("namespace") or ""), str(md.get("name") or ""))


def _obj_key(info: ResourceInfo, obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return info.key(md.get("namespace"), md.get("name", ""))


def request_info_namespace(info: ResourceInfo, ri: RequestInfo) -> str:
    return ri.namespace if info.namespaced else ""
