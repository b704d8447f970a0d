"""Strategic merge patch, on small test structs and on the shapes kubectl sends."""

from typing import Any

import pytest

from kubeha.api import strategicpatch as smp
from kubeha.api.errors import StatusError
from kubeha.api.schema import ANY, INT32, STRING, STRUCTS, f, list_of, map_of, struct

P = "test.smp."


def _declare() -> None:
    if P + "Obj" in STRUCTS:
        return
    struct(
        P + "Port",
        "",
        f("name", 1, STRING),
        f("containerPort", 2, INT32),
        f("protocol", 3, STRING),
    )
    struct(P + "Env", "", f("name", 1, STRING), f("value", 2, STRING))
    struct(
        P + "Container",
        "",
        f("name", 1, STRING),
        f("image", 2, STRING),
        f("args", 3, list_of(STRING)),
        f("ports", 4, list_of(P + "Port"), strategy="merge", merge_key="containerPort"),
        f("env", 5, list_of(P + "Env"), strategy="merge", merge_key="name"),
    )
    struct(P + "Strategy", "", f("type", 1, STRING), f("rollingUpdate", 2, map_of(STRING)))
    struct(P + "Volume", "", f("name", 1, STRING), f("hostPath", 2, map_of(STRING)), f("emptyDir", 3, map_of(STRING)))
    struct(
        P + "Spec",
        "",
        f("replicas", 1, INT32),
        f("containers", 2, list_of(P + "Container"), strategy="merge", merge_key="name"),
        f("volumes", 3, list_of(P + "Volume"), strategy="merge,retainKeys", merge_key="name"),
        f("strategy", 4, P + "Strategy", strategy="retainKeys"),
        f("tolerations", 5, list_of(map_of(STRING))),
        f("nodeSelector", 6, map_of(STRING), strategy="replace"),
        f("extra", 7, ANY),
    )
    struct(
        P + "Meta",
        "",
        f("name", 1, STRING),
        f("labels", 2, map_of(STRING)),
        f("annotations", 3, map_of(STRING)),
        f("finalizers", 4, list_of(STRING), strategy="merge"),
    )
    struct(P + "Obj", "", f("metadata", 1, P + "Meta"), f("spec", 2, P + "Spec"))


_declare()
S = P + "Obj"


def live() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 2,
            "containers": [
                {
                    "name": "nginx",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                },
                {"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]},
            ],
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "tolerations": [{"key": "a"}],
            "nodeSelector": {"zone": "a", "disk": "ssd"},
        },
    }


def names(obj: dict[str, Any]) -> list[str]:
    return [c["name"] for c in obj["spec"]["containers"]]


def err(patch: dict[str, Any], orig: dict[str, Any] | None = None) -> StatusError:
    with pytest.raises(StatusError) as e:
        smp.apply(orig if orig is not None else live(), patch, S)
    return e.value


# -- maps and scalars ------------------------------------------------------------------------------


def test_map_merge_and_null_delete() -> None:
    out = smp.apply(live(), {"metadata": {"labels": {"tier": "fe", "app": None}}, "spec": {"replicas": 5}}, S)
    assert out["metadata"]["labels"] == {"tier": "fe"}
    assert out["spec"]["replicas"] == 5
    assert out["metadata"]["name"] == "web"


def test_inputs_not_mutated() -> None:
    orig = live()
    patch = {
        "spec": {"$setElementOrder/containers": [{"name": "nginx"}], "containers": [{"name": "nginx", "image": "x"}]}
    }
    snapshot = repr(patch)
    smp.apply(orig, patch, S)
    assert orig == live()
    assert repr(patch) == snapshot


def test_null_for_absent_key_is_ignored() -> None:
    out = smp.apply(live(), {"metadata": {"annotations": None}}, S)
    assert "annotations" not in out["metadata"]


def test_new_nested_value_drops_nulls_and_directives() -> None:
    out = smp.apply(live(), {"metadata": {"annotations": {"a": "1", "b": None, "$patch": "replace"}}}, S)
    assert out["metadata"]["annotations"] == {"a": "1"}


def test_type_change_replaces() -> None:
    out = smp.apply(live(), {"spec": {"replicas": {"weird": 1}}}, S)
    assert out["spec"]["replicas"] == {"weird": 1}


