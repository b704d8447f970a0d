"""Request and response media types.

Requests: JSON, YAML and Kubernetes protobuf bodies; the four patch types. Responses are always
JSON; ``Accept`` only selects the *shape* (plain object, Table, PartialObjectMetadata).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from kubeha.api import decode, errors
from kubeha.api.schema import Obj
from kubeha.apiserver import limits
from kubeha.apiserver.httpserver import Request, Response

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


def media_type(header: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (header or "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body (the server has read it in full, or raises 413 past its own limit or 408
    for a client too slow to send it); 413 past ``limit`` bytes."""
    body = await request.read()
    if len(body) > limit:
        raise errors.too_large(f"Request entity too large: limit is {limit}")
    return body


def _json_loads(body: bytes) -> Any:
    return decode.loads(body)


def _plain_json(body: bytes) -> Any:
    """Any JSON value (JSON Patch documents are arrays). orjson, because it stops at a fixed depth
    where the stdlib decoder recurses until Python's stack runs out."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"error decoding patch: {e}") from None


def _yaml_loads(body: bytes) -> Any:
    return decode.loads_yaml(body)


def decode_object(content_type: str | None, body: bytes) -> Obj:
    """A create/update body as an object; 400 when malformed, 415 for other media types."""
    mt = media_type(content_type) or JSON
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    if mt in (JSON, "*/*"):
        obj = _json_loads(body)
    elif mt in (YAML, "application/x-yaml", "text/yaml"):
        obj = _yaml_loads(body)
    elif mt == PROTOBUF:
        from kubeha.api import protobuf

        obj = protobuf.decode_body(body)
    else:
        raise errors.unsupported_media_type(content_type or "")
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be an object")
    limits.check_nesting(obj)
    return obj


def decode_patch(content_type: str | None, body: bytes) -> tuple[str, Any]:
    """(patch media type, parsed patch document)."""
    mt = media_type(content_type)
    if mt not in PATCH_TYPES:
        raise errors.StatusError(
            415,
            "UnsupportedMediaType",
            f'the server does not support the "{content_type}" patch type; accepted patch types are: '
            + ", ".join(PATCH_TYPES),
        )
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    doc = _yaml_loads(body) if mt == APPLY_PATCH else _plain_json(body)
    if mt == JSON_PATCH:
        if not isinstance(doc, list):
            raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    elif not isinstance(doc, dict):
        raise errors.bad_request("the patch must be a JSON object")
    limits.check_nesting(doc, "patch")
    return mt, doc


@dataclass(frozen=True)
class Shape:
    """What the client asked the response to look like."""

    kind: str = "Object"  # "Object", "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
    version: str = "v1"  # meta.k8s.io version of Table / PartialObjectMetadata

    @property
    def table(self) -> bool:
        return self.kind == "Table"

    @property
    def metadata_only(self) -> bool:
        return self.kind.startswith("PartialObjectMetadata")


_PLAIN = ("application/json", "application/*", "*/*", "application/yaml", PROTOBUF, "application/json;stream=watch")


@functools.lru_cache(maxsize=256)  # clients send the same few Accept headers over and over
def parse_accept(accept: str | None) -> Shape:
    """Pick the first acceptable entry of ``Accept``; fall back to the plain object (never 406)."""
    if not accept:
        return Shape()
    for entry in accept.split(","):
        parts = [p.strip() for p in entry.split(";")]
        mt = parts[0].lower()
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip()
        as_ = params.get("as")
        if as_:
            if params.get("g", "meta.k8s.io") != "meta.k8s.io":
                continue
            if as_ in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList") and mt in (
                "application/json",
                PROTOBUF,
                "application/yaml",
            ):
                return Shape(as_, params.get("v", "v1"))
            continue
        if mt in _PLAIN or mt.startswith("application/json"):
            return Shape()
    return Shape()


dumps = orjson.dumps


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=dumps(obj), status=status, content_type="application/json", headers=headers)
