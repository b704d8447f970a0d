"""An in-memory, indexed object store: the informer cache controllers read from.

Objects are keyed ``namespace/name`` (or ``name`` for cluster-scoped kinds). Index functions map
an object to the values it is filed under (e.g. its namespace, its node name), so lookups like
"all pods on node X" are one dict access. Single-threaded by design: only the asyncio loop
touches it, so there are no locks. Objects are shared, not copied: callers must not change them.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]

NAMESPACE_INDEX = "namespace"


def meta_namespace_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name", "")
    return f"{ns}/{name}" if ns else str(name)


def split_meta_namespace_key(key: str) -> tuple[str, str]:
    """(namespace, name); namespace is "" for cluster-scoped keys."""
    ns, _, name = key.rpartition("/")
    return ns, name


def namespace_index(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


class Indexer:
    def __init__(
        self, indexers: dict[str, IndexFunc] | None = None, key_func: Callable[[Obj], str] = meta_namespace_key
    ):
        self._key = key_func
        self._items: dict[str, Obj] = {}
        self._funcs: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.resource_version = ""  # of the last replace (the list it came from)
        self.add_indexers(indexers or {})

    # -- writes -------------------------------------------------------------------------------

    def add(self, obj: Obj) -> None:
        key = self._key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        self._reindex(key, old, obj)

    update = add

    def delete(self, obj: Obj) -> None:
        self.delete_key(self._key(obj))

    def delete_key(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._reindex(key, old, None)
        return old

    def replace(self, objs: builtins.list[Obj], resource_version: str) -> None:
        self._items = {self._key(o): o for o in objs}
        self.resource_version = resource_version
        for name in self._indices:
            self._rebuild(name)

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add index functions (existing objects are indexed at once). Redefining one is an error."""
        for name, func in indexers.items():
            if name in self._funcs and self._funcs[name] is not func:
                raise ValueError(f"indexer {name!r} already exists")
            self._funcs[name] = func
            self._rebuild(name)

    # -- reads --------------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    get_by_key = get

    def get_obj(self, namespace: str | None, name: str) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> builtins.list[Obj]:
        return builtins.list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return builtins.list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        return [self._items[k] for k in self.index_keys(index_name, value)]

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        try:
            index = self._indices[index_name]
        except KeyError:
            raise KeyError(f"no indexer named {index_name!r}") from None
        return sorted(index.get(value, ()))

    def index_values(self, index_name: str) -> builtins.list[str]:
        """Every value filed under an index (e.g. every namespace that has objects)."""
        return builtins.list(self._indices[index_name])

    # -- internals ----------------------------------------------------------------------------

    def _rebuild(self, name: str) -> None:
        func = self._funcs[name]
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._funcs.items():
            index = self._indices[name]
            before: Iterable[str] = func(old) if old is not None else ()
            after = set(func(new)) if new is not None else set()
            for value in before:
                if value in after:
                    continue
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after:
                index.setdefault(value, set()).add(key)