def test_map_with_replace_strategy_is_replaced() -> None:
    out = smp.apply(live(), {"spec": {"nodeSelector": {"zone": "b"}}}, S)
    assert out["spec"]["nodeSelector"] == {"zone": "b"}


def test_map_directive_replace() -> None:
    out = smp.apply(live(), {"metadata": {"labels": {"$patch": "replace", "x": "y"}}}, S)
    assert out["metadata"]["labels"] == {"x": "y"}


def test_map_directive_delete() -> None:
    out = smp.apply(live(), {"spec": {"strategy": {"$patch": "delete"}}}, S)
    assert out["spec"]["strategy"] == {}


def test_map_directive_merge_rejected_like_upstream() -> None:
    e = err({"metadata": {"labels": {"$patch": "merge", "x": "y"}}})
    assert e.code == 400
    assert e.message == "unknown patch type: merge in map: map[$patch:merge x:y]"


def test_top_level_replace() -> None:
    out = smp.apply(live(), {"$patch": "replace", "metadata": {"name": "n"}}, S)
    assert out == {"metadata": {"name": "n"}}


def test_unknown_directive_value_is_400() -> None:
    e = err({"metadata": {"labels": {"$patch": "explode"}}})
    assert e.code == 400
    assert e.message == "unknown patch type: explode in map: map[$patch:explode]"


def test_unknown_directive_key_is_400() -> None:
    assert err({"spec": {"$frobnicate": 1}}).code == 400


def test_any_field_merges_as_plain_map() -> None:
    orig = live()
    orig["spec"]["extra"] = {"a": {"b": 1, "c": [1, 2]}, "$ref": "x"}
    out = smp.apply(orig, {"spec": {"extra": {"a": {"c": [3], "d": 4}, "$ref": "y"}}}, S)
    assert out["spec"]["extra"] == {"a": {"b": 1, "c": [3], "d": 4}, "$ref": "y"}


def test_unknown_struct_name_merges_plainly() -> None:
    out = smp.apply({"a": {"b": [1]}, "c": 1}, {"a": {"b": [2]}, "c": None}, "no.such.Struct")
    assert out == {"a": {"b": [2]}}


def test_non_dict_patch_is_400() -> None:
    with pytest.raises(StatusError) as e:
        smp.apply(live(), [1], S)  # type: ignore[arg-type]
    assert e.value.code == 400


# -- lists ----------------------------------------------------------------------------------------


def test_list_without_strategy_replaced() -> None:
    out = smp.apply(live(), {"spec": {"tolerations": [{"key": "b"}]}}, S)
    assert out["spec"]["tolerations"] == [{"key": "b"}]


def test_primitive_list_without_strategy_replaced() -> None:
    out = smp.apply(live(), {"spec": {"containers": [{"name": "sidecar", "args": ["x"]}]}}, S)
    assert out["spec"]["containers"][1]["args"] == ["x"]


def test_merge_by_key_merges_matching_item() -> None:
    out = smp.apply(live(), {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}, S)
    assert names(out) == ["nginx", "sidecar"]
    c = out["spec"]["containers"][0]
    assert c["image"] == "nginx:1.27"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]  # untouched fields stay


def test_merge_by_key_new_item_goes_before_server_only_items_like_upstream() -> None:
    # upstream places a new item ahead of live items the patch does not mention
    out = smp.apply(live(), {"spec": {"containers": [{"name": "redis", "image": "redis"}]}}, S)
    assert names(out) == ["redis", "nginx", "sidecar"]


def test_merge_by_key_keeps_live_order_for_existing_items() -> None:
    out = smp.apply(
        live(), {"spec": {"containers": [{"name": "sidecar", "image": "b2"}, {"name": "nginx", "image": "n2"}]}}, S
    )
    # items named by the patch keep the patch order among themselves
    assert names(out) == ["sidecar", "nginx"]


def test_nested_merge_env_and_ports() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "nginx",
                    "env": [{"name": "B", "value": "3"}],
                    "ports": [{"containerPort": 443, "protocol": "TCP"}],
                }
            ]
        }
    }
    c = smp.apply(live(), patch, S)["spec"]["containers"][0]
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert [p["containerPort"] for p in c["ports"]] == [443, 80]


