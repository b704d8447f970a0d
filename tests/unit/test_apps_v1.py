"""apps/v1 declarations, defaulting, validation, and the autoscaling/v1 Scale helpers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeha.api import registry
from kubeha.api.autoscaling import v1 as autoscaling
from kubeha.api.schema import STRUCTS, ListOf, Ref

registry.load_all()

from kubeha.api.apps import v1 as apps  # noqa: E402

P = "io.k8s.api.apps.v1."


def deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]},
            },
        },
    }
    base["spec"].update(spec)
    return base


def defaulted(obj: dict[str, Any], strategy: registry.Strategy) -> dict[str, Any]:
    strategy.default(obj)
    return obj


def fields(causes: list[Any]) -> list[str]:
    return [c.field for c in causes]


# -- declarations -----------------------------------------------------------------------------------


def test_protobuf_numbers_follow_upstream() -> None:
    spec = STRUCTS[P + "DeploymentSpec"]
    assert spec.by_json["progressDeadlineSeconds"].number == 9
    assert spec.by_json["paused"].number == 7
    cond = STRUCTS[P + "DeploymentCondition"]
    assert cond.by_json["lastUpdateTime"].number == 6
    assert cond.by_json["lastTransitionTime"].number == 7
    assert STRUCTS[P + "DeploymentStatus"].by_json["readyReplicas"].number == 7
    assert STRUCTS[P + "ReplicaSetSpec"].by_json["minReadySeconds"].number == 4
    assert STRUCTS[P + "DaemonSetSpec"].by_json["revisionHistoryLimit"].number == 6
    assert STRUCTS[P + "StatefulSetSpec"].by_json["ordinals"].number == 11


def test_strategic_merge_metadata() -> None:
    conditions = STRUCTS[P + "DeploymentStatus"].by_json["conditions"]
    assert (conditions.strategy, conditions.merge_key, conditions.list_type) == ("merge", "type", "map")
    assert STRUCTS[P + "DeploymentSpec"].by_json["strategy"].strategy == "retainKeys"
    assert STRUCTS[P + "DeploymentSpec"].by_json["replicas"].pointer


def test_statefulset_claim_templates_resolve_to_a_pvc() -> None:
    field = STRUCTS[P + "StatefulSetSpec"].by_json["volumeClaimTemplates"]
    assert isinstance(field.type, ListOf) and isinstance(field.type.item, Ref)
    pvc = field.type.item.struct
    assert pvc.gvk == ("", "v1", "PersistentVolumeClaim")
    assert "resources" in pvc.by_json["spec"].type.struct.by_json  # type: ignore[union-attr]


def test_registrations() -> None:
    deploy = registry.lookup("apps", "v1", "deployments")
    assert deploy is not None and deploy.short_names == ("deploy",) and deploy.categories == ("all",)
    scale = deploy.subresource("scale")
    assert scale is not None and (scale.kind, scale.group, scale.version) == ("Scale", "autoscaling", "v1")
    assert deploy.subresource("status") is not None and deploy.strategy.has_status and deploy.strategy.track_generation
    ds = registry.lookup("apps", "v1", "daemonsets")
    assert ds is not None and ds.subresource("scale") is None and ds.short_names == ("ds",)
    for res, short in (("replicasets", "rs"), ("statefulsets", "sts")):
        info = registry.lookup("apps", "v1", res)
        assert info is not None and info.short_names == (short,) and info.subresource("scale") is not None
    cr = registry.lookup("apps", "v1", "controllerrevisions")
    assert cr is not None and not cr.strategy.track_generation


# -- deployments ------------------------------------------------------------------------------------


def test_deployment_defaults() -> None:
    obj = defaulted(deployment(), apps.DEPLOYMENTS.strategy)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"  # pod defaults applied to the template


def test_deployment_defaults_keep_client_values() -> None:
    obj = defaulted(deployment(replicas=0, strategy={"type": "Recreate"}), apps.DEPLOYMENTS.strategy)
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_valid_deployment_has_no_causes() -> None:
    s = apps.DEPLOYMENTS.strategy
    assert s.validate(defaulted(deployment(), s)) == []


def test_selector_must_match_template_labels() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = defaulted(deployment(selector={"matchLabels": {"app": "other"}}), s)
    causes = s.validate(obj)
    assert [(c.field, c.reason) for c in causes] == [("spec.template.metadata.labels", "FieldValueInvalid")]
    assert "`selector` does not match template `labels`" in causes[0].message


def test_selector_required_and_non_empty() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = defaulted(deployment(), s)
    del obj["spec"]["selector"]
    assert ("spec.selector", "FieldValueRequired") in [(c.field, c.reason) for c in s.validate(obj)]
    obj["spec"]["selector"] = {}
    causes = s.validate(obj)
    assert "spec.selector" in fields(causes)
    assert any("empty selector is invalid" in c.message for c in causes)


def test_match_expressions_are_checked_and_matched() -> None:
    s = apps.DEPLOYMENTS.strategy
    sel = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}
    assert s.validate(defaulted(deployment(selector=sel), s)) == []
    bad = {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["web"]}]}
    assert "spec.selector.matchExpressions[0].operator" in fields(s.validate(defaulted(deployment(selector=bad), s)))


def test_replicas_must_be_non_negative() -> None:
    s = apps.DEPLOYMENTS.strategy
    assert "spec.replicas" in fields(s.validate(defaulted(deployment(replicas=-1), s)))


def test_restart_policy_must_be_always() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = defaulted(deployment(), s)
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    causes = s.validate(obj)
    assert [(c.field, c.reason) for c in causes] == [("spec.template.spec.restartPolicy", "FieldValueNotSupported")]


def test_pod_spec_is_validated_under_template_path() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = defaulted(deployment(), s)
    obj["spec"]["template"]["spec"]["containers"] = []
    assert any(f.startswith("spec.template.spec.containers") for f in fields(s.validate(obj)))


def test_rolling_update_cannot_be_zero_and_zero() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = defaulted(
        deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}), s
    )
    causes = s.validate(obj)
    assert fields(causes) == ["spec.strategy.rollingUpdate.maxUnavailable"]
    assert "may not be 0 when `maxSurge` is 0" in causes[0].message


def test_rolling_update_rejects_bad_percent_and_recreate_with_params() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = defaulted(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}), s)
    assert fields(s.validate(obj)) == ["spec.strategy.rollingUpdate.maxUnavailable"]
    obj = defaulted(deployment(), s)
    obj["spec"]["strategy"]["type"] = "Recreate"
    assert fields(s.validate(obj)) == ["spec.strategy.rollingUpdate"]


def test_progress_deadline_must_exceed_min_ready() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = defaulted(deployment(minReadySeconds=700), s)
    assert fields(s.validate(obj)) == ["spec.progressDeadlineSeconds"]


def test_selector_is_immutable() -> None:
    s = apps.DEPLOYMENTS.strategy
    old = defaulted(deployment(), s)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    assert s.validate_update(new, old) == []
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert fields(s.validate_update(new, old)) == ["spec.selector"]


def test_status_is_owned_by_the_subresource() -> None:
    s = apps.DEPLOYMENTS.strategy
    obj = deployment()
    obj["status"] = {"replicas": 3}
    s.prepare_for_create(obj)
    assert "status" not in obj
    assert fields(s.validate_status_update({"status": {"replicas": 1, "readyReplicas": 2}}, {})) == [
        "status.readyReplicas"
    ]


# -- other workloads --------------------------------------------------------------------------------


def test_daemonset_defaults_and_validation() -> None:
    s = apps.DAEMONSETS.strategy
    obj = deployment()
    obj["kind"] = "DaemonSet"
    s.default(obj)
    assert obj["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert "replicas" not in obj["spec"]
    assert s.validate(obj) == []
    obj["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = 0
    assert fields(s.validate(obj)) == ["spec.updateStrategy.rollingUpdate.maxUnavailable"]


def test_statefulset_defaults() -> None:
    s = apps.STATEFULSETS.strategy
    obj = defaulted(deployment(serviceName="web"), s)
    spec = obj["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert s.validate(obj) == []


def test_statefulset_update_limits_changed_fields() -> None:
    s = apps.STATEFULSETS.strategy
    old = defaulted(deployment(serviceName="web"), s)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert s.validate_update(new, old) == []
    new["spec"]["serviceName"] = "other"
    causes = s.validate_update(new, old)
    assert [(c.field, c.reason) for c in causes] == [("spec", "FieldValueForbidden")]


def test_replicaset_defaults_and_selector_check() -> None:
    s = apps.REPLICASETS.strategy
    obj = defaulted(deployment(), s)
    assert obj["spec"]["replicas"] == 1 and "strategy" not in obj["spec"]
    assert s.validate(obj) == []
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "nope"}
    assert fields(s.validate(obj)) == ["spec.template.metadata.labels"]


def test_controllerrevision_data_is_immutable() -> None:
    s = apps.CONTROLLERREVISIONS.strategy
    old = {"metadata": {"name": "r1"}, "data": {"a": 1}, "revision": 1}
    new = {"metadata": {"name": "r1"}, "data": {"a": 2}, "revision": 1}
    assert fields(s.validate_update(new, old)) == ["data"]
    assert fields(s.validate({"revision": -1})) == ["revision"]


# -- scale ------------------------------------------------------------------------------------------


def test_selector_string_orders_by_key() -> None:
    sel = {
        "matchLabels": {"tier": "web", "app": "x"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zz", "operator": "DoesNotExist"},
            {"key": "b", "operator": "Exists"},
            {"key": "c", "operator": "NotIn", "values": ["q"]},
        ],
    }
    assert autoscaling.selector_string(sel) == "app=x,b,c notin (q),env in (dev,prod),tier=web,!zz"
    assert autoscaling.selector_string({}) == ""
    assert autoscaling.selector_string(None) == ""


def test_scale_of_and_apply_scale() -> None:
    obj = deployment(replicas=3)
    obj["metadata"].update(uid="u1", resourceVersion="42", creationTimestamp="2024-01-01T00:00:00Z")
    obj["status"] = {"replicas": 2}
    scale = autoscaling.scale_of("Deployment", obj)
    assert scale == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u1",
            "resourceVersion": "42",
            "creationTimestamp": "2024-01-01T00:00:00Z",
        },
        "spec": {"replicas": 3},
        "status": {"replicas": 2, "selector": "app=web"},
    }
    autoscaling.apply_scale(obj, {"spec": {"replicas": 7}})
    assert obj["spec"]["replicas"] == 7
    autoscaling.apply_scale(obj, {"spec": {}})
    assert obj["spec"]["replicas"] == 0


@pytest.mark.parametrize(("replicas", "ok"), [(0, True), (5, True), (-1, False), ("3", False)])
def test_validate_scale(replicas: Any, ok: bool) -> None:
    causes = autoscaling.validate_scale({"spec": {"replicas": replicas}})
    assert (causes == []) is ok
    if not ok:
        assert causes[0].field == "spec.replicas"
