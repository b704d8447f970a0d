"""managedFields tracking and server-side apply."""

import copy
import gc
import json
from typing import Any

import pytest

from kubeha.api import managedfields as mf
from kubeha.api.errors import StatusError
from kubeha.api.schema import INT32, META, STRING, STRUCTS, f, list_of, map_of, struct

P = "test.mf."
T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"


def _declare() -> None:
    if P + "Obj" in STRUCTS:
        return
    struct(P + "Port", "", f("containerPort", 1, INT32), f("protocol", 2, STRING, default="TCP"))
    struct(P + "Env", "", f("name", 1, STRING), f("value", 2, STRING))
    struct(
        P + "Container",
        "",
        f("name", 1, STRING),
        f("image", 2, STRING),
        f("args", 3, list_of(STRING)),
        f(
            "ports",
            4,
            list_of(P + "Port"),
            strategy="merge",
            merge_key="containerPort",
            list_type="map",
            map_keys=("containerPort", "protocol"),
        ),
        f("env", 5, list_of(P + "Env"), strategy="merge", merge_key="name"),
    )
    struct(P + "Selector", "", f("matchLabels", 1, map_of(STRING)))
    struct(
        P + "Spec",
        "",
        f("replicas", 1, INT32),
        f("paused", 2, STRING),
        f("containers", 3, list_of(P + "Container"), strategy="merge", merge_key="name"),
        f("nodeSelector", 4, map_of(STRING)),
        f("selector", 5, P + "Selector", list_type="atomic"),
    )
    struct(
        P + "Meta",
        "",
        f("name", 1, STRING),
        f("namespace", 2, STRING),
        f("uid", 3, STRING),
        f("resourceVersion", 4, STRING),
        f("labels", 5, map_of(STRING)),
        f("annotations", 6, map_of(STRING)),
        f("finalizers", 7, list_of(STRING), strategy="merge"),
        f("ownerReferences", 8, list_of(map_of(STRING)), strategy="merge", merge_key="uid"),
        f("managedFields", 9, list_of(META + "ManagedFieldsEntry"), list_type="atomic"),
    )
    struct(P + "Status", "", f("ready", 1, INT32))
    struct(
        P + "Obj",
        "",
        f("apiVersion", 0, STRING),
        f("kind", 0, STRING),
        f("metadata", 1, P + "Meta"),
        f("spec", 2, P + "Spec"),
        f("status", 3, P + "Status"),
    )


_declare()
S = P + "Obj"


def obj() -> dict[str, Any]:
    return {
        "apiVersion": "test/v1",
        "kind": "Obj",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": {"app": "web"},
        },
        "spec": {
            "replicas": 1,
            "containers": [
                {
                    "name": "nginx",
                    "image": "nginx:1",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}],
                }
            ],
        },
        "status": {"ready": 1},
    }


def entries(o: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in o["metadata"].get("managedFields", [])}


def paths(e: dict[str, Any]) -> set[str]:
    return {mf.path_string(p) for p in mf.from_fields_v1(e["fieldsV1"])}


def created(manager: str = "kubectl-create") -> dict[str, Any]:
    o = obj()
    mf.update_managed_fields(None, o, manager, "Update", "", S, T0)
    return o


# -- field sets --------------------------------------------------------------------------------------


def test_fields_of_shape() -> None:
    o = obj()
    o["metadata"]["finalizers"] = ["a/b"]
    o["metadata"]["ownerReferences"] = [{"uid": "x1", "kind": "ReplicaSet"}]
    o["spec"]["containers"][0]["args"] = ["-v"]
    o["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    fs = mf.fields_of(o, S)
    assert fs["f:metadata"] == {
        "f:labels": {"f:app": {}},
        "f:finalizers": {'v:"a/b"': {}},
        "f:ownerReferences": {'k:{"uid":"x1"}': {".": {}, "f:kind": {}, "f:uid": {}}},
    }
    c = fs["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert c["."] == {}
    assert c["f:args"] == {}  # atomic list: one leaf
    assert c["f:ports"] == {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}, "f:protocol": {}}
    }
    assert c["f:env"] == {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}}
    assert fs["f:spec"]["f:selector"] == {}  # atomic struct: one leaf
    assert "f:status" not in fs
    assert "f:apiVersion" not in fs and "f:kind" not in fs


