"""Label and field selectors: parsing and matching, with upstream's syntax and error texts.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists),
``!a`` (does not exist), ``a>1`` / ``a<1`` (numeric), comma separated (all must hold).
Field selectors: ``path=value``, ``path==value``, ``path!=value``, comma separated; only the
fields a resource declares are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubeha.api.errors import StatusError, bad_request

Obj = dict[str, Any]

# A label selector value or key is restricted; parse leniently but reject obviously broken syntax.
_KEY_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=" or self.op == "in":
            return present and value in self.values
        if self.op == "!=" or self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            if not present:
                return False
            try:
                have = int(value or "")
                want = int(self.values[0])
            except ValueError:
                return False
            return have > want if self.op == "gt" else have < want
        return False


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def _label_error(selector: str, detail: str) -> StatusError:
    return bad_request(f"unable to parse requirement: {detail}")


def _check_key(selector: str, key: str) -> None:
    if not key or len(key) > 317 or not _KEY_RE.match(key):
        raise _label_error(
            selector,
            f'invalid label key "{key}": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character",
        )


def _check_value(selector: str, value: str) -> None:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise _label_error(
            selector,
            f'invalid label value: "{value}": a valid label must be an empty string or '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character",
        )


def _split_top(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"unable to parse requirement: found ')', unmatched in selector {selector!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise bad_request(f"unable to parse requirement: found '(', expected: ')' in selector {selector!r}")
    parts.append("".join(cur))
    return parts


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")


def parse_label_selector(selector: str | None) -> LabelSelector:
    """Parse the ``labelSelector`` query parameter; 400 BadRequest on a syntax error."""
    if not selector or not selector.strip():
        return LabelSelector()
    reqs: list[Requirement] = []
    for raw in _split_top(selector):
        part = raw.strip()
        if not part:
            raise bad_request(f"unable to parse requirement: found '', expected: identifier in selector {selector!r}")
        m = _SET_RE.match(part)
        if m:
            key, op, inner = m.group(1), m.group(2), m.group(3)
            _check_key(selector, key)
            values = tuple(v.strip() for v in inner.split(",")) if inner.strip() else ()
            if op in ("in", "notin") and not values:
                raise bad_request("unable to parse requirement: for 'in', 'notin' operators, values set can't be empty")
            for v in values:
                _check_value(selector, v)
            reqs.append(Requirement(key, op, tuple(sorted(set(values)))))
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(selector, key)
            reqs.append(Requirement(key, "!"))
            continue
        for token, op in (("!=", "!="), ("==", "="), ("=", "="), (">", "gt"), ("<", "lt")):
            if token in part:
                key, _, value = part.partition(token)
                key, value = key.strip(), value.strip()
                _check_key(selector, key)
                if op in ("gt", "lt"):
                    try:
                        int(value)
                    except ValueError:
                        raise bad_request(
                            "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                        ) from None
                else:
                    _check_value(selector, value)
                reqs.append(Requirement(key, op, (value,)))
                break
        else:
            _check_key(selector, part)
            reqs.append(Requirement(part, "exists"))
    return LabelSelector(tuple(reqs))


def selector_from_match(match: Mapping[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` object (matchLabels / matchExpressions) as a selector."""
    if not match:
        return LabelSelector()
    reqs: list[Requirement] = []
    for k, v in sorted((match.get("matchLabels") or {}).items()):
        reqs.append(Requirement(k, "=", (str(v),)))
    for expr in match.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expr.get("operator", ""), "")
        if op:
            reqs.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return LabelSelector(tuple(reqs))


# -- field selectors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Obj, getters: Mapping[str, Callable[[Obj], str]]) -> bool:
        for r in self.requirements:
            have = getters[r.field](obj)
            if (have == r.value) != (r.op == "="):
                return False
        return True

    def exact(self, field: str) -> str | None:
        """The value an ``=`` requirement on ``field`` pins, for key lookups (metadata.name)."""
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None


def _meta_getter(name: str) -> Callable[[Obj], str]:
    return lambda obj: str((obj.get("metadata") or {}).get(name) or "")


BASE_FIELD_GETTERS: dict[str, Callable[[Obj], str]] = {
    "metadata.name": _meta_getter("name"),
    "metadata.namespace": _meta_getter("namespace"),
}


def field_getters(extra: Mapping[str, Callable[[Obj], str]] | None = None) -> dict[str, Callable[[Obj], str]]:
    out = dict(BASE_FIELD_GETTERS)
    if extra:
        out.update(extra)
    return out


def _unescape(value: str) -> str:
    # Field selector values escape "\," "\=" and "\\" (fields.EscapeValue upstream).
    out: list[str] = []
    it = iter(value)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "")
            if nxt not in ("\\", ",", "="):
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{nxt}")
            out.append(nxt)
        else:
            out.append(ch)
    return "".join(out)


def _split_unescaped(s: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    esc = False
    for ch in s:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            cur.append(ch)
            esc = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _split_field_term(term: str) -> tuple[str, str, str] | None:
    for token, op in (("!=", "!="), ("==", "="), ("=", "=")):
        idx = term.find(token)
        if idx > 0:
            return term[:idx].strip(), op, term[idx + len(token) :]
    return None


def parse_field_selector(
    selector: str | None, known: Mapping[str, Callable[[Obj], str]] | None = None
) -> FieldSelector:
    """Parse ``fieldSelector``; fields must be among ``known`` (default: metadata.name/namespace)."""
    if not selector or not selector.strip():
        return FieldSelector()
    known = known if known is not None else BASE_FIELD_GETTERS
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(selector, ","):
        part = part.strip()
        if not part:
            continue
        split = _split_field_term(part)
        if split is None:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        fld, op, value = split
        if fld not in known:
            if set(known) - set(BASE_FIELD_GETTERS):
                # kinds with their own field label conversion (pods, events, ...) word it like this upstream
                raise bad_request(f"field label not supported: {fld}")
            names = ", ".join(f'"{k}"' for k in sorted(known, key=lambda k: (k not in BASE_FIELD_GETTERS, k)))
            raise bad_request(f'"{fld}" is not a known field selector: only {names}')
        reqs.append(FieldRequirement(fld, op, _unescape(value)))
    return FieldSelector(tuple(reqs))
