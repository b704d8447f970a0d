"""Turn a URL path + method into the request's attributes (upstream's RequestInfo)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

# subresources of the namespaces resource itself: /api/v1/namespaces/{name}/{status,finalize}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass
class RequestInfo:
    is_resource: bool
    path: str
    verb: str  # get list watch create update patch delete deletecollection (or the HTTP verb lowercased)
    api_prefix: str = ""  # "api" or "apis"
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    legacy_watch: bool = False  # /api/v1/watch/... form


def parse(method: str, path: str, query: dict[str, str] | None = None) -> RequestInfo:
    query = query or {}
    method = method.upper()
    http_verb = method.lower()
    parts = [p for p in path.strip("/").split("/") if p]
    plain = RequestInfo(False, path, http_verb)
    if not parts or parts[0] not in ("api", "apis"):
        return plain
    prefix = parts[0]
    rest = parts[1:]
    if prefix == "api":
        if not rest:
            return plain
        group, version, rest = "", rest[0], rest[1:]
    else:
        if len(rest) < 2:
            return plain
        group, version, rest = rest[0], rest[1], rest[2:]
    if not rest:
        return RequestInfo(False, path, http_verb, prefix, group, version)
    info = RequestInfo(True, path, "", prefix, group, version)
    if rest[0] == "watch":
        info.legacy_watch = True
        rest = rest[1:]
    if rest and rest[0] == "namespaces":
        if len(rest) > 1:
            info.namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
    if not rest:
        return plain
    info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    if len(rest) > 3:
        return plain
    if info.resource == "namespaces" and info.name:
        info.namespace = info.name
    if info.resource == "namespaces" and not info.name and len(rest) == 1 and info.namespace:
        # /api/v1/namespaces/{name}
        info.name = info.namespace
    # verb
    watch = info.legacy_watch or query.get("watch") in ("true", "1")
    if method in ("GET", "HEAD"):
        if info.name:
            info.verb = "watch" if watch else "get"
        else:
            info.verb = "watch" if watch else "list"
    elif method == "POST":
        info.verb = "create"
    elif method == "PUT":
        info.verb = "update"
    elif method == "PATCH":
        info.verb = "patch"
    elif method == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    else:
        info.verb = http_verb
    return info


def of_request(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """``parse`` for a request, remembered per method and path (clients repeat the same few:
    collection paths for creates and lists, the same objects for gets). Shared: never change
    the result."""
    return _parse_cached(method, path, query.get("watch") in ("true", "1"))


@functools.lru_cache(maxsize=4096)
def _parse_cached(method: str, path: str, watch: bool) -> RequestInfo:
    return parse(method, path, {"watch": "true"} if watch else None)
