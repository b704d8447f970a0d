"""Server-side application of a strategic merge patch (``application/strategic-merge-patch+json``).

Semantics follow upstream apimachinery's ``strategicpatch`` as the api-server runs it (parallel
deletion lists applied, nulls that match nothing ignored):

- maps merge recursively; ``null`` deletes a key;
- a list whose field declares ``strategy`` "merge" merges: lists of objects by ``merge_key``
  (matching items merge, new ones join), lists of primitives as a union;
- every other list, and every value whose type differs from the live one, is replaced;
- directives: ``$patch`` (replace / delete on maps and list items), ``$setElementOrder/<f>``,
  ``$deleteFromPrimitiveList/<f>``, ``$retainKeys``.

The schema (:mod:`kubeha.api.schema`) supplies strategies and merge keys; fields of type ANY/RAW
or unknown to the schema merge as plain maps and replace lists. Bad patches raise
:class:`~kubeha.api.errors.StatusError` (400, or 422 where upstream answers 422).
"""

from __future__ import annotations

import copy
from typing import Any

from kubeha.api import errors
from kubeha.api.schema import STRUCTS, Field, ListOf, MapOf, Obj, Ref, TypeSpec

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_PRIMITIVES = "$deleteFromPrimitiveList"

# upstream mergepatch error texts (clients match on them in messages)
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_SET_ORDER = "invalid patch format of setElementOrder list"


def apply(original: Obj, patch: Obj, struct_name: str) -> Obj:
    """Return ``original`` with the strategic merge ``patch`` applied; inputs are not mutated."""
    if not isinstance(patch, dict):
        raise errors.bad_request(f"expected a map, but received a {_kind(patch)}")
    ctx: TypeSpec | None = Ref(struct_name) if struct_name in STRUCTS else None
    result = _merge_map(copy.deepcopy(original) if isinstance(original, dict) else {}, copy.deepcopy(patch), ctx)
    return result


# -- schema navigation ---------------------------------------------------------------------------


def _child(ctx: TypeSpec | None, key: str) -> tuple[TypeSpec | None, Field | None]:
    """Type and declaring field of ``key`` inside a value of type ``ctx`` (None = unknown)."""
    if isinstance(ctx, Ref):
        s = STRUCTS.get(ctx.name)
        if s is None:
            return None, None
        fld = s.by_json.get(key)
        return (fld.type, fld) if fld is not None else (None, None)
    if isinstance(ctx, MapOf):
        return ctx.value, None
    return None, None


def _item_type(t: TypeSpec | None) -> TypeSpec | None:
    return t.item if isinstance(t, ListOf) else None


def _strategies(fld: Field | None) -> tuple[bool, str]:
    """(has retainKeys, other strategy) from a field's ``strategy`` tag."""
    if fld is None or not fld.strategy:
        return False, ""
    parts = [p.strip() for p in fld.strategy.split(",") if p.strip()]
    retain = "retainKeys" in parts
    others = [p for p in parts if p != "retainKeys"]
    return retain, others[0] if others else ""


# -- value helpers -------------------------------------------------------------------------------


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "slice"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return "string"


def _same(a: Any, b: Any) -> bool:
    """JSON equality that keeps bools apart from numbers (Python says True == 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _index(items: list[Any], value: Any, merge_key: str | None) -> int:
    want = value.get(merge_key) if merge_key and isinstance(value, dict) else value
    for i, v in enumerate(items):
        got = v.get(merge_key) if merge_key and isinstance(v, dict) else v
        if _same(got, want):
            return i
    return -1


def _no_merge_key(item: Any, key: str) -> errors.StatusError:
    return errors.bad_request(f"map: {_go_fmt(item)} does not contain declared merge key: {key}")


def _go_fmt(v: Any) -> str:
    """A rough rendering of Go's %v for maps, used only in error messages."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_fmt(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_fmt(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _clean(value: Any) -> tuple[Any, bool]:
    """A patch value taken as is (nothing live to merge into): drop nulls and directives.

    Returns (value, keep). A map carrying ``$patch: delete`` is not kept; other directive keys
    are stripped so they never reach storage.
    """
    if isinstance(value, dict):
        directive = value.get(DIRECTIVE)
        if directive is not None and directive not in ("replace", "merge"):
            return None, False
        out: Obj = {}
        for k, v in value.items():
            if v is None or k in (DIRECTIVE, RETAIN_KEYS) or k.startswith(SET_ORDER + "/"):
                continue
            if k.startswith(DELETE_PRIMITIVES + "/"):
                continue
            cv, keep = _clean(v)
            if keep:
                out[k] = cv
        return out, True
    if isinstance(value, list):
        items = []
        for v in value:
            if isinstance(v, dict) and DIRECTIVE in v:
                continue  # list-level markers ({"$patch": "replace"}) and deletions of absent items
            cv, keep = _clean(v)
            if keep:
                items.append(cv)
        return items, True
    return value, True


