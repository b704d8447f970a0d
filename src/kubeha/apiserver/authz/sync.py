"""Feeding the authorizers from the watch caches, ClusterRole aggregation, and the default policy.

:class:`PolicySync` follows the roles, clusterroles, rolebindings, clusterrolebindings (RBAC) and
pods (Node graph) watch caches: a snapshot, then the events after it; when a watch ends (a
relist, a slow consumer) it takes a new snapshot and applies the difference. No request reads
etcd for authorization. It also keeps aggregated ClusterRoles (admin, edit, view and any other
with an ``aggregationRule``) equal to the union of the roles their selectors match, as upstream's
clusterrole-aggregation controller.

:func:`reconcile_default_policy` creates upstream's default roles and bindings at start-up and
restores rules / subjects of existing ones annotated ``rbac.authorization.kubernetes.io/autoupdate:
"true"``; :func:`ensure_priority_classes` creates the system PriorityClasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import logging
from collections.abc import Callable
from typing import Any

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, lookup
from kubeha.api.schema import Obj
from kubeha.apiserver import bootstrappolicy, rbac
from kubeha.apiserver.authz import AuthorizationChain
from kubeha.storage.interface import StorageError

log = logging.getLogger(__name__)

RBAC_GROUP = "rbac.authorization.k8s.io"
AGGREGATION_MANAGER = "clusterrole-aggregation-controller"
RECONCILE_MANAGER = "kube-apiserver"
AGGREGATION_DELAY = 0.05  # coalesce bursts of role changes into one aggregation pass


def _key(obj: Obj) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return md.get("namespace") or "", md.get("name") or ""


class _Mirror:
    """One resource's objects as last applied to an authorizer (to diff after a re-snapshot)."""

    def __init__(
        self,
        info: ResourceInfo,
        on_set: Callable[[Obj], None],
        on_delete: Callable[[str, str], None],
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.info = info
        self.on_set = on_set
        self.on_delete = on_delete
        self.on_change = on_change
        self.objects: dict[str, Obj] = {}
        self.synced = asyncio.Event()

    def apply_snapshot(self, items: list[tuple[str, Obj]]) -> None:
        fresh = dict(items)
        for key in list(self.objects):
            if key not in fresh:
                ns, name = _key(self.objects.pop(key))
                self.on_delete(ns, name)
        for key, obj in fresh.items():
            if self.objects.get(key) is not obj:
                self.objects[key] = obj
                self.on_set(obj)
        if self.on_change is not None:
            self.on_change()

    def apply_event(self, typ: str, key: str, obj: Obj) -> None:
        if typ == "DELETED":
            old = self.objects.pop(key, None)
            ns, name = _key(old if old is not None else obj)
            self.on_delete(ns, name)
        elif typ in ("ADDED", "MODIFIED"):
            self.objects[key] = obj
            self.on_set(obj)
        else:
            return
        if self.on_change is not None:
            self.on_change()


class PolicySync:
    def __init__(self, ctx: Any, chain: AuthorizationChain, rest: Any = None) -> None:
        self.ctx = ctx
        self.chain = chain
        self.rest = rest
        self.mirrors: list[_Mirror] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._aggregate_wanted = asyncio.Event()
        az = chain.rbac
        if az is not None:
            for resource, on_set, on_delete, on_change in (
                ("roles", az.set_role, az.delete_role, None),
                ("clusterroles", az.set_cluster_role, lambda _ns, n: az.delete_cluster_role(n), self._aggregate_soon),
                ("rolebindings", az.set_role_binding, az.delete_role_binding, None),
                (
                    "clusterrolebindings",
                    az.set_cluster_role_binding,
                    lambda _ns, n: az.delete_cluster_role_binding(n),
                    None,
                ),
            ):
                info = lookup(RBAC_GROUP, "v1", resource)
                if info is not None:
                    self.mirrors.append(_Mirror(info, on_set, on_delete, on_change))
        node = chain.node
        if node is not None:
            info = lookup("", "v1", "pods")
            if info is not None:
                self.mirrors.append(_Mirror(info, node.set_pod, node.delete_pod))

    def start(self) -> None:
        # a fresh context: these tasks must never run as the user of whatever request started them
        empty = contextvars.Context()
        for m in self.mirrors:
            self._tasks.append(
                asyncio.create_task(self._follow(m), name=f"authz sync {m.info.resource}", context=empty)
            )
        if self.chain.rbac is not None and self.rest is not None:
            self._tasks.append(
                asyncio.create_task(self._aggregate_loop(), name="clusterrole aggregation", context=empty)
            )

    async def wait_synced(self) -> None:
        for m in self.mirrors:
            await m.synced.wait()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def _follow(self, m: _Mirror) -> None:
        backoff = 0.1
        while True:
            try:
                cacher = await self.ctx.cacher(m.info)
                objs, rev = await cacher.list()
                items = [(m.info.key(*_key(o)) if m.info.namespaced else m.info.key(None, _key(o)[1]), o) for o in objs]
                m.apply_snapshot(items)
                m.synced.set()
                watcher = cacher.watch(rev)
                try:
                    async for ev in watcher:
                        m.apply_event(ev.type, ev.key, ev.obj)
                        backoff = 0.1
                finally:
                    watcher.close()
            except asyncio.CancelledError:
                raise
            except (StorageError, errors.StatusError) as e:
                log.info("authorization sync of %s restarts: %s", m.info.resource, e)
            except Exception:
                log.exception("authorization sync of %s failed; restarting", m.info.resource)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    # -- aggregation ------------------------------------------------------------------------------

    def _aggregate_soon(self) -> None:
        self._aggregate_wanted.set()

    async def _aggregate_loop(self) -> None:
        while True:
            await self._aggregate_wanted.wait()
            await asyncio.sleep(AGGREGATION_DELAY)
            self._aggregate_wanted.clear()
            try:
                await self.aggregate_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a conflict with another api-server doing the same: try again
                log.info("clusterrole aggregation: %s; retrying", e)
                await asyncio.sleep(0.5)
                self._aggregate_wanted.set()

    async def aggregate_once(self) -> int:
        """Write every aggregated ClusterRole whose rules are stale; returns how many changed."""
        mirror = next((m for m in self.mirrors if m.info.resource == "clusterroles"), None)
        if mirror is None or self.rest is None:
            return 0
        changed = rbac.aggregate(list(mirror.objects.values()))
        for role in changed:
            await set_cluster_role_rules(self.rest, mirror.info, role["metadata"]["name"], role.get("rules") or [])
        return len(changed)


async def set_cluster_role_rules(rest: Any, info: ResourceInfo, name: str, rules: list[Obj]) -> None:
    from kubeha.apiserver.rest import WriteOptions

    async def mutate(current: Obj) -> Obj | None:
        if (current.get("rules") or []) == rules or not current.get("aggregationRule"):
            return None
        current["rules"] = copy.deepcopy(rules)
        return current

    try:
        await rest.write_update(info, "", name, mutate, WriteOptions(field_manager=AGGREGATION_MANAGER))
    except errors.StatusError as e:
        if e.code != 404:
            raise


# -- the default policy -----------------------------------------------------------------------


def _subject_key(s: Obj) -> tuple[str, str, str]:
    return str(s.get("kind") or ""), str(s.get("name") or ""), str(s.get("namespace") or "")


def reconciled(existing: Obj, expected: Obj) -> Obj | None:
    """The object to write so ``existing`` grants what ``expected`` does, or None if it already
    does (or does not want automatic updates). Extra rules and subjects are kept, as upstream."""
    md = existing.get("metadata") or {}
    if (md.get("annotations") or {}).get(bootstrappolicy.AUTOUPDATE) == "false":
        return None
    new = copy.deepcopy(existing)
    changed = False
    nmd = new.setdefault("metadata", {})
    for field in ("labels", "annotations"):
        want = (expected.get("metadata") or {}).get(field) or {}
        have = nmd.setdefault(field, {})
        for k, v in want.items():
            if k not in have:
                have[k] = v
                changed = True
    if "aggregationRule" in expected:
        if new.get("aggregationRule") != expected["aggregationRule"]:
            new["aggregationRule"] = copy.deepcopy(expected["aggregationRule"])
            changed = True
    elif "rules" in expected:
        have_rules = new.get("rules") or []
        _, missing = rbac.covers(have_rules, expected.get("rules") or [])
        if missing:
            new["rules"] = have_rules + [r for r in expected["rules"] if not rbac.covers(have_rules, [r])[0]]
            changed = True
    if "subjects" in expected:
        have_subjects = new.get("subjects") or []
        keys = {_subject_key(s) for s in have_subjects}
        add = [s for s in expected.get("subjects") or [] if _subject_key(s) not in keys]
        if add:
            new["subjects"] = have_subjects + copy.deepcopy(add)
            changed = True
    return new if changed else None


def default_policy() -> list[tuple[str, str, Obj]]:
    """(resource, namespace, object) of every default RBAC object, aggregated roles filled in."""
    roles = bootstrappolicy.cluster_roles()
    filled = {r["metadata"]["name"]: r for r in rbac.aggregate(roles)}
    out: list[tuple[str, str, Obj]] = [("clusterroles", "", filled.get(r["metadata"]["name"], r)) for r in roles]
    out += [("clusterrolebindings", "", b) for b in bootstrappolicy.cluster_role_bindings()]
    for ns, items in bootstrappolicy.namespaced_roles().items():
        out += [("roles", ns, r) for r in items]
    for ns, items in bootstrappolicy.namespaced_role_bindings().items():
        out += [("rolebindings", ns, b) for b in items]
    return out


async def _ensure(rest: Any, info: ResourceInfo, namespace: str, obj: Obj) -> str:
    from kubeha.apiserver.rest import WriteOptions

    name = obj["metadata"]["name"]
    opts = WriteOptions(field_manager=RECONCILE_MANAGER)
    existing = await rest.maybe_get(info, namespace, name)
    if existing is None:
        try:
            await rest.create(info, namespace, copy.deepcopy(obj), opts)
            return "created"
        except errors.StatusError as e:
            if e.reason != "AlreadyExists":
                raise
            return "exists"
    if reconciled(existing, obj) is None:
        return "unchanged"

    async def mutate(current: Obj) -> Obj | None:
        return reconciled(current, obj)

    await rest.write_update(info, namespace, name, mutate, opts)
    return "updated"


async def reconcile_default_policy(rest: Any, parallel: int = 16) -> dict[str, int]:
    """Create or repair the default roles and bindings; returns counts by outcome."""
    counts: dict[str, int] = {}
    sem = asyncio.Semaphore(parallel)

    async def one(resource: str, ns: str, obj: Obj) -> None:
        info = lookup(RBAC_GROUP, "v1", resource)
        if info is None:
            return
        async with sem:
            outcome = await _ensure(rest, info, ns, obj)
        counts[outcome] = counts.get(outcome, 0) + 1

    await asyncio.gather(*(one(r, ns, o) for r, ns, o in default_policy()))
    return counts


async def ensure_priority_classes(rest: Any) -> None:
    from kubeha.api.scheduling.v1 import system_priority_classes

    info = lookup("scheduling.k8s.io", "v1", "priorityclasses")
    if info is None:
        return
    for pc in system_priority_classes():
        from kubeha.apiserver.rest import WriteOptions

        if await rest.maybe_get(info, "", pc["metadata"]["name"]) is None:
            try:
                await rest.create(info, "", copy.deepcopy(pc), WriteOptions(field_manager=RECONCILE_MANAGER))
            except errors.StatusError as e:
                if e.reason != "AlreadyExists":
                    raise