def test_fields_of_uses_key_defaults() -> None:
    o = obj()
    o["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    c = mf.fields_of(o, S)["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert list(c["f:ports"]) == ['k:{"containerPort":8080,"protocol":"TCP"}']


def test_fields_of_status_subresource() -> None:
    assert mf.fields_of(obj(), S, subresource="status") == {"f:status": {"f:ready": {}}}


def test_fields_v1_round_trip() -> None:
    tree = {"f:a": {".": {}, "f:b": {}}, "f:c": {'k:{"n":"x"}': {".": {}, "f:n": {}}}, "f:d": {'v:"q"': {}}}
    s = mf.from_fields_v1(tree)
    assert s == {("f:a",), ("f:a", "f:b"), ("f:c", 'k:{"n":"x"}'), ("f:c", 'k:{"n":"x"}', "f:n"), ("f:d", 'v:"q"')}
    assert mf.to_fields_v1(s) == tree


def test_path_string() -> None:
    assert mf.path_string(("f:spec", "f:replicas")) == ".spec.replicas"
    assert mf.path_string(("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image")) == (
        '.spec.containers[name="nginx"].image'
    )
    assert mf.path_string(("f:p", 'k:{"containerPort":80,"protocol":"TCP"}')) == '.p[containerPort=80,protocol="TCP"]'
    assert mf.path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'
    assert mf.path_string(("f:l", "i:3")) == ".l[3]"


# -- update ------------------------------------------------------------------------------------------


def test_create_owns_everything_set() -> None:
    o = created()
    [e] = o["metadata"]["managedFields"]
    assert e["manager"] == "kubectl-create"
    assert e["operation"] == "Update"
    assert e["apiVersion"] == "test/v1"
    assert e["time"] == T0
    assert e["fieldsType"] == "FieldsV1"
    assert "subresource" not in e
    assert list(e) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
    # a granular map that appears is itself a member
    assert e["fieldsV1"]["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert ".spec.replicas" in paths(e)
    assert '.spec.containers[name="nginx"].image' in paths(e)
    assert not any(p.startswith(".status") or p.startswith(".metadata.name") for p in paths(e))


@pytest.mark.parametrize("sent", [None, [], [{}]])
def test_create_shortcut_matches_the_general_diff(sent: Any) -> None:
    """A create takes a shortcut (no live object, nothing sent: one entry owning every field); an
    empty live object takes the general diff, and both must agree."""
    base = obj()
    base["metadata"]["finalizers"] = ["a", "b"]
    base["metadata"]["ownerReferences"] = [{"uid": "u1", "name": "x"}]
    base["status"] = {"ready": 1}
    if sent is not None:
        base["metadata"]["managedFields"] = sent
    for sub in ("", "status"):
        fast, general = copy.deepcopy(base), copy.deepcopy(base)
        mf.update_managed_fields(None, fast, "m", "Update", sub, S, T0)
        mf.update_managed_fields({}, general, "m", "Update", sub, S, T0)
        assert fast == general


def test_recording_leaves_no_garbage_cycles() -> None:
    """Every write records managedFields; garbage it leaves in reference cycles waits for the
    collector, whose pauses stall every request in flight (a self-calling closure once did this)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(20):
            new = obj()
            mf.update_managed_fields(None, new, "m", "Update", "", S, T0)
            changed = copy.deepcopy(new)
            changed["spec"]["replicas"] = 5
            mf.update_managed_fields(new, changed, "other", "Update", "", S, T1)
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()


def test_update_moves_changed_fields() -> None:
    live = created()
    new = copy.deepcopy(live)
    new["spec"]["containers"][0]["image"] = "nginx:2"
    new["metadata"]["labels"]["tier"] = "fe"
    mf.update_managed_fields(live, new, "kubectl-edit", "Update", "", S, T1)
    es = entries(new)
    edit = paths(es[("kubectl-edit", "Update")])
    assert edit == {'.spec.containers[name="nginx"].image', ".metadata.labels.tier"}
    assert es[("kubectl-edit", "Update")]["time"] == T1
    create = paths(es[("kubectl-create", "Update")])
    assert '.spec.containers[name="nginx"].image' not in create
    assert ".spec.replicas" in create
    assert es[("kubectl-create", "Update")]["time"] == T0


def test_update_same_manager_accumulates_and_bumps_time() -> None:
    live = created()
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 4
    mf.update_managed_fields(live, new, "kubectl-create", "Update", "", S, T1)
    [e] = new["metadata"]["managedFields"]
    assert e["time"] == T1
    assert ".spec.replicas" in paths(e) and ".metadata.labels.app" in paths(e)


def test_noop_update_changes_nothing() -> None:
    live = created()
    new = copy.deepcopy(live)
    mf.update_managed_fields(live, new, "other", "Update", "", S, T1)
    assert new["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_update_removal_drops_fields_and_empty_entries() -> None:
    live = created()
    step = copy.deepcopy(live)
    step["metadata"]["labels"]["x"] = "1"
    mf.update_managed_fields(live, step, "labeler", "Update", "", S, T1)
    assert ("labeler", "Update") in entries(step)
    gone = copy.deepcopy(step)
    del gone["metadata"]["labels"]["x"]
    mf.update_managed_fields(step, gone, "kubectl-create", "Update", "", S, T2)
    assert ("labeler", "Update") not in entries(gone)  # its only field is gone


def test_status_subresource_entry() -> None:
    live = created()
    new = copy.deepcopy(live)
    new["status"]["ready"] = 2
    mf.update_managed_fields(live, new, "kube-controller-manager", "Update", "status", S, T1)
    e = entries(new)[("kube-controller-manager", "Update")]
    assert e["subresource"] == "status"
    assert paths(e) == {".status.ready"}
    assert list(e)[-1] == "subresource"


def test_main_resource_ignores_status_changes() -> None:
    live = created()
    new = copy.deepcopy(live)
    new["status"]["ready"] = 5
    mf.update_managed_fields(live, new, "x", "Update", "", S, T1)
    assert ("x", "Update") not in entries(new)


def test_reset_with_empty_entry() -> None:
    live = created()
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = [{}]
    mf.update_managed_fields(live, new, "stripper", "Update", "", S, T1)
    assert "managedFields" not in new["metadata"]  # nothing changed, nothing owned


def test_client_sent_empty_list_keeps_live_ownership() -> None:
    live = created()
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = []
    mf.update_managed_fields(live, new, "x", "Update", "", S, T1)
    assert new["metadata"]["managedFields"] == live["metadata"]["managedFields"]


# -- server-side apply -------------------------------------------------------------------------------


def cfg(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "test/v1", "kind": "Obj", "metadata": {"name": "web"}, "spec": spec}


def test_apply_create() -> None:
    out = mf.apply(None, cfg(replicas=2), "kubectl", False, S, T0)
    assert out["spec"] == {"replicas": 2}
    [e] = out["metadata"]["managedFields"]
    assert (e["manager"], e["operation"], e["apiVersion"], e["time"]) == ("kubectl", "Apply", "test/v1", T0)
    assert paths(e) == {".spec.replicas"}


def test_apply_conflict_message_matches_upstream() -> None:
    live = created("kubectl-client-side-apply")
    with pytest.raises(StatusError) as ei:
        mf.apply(live, cfg(replicas=3), "kubectl", False, S, T1)
    e = ei.value
    assert e.code == 409 and e.reason == "Conflict"
    assert e.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using test/v1: .spec.replicas'
    )
    assert e.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kubectl-client-side-apply" using test/v1',
                "field": ".spec.replicas",
            }
        ]
    }


def test_apply_force_takes_ownership() -> None:
    live = created()
    out = mf.apply(live, cfg(replicas=3), "kubectl", True, S, T1)
    assert out["spec"]["replicas"] == 3
    es = entries(out)
    assert paths(es[("kubectl", "Apply")]) == {".spec.replicas"}
    assert ".spec.replicas" not in paths(es[("kubectl-create", "Update")])
    assert out["spec"]["containers"][0]["image"] == "nginx:1"  # untouched fields stay
    # Apply entries sort before Update entries
    assert [e["operation"] for e in out["metadata"]["managedFields"]] == ["Apply", "Update"]


def test_apply_same_value_shares_ownership() -> None:
    live = created()
    out = mf.apply(live, cfg(replicas=1), "kubectl", False, S, T1)
    es = entries(out)
    assert ".spec.replicas" in paths(es[("kubectl", "Apply")])
    assert ".spec.replicas" in paths(es[("kubectl-create", "Update")])


def test_apply_multiple_conflicts_message() -> None:
    live = created()
    live2 = copy.deepcopy(live)
    live2["spec"]["paused"] = "no"
    mf.update_managed_fields(live, live2, "other", "Update", "", S, T1)
    with pytest.raises(StatusError) as ei:
        mf.apply(live2, cfg(replicas=3, paused="yes"), "kubectl", False, S, T2)
    assert ei.value.message == (
        "Apply failed with 2 conflicts: "
        'conflicts with "kubectl-create" using test/v1:\n- .spec.replicas\n'
        'conflicts with "other" using test/v1:\n- .spec.paused'
    )
    assert len(ei.value.details["causes"]) == 2  # type: ignore[index]


def test_apply_conflict_with_other_applier_has_no_version() -> None:
    live = mf.apply(None, cfg(replicas=1), "a", False, S, T0)
    with pytest.raises(StatusError) as ei:
        mf.apply(live, cfg(replicas=2), "b", False, S, T1)
    assert ei.value.message == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'


def test_apply_merges_containers_and_env_by_key() -> None:
    live = created()
    applied = cfg(
        containers=[
            {"name": "nginx", "env": [{"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "busybox"},
        ]
    )
    out = mf.apply(live, applied, "kubectl", False, S, T1)
    cs = out["spec"]["containers"]
    assert [c["name"] for c in cs] == ["nginx", "sidecar"]
    assert cs[0]["image"] == "nginx:1"
    assert cs[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert cs[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    mine = paths(entries(out)[("kubectl", "Apply")])
    assert '.spec.containers[name="sidecar"].image' in mine
    assert '.spec.containers[name="nginx"].env[name="B"].value' in mine


def test_apply_prunes_fields_dropped_from_config() -> None:
    first = mf.apply(None, cfg(replicas=1, paused="no", nodeSelector={"a": "1", "b": "2"}), "kubectl", False, S, T0)
    out = mf.apply(first, cfg(replicas=1, nodeSelector={"a": "1"}), "kubectl", False, S, T1)
    assert "paused" not in out["spec"]
    assert out["spec"]["nodeSelector"] == {"a": "1"}
    assert paths(entries(out)[("kubectl", "Apply")]) == {".spec.replicas", ".spec.nodeSelector.a"}


def test_apply_does_not_prune_fields_others_own() -> None:
    first = mf.apply(None, cfg(replicas=1, paused="no"), "kubectl", False, S, T0)
    shared = mf.apply(first, cfg(paused="no"), "helper", False, S, T1)
    out = mf.apply(shared, cfg(replicas=1), "kubectl", False, S, T2)
    assert out["spec"]["paused"] == "no"


def test_apply_removes_dropped_list_item() -> None:
    first = mf.apply(
        None, cfg(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]), "k", False, S, T0
    )
    out = mf.apply(first, cfg(containers=[{"name": "a", "image": "x"}]), "k", False, S, T1)
    assert out["spec"]["containers"] == [{"name": "a", "image": "x"}]


def test_apply_keeps_item_when_other_manager_owns_a_child() -> None:
    first = mf.apply(
        None, cfg(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]), "k", False, S, T0
    )
    edited = copy.deepcopy(first)
    edited["spec"]["containers"][1]["image"] = "z"
    mf.update_managed_fields(first, edited, "kubectl-set", "Update", "", S, T1)
    out = mf.apply(edited, cfg(containers=[{"name": "a", "image": "x"}]), "k", False, S, T2)
    assert out["spec"]["containers"][1] == {"name": "b", "image": "z"}


def test_apply_noop_keeps_time() -> None:
    first = mf.apply(None, cfg(replicas=1), "kubectl", False, S, T0)
    again = mf.apply(first, cfg(replicas=1), "kubectl", False, S, T1)
    assert again["metadata"]["managedFields"][0]["time"] == T0
    assert again == first


def test_apply_rejects_managed_fields_in_config() -> None:
    c = cfg(replicas=1)
    c["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(StatusError) as ei:
        mf.apply(None, c, "kubectl", False, S, T0)
    assert ei.value.code == 400


def test_apply_on_untracked_object_conflicts_with_before_first_apply() -> None:
    live = obj()
    with pytest.raises(StatusError) as ei:
        mf.apply(live, cfg(replicas=3), "kubectl", False, S, T1)
    assert '"before-first-apply" using test/v1' in ei.value.message


def test_apply_labels_and_annotations() -> None:
    live = created()
    c = cfg()
    c["metadata"]["labels"] = {"app": "web", "tier": "fe"}
    c["metadata"]["annotations"] = {"note": "x"}
    out = mf.apply(live, c, "kubectl", False, S, T1)
    assert out["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert out["metadata"]["annotations"] == {"note": "x"}
    mine = paths(entries(out)[("kubectl", "Apply")])
    assert mine == {".metadata.labels.app", ".metadata.labels.tier", ".metadata.annotations.note"}


def test_apply_set_list_union() -> None:
    live = mf.apply(None, {"apiVersion": "test/v1", "metadata": {"finalizers": ["a"]}}, "x", False, S, T0)
    out = mf.apply(live, {"apiVersion": "test/v1", "metadata": {"finalizers": ["b"]}}, "y", False, S, T1)
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert paths(entries(out)[("y", "Apply")]) == {'.metadata.finalizers[="b"]'}


def test_managed_fields_are_json() -> None:
    out = mf.apply(created(), cfg(replicas=1), "kubectl", False, S, T1)
    json.dumps(out)


# -- real declarations -----------------------------------------------------------------------------------


def _real() -> str:
    try:
        import kubeha.api.apps.v1
        import kubeha.api.core.pod  # noqa: F401
    except Exception:  # pragma: no cover - declarations still being written
        pytest.skip("real type declarations unavailable")
    return "io.k8s.api.apps.v1.Deployment"


def deployment(image: str = "nginx:1.25", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": image, "ports": [{"containerPort": 80, "protocol": "TCP"}]}
                    ]
                },
            },
        },
    }


def test_real_deployment_server_side_apply_after_client_side_apply() -> None:
    s = _real()
    live = deployment()
    mf.update_managed_fields(None, live, "kubectl-client-side-apply", "Update", "", s, T0)
    with pytest.raises(StatusError) as ei:
        mf.apply(live, deployment(replicas=3), "kubectl", False, s, T1)
    assert ei.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    # applying exactly what is live is fine: shared ownership, nothing changes
    out = mf.apply(live, deployment(), "kubectl", False, s, T1)
    assert out["spec"] == live["spec"]
    assert {e["manager"] for e in out["metadata"]["managedFields"]} == {"kubectl", "kubectl-client-side-apply"}


def test_real_deployment_apply_image_conflict_path() -> None:
    s = _real()
    live = deployment()
    mf.update_managed_fields(None, live, "kubectl-create", "Update", "", s, T0)
    with pytest.raises(StatusError) as ei:
        mf.apply(live, deployment(image="nginx:1.27"), "kubectl", False, s, T1)
    assert ei.value.details["causes"][0]["field"] == '.spec.template.spec.containers[name="nginx"].image'  # type: ignore[index]


def test_real_deployment_fields_v1_shape() -> None:
    s = _real()
    out = mf.apply(None, deployment(), "kubectl", False, s, T0)
    fs = out["metadata"]["managedFields"][0]["fieldsV1"]
    assert fs["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert fs["f:spec"]["f:selector"] == {}
    c = fs["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert c["f:ports"] == {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}, "f:protocol": {}}
    }


def test_update_managers_are_capped_into_ancient_changes() -> None:
    live = created()
    for i in range(12):
        new = copy.deepcopy(live)
        new["metadata"]["labels"][f"l{i}"] = "x"
        mf.update_managed_fields(live, new, f"m{i:02d}", "Update", "", S, f"2024-02-{i + 1:02d}T00:00:00Z")
        live = new
    es = live["metadata"]["managedFields"]
    managers = [e["manager"] for e in es]
    assert len([e for e in es if e["operation"] == "Update"]) == mf.MAX_UPDATE_MANAGERS
    assert "ancient-changes" in managers
    assert "kubectl-create" not in managers and "m00" not in managers
    ancient = next(e for e in es if e["manager"] == "ancient-changes")
    assert ".spec.replicas" in paths(ancient) and ".metadata.labels.l0" in paths(ancient)


def test_apply_status_subresource() -> None:
    live = created()
    applied = {"apiVersion": "test/v1", "kind": "Obj", "metadata": {"name": "web"}, "status": {"ready": 3}}
    out = mf.apply(live, applied, "ctrl", False, S, T1, subresource="status")
    assert out["status"] == {"ready": 3}
    e = entries(out)[("ctrl", "Apply")]
    assert e["subresource"] == "status"
    assert paths(e) == {".status.ready"}


def test_custom_resource_is_free_form_but_metadata_typed() -> None:
    try:
        import kubeha.api.meta.v1  # noqa: F401
    except Exception:  # pragma: no cover
        pytest.skip("ObjectMeta not declared")
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "1"}, "finalizers": ["example.com/f"]},
        "spec": {"size": 3, "items": [1, 2], "nested": {"x": "y"}},
    }
    fs = mf.fields_of(cr, "no.such.Widget")
    assert fs == {
        "f:metadata": {"f:finalizers": {'v:"example.com/f"': {}}, "f:labels": {"f:a": {}}},
        "f:spec": {"f:items": {}, "f:nested": {"f:x": {}}, "f:size": {}},
    }


def test_apply_item_without_key_is_400() -> None:
    with pytest.raises(StatusError) as ei:
        mf.apply(None, cfg(containers=[{"image": "x"}]), "kubectl", False, S, T0)
    assert ei.value.code == 400
    assert ei.value.message == (
        "failed to create typed patch object (test/v1, Kind=Obj): .spec.containers: element 0: "
        'associative list with keys has an element that omits key field "name" (and doesn\'t have default value)'
    )


def test_apply_key_with_default_may_be_omitted() -> None:
    out = mf.apply(None, cfg(containers=[{"name": "a", "ports": [{"containerPort": 80}]}]), "k", False, S, T0)
    mine = paths(out["metadata"]["managedFields"][0])
    assert '.spec.containers[name="a"].ports[containerPort=80,protocol="TCP"].containerPort' in mine