# -- maps ----------------------------------------------------------------------------------------


def _merge_map(original: Obj, patch: Obj, ctx: TypeSpec | None) -> Obj:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return _clean(patch)[0]  # type: ignore[no-any-return]
        if directive == "delete":
            return {}
        # upstream accepts only replace/delete on maps ("merge" included: it is the default anyway)
        raise errors.bad_request(f"unknown patch type: {directive} in map: {_go_fmt(patch)}")
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, ctx)

    # parallel deletion lists first, so an add and a delete of different values never race
    for key in [k for k in patch if k.startswith(DELETE_PRIMITIVES)]:
        value = patch.pop(key)
        field_name = _extract_key(key, DELETE_PRIMITIVES, ERR_PRIMITIVE_LIST)
        live = original.get(field_name)
        if value is None or not isinstance(live, list):
            continue
        if not isinstance(value, list):
            raise errors.bad_request(ERR_PRIMITIVE_LIST)
        _check_no_list_of_lists(live, value)
        original[field_name] = [v for v in live if _index(value, v, None) < 0]

    for key, pv in patch.items():
        child_t, fld = _child(ctx, key)
        # "$..." keys are directives unless the schema declares them as data (JSONSchemaProps has
        # "$ref"/"$schema") or the value is free-form.
        if key.startswith("$") and fld is None and isinstance(ctx, Ref):
            raise errors.bad_request(f"unknown patch directive {key!r}")
        if pv is None:
            original.pop(key, None)
            continue
        if key not in original or _kind(original[key]) != _kind(pv) or not isinstance(pv, dict | list):
            cleaned, keep = _clean(pv)
            if keep:
                original[key] = cleaned
            else:
                original.pop(key, None)
            continue
        _, strategy = _strategies(fld)
        if isinstance(pv, dict):
            original[key] = _clean(pv)[0] if strategy == "replace" else _merge_map(original[key], pv, child_t)
        else:
            merge_key = fld.merge_key if fld is not None else None
            original[key] = _merge_list_field(original[key], pv, _item_type(child_t), strategy, merge_key)
    return original


