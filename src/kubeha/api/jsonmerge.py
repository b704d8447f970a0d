"""RFC 7386 JSON merge patch (``application/merge-patch+json``).

Used by ``kubectl label|annotate|scale``, kopf and CRD patches. ``null`` deletes a key, objects
merge recursively, anything else (including arrays) replaces the target value.
"""

from __future__ import annotations

import copy
from typing import Any

from kubeha.api.schema import Obj


def apply(original: Obj, patch: Any) -> Obj:
    """Return ``original`` with ``patch`` merged in; neither input is mutated.

    A patch that is not an object replaces the whole document (RFC 7386); callers that need an
    object back validate the result's shape.
    """
    return _merge(original, patch)  # type: ignore[no-any-return]


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out
