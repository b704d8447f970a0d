import pytest

from kubeha.api import jsonpatch
from kubeha.api.errors import StatusError

OBJ = {"metadata": {"name": "x", "resourceVersion": "5", "finalizers": ["a"]}, "spec": {"l": [1, 2]}}


def _err(ops: object) -> StatusError:
    with pytest.raises(StatusError) as e:
        jsonpatch.apply(OBJ, ops)
    return e.value


def test_add_replace_remove() -> None:
    out = jsonpatch.apply(
        OBJ,
        [
            {"op": "add", "path": "/spec/l/-", "value": 3},
            {"op": "replace", "path": "/metadata/name", "value": "y"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ],
    )
    assert out["spec"]["l"] == [1, 2, 3]
    assert out["metadata"]["name"] == "y"
    assert out["metadata"]["finalizers"] == []
    assert OBJ["metadata"]["name"] == "x"  # input untouched
    assert OBJ["spec"]["l"] == [1, 2]


def test_kopf_test_then_replace() -> None:
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
        {"op": "replace", "path": "/metadata/finalizers", "value": []},
    ]
    assert jsonpatch.apply(OBJ, ops)["metadata"]["finalizers"] == []


def test_failed_test_is_422() -> None:
    e = _err([{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}])
    assert e.code == 422
    assert e.reason == "Invalid"
    assert e.message == "the server rejected our request due to an error in our request"
    assert e.details is not None
    assert e.details["causes"][0]["reason"] == "UnexpectedServerResponse"
    assert e.details["causes"][0]["message"] == "testing value /metadata/resourceVersion failed: test failed"
    st = e.to_status()
    assert st["code"] == 422 and st["kind"] == "Status"


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "remove", "path": "/nope"}],
        [{"op": "replace", "path": "/nope/deeper", "value": 1}],
        [{"op": "add", "path": "/spec/l/9", "value": 1}],
        [{"op": "move", "from": "/nope", "path": "/x"}],
        [{"op": "frobnicate", "path": "/x"}],
        [{"op": "add", "value": 1}],
        [{"op": "add", "path": "/x"}],
        [{"op": "replace", "path": "", "value": [1]}],
    ],
)
def test_application_failures_are_422(ops: object) -> None:
    assert _err(ops).code == 422


@pytest.mark.parametrize("ops", [{"op": "add"}, "x", 5, None, [1], [["a"]]])
def test_malformed_documents_are_400(ops: object) -> None:
    e = _err(ops)
    assert e.code == 400
    assert e.reason == "BadRequest"


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/metadata/name", "value": "x"}] * (jsonpatch.MAX_OPERATIONS + 1)
    assert _err(ops).code == 413


def test_empty_patch_is_identity() -> None:
    assert jsonpatch.apply(OBJ, []) == OBJ


def test_escaped_pointer_for_annotation_key() -> None:
    obj = {"metadata": {"annotations": {"example.com/a": "1"}}}
    out = jsonpatch.apply(obj, [{"op": "remove", "path": "/metadata/annotations/example.com~1a"}])
    assert out == {"metadata": {"annotations": {}}}
