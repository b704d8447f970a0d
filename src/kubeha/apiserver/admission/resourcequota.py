"""ResourceQuota: hard limits on what a namespace holds, kept exact across api-servers.

As upstream's quota admission, usage is charged BEFORE the object is written, by a compare-and-swap
update of the ResourceQuota's status (resourceVersion precondition, retried on conflict): two
api-servers admitting at once cannot both take the last unit. A write that then fails gives its
charge back (rollback), and a removed object gives its usage back (there is no quota controller
recounting yet). A quota whose status was never filled is initialised from the watch cache.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from kubeha.api.registry import ResourceInfo
from kubeha.api.schema import Obj
from kubeha.apiserver.admission import (
    CREATE,
    UPDATE,
    Attributes,
    MutatingPlugin,
    ValidatingPlugin,
    forbidden,
    register_plugin,
)
from kubeha.apiserver.admission import lookup as lk
from kubeha.apiserver.admission.quotausage import (
    COMPUTE,
    format_quantity,
    missing_constraints,
    pretty,
    q,
    scopes_match,
    usage,
)
from kubeha.storage.interface import Conflict, KeyNotFound

MAX_ATTEMPTS = 50


def _hard(quota: Obj) -> dict[str, Decimal]:
    return {k: q(v) for k, v in ((quota.get("spec") or {}).get("hard") or {}).items()}


def _used(quota: Obj) -> dict[str, Decimal] | None:
    status = quota.get("status") or {}
    if "used" not in status:
        return None
    return {k: q(v) for k, v in (status.get("used") or {}).items()}


def _tracked(quota: Obj, info: ResourceInfo, obj: Obj) -> dict[str, Decimal]:
    """The part of ``obj``'s usage this quota limits (empty: the quota does not apply)."""
    if not scopes_match(quota, info, obj):
        return {}
    hard = _hard(quota)
    return {k: v for k, v in usage(info, obj).items() if k in hard}


def _could_track(info: ResourceInfo, hard: dict[str, Decimal]) -> bool:
    if set(usage(info, {"metadata": {}})) & set(hard):
        return True
    if info.group == "" and info.resource == "pods":
        return any(k in COMPUTE or k.startswith(("requests.", "limits.")) for k in hard if k != "requests.storage")
    if info.group == "" and info.resource == "services":
        return any(k.startswith("services.") for k in hard)
    return info.group == "" and info.resource == "persistentvolumeclaims" and "requests.storage" in hard


