"""DELETE with upstream semantics: preconditions, propagation finalizers, graceful pod deletion,
finalizers keeping an object alive, and namespace termination."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from kubeha.api import errors
from kubeha.api.registry import RESOURCES, ResourceInfo
from kubeha.api.schema import Obj
from kubeha.apiserver import admission, objmeta
from kubeha.apiserver.httpserver import Request
from kubeha.apiserver.rest import DELETE_HOOKS, Rest, WritePlan, _hook_key
from kubeha.storage.interface import Conflict, KeyNotFound

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
NAMESPACE_FINALIZER = "kubernetes"


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None  # Orphan | Background | Foreground
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False
    orphan_dependents: bool | None = None


def parse_delete_options(request: Request, body: Obj | None) -> DeleteOptions:
    opts = DeleteOptions()
    src: dict[str, Any] = {}
    if body:
        kind = body.get("kind")
        if kind not in (None, "DeleteOptions"):
            raise errors.bad_request(f"the body of a DELETE must be DeleteOptions, got {kind}")
        src.update(body)
    q = request.query
    if "gracePeriodSeconds" in q:
        src["gracePeriodSeconds"] = q["gracePeriodSeconds"]
    if "propagationPolicy" in q:
        src["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        src["orphanDependents"] = q["orphanDependents"] == "true"
    if "dryRun" in q:
        src["dryRun"] = q.getall("dryRun")
    if src.get("gracePeriodSeconds") is not None:
        try:
            opts.grace_period = max(int(src["gracePeriodSeconds"]), 0)
        except (TypeError, ValueError):
            raise errors.bad_request("gracePeriodSeconds: Invalid value: must be an integer") from None
    pp = src.get("propagationPolicy")
    if pp is not None:
        if pp not in ("Orphan", "Background", "Foreground"):
            raise errors.invalid(
                "",
                "DeleteOptions",
                "",
                [errors.not_supported("propagationPolicy", pp, ["Foreground", "Background", "Orphan", "nil"])],
            )
        opts.propagation = pp
    od = src.get("orphanDependents")
    if od is not None:
        if pp is not None:
            raise errors.invalid(
                "",
                "DeleteOptions",
                "",
                [
                    errors.invalid_value(
                        "propagationPolicy", pp, "orphanDependents and deletionPropagation cannot be both set"
                    )
                ],
            )
        opts.orphan_dependents = bool(od)
        opts.propagation = "Orphan" if od else "Background"
    pre = src.get("preconditions") or {}
    opts.uid = pre.get("uid")
    opts.resource_version = pre.get("resourceVersion")
    for dr in src.get("dryRun") or []:
        if dr != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{dr}": supported values: "All"')
        opts.dry_run = True
    return opts


def _check_preconditions(info: ResourceInfo, obj: Obj, opts: DeleteOptions) -> None:
    md = obj.get("metadata") or {}
    name = md.get("name", "")
    if opts.uid and opts.uid != md.get("uid"):
        raise errors.conflict(
            info.group,
            info.resource,
            name,
            f"Precondition failed: UID in precondition: {opts.uid}, UID in object meta: {md.get('uid', '')}",
        )
    if opts.resource_version and opts.resource_version != md.get("resourceVersion"):
        raise errors.conflict(
            info.group,
            info.resource,
            name,
            f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
            f"ResourceVersion in object meta: {md.get('resourceVersion', '')}",
        )


def _pod_grace(obj: Obj, opts: DeleteOptions) -> int:
    """Upstream's pod strategy CheckGracefulDelete: 0 for unscheduled or finished pods."""
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    if opts.grace_period is not None:
        return opts.grace_period
    tgps = spec.get("terminationGracePeriodSeconds")
    return int(tgps) if tgps is not None else 30


