"""Field ownership (``metadata.managedFields``) and server-side apply.

Our own rendition of upstream structured-merge-diff as the api-server uses it:

- A *field set* is a set of paths; a path is a tuple of path elements in their FieldsV1 spelling:
  ``f:<field>``, ``k:<json of the item's key fields>`` (associative lists), ``v:<json value>``
  (sets of primitives) and ``i:<index>`` (items of lists with no usable key).
  Sets travel as FieldsV1 trees (``{"f:spec": {"f:replicas": {}}}``, ``"."`` marking a node that
  is itself a member).
- A non-apply write (create / update / patch) gives its manager the fields it changed
  (:func:`update_managed_fields`); a server-side apply (:func:`apply`) merges the applied
  configuration, prunes fields the applier dropped, and refuses to change fields other managers own
  unless forced.

Lists follow the schema: ``list_type`` "map" + ``map_keys`` (or strategy merge + ``merge_key``) are
associative, "set" (or strategy merge over primitives) are sets, everything else is atomic (one
leaf). Untyped values (ANY / unknown fields) are maps of fields with atomic lists.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from kubeha.api import errors
from kubeha.api.schema import CORE, META, STRUCTS, Field, ListOf, MapOf, Obj, Ref, Scalar, TypeSpec

Path = tuple[str, ...]
FieldSet = set[Path]

FIELDS_TYPE = "FieldsV1"
# Metadata the server owns: never tracked (upstream's stripped set).
_STRIPPED_META = frozenset(
    {
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
    }
)
# Structs upstream marks ``+structType=atomic``: owned and replaced as a whole.
ATOMIC_STRUCTS = frozenset(
    {
        META + "LabelSelector",
        CORE + "NodeSelector",
        CORE + "NodeSelectorTerm",
        CORE + "ObjectReference",
        CORE + "LocalObjectReference",
        CORE + "TypedLocalObjectReference",
        CORE + "ConfigMapKeySelector",
        CORE + "SecretKeySelector",
        CORE + "ObjectFieldSelector",
        CORE + "ResourceFieldSelector",
        CORE + "ConfigMapEnvSource",
        CORE + "SecretEnvSource",
    }
)
BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10  # upstream's cap on Update entries

_LEAF, _ITEM, _MAP = "leaf", "item", "map"


# -- schema helpers ------------------------------------------------------------------------------


# Root of an object whose kind has no declared struct (custom resources): free-form, except that
# metadata is still an ObjectMeta (labels granular, finalizers a set, ownerReferences by uid).
_UNSTRUCTURED = Ref("")


def _ctx(struct_name: str) -> TypeSpec | None:
    return Ref(struct_name) if struct_name in STRUCTS else _UNSTRUCTURED


def _child(t: TypeSpec | None, key: str) -> tuple[TypeSpec | None, Field | None]:
    if t is _UNSTRUCTURED:
        return (Ref(META + "ObjectMeta"), None) if key == "metadata" else (None, None)
    if isinstance(t, Ref):
        s = STRUCTS.get(t.name)
        fld = s.by_json.get(key) if s is not None else None
        return (fld.type, fld) if fld is not None else (None, None)
    if isinstance(t, MapOf):
        return t.value, None
    return None, None


def _is_atomic_map(t: TypeSpec | None, fld: Field | None) -> bool:
    if isinstance(t, Ref) and t.name in ATOMIC_STRUCTS:
        return True
    if isinstance(t, Scalar) and t.name in ("rawextension",):
        return True
    return fld is not None and fld.list_type == "atomic" and isinstance(t, Ref | MapOf)


def _list_kind(t: TypeSpec | None, fld: Field | None) -> tuple[str, tuple[str, ...]]:
    """("map", keys) | ("set", ()) | ("atomic", ())."""
    if fld is None or not isinstance(t, ListOf):
        return "atomic", ()
    strategies = {s.strip() for s in (fld.strategy or "").split(",")}
    if fld.list_type == "map" and fld.map_keys:
        return "map", tuple(fld.map_keys)
    if fld.list_type == "set":
        return "set", ()
    if fld.list_type == "atomic":
        return "atomic", ()
    if "merge" in strategies:
        if fld.merge_key and not isinstance(t.item, Scalar):
            return "map", (fld.merge_key,)
        if isinstance(t.item, Scalar):
            return "set", ()
    return "atomic", ()


def _key_defaults(item_t: TypeSpec | None, keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in keys:
        _, fld = _child(item_t, k)
        if fld is not None and fld.default is not None:
            out[k] = fld.default
    return out


def _dump(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _item_pe(item: Any, index: int, kind: str, keys: tuple[str, ...], defaults: dict[str, Any]) -> str:
    if kind == "set":
        return "v:" + _dump(item)
    if isinstance(item, dict):
        kv = {k: item[k] if k in item else defaults[k] for k in keys if k in item or k in defaults}
        if kv:
            return "k:" + _dump(kv)
    return f"i:{index}"


# -- walking values into paths -------------------------------------------------------------------


def _walk(value: Any, t: TypeSpec | None, fld: Field | None, path: Path, out: dict[Path, tuple[str, Any]]) -> None:
    """Record every tracked path under ``path``: leaves (with values), list items, map nodes."""
    if value is None:
        return
    if isinstance(value, dict):
        if _is_atomic_map(t, fld):
            out[path] = (_LEAF, value)
            return
        if not value:
            return
        if path and isinstance(t, MapOf):
            out[path] = (_MAP, None)  # a granular map is itself a member when it appears
        for k, v in value.items():
            ct, cf = _child(t, k)
            _walk(v, ct, cf, (*path, "f:" + k), out)
        return
    if isinstance(value, list):
        kind, keys = _list_kind(t, fld)
        if kind == "atomic" or not value:
            out[path] = (_LEAF, value)
            return
        item_t = t.item if isinstance(t, ListOf) else None
        defaults = _key_defaults(item_t, keys)
        for i, item in enumerate(value):
            p = (*path, _item_pe(item, i, kind, keys, defaults))
            if kind == "map":
                _walk(item, item_t, None, p, out)
            out[p] = (_ITEM, item if kind == "set" else None)  # after the walk: an item is a member
        return
    out[path] = (_LEAF, value)


def _tracked(obj: Obj | None, struct_name: str, subresource: str) -> dict[Path, tuple[str, Any]]:
    """The tracked paths of ``obj``. Never walked at all: apiVersion and kind, server-owned
    metadata, and status for the main resource (only status for the status subresource); every
    write walks its object, so what would be dropped is skipped rather than filtered out."""
    out: dict[Path, tuple[str, Any]] = {}
    if not isinstance(obj, dict):
        return out
    root = _ctx(struct_name)
    for k, v in obj.items():
        if k == "apiVersion" or k == "kind":
            continue
        if (subresource == "status" and k != "status") or (subresource == "" and k == "status"):
            continue
        t, fld = _child(root, k)
        if k != "metadata":
            _walk(v, t, fld, ("f:" + k,), out)
        elif isinstance(v, dict):
            # metadata itself is never a member, only the fields a client may set
            for mk, mv in v.items():
                if mk not in _STRIPPED_META:
                    mt, mfld = _child(t, mk)
                    _walk(mv, mt, mfld, ("f:metadata", "f:" + mk), out)
    return out


def fields_of(obj: Obj, struct_name: str, subresource: str = "") -> dict[str, Any]:
    """The FieldsV1 set of every field ``obj`` sets (leaves, list items; not plain map nodes).

    apiVersion, kind and server-owned metadata are left out, and ``status`` for the main resource
    (only ``status`` for the status subresource).
    """
    return to_fields_v1(_field_set(obj, struct_name, subresource))


def _field_set(obj: Obj | None, struct_name: str, subresource: str) -> FieldSet:
    return {p for p, (kind, _) in _tracked(obj, struct_name, subresource).items() if kind != _MAP}


# -- FieldsV1 encoding ---------------------------------------------------------------------------


_PE_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


def _pe_rank(pe: str) -> tuple[int, str]:
    kind = pe[:1]
    return (_PE_ORDER.get(kind, 4), pe if kind != "i" else pe[2:].rjust(12, "0"))


def to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    root: dict[str, Any] = {}
    members: set[int] = set()
    for p in paths:
        node = root
        for pe in p:
            child = node.get(pe)
            if child is None:
                child = node[pe] = {}
            node = child
        members.add(id(node))
    return _render(root, members)


def _render(node: dict[str, Any], members: set[int]) -> dict[str, Any]:
    # a module-level function, not a closure: a closure that calls itself is a reference cycle,
    # which only the garbage collector frees (it left one per write)
    out: dict[str, Any] = {}
    if id(node) in members and node:
        out["."] = {}
    keys = list(node) if len(node) < 2 else sorted(node, key=_pe_rank)
    for k in keys:
        child = node[k]
        out[k] = _render(child, members) if child else {}
    return out


def from_fields_v1(tree: Any, prefix: Path = ()) -> FieldSet:
    out: FieldSet = set()
    if not isinstance(tree, dict):
        return out
    for k, v in tree.items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        p = (*prefix, k)
        if not v:
            out.add(p)
        else:
            out |= from_fields_v1(v, p)
    return out


def path_string(p: Path) -> str:
    """Upstream's fieldpath rendering: ``.spec.containers[name="nginx"].image``."""
    parts = []
    for pe in p:
        kind, body = pe[:1], pe[2:]
        if kind == "f":
            parts.append("." + body)
        elif kind == "k":
            kv = json.loads(body)
            parts.append("[" + ",".join(f"{k}={_value_string(kv[k])}" for k in sorted(kv)) + "]")
        elif kind == "v":
            parts.append(f"[={_value_string(json.loads(body))}]")
        else:
            parts.append(f"[{body}]")
    return "".join(parts)