def _extract_key(key: str, prefix: str, err: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise errors.bad_request(err)
    return rest


def _apply_retain_keys(original: Obj, patch: Obj) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise errors.bad_request(ERR_RETAIN_KEYS)
    keep = {k for k in retain if isinstance(k, str)}
    for k, v in patch.items():
        if v is None or k.startswith(DELETE_PRIMITIVES) or k.startswith(SET_ORDER):
            continue
        if k not in keep:
            raise errors.bad_request(ERR_RETAIN_KEYS)  # upstream reports this as a format error too
    for k in list(original):
        if k not in keep:
            del original[k]


class StatusErrorFactory:
    """Upstream answers some patch errors with a bare 422 (``NewGenericServerResponse``)."""

    @staticmethod
    def unprocessable(detail: str) -> errors.StatusError:
        return errors.StatusError(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            {"causes": [{"reason": "UnexpectedServerResponse", "message": detail}]},
        )


def _check_no_list_of_lists(*lists: list[Any]) -> None:
    for lst in lists:
        for v in lst:
            if isinstance(v, list):
                raise StatusErrorFactory.unprocessable(ERR_NO_LIST_OF_LISTS)


# -- lists ---------------------------------------------------------------------------------------


def _merge_list_field(
    original: list[Any], patch: list[Any], item_t: TypeSpec | None, strategy: str, merge_key: str | None
) -> list[Any]:
    if strategy != "merge":
        return _clean(patch)[0]  # type: ignore[no-any-return]
    return _merge_list(original, patch, item_t, merge_key)


def _element_kind(*lists: list[Any]) -> str | None:
    kind: str | None = None
    for lst in lists:
        for v in lst:
            k = _kind(v)
            if k == "slice":
                raise StatusErrorFactory.unprocessable(ERR_NO_LIST_OF_LISTS)
            if kind is None:
                kind = k
            elif kind != k:
                raise errors.bad_request("list element types are not identical")
    return kind


def _merge_list(original: list[Any], patch: list[Any], item_t: TypeSpec | None, merge_key: str | None) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        merged: list[Any] = []
        for v in original + patch:
            if _index(merged, v, None) < 0:
                merged.append(v)
        key: str | None = None
    else:
        if not merge_key:
            raise errors.bad_request("cannot merge lists without merge key")
        original, patch = _special_elements(original, patch, merge_key)
        merged = _merge_by_key(original, patch, merge_key, item_t)
        key = merge_key
    in_patch = [v for v in merged if _index(patch, v, key) >= 0]
    server_only = [v for v in merged if _index(patch, v, key) < 0]
    return _normalize_order(in_patch, server_only, patch, original, key)


def _special_elements(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Handle ``$patch`` items: delete matching live items, or replace the whole list."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            original = [o for o in original if not _same(o.get(merge_key), item[merge_key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise errors.bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise errors.bad_request(f"unknown patch type: {directive} in map: {_go_fmt(item)}")
    if replace:
        return [_clean(p)[0] for p in plain], []
    return original, plain


def _merge_by_key(original: list[Any], patch: list[Any], merge_key: str, item_t: TypeSpec | None) -> list[Any]:
    out = list(original)
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        i = _index(out, item, merge_key)
        if i >= 0:
            if not isinstance(out[i], dict):
                raise errors.bad_request(f"value for key {i} is not a map")
            out[i] = _merge_map(out[i], item, item_t)
        else:
            cleaned, keep = _clean(item)
            if keep:
                out.append(cleaned)
    return out


def _sort_by(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """Stable sort of ``items`` by position in ``order``; items absent from it go last."""
    indexed = [(_index(order, v, key), n, v) for n, v in enumerate(items)]
    indexed.sort(key=lambda t: (t[0] < 0, t[0], t[1]))
    return [v for _, _, v in indexed]


def _normalize_order(
    patch_items: list[Any], server_only: list[Any], patch_order: list[Any], server_order: list[Any], key: str | None
) -> list[Any]:
    """Order merged items as upstream: patch items by the patch (or $setElementOrder) order,
    server-only items by the live order, interleaved where both are known to the live list.
    A new item (not live) goes before the server-only items that follow it -- which is why a
    container added by a plain patch ends up first, as with upstream."""
    if key:
        for v in patch_items + server_only + patch_order:
            if not isinstance(v, dict) or key not in v:
                raise _no_merge_key(v, key)
    left = _sort_by(server_only, server_order, key)
    right = _sort_by(patch_items, patch_order, key)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], key)
            ri = _index(server_order, right[j], key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _apply_set_element_order(original: Obj, patch: Obj, ctx: TypeSpec | None) -> None:
    for key in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(key)
        field_name = _extract_key(key, SET_ORDER, ERR_SET_ORDER)
        if not isinstance(order, list):
            raise errors.bad_request(ERR_SET_ORDER)
        child_t, fld = _child(ctx, field_name)
        _, strategy = _strategies(fld)
        merge_key = (fld.merge_key if fld is not None else None) or None
        found_live = isinstance(original.get(field_name), list)
        found_patch = field_name in patch
        live: list[Any] = original[field_name] if found_live else []
        patch_list = patch.get(field_name)
        if found_patch and not isinstance(patch_list, list):
            if patch_list is None:
                continue  # the field is being deleted; the order is moot
            raise errors.bad_request(ERR_SET_ORDER)
        plist: list[Any] = patch_list if isinstance(patch_list, list) else []
        _check_order_matches(plist, order, merge_key)
        if found_live and not found_patch:
            merged = live
        elif not found_live and found_patch:
            merged = _clean(plist)[0]
        elif found_live and found_patch:
            merged = _merge_list_field(live, plist, _item_type(child_t), strategy, merge_key)
        else:
            continue
        kind = _element_kind(live, plist)
        key_name = merge_key if kind == "map" else None
        in_order = [v for v in merged if _index(order, v, key_name) >= 0]
        server_only = [v for v in merged if _index(order, v, key_name) < 0]
        original[field_name] = _normalize_order(in_order, server_only, order, live, key_name)
        patch.pop(field_name, None)


def _check_order_matches(patch_list: list[Any], order: list[Any], merge_key: str | None) -> None:
    """Every non-deletion item of the patch list must appear in $setElementOrder, in that order."""
    if not patch_list or not order:
        return
    items = [p for p in patch_list if not (isinstance(p, dict) and DIRECTIVE in p)]
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        a, b = items[pi], order[oi]
        if merge_key:
            if not isinstance(a, dict) or merge_key not in a:
                raise _no_merge_key(a, merge_key)
            if not isinstance(b, dict) or merge_key not in b:
                raise _no_merge_key(b, merge_key)
            equal = _same(a[merge_key], b[merge_key])
        else:
            equal = _same(a, b)
        if equal:
            pi += 1
        oi += 1
    if pi < len(items):
        raise errors.bad_request(
            f"The order in patch list:\n{_go_fmt(patch_list)}\n doesn't match {SET_ORDER} list:\n{_go_fmt(order)}\n"
        )