async def delete_object(
    rest: Rest, info: ResourceInfo, namespace: str, name: str, opts: DeleteOptions
) -> tuple[Obj, bool]:
    """Delete (or start deleting) one object; returns (object, gone?)."""
    key = info.key(namespace, name)
    store = rest.store
    chain = admission.chain_of(rest.ctx)
    for _ in range(20):
        try:
            current = info.decode(dict(await store.get(key)))
        except KeyNotFound:
            raise errors.not_found(info.group, info.resource, name) from None
        _check_preconditions(info, current, opts)
        await chain.run(
            admission.attributes(admission.DELETE, info, namespace, name, None, current, dry_run=opts.dry_run)
        )
        cur_rv = objmeta.resource_version(current)
        md = current.setdefault("metadata", {})
        new = None  # an update instead of a removal
        fins = objmeta.finalizers(current)
        # an explicit policy replaces any earlier propagation finalizer (as upstream's GC finalizers)
        want_fins = [f for f in fins if f not in (ORPHAN, FOREGROUND)] if opts.propagation else list(fins)
        if opts.propagation == "Orphan":
            want_fins.append(ORPHAN)
        elif opts.propagation == "Foreground":
            want_fins.append(FOREGROUND)
        is_pod = info.group == "" and info.resource == "pods"
        is_ns = info.group == "" and info.resource == "namespaces"
        now = objmeta.now()
        if is_ns:
            new = _terminate_namespace(current, now)
            if new is None:
                # already terminating: try to finish
                return await _finish_namespace(rest, info, current, opts), False
        elif is_pod:
            grace = _pod_grace(current, opts)
            existing_grace = md.get("deletionGracePeriodSeconds")
            if grace > 0 or want_fins:
                if (
                    md.get("deletionTimestamp")
                    and existing_grace is not None
                    and grace >= int(existing_grace)
                    and want_fins == fins
                ):
                    return current, False  # already pending with a shorter or equal grace
                if grace == 0 and not want_fins:
                    new = None
                else:
                    new = _mark_deleting(current, now, grace, want_fins)
        elif want_fins:
            if md.get("deletionTimestamp") and want_fins == fins:
                return current, False
            new = _mark_deleting(current, now, 0, want_fins)
        if new is not None:
            if opts.dry_run:
                return new, False
            try:
                stored = await store.update(key, info.encode(new), expected_mod_revision=int(cur_rv))
            except Conflict:
                continue
            stored = info.decode(dict(stored))
            if is_ns:
                return await _finish_namespace(rest, info, stored, opts), False
            return stored, False
        if opts.dry_run:
            return current, True
        plan = WritePlan()
        hook = DELETE_HOOKS.get(_hook_key(info))
        if hook is not None:
            await hook(rest.ctx, current, plan)
        try:
            await store.delete(key, expected_mod_revision=int(cur_rv), also=plan.also)
        except Conflict:
            continue
        except KeyNotFound:
            raise errors.not_found(info.group, info.resource, name) from None
        await chain.released(info, current)
        if info.namespaced and namespace:
            await maybe_finish_namespace(rest, namespace)
        return current, True
    raise errors.conflict(info.group, info.resource, name)


def _mark_deleting(obj: Obj, now: dt.datetime, grace: int, fins: list[str]) -> Obj:
    new = dict(obj)
    md = dict(new.get("metadata") or {})
    new["metadata"] = md
    if not md.get("deletionTimestamp") or grace < int(md.get("deletionGracePeriodSeconds") or 0):
        md["deletionTimestamp"] = objmeta.rfc3339(now + dt.timedelta(seconds=grace))
        md["deletionGracePeriodSeconds"] = grace
    if fins:
        md["finalizers"] = fins
    else:
        md.pop("finalizers", None)
    return new


def _terminate_namespace(ns: Obj, now: dt.datetime) -> Obj | None:
    md = ns.get("metadata") or {}
    if md.get("deletionTimestamp"):
        return None
    new = dict(ns)
    nmd = dict(md)
    nmd["deletionTimestamp"] = objmeta.rfc3339(now)
    nmd["deletionGracePeriodSeconds"] = 0
    new["metadata"] = nmd
    status = dict(new.get("status") or {})
    status["phase"] = "Terminating"
    new["status"] = status
    return new


async def namespace_empty(rest: Rest, namespace: str) -> bool:
    seen: set[str] = set()
    for info in RESOURCES.values():
        if not info.namespaced:
            continue
        prefix = f"{info.key_prefix()}{namespace}/"
        if prefix in seen:
            continue
        seen.add(prefix)
        res = await rest.store.list(prefix, limit=1)
        if res.items:
            return False
    return True


async def _finish_namespace(rest: Rest, info: ResourceInfo, ns: Obj, opts: DeleteOptions) -> Obj:
    """Remove a terminating namespace at once when it holds nothing (the namespace controller
    does the emptying); `kubectl delete ns` then completes."""
    if opts.dry_run:
        return ns
    name = (ns.get("metadata") or {}).get("name", "")
    if await namespace_empty(rest, name):
        await _remove_namespace(rest, name)
    return ns


async def _remove_namespace(rest: Rest, name: str) -> None:
    key = f"/registry/namespaces/{name}"
    for _ in range(5):
        try:
            ns = dict(await rest.store.get(key))
        except KeyNotFound:
            return
        md = ns.get("metadata") or {}
        if not md.get("deletionTimestamp"):
            return
        spec_fins = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != NAMESPACE_FINALIZER]
        rv = int(objmeta.resource_version(ns))
        try:
            if not spec_fins and not md.get("finalizers"):
                await rest.store.delete(key, expected_mod_revision=rv)
            elif (ns.get("spec") or {}).get("finalizers") != spec_fins:
                ns.setdefault("spec", {})["finalizers"] = spec_fins
                await rest.store.update(key, ns, expected_mod_revision=rv)
            return
        except Conflict:
            continue
        except KeyNotFound:
            return


async def maybe_finish_namespace(rest: Rest, namespace: str) -> None:
    """After a delete inside a terminating namespace, finish the namespace when it became empty."""
    try:
        ns = await rest.store.get(f"/registry/namespaces/{namespace}")
    except KeyNotFound:
        return
    if not (ns.get("metadata") or {}).get("deletionTimestamp"):
        return
    try:
        if await namespace_empty(rest, namespace):
            await _remove_namespace(rest, namespace)
    except Exception:  # best effort; the namespace controller retries
        log.exception("finishing namespace %s failed", namespace)
