"""Small helpers on object metadata used by the REST verbs."""

from __future__ import annotations

import copy
import datetime as dt
import os
import secrets
import time
from typing import Any

from kubeha.api.schema import Obj

# upstream's utilrand alphabet: no vowels (no accidental words), no confusable 0/1/3
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_PREFIX = 63 - 5


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_last_second: list[tuple[float, str]] = [(-1.0, "")]


def rfc3339(t: dt.datetime) -> str:
    # Timestamps have second precision and every write formats "now" (twice with managedFields):
    # reuse the string of the last second formatted instead of running strftime again.
    second = t.timestamp() // 1
    last = _last_second[0]
    if last[0] == second:
        return last[1]
    text = t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_second[0] = (second, text)
    return text


def now_rfc3339() -> str:
    """``rfc3339(now())`` without building a datetime within the second already formatted."""
    last = _last_second[0]
    if last[0] == time.time() // 1:
        return last[1]
    return rfc3339(now())


def parse_rfc3339(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


_random_pool = bytearray()


def _forget_pool() -> None:
    _random_pool.clear()  # a forked child must not hand out its parent's next uids


os.register_at_fork(after_in_child=_forget_pool)


def new_uid() -> str:
    """A random (version 4) UUID as text; str(uuid.uuid4()) builds a UUID object on the way, and
    every create and every request (its Audit-ID) takes one."""
    global _random_pool
    if len(_random_pool) < 16:
        _random_pool = bytearray(os.urandom(4096))  # one system call per 256 uids
    b = _random_pool[-16:]
    del _random_pool[-16:]
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_name(base: str) -> str:
    if len(base) > _MAX_GENERATED_PREFIX:
        base = base[:_MAX_GENERATED_PREFIX]
    return base + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def resource_version(obj: Obj | None) -> str:
    if not obj:
        return ""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def spec_part(obj: Obj) -> Obj:
    """Everything a generation bump looks at: all but metadata, status and type meta."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def same_ignoring_rv(a: Obj, b: Obj) -> bool:
    a2 = copy.copy(a)
    b2 = copy.copy(b)
    a2["metadata"] = {k: v for k, v in (a.get("metadata") or {}).items() if k != "resourceVersion"}
    b2["metadata"] = {k: v for k, v in (b.get("metadata") or {}).items() if k != "resourceVersion"}
    return a2 == b2


def finalizers(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])