class ResourceQuota(MutatingPlugin, ValidatingPlugin):
    def _info(self) -> ResourceInfo:
        return lk.resource("", "v1", "resourcequotas")

    def handles(self, attrs: Attributes) -> bool:
        return bool(attrs.namespace) and attrs.operation in (CREATE, UPDATE) and not attrs.subresource

    async def admit(self, attrs: Attributes) -> None:
        """A new or changed quota starts with status.hard from its spec and status.used counted from
        the watch cache, so it is enforced at once."""
        if not attrs.is_("", "resourcequotas") or attrs.obj is None:
            return
        quota = attrs.obj
        status = quota.setdefault("status", {})
        status["hard"] = dict((quota.get("spec") or {}).get("hard") or {})
        old_used = ((attrs.old_obj or {}).get("status") or {}).get("used") or {}
        used = {k: v for k, v in old_used.items() if k in status["hard"]}
        missing = [k for k in status["hard"] if k not in used]
        if missing:
            counted = await self._count(attrs.namespace, quota)
            for k in missing:
                used[k] = format_quantity(counted.get(k, Decimal(0)))
        status["used"] = used

    async def _count(self, namespace: str, quota: Obj) -> dict[str, Decimal]:
        """Current usage in ``namespace`` of every resource kind ``quota`` limits."""
        from kubeha.api.registry import RESOURCES

        hard = _hard(quota)
        total: dict[str, Decimal] = {}
        seen: set[str] = set()
        for info in list(RESOURCES.values()):
            if not info.namespaced or info.key_prefix() in seen or "watch" not in info.verbs:
                continue
            if not _could_track(info, hard):
                continue
            seen.add(info.key_prefix())
            for obj in await lk.cached_list(self.ctx, info, namespace):
                for k, v in _tracked(quota, info, obj).items():
                    total[k] = total.get(k, Decimal(0)) + v
        return total

    async def validate(self, attrs: Attributes) -> None:
        if attrs.operation != CREATE or attrs.obj is None:
            return  # updates rarely change usage; the recount corrects what they do
        info = self._info()
        cacher = self.ctx.ready_cacher(info)
        if cacher is not None and not cacher.any_under(f"{info.key_prefix()}{attrs.namespace}/"):
            return  # most namespaces have no quota: nothing to list, sort or charge
        quotas = await lk.cached_list(self.ctx, info, attrs.namespace)
        wanted = [(qt, t) for qt in sorted(quotas, key=lambda o: o["metadata"]["name"]) if (t := self._want(qt, attrs))]
        if not wanted:
            return
        for quota, _ in wanted:
            missing = missing_constraints(attrs.info, attrs.obj, set(_hard(quota)))
            if missing:
                raise forbidden(attrs, f"failed quota: {quota['metadata']['name']}: must specify {','.join(missing)}")
        charged: list[tuple[str, dict[str, Decimal]]] = []
        try:
            for quota, tracked in wanted:
                await self._charge(attrs, quota, tracked)
                if not attrs.dry_run:
                    charged.append((quota["metadata"]["name"], tracked))
        except BaseException:
            for name, tracked in charged:
                await self._adjust(attrs.namespace, name, tracked, -1)
            raise
        ns = attrs.namespace

        async def refund() -> None:
            for name, tracked in charged:
                await self._adjust(ns, name, tracked, -1)

        if charged:
            attrs.rollbacks.append(refund)

    def _want(self, quota: Obj, attrs: Attributes) -> dict[str, Decimal]:
        assert attrs.obj is not None
        return _tracked(quota, attrs.info, attrs.obj)

    async def _charge(self, attrs: Attributes, cached: Obj, tracked: dict[str, Decimal]) -> None:
        """Add ``tracked`` to the quota's status.used by CAS, or refuse past status.hard."""
        info = self._info()
        name = cached["metadata"]["name"]
        key = info.key(attrs.namespace, name)
        quota: Obj | None = cached
        for _ in range(MAX_ATTEMPTS):
            if quota is None:
                quota = await lk.live_get(self.ctx, info, attrs.namespace, name)
                if quota is None:
                    return  # deleted meanwhile: nothing to enforce
            hard = _hard(quota)
            used = _used(quota)
            if used is None or any(k not in used for k in tracked):
                counted = await self._count(attrs.namespace, quota)
                used = {**counted, **(used or {})}
            new_used = {k: used.get(k, Decimal(0)) + v for k, v in tracked.items()}
            exceeded = sorted(k for k, v in new_used.items() if k in hard and v > hard[k])
            if exceeded:
                raise forbidden(
                    attrs,
                    f"exceeded quota: {name}, requested: {pretty({k: tracked[k] for k in exceeded})}, "
                    f"used: {pretty({k: used.get(k, Decimal(0)) for k in exceeded})}, "
                    f"limited: {pretty({k: hard[k] for k in exceeded})}",
                )
            if attrs.dry_run:
                return
            if await self._write(key, quota, {**used, **new_used}):
                return
            quota = None  # lost a race: read the quota live and try again
        raise forbidden(attrs, f"failed quota: {name}: the quota status could not be updated (too many conflicts)")

    async def _write(self, key: str, quota: Obj, used: dict[str, Decimal]) -> bool:
        new = copy.deepcopy(quota)
        status = new.setdefault("status", {})
        status["hard"] = dict((quota.get("spec") or {}).get("hard") or {})
        status["used"] = {k: format_quantity(v) for k, v in sorted(used.items()) if k in status["hard"]}
        rv = int((quota.get("metadata") or {}).get("resourceVersion") or 0)
        try:
            await self.ctx.store.update(key, new, expected_mod_revision=rv)
        except (Conflict, KeyNotFound):
            return False
        return True

    async def _adjust(self, namespace: str, name: str, delta: dict[str, Decimal], sign: int) -> None:
        """Add ``sign * delta`` to a quota's used (never below zero), by CAS."""
        info = self._info()
        key = info.key(namespace, name)
        for _ in range(MAX_ATTEMPTS):
            quota = await lk.live_get(self.ctx, info, namespace, name)
            if quota is None:
                return
            used = _used(quota)
            if used is None:
                return
            new_used = dict(used)
            for k, v in delta.items():
                if k in new_used:
                    new_used[k] = max(Decimal(0), new_used[k] + sign * v)
            if new_used == used or await self._write(key, quota, new_used):
                return

    async def release(self, info: ResourceInfo, obj: Obj) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        if not info.namespaced or not namespace or info.resource == "resourcequotas":
            return
        for quota in await lk.cached_list(self.ctx, self._info(), namespace):
            tracked = _tracked(quota, info, obj)
            if tracked:
                await self._adjust(namespace, quota["metadata"]["name"], tracked, -1)


register_plugin("ResourceQuota", ResourceQuota)
