"""Reads for admission plugins: from the api-server's watch caches (no etcd read per request), with a
live read only where upstream also falls back to one (an object the cache may not have seen yet)."""

from __future__ import annotations

from typing import Any

from kubeha.api.registry import ResourceInfo, lookup
from kubeha.api.schema import Obj
from kubeha.storage.interface import KeyNotFound


def resource(group: str, version: str, name: str) -> ResourceInfo:
    info = lookup(group, version, name)
    if info is None:  # pragma: no cover - the API group modules are always loaded by the app
        raise LookupError(f"resource {group}/{version}/{name} is not registered")
    return info


async def cached_list(ctx: Any, info: ResourceInfo, namespace: str = "") -> list[Obj]:
    """Every object of ``info`` (in ``namespace`` when given) from the watch cache."""
    cacher = await ctx.cacher(info)
    prefix = f"{info.key_prefix()}{namespace}/" if namespace and info.namespaced else None
    items, _ = await cacher.list(namespace_prefix=prefix)
    return [info.decode(dict(o)) for o in items]


async def cached_get(ctx: Any, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
    cacher = await ctx.cacher(info)
    obj = cacher.get(info.key(namespace, name))
    return info.decode(dict(obj)) if isinstance(obj, dict) else None


async def live_get(ctx: Any, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
    try:
        return info.decode(dict(await ctx.store.get(info.key(namespace, name))))
    except KeyNotFound:
        return None


async def get(ctx: Any, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
    """The cache's copy, else a live read (the cache may lag a write that just happened)."""
    obj = await cached_get(ctx, info, namespace, name)
    if obj is None:
        obj = await live_get(ctx, info, namespace, name)
    return obj
