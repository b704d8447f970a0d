"""Limits that keep hostile requests from reaching code that cannot cope with them.

Upstream bounds what one request may cost before any handler runs: the body size (3 MiB, 413),
the nesting depth of decoded documents (its JSON decoder stops at 10,000 levels; our walkers,
validators and patch code recurse in Python, whose stack is far shallower, so our bound is lower
and checked once, iteratively, right after decoding), the header block size (Go's 1 MiB
``MaxHeaderBytes``), and integer query parameters (a value that does not convert is a 400, as
upstream's parameter codec answers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubeha.api import errors

# Deepest nesting of a decoded body (objects and arrays both count). Real objects stay far below
# (a Deployment is ~15 levels, deep CRDs ~40); Python recursion (1,000 frames) must stay out of
# reach of every recursive walk that follows decoding, with room for the server's own frames.
MAX_NESTING_DEPTH = 200

# Largest request line plus headers the server accepts (long selectors legitimately exceed the
# 8 KiB many servers allow); beyond it the server answers 431.
MAX_HEADER_BYTES = 1024 * 1024

# How long a client may take to send a whole request body (upstream's --request-timeout default);
# the server's config overrides it.
BODY_READ_TIMEOUT = 60.0

# Go's strconv.ParseInt: ASCII digits with an optional sign (no spaces, underscores or other scripts)
_GO_INT = re.compile(r"[+-]?[0-9]+")


def nesting_depth_exceeded(value: Any, limit: int = MAX_NESTING_DEPTH) -> bool:
    """Whether ``value`` nests dicts/lists deeper than ``limit`` levels (a scalar is depth 0).

    Iterative, so arbitrarily deep input cannot exhaust the interpreter's stack; stops early."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict or isinstance(node, dict):
            children: Any = node.values()
        elif type(node) is list or isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth))
    return False


def check_nesting(value: Any, what: str = "object", limit: int = MAX_NESTING_DEPTH) -> None:
    """400 BadRequest when a decoded body nests deeper than ``limit``."""
    if nesting_depth_exceeded(value, limit):
        raise errors.bad_request(f"the {what} exceeds the maximum nesting depth of {limit}")


def query_int(query: Mapping[str, str], name: str) -> int | None:
    """An integer query parameter; None when absent or empty; 400 when it is not an integer."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not _GO_INT.fullmatch(raw) or not -(2**63) <= int(raw) < 2**63:
        raise errors.bad_request(f'{name}: Invalid value: "{raw}"')
    return int(raw)


def body_timeout(timeout: float) -> errors.StatusError:
    """408 for a client too slow to send its body (a client-side failure, so no 504)."""
    return errors.StatusError(408, "Timeout", f"Timeout: the request body was not received within {timeout:g}s", {})