def _value_string(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int | float):
        return str(v)
    return _dump(v)


# -- managedFields entries -----------------------------------------------------------------------


@dataclass
class Entry:
    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    time: str | None
    fields: FieldSet = field(default_factory=set)
    subresource: str = ""

    @property
    def ident(self) -> tuple[str, str, str, str]:
        # appliers keep one entry whatever version they apply with; updaters one per version
        return (self.manager, self.operation, self.api_version if self.operation == "Update" else "", self.subresource)

    def to_dict(self) -> Obj:
        d: Obj = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            d["time"] = self.time
        d["fieldsType"] = FIELDS_TYPE
        d["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            d["subresource"] = self.subresource
        return d

    def describe(self) -> str:
        """How upstream names a manager in conflict messages."""
        s = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            s += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == "Update":
            s += f" using {self.api_version}"
        return s


def decode(managed: Any) -> dict[tuple[str, str, str, str], Entry]:
    out: dict[tuple[str, str, str, str], Entry] = {}
    if not isinstance(managed, list):
        return out
    for raw in managed:
        if not isinstance(raw, dict):
            continue
        e = Entry(
            manager=str(raw.get("manager") or ""),
            operation=str(raw.get("operation") or "Update"),
            api_version=str(raw.get("apiVersion") or ""),
            time=raw.get("time"),
            fields=from_fields_v1(raw.get("fieldsV1")),
            subresource=str(raw.get("subresource") or ""),
        )
        prev = out.get(e.ident)
        if prev is not None:
            prev.fields |= e.fields
        else:
            out[e.ident] = e
    return out


def encode(entries: dict[tuple[str, str, str, str], Entry]) -> list[Obj]:
    kept = [e for e in entries.values() if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    return [e.to_dict() for e in kept]


def _cap_updaters(entries: dict[tuple[str, str, str, str], Entry]) -> None:
    """Keep at most MAX_UPDATE_MANAGERS Update entries: fold the oldest into "ancient-changes"."""
    updaters = sorted(
        (e for e in entries.values() if e.operation == "Update" and e.fields),
        key=lambda e: (e.time or "", e.manager),
    )
    excess = len(updaters) - MAX_UPDATE_MANAGERS
    for e in updaters:
        if excess <= 0:
            break
        if e.manager == ANCIENT_CHANGES:
            continue
        del entries[e.ident]
        bucket = Entry(ANCIENT_CHANGES, "Update", e.api_version, e.time, set())
        existing = entries.get(bucket.ident)
        if existing is None:
            entries[bucket.ident] = bucket
            existing = bucket
        else:
            excess -= 1
        existing.fields |= e.fields
        existing.time = e.time


def _set_managed(obj: Obj, entries: dict[tuple[str, str, str, str], Entry]) -> None:
    _cap_updaters(entries)
    meta = obj.setdefault("metadata", {})
    encoded = encode(entries)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


def _is_reset(managed: Any) -> bool:
    """``[{}]`` in a request clears ownership (upstream's documented way to strip managedFields)."""
    return isinstance(managed, list) and len(managed) == 1 and managed[0] == {}


# -- comparisons ---------------------------------------------------------------------------------


@dataclass
class _Comparison:
    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    @property
    def changed(self) -> FieldSet:
        return self.added | self.modified


def _compare(old: Obj | None, new: Obj, struct_name: str, subresource: str) -> _Comparison:
    a = _tracked(old, struct_name, subresource)
    b = _tracked(new, struct_name, subresource)
    added = {p for p in b if p not in a}
    removed = {p for p in a if p not in b}
    modified = {p for p, (kind, v) in b.items() if p in a and kind == _LEAF and not _json_equal(a[p][1], v)}
    return _Comparison(added, modified, removed)


def _json_equal(a: Any, b: Any) -> bool:
    return _dump(a) == _dump(b)


# -- non-apply writes ----------------------------------------------------------------------------


def update_managed_fields(
    live: Obj | None,
    new: Obj,
    manager: str,
    operation: str,
    subresource: str,
    struct_name: str,
    now: str,
) -> None:
    """Record, in ``new.metadata.managedFields``, that ``manager`` set the fields this write changed.

    ``live`` is the stored object (None for a create). ``operation`` is normally "Update"
    (creates, updates and non-apply patches are all "Update" upstream). Fields the write changed
    leave other managers' sets; fields it removed leave every set; empty entries are dropped.
    """
    meta = new.get("metadata") if isinstance(new.get("metadata"), dict) else None
    sent = meta.get("managedFields") if meta is not None else None
    if live is None and not subresource and (not sent or _is_reset(sent)):
        # a plain create (the common write): one entry, owning every field the object sets; the
        # general diff below comes to the same
        owned = set(_tracked(new, struct_name, ""))
        meta = new.setdefault("metadata", {})
        if owned:
            me = Entry(manager, operation or "Update", str(new.get("apiVersion") or ""), now, owned)
            meta["managedFields"] = [me.to_dict()]
        else:
            meta.pop("managedFields", None)
        return
    live_managed = (live or {}).get("metadata", {}).get("managedFields") if isinstance(live, dict) else None
    if subresource:
        entries = decode(live_managed)
    elif _is_reset(sent):
        entries = {}
    elif isinstance(sent, list) and sent:
        entries = decode(sent)  # the client rewrote ownership deliberately
        if not entries:
            entries = decode(live_managed)
    else:
        entries = decode(live_managed)

    base = _without_managed(live) if live is not None else None
    cmp = _compare(base, _without_managed(new), struct_name, subresource)
    changed = cmp.changed
    api_version = str(new.get("apiVersion") or "")
    me = Entry(manager, operation or "Update", api_version, now, subresource=subresource)
    for e in entries.values():
        if e.ident == me.ident:
            continue
        e.fields -= changed
        e.fields -= cmp.removed
    prev = entries.get(me.ident)
    if prev is not None:
        prev.fields -= cmp.removed
    if changed:
        if prev is not None:
            prev.fields |= changed
            prev.time = now
        else:
            me.fields = set(changed)
            entries[me.ident] = me
    _set_managed(new, entries)


def _without_managed(obj: Obj) -> Obj:
    """A shallow view of ``obj`` without metadata.managedFields (not tracked, not diffed)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj


# -- server-side apply ---------------------------------------------------------------------------


def apply(
    live: Obj | None, applied: Obj, manager: str, force: bool, struct_name: str, now: str, subresource: str = ""
) -> Obj:
    """Server-side apply of ``applied`` by ``manager``; returns the object to store.

    ``subresource`` is "status" for ``kubectl apply --server-side --subresource=status``: then
    only status is tracked (the REST layer keeps the rest of the stored object).

    Raises 409 Conflict (upstream's message and FieldManagerConflict causes) when the apply would
    change a field another manager owns, unless ``force``; then ownership moves to the applier.
    """
    if not isinstance(applied, dict):
        raise errors.bad_request("error decoding YAML: the applied configuration is not an object")
    ameta = applied.get("metadata")
    if isinstance(ameta, dict) and ameta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    config = _drop_nulls(applied)
    ctx = _ctx(struct_name)
    problem = _missing_key(config, ctx, None, ())
    if problem:
        gvk = f"{config.get('apiVersion', '')}, Kind={config.get('kind', '')}"
        raise errors.bad_request(f"failed to create typed patch object ({gvk}): {problem}")

    if live is not None:
        entries = decode(live.get("metadata", {}).get("managedFields"))
        base: Obj = _without_managed(live)
        if not entries:
            # objects written before any tracking: their current fields belong to a placeholder
            seeded = _field_set(base, struct_name, subresource)
            if seeded:
                e = Entry(BEFORE_FIRST_APPLY, "Update", str(live.get("apiVersion") or ""), None, seeded, subresource)
                entries[e.ident] = e
    else:
        entries = {}
        base = {}

    me = Entry(manager, "Apply", str(config.get("apiVersion") or ""), now, subresource=subresource)
    previous = entries.get(me.ident)
    last = previous.fields if previous is not None else set()
    new_set = _field_set(config, struct_name, subresource)
    others_union: FieldSet = set()
    for e in entries.values():
        if e.ident != me.ident:
            others_union |= e.fields

    merged = _merge(copy.deepcopy(base), config, ctx, None)
    if isinstance(merged, dict):
        _prune(merged, last, new_set | others_union, ctx)
    else:
        merged = copy.deepcopy(config)

    cmp = _compare(base if live is not None else None, merged, struct_name, subresource)
    changed = cmp.changed
    conflicts: list[tuple[Entry, Path]] = []
    for e in entries.values():
        if e.ident == me.ident:
            continue
        for p in sorted(e.fields & changed, key=lambda p: [_pe_rank(x) for x in p]):
            conflicts.append((e, p))
    if conflicts and not force:
        raise conflict_error(conflicts)
    for e in entries.values():
        if e.ident == me.ident:
            continue
        e.fields -= changed
        e.fields -= cmp.removed

    unchanged = live is not None and _json_equal(base, merged) and previous is not None and previous.fields == new_set
    me.fields = new_set
    if unchanged and previous is not None:
        me.time = previous.time
    entries[me.ident] = me
    _set_managed(merged, entries)
    return merged


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> errors.StatusError:
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}", "field": path_string(p)}
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {e.describe()}: {path_string(p)}"
    else:
        by_manager: dict[tuple[str, str, str, str], list[Path]] = {}
        names: dict[tuple[str, str, str, str], Entry] = {}
        for e, p in conflicts:
            by_manager.setdefault(e.ident, []).append(p)
            names[e.ident] = e
        lines: list[str] = []
        for key in sorted(by_manager):
            lines.append(f"conflicts with {names[key].describe()}:")
            lines.extend(f"- {path_string(p)}" for p in by_manager[key])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return errors.StatusError(409, "Conflict", message, {"causes": causes})


def _missing_key(value: Any, t: TypeSpec | None, fld: Field | None, path: Path) -> str | None:
    """Upstream refuses applied associative-list items that lack a key field without a default."""
    if isinstance(value, dict):
        for k, v in value.items():
            ct, cf = _child(t, k)
            found = _missing_key(v, ct, cf, (*path, "f:" + k))
            if found:
                return found
    elif isinstance(value, list):
        kind, keys = _list_kind(t, fld)
        item_t = t.item if isinstance(t, ListOf) else None
        defaults = _key_defaults(item_t, keys)
        for i, item in enumerate(value):
            if kind == "map" and isinstance(item, dict):
                for k in keys:
                    if k not in item and k not in defaults:
                        return (
                            f"{path_string(path)}: element {i}: associative list with keys has an element "
                            f'that omits key field "{k}" (and doesn\'t have default value)'
                        )
            found = _missing_key(item, item_t, None, (*path, f"i:{i}"))
            if found:
                return found
    return None


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


def _merge(live: Any, config: Any, t: TypeSpec | None, fld: Field | None) -> Any:
    """Merge an applied configuration into the live value (config wins; lists per their type)."""
    if isinstance(config, dict) and isinstance(live, dict) and not _is_atomic_map(t, fld):
        out = live
        for k, v in config.items():
            ct, cf = _child(t, k)
            out[k] = _merge(live.get(k), v, ct, cf)
        return out
    if isinstance(config, list) and isinstance(live, list):
        kind, keys = _list_kind(t, fld)
        if kind != "atomic":
            return _merge_list(live, config, kind, keys, t.item if isinstance(t, ListOf) else None)
    return copy.deepcopy(config)


def _merge_list(
    live: list[Any], config: list[Any], kind: str, keys: tuple[str, ...], item_t: TypeSpec | None
) -> list[Any]:
    """Associative/set merge keeping live-only items in place and applied items in applied order."""
    defaults = _key_defaults(item_t, keys)
    lpe = [_item_pe(x, i, kind, keys, defaults) for i, x in enumerate(live)]
    rpe = [_item_pe(x, i, kind, keys, defaults) for i, x in enumerate(config)]
    lmap = dict(zip(lpe, live, strict=True))
    rset = set(rpe)
    shared = [pe for pe in rpe if pe in lmap]
    out: list[Any] = []
    done: set[str] = set()
    li = ri = 0

    def take(pe: str, item: Any) -> None:
        done.add(pe)
        if kind == "map" and pe in lmap:
            out.append(_merge(lmap[pe], item, item_t, None))
        else:
            out.append(copy.deepcopy(item))
        if shared and shared[0] == pe:
            shared.pop(0)

    while li < len(live) or ri < len(config):
        if li < len(live) and ri < len(config) and lpe[li] == rpe[ri]:
            take(rpe[ri], config[ri])
            li += 1
            ri += 1
            continue
        if li < len(live):
            pe = lpe[li]
            if pe not in rset:
                out.append(live[li])
                li += 1
                continue
            if pe in done or ri >= len(config) or (shared and shared[0] != pe):
                li += 1  # emitted (or to be emitted) where the applied list puts it
                continue
        if ri < len(config):
            if rpe[ri] not in done:
                take(rpe[ri], config[ri])
            ri += 1
    return out


def _prune(obj: Obj, last: FieldSet, keep: FieldSet, ctx: TypeSpec | None) -> None:
    """Remove what the applier set last time, no longer applies, and nobody else owns."""
    kept_prefixes: set[Path] = set()
    for p in keep:
        for i in range(1, len(p) + 1):
            kept_prefixes.add(p[:i])
    doomed = sorted((p for p in last if p not in kept_prefixes), key=len)
    removed: list[Path] = []
    for p in doomed:
        if any(p[: len(r)] == r for r in removed):
            continue
        if _is_key_field(p):
            continue
        if _remove(obj, p, ctx):
            removed.append(p)


def _is_key_field(p: Path) -> bool:
    """Key fields of a surviving list item are never pruned on their own."""
    if len(p) < 2 or not p[-2].startswith("k:") or not p[-1].startswith("f:"):
        return False
    try:
        keys = json.loads(p[-2][2:])
    except ValueError:
        return False
    return isinstance(keys, dict) and p[-1][2:] in keys


def _remove(obj: Any, p: Path, t: TypeSpec | None, fld: Field | None = None) -> bool:
    pe = p[0]
    if pe.startswith("f:"):
        if not isinstance(obj, dict) or pe[2:] not in obj:
            return False
        if len(p) == 1:
            del obj[pe[2:]]
            return True
        ct, cf = _child(t, pe[2:])
        return _remove(obj[pe[2:]], p[1:], ct, cf)
    if not isinstance(obj, list):
        return False
    kind, keys = _list_kind(t, fld)
    item_t = t.item if isinstance(t, ListOf) else None
    defaults = _key_defaults(item_t, keys)
    for i, item in enumerate(obj):
        if _item_pe(item, i, kind if kind != "atomic" else "map", keys, defaults) == pe:
            if len(p) == 1:
                del obj[i]
                return True
            return _remove(item, p[1:], item_t, None)
    return False