def test_list_item_delete_directive() -> None:
    out = smp.apply(live(), {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}, S)
    assert names(out) == ["nginx"]


def test_list_item_delete_of_absent_item_is_noop() -> None:
    out = smp.apply(live(), {"spec": {"containers": [{"name": "ghost", "$patch": "delete"}]}}, S)
    assert names(out) == ["nginx", "sidecar"]


def test_list_replace_directive() -> None:
    out = smp.apply(live(), {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}, S)
    assert out["spec"]["containers"] == [{"name": "only", "image": "x"}]


def test_list_merge_directive_rejected_like_upstream() -> None:
    e = err({"spec": {"containers": [{"$patch": "merge"}]}})
    assert e.code == 400
    assert "merging lists cannot yet be specified" in e.message


def test_merge_key_missing_in_patch_item_is_400() -> None:
    e = err({"spec": {"containers": [{"image": "x"}]}})
    assert e.code == 400
    assert "does not contain declared merge key: name" in e.message


def test_delete_item_without_merge_key_is_400() -> None:
    assert err({"spec": {"containers": [{"$patch": "delete"}]}}).code == 400


def test_list_of_lists_is_422() -> None:
    orig = live()
    orig["metadata"]["finalizers"] = [["a"]]
    assert err({"metadata": {"finalizers": [["b"]]}}, orig).code == 422


def test_merge_list_into_absent_list() -> None:
    orig = live()
    del orig["spec"]["containers"][1]["args"]
    out = smp.apply(
        orig,
        {
            "spec": {
                "containers": [
                    {"name": "sidecar", "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}]}
                ]
            }
        },
        S,
    )
    assert out["spec"]["containers"][1]["env"] == [{"name": "X", "value": "1"}]


def test_finalizers_union_and_delete_from_primitive_list() -> None:
    out = smp.apply(live(), {"metadata": {"finalizers": ["c", "a"]}}, S)
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b", "c"]
    assert len(out["metadata"]["finalizers"]) == 3
    out = smp.apply(live(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, S)
    assert out["metadata"]["finalizers"] == ["b"]


def test_delete_from_primitive_list_bad_shape() -> None:
    assert err({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}).code == 400


def test_delete_from_primitive_list_on_absent_list_noop() -> None:
    out = smp.apply(live(), {"metadata": {"$deleteFromPrimitiveList/labels2": ["a"]}}, S)
    assert "labels2" not in out["metadata"]


def test_primitive_list_mixed_element_types_is_400() -> None:
    # upstream refuses to merge lists whose elements differ in type (bool vs number here)
    assert err({"metadata": {"finalizers": [True]}}, {"metadata": {"finalizers": [1]}}).code == 400


def test_primitive_list_union_deduplicates() -> None:
    out = smp.apply({"metadata": {"finalizers": ["a", "a", "b"]}}, {"metadata": {"finalizers": ["b", "c"]}}, S)
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]


# -- $setElementOrder ------------------------------------------------------------------------------


def test_set_element_order_reorders() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
            "containers": [{"name": "nginx", "image": "nginx:2"}],
        }
    }
    out = smp.apply(live(), patch, S)
    assert names(out) == ["sidecar", "nginx"]
    assert out["spec"]["containers"][1]["image"] == "nginx:2"
    assert "$setElementOrder/containers" not in out["spec"]


def test_set_element_order_adds_new_item_in_position() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "redis"}, {"name": "sidecar"}],
            "containers": [{"name": "redis", "image": "redis"}],
        }
    }
    assert names(smp.apply(live(), patch, S)) == ["nginx", "redis", "sidecar"]


def test_set_element_order_with_deletion() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"name": "sidecar", "$patch": "delete"}],
        }
    }
    assert names(smp.apply(live(), patch, S)) == ["nginx"]


def test_set_element_order_without_patch_list() -> None:
    patch = {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}}
    assert names(smp.apply(live(), patch, S)) == ["sidecar", "nginx"]


def test_set_element_order_primitives() -> None:
    patch = {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}
    assert smp.apply(live(), patch, S)["metadata"]["finalizers"] == ["c", "b", "a"]


