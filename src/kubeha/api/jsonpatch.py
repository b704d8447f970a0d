"""RFC 6902 JSON patch (``application/json-patch+json``), on top of the ``jsonpatch`` library.

Error mapping follows upstream's patch handler: a patch document that cannot be decoded is a 400
BadRequest; a bad operation or one that fails while applying (a ``test`` that does not hold, a path that
does not exist) is a 422 with the generic "rejected our request" message and the library's text
as the cause -- kopf relies on the 422 for its optimistic ``test`` on resourceVersion.
"""

from __future__ import annotations

import re
from typing import Any

import jsonpatch
import jsonpointer

from kubeha.api import errors
from kubeha.api.schema import Obj

# upstream's limit on operations in one JSON patch (413 beyond it)
MAX_OPERATIONS = 10000
_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def apply(original: Obj, ops: Any) -> Obj:
    """Return ``original`` with the JSON patch ``ops`` applied; ``original`` is not mutated."""
    _validate(ops)
    if len(ops) > MAX_OPERATIONS:
        raise errors.too_large(f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}")
    try:
        patch = jsonpatch.JsonPatch(ops)
        result = patch.apply(original, in_place=False)
    except jsonpatch.JsonPatchTestFailed:
        raise unprocessable(_test_failure(original, ops)) from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        detail = str(e)
        if not detail or re.fullmatch(r"'[^']*'", detail):  # a bare KeyError text such as "'nope'"
            detail = f"missing value: {detail or type(e).__name__}"
        raise unprocessable(detail) from None
    except Exception as e:  # the library raises bare KeyError/TypeError on some odd paths
        raise unprocessable(f"{type(e).__name__}: {e}") from None
    if not isinstance(result, dict):
        raise unprocessable("the patched document is not a JSON object")
    return result


def _test_failure(original: Obj, ops: list[Any]) -> str:
    """Upstream's text for the first ``test`` operation that does not hold (the library does not
    say which one), found by replaying the patch one operation at a time."""
    doc: Any = original
    for op in ops:
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=False)
        except jsonpatch.JsonPatchTestFailed:
            path = str(op.get("path", ""))
            try:
                jsonpointer.JsonPointer(path).to_last(doc)
            except jsonpointer.JsonPointerException:
                return f"test operation does not apply: is missing path: {path}"
            return f"testing value {path} failed: test failed"
        except Exception:
            break
    return "test failed"


def unprocessable(detail: str) -> errors.StatusError:
    """Upstream's ``NewGenericServerResponse(422, ...)`` shape."""
    return errors.StatusError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": detail}]},
    )


def _validate(ops: Any) -> None:
    """Decode-time checks (upstream's DecodePatch): a list of objects with a known op and a path."""
    if not isinstance(ops, list):
        raise errors.bad_request(f"json: cannot unmarshal {_json_kind(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise errors.bad_request(
                f"json: cannot unmarshal {_json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    # Well-formed JSON with a bad operation (unknown op, missing path/value/from) fails while
    # applying upstream, hence 422 like any other application failure.
    for i, op in enumerate(ops):
        name = op.get("op")
        if name not in _OPS:
            raise unprocessable(f"Unexpected kind: {name}")
        if not isinstance(op.get("path"), str):
            raise unprocessable(f"operation {i} ({name}): missing or invalid path")
        if name in ("add", "replace", "test") and "value" not in op:
            raise unprocessable(f"operation {i} ({name}): missing value")
        if name in ("move", "copy") and not isinstance(op.get("from"), str):
            raise unprocessable(f"operation {i} ({name}): missing from")


def _json_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if v is None:
        return "null"
    return "number"
