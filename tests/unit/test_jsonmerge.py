from kubeha.api import jsonmerge


def test_merges_nested_maps_and_null_deletes() -> None:
    orig = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}}
    out = jsonmerge.apply(orig, {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert out == {"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 1}}


def test_does_not_mutate_inputs() -> None:
    orig = {"a": {"b": 1}}
    patch = {"a": {"c": {"d": 2}}}
    out = jsonmerge.apply(orig, patch)
    out["a"]["c"]["d"] = 99
    assert orig == {"a": {"b": 1}}
    assert patch == {"a": {"c": {"d": 2}}}


def test_arrays_replace() -> None:
    assert jsonmerge.apply({"l": [1, 2, 3]}, {"l": [4]}) == {"l": [4]}
    assert jsonmerge.apply({"l": [{"a": 1}]}, {"l": [{"b": None}]}) == {"l": [{"b": None}]}


def test_scale_patch_shape() -> None:
    orig = {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}}}}
    assert jsonmerge.apply(orig, {"spec": {"replicas": 3}})["spec"] == {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "x"}},
    }


def test_object_replaces_scalar_and_nulls_inside_new_object_are_dropped() -> None:
    assert jsonmerge.apply({"a": "x"}, {"a": {"b": 1, "c": None}}) == {"a": {"b": 1}}


def test_non_object_patch_replaces_document() -> None:
    assert jsonmerge.apply({"a": 1}, [1, 2]) == [1, 2]
    assert jsonmerge.apply({"a": 1}, "s") == "s"


def test_deleting_missing_key_is_noop() -> None:
    assert jsonmerge.apply({"a": 1}, {"b": None}) == {"a": 1}


def test_kopf_finalizer_and_status_patch() -> None:
    orig = {"metadata": {"finalizers": ["x"]}, "status": {"phase": "A", "old": 1}}
    out = jsonmerge.apply(orig, {"metadata": {"finalizers": []}, "status": {"phase": "B", "old": None}})
    assert out == {"metadata": {"finalizers": []}, "status": {"phase": "B"}}