def test_set_element_order_server_only_items_kept_near_live_position() -> None:
    orig = live()
    orig["spec"]["containers"].append({"name": "third", "image": "t"})
    patch = {"spec": {"$setElementOrder/containers": [{"name": "third"}, {"name": "nginx"}]}}
    # sidecar is server-only: upstream interleaves it by live position
    assert names(smp.apply(orig, patch, S)) == ["sidecar", "third", "nginx"]


def test_set_element_order_mismatch_is_400() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"name": "other", "image": "x"}],
        }
    }
    assert err(patch).code == 400


def test_set_element_order_bad_shape() -> None:
    assert err({"spec": {"$setElementOrder/containers": {"name": "x"}}}).code == 400
    assert err({"spec": {"$setElementOrder/containers": [{"noname": "x"}], "containers": [{"name": "a"}]}}).code == 400


# -- $retainKeys ------------------------------------------------------------------------------------


def test_retain_keys_drops_unlisted_keys() -> None:
    # kubectl apply switching a deployment strategy to Recreate
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    out = smp.apply(live(), patch, S)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_on_volume_items() -> None:
    orig = live()
    orig["spec"]["volumes"] = [{"name": "data", "hostPath": {"path": "/x"}}]
    patch = {"spec": {"volumes": [{"$retainKeys": ["emptyDir", "name"], "name": "data", "emptyDir": {}}]}}
    assert smp.apply(orig, patch, S)["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_retain_keys_content_mismatch_is_400() -> None:
    e = err({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": "1"}}}})
    assert e.code == 400
    assert e.message == "invalid patch format of retainKeys"


def test_retain_keys_bad_format_is_400() -> None:
    assert err({"spec": {"strategy": {"$retainKeys": "type"}}}).code == 400


# -- shapes kubectl sends ---------------------------------------------------------------------------


def test_kubectl_set_image() -> None:
    patch = {"spec": {"containers": [{"image": "nginx:1.27", "name": "nginx"}]}}
    out = smp.apply(live(), patch, S)
    assert [c["image"] for c in out["spec"]["containers"]] == ["nginx:1.27", "busybox"]


def test_kubectl_client_side_apply_three_way_patch() -> None:
    # last-applied had nginx with env A,B; the new manifest changes the image, drops env B,
    # adds env C and a label; kubectl computes this patch
    patch = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"...": 1}\n'},
            "labels": {"tier": "fe"},
        },
        "spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                    "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                    "image": "nginx:1.27",
                    "name": "nginx",
                }
            ],
            "replicas": 3,
        },
    }
    out = smp.apply(live(), patch, S)
    c = out["spec"]["containers"][0]
    assert names(out) == ["nginx", "sidecar"]
    assert c["image"] == "nginx:1.27"
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in out["metadata"]["annotations"]


def test_kubectl_apply_removes_container() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"$patch": "delete", "name": "sidecar"}],
        }
    }
    assert names(smp.apply(live(), patch, S)) == ["nginx"]


def test_kubectl_rollout_restart() -> None:
    orig = {"spec": {"extra": {"template": {"metadata": {"labels": {"app": "web"}}}}}}
    patch = {
        "spec": {
            "extra": {
                "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}
            }
        }
    }
    out = smp.apply(orig, patch, S)
    assert out["spec"]["extra"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"},
    }


def test_kubectl_edit_patch_removes_field_and_env() -> None:
    # kubectl edit computes a two-way SMP: removed map keys as null, removed merge items as delete
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}], "name": "nginx"},
                {"args": None, "name": "sidecar"},
            ],
            "nodeSelector": None,
        }
    }
    out = smp.apply(live(), patch, S)
    assert out["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert "args" not in out["spec"]["containers"][1]
    assert "nodeSelector" not in out["spec"]


def test_kubectl_patch_finalizers_removal_via_apply() -> None:
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "$setElementOrder/finalizers": ["a"]}}
    assert smp.apply(live(), patch, S)["metadata"]["finalizers"] == ["a"]


# -- real declarations -----------------------------------------------------------------------------------


def _real() -> str:
    try:
        import kubeha.api.apps.v1
        import kubeha.api.core.pod  # noqa: F401
    except Exception:  # pragma: no cover - declarations still being written
        pytest.skip("real type declarations unavailable")
    return "io.k8s.api.apps.v1.Deployment"


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                    "volumes": [{"name": "data", "hostPath": {"path": "/srv", "type": ""}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                },
            },
        },
    }


def test_real_deployment_set_image_and_restart() -> None:
    s = _real()
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}},
                "spec": {"containers": [{"image": "nginx:1.27", "name": "nginx"}]},
            }
        }
    }
    out = smp.apply(deployment(), patch, s)
    t = out["spec"]["template"]
    assert t["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}
    assert t["metadata"]["labels"] == {"app": "web"}
    assert t["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert t["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_real_deployment_client_side_apply_switch_to_recreate() -> None:
    s = _real()
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "$setElementOrder/volumes": [{"name": "data"}],
                    "containers": [
                        {
                            "$setElementOrder/ports": [{"containerPort": 8080}],
                            "name": "nginx",
                            "ports": [
                                {"containerPort": 8080, "protocol": "TCP"},
                                {"$patch": "delete", "containerPort": 80},
                            ],
                        }
                    ],
                    "volumes": [{"$retainKeys": ["emptyDir", "name"], "emptyDir": {}, "name": "data"}],
                    "tolerations": [{"key": "b", "operator": "Exists"}],
                }
            },
        }
    }
    out = smp.apply(deployment(), patch, s)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    ps = out["spec"]["template"]["spec"]
    assert ps["containers"][0]["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert ps["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert ps["tolerations"] == [{"key": "b", "operator": "Exists"}]  # atomic: replaced
    assert ps["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]


def test_real_deployment_add_container_and_env() -> None:
    s = _real()
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "nginx", "env": [{"name": "MODE", "value": "prod"}]},
                        {"name": "redis", "image": "redis:7"},
                    ]
                }
            }
        }
    }
    cs = smp.apply(deployment(), patch, s)["spec"]["template"]["spec"]["containers"]
    assert {c["name"] for c in cs} == {"nginx", "redis"}
    nginx = next(c for c in cs if c["name"] == "nginx")
    assert nginx["env"] == [{"name": "MODE", "value": "prod"}]
    assert nginx["image"] == "nginx:1.25"


# -- orderings recorded from upstream (kubectl 1.32 `patch --local --type strategic`) -----------------


def three() -> dict[str, Any]:
    return {
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {
            "containers": [
                {
                    "name": "nginx",
                    "env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                    "ports": [{"containerPort": 80}, {"containerPort": 443}],
                },
                {"name": "sidecar"},
                {"name": "third"},
            ]
        },
    }


def test_upstream_order_patch_items_reordered_with_new_item() -> None:
    patch = {
        "spec": {"containers": [{"name": "third", "image": "t2"}, {"name": "new"}, {"name": "nginx", "image": "n"}]}
    }
    assert names(smp.apply(three(), patch, S)) == ["sidecar", "third", "new", "nginx"]


def test_upstream_order_set_element_order_with_new_item() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "third"}, {"name": "x"}, {"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"name": "x", "image": "x"}],
        }
    }
    assert names(smp.apply(three(), patch, S)) == ["third", "x", "nginx", "sidecar"]


def test_upstream_order_nested_set_element_order_with_delete() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "nginx",
                    "$setElementOrder/env": [{"name": "C"}, {"name": "Z"}, {"name": "A"}],
                    "env": [{"name": "Z", "value": "z"}, {"name": "B", "$patch": "delete"}],
                }
            ]
        }
    }
    out = smp.apply(three(), patch, S)
    assert [e["name"] for e in out["spec"]["containers"][0]["env"]] == ["C", "Z", "A"]


def test_upstream_order_new_port_first() -> None:
    out = smp.apply(three(), {"spec": {"containers": [{"name": "nginx", "ports": [{"containerPort": 8080}]}]}}, S)
    assert [p["containerPort"] for p in out["spec"]["containers"][0]["ports"]] == [8080, 80, 443]


def test_upstream_order_primitive_delete_add_and_order() -> None:
    patch = {
        "metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a"],
            "$setElementOrder/finalizers": ["b", "c"],
            "finalizers": ["c"],
        }
    }
    assert smp.apply(three(), patch, S)["metadata"]["finalizers"] == ["b", "c"]
