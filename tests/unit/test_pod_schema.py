"""Pod spec family and meta/v1 declarations, defaulting and pod validation."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

import kubeha.api.core.pod as pod
import kubeha.api.meta.v1  # noqa: F401 - registers meta structs
from kubeha.api import schema
from kubeha.api.schema import CORE, META


def _refs(t: schema.TypeSpec) -> list[str]:
    if isinstance(t, schema.Ref):
        return [t.name]
    if isinstance(t, schema.ListOf):
        return _refs(t.item)
    if isinstance(t, schema.MapOf):
        return _refs(t.value)
    return []


def _mine(name: str) -> bool:
    return name.startswith((META, CORE))


def test_every_reference_resolves() -> None:
    missing = [
        (s.name, fl.json, r)
        for s in list(schema.STRUCTS.values())
        if _mine(s.name)
        for fl in s.fields
        for r in _refs(fl.type)
        if r not in schema.STRUCTS
    ]
    assert missing == []


def test_well_known_field_numbers() -> None:
    st = schema.STRUCTS
    assert st[CORE + "PodSpec"].by_json["containers"].number == 2
    assert st[CORE + "PodSpec"].by_json["volumes"].number == 1
    assert st[CORE + "PodSpec"].by_json["initContainers"].number == 20
    assert st[CORE + "Container"].by_json["image"].number == 2
    assert st[CORE + "Container"].by_json["ports"].number == 6
    assert st[META + "ObjectMeta"].by_json["name"].number == 1
    assert st[META + "ObjectMeta"].by_json["labels"].number == 11
    assert st[META + "ObjectMeta"].by_json["managedFields"].number == 17
    assert st[META + "OwnerReference"].by_json["apiVersion"].number == 5
    assert st[CORE + "Pod"].by_json["spec"].number == 2
    assert st[CORE + "Pod"].by_json["apiVersion"].number == 0


def test_strategic_merge_metadata() -> None:
    spec = schema.STRUCTS[CORE + "PodSpec"].by_json
    assert (spec["containers"].strategy, spec["containers"].merge_key) == ("merge", "name")
    assert (spec["volumes"].strategy, spec["volumes"].merge_key) == ("merge,retainKeys", "name")
    assert spec["hostAliases"].merge_key == "ip"
    assert spec["tolerations"].strategy is None
    ctr = schema.STRUCTS[CORE + "Container"].by_json
    assert ctr["ports"].merge_key == "containerPort"
    assert ctr["ports"].map_keys == ("containerPort", "protocol")
    assert ctr["volumeMounts"].merge_key == "mountPath"
    assert ctr["env"].merge_key == "name"
    meta = schema.STRUCTS[META + "ObjectMeta"].by_json
    assert (meta["ownerReferences"].strategy, meta["ownerReferences"].merge_key) == ("merge", "uid")
    assert meta["finalizers"].strategy == "merge"
    assert schema.STRUCTS[CORE + "PodStatus"].by_json["conditions"].merge_key == "type"
    assert schema.STRUCTS[CORE + "PodStatus"].by_json["podIPs"].merge_key == "ip"


def test_kinds_and_pointers() -> None:
    assert schema.KINDS[("", "v1", "Pod")].name == CORE + "Pod"
    assert schema.KINDS[("", "v1", "Status")].name == META + "Status"
    assert schema.KINDS[("", "v1", "DeleteOptions")].name == META + "DeleteOptions"
    assert schema.STRUCTS[CORE + "PodSpec"].by_json["terminationGracePeriodSeconds"].pointer
    assert not schema.STRUCTS[CORE + "PodSpec"].by_json["hostNetwork"].pointer
    assert schema.STRUCTS[META + "DeleteOptions"].by_json["gracePeriodSeconds"].pointer
    assert schema.STRUCTS[CORE + "ResourceRequirements"].by_json["limits"].type == schema.map_of(schema.QUANTITY)


def test_inline_embeddings_are_flattened_with_protobuf_marker() -> None:
    vol = schema.STRUCTS[CORE + "Volume"]
    assert vol.by_json["emptyDir"].number == 0  # JSON-only in the flattened form
    marker = vol.by_json[""]
    assert marker.number == 2 and marker.type == schema.ref(CORE + "VolumeSource")
    assert schema.STRUCTS[CORE + "VolumeSource"].by_json["emptyDir"].number == 2
    probe = schema.STRUCTS[CORE + "Probe"]
    assert probe.by_json[""].number == 1 and "httpGet" in probe.by_json
    eph = schema.STRUCTS[CORE + "EphemeralContainer"]
    assert eph.by_json["targetContainerName"].number == 2 and "image" in eph.by_json
    sel = schema.STRUCTS[CORE + "ConfigMapKeySelector"]
    assert sel.by_json["name"].number == 0 and sel.by_json["key"].number == 2


def test_pod_spec_has_all_132_fields() -> None:
    fields = set(schema.STRUCTS[CORE + "PodSpec"].by_json)
    for name in ("ephemeralContainers", "hostUsers", "schedulingGates", "resourceClaims", "resources", "os"):
        assert name in fields


def test_schema_defaults() -> None:
    spec = schema.STRUCTS[CORE + "PodSpec"].by_json
    assert spec["restartPolicy"].default == "Always"
    assert spec["terminationGracePeriodSeconds"].default == 30
    assert schema.STRUCTS[CORE + "Probe"].by_json["periodSeconds"].default == 10
    assert schema.STRUCTS[CORE + "ContainerPort"].by_json["protocol"].default == "TCP"


# -- quantities ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1", Decimal(1)),
        ("1Gi", Decimal(2**30)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1k", Decimal(1000)),
        ("2e3", Decimal(2000)),
        ("1.5", Decimal("1.5")),
        (2, Decimal(2)),
        ("500u", Decimal("0.0005")),
    ],
)
def test_parse_quantity(text: str | int, value: Decimal) -> None:
    assert pod.parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "1Gb", "1..2", "--1", "1 Gi", None, True])
def test_parse_quantity_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        pod.parse_quantity(bad)


# -- defaulting ---------------------------------------------------------------------------------------


def _spec() -> dict:
    return {"containers": [{"name": "web", "image": "nginx"}]}


def test_default_pod_spec() -> None:
    spec = {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": 80}},
            },
            {"name": "side", "image": "busybox"},
            {"name": "dig", "image": "repo/x@sha256:abcd"},
        ],
        "volumes": [
            {"name": "s", "secret": {"secretName": "x"}},
            {"name": "h", "hostPath": {"path": "/tmp"}},
            {"name": "none"},
        ],
    }
    pod.default_pod_spec(spec)
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert "serviceAccountName" not in spec
    web, side, dig = spec["containers"]
    assert web["imagePullPolicy"] == "IfNotPresent"
    assert side["imagePullPolicy"] == "Always"
    assert dig["imagePullPolicy"] == "IfNotPresent"
    assert web["terminationMessagePath"] == "/dev/termination-log"
    assert web["terminationMessagePolicy"] == "File"
    assert web["ports"][0]["protocol"] == "TCP"
    probe = web["livenessProbe"]
    assert (probe["timeoutSeconds"], probe["periodSeconds"], probe["successThreshold"], probe["failureThreshold"]) == (
        1,
        10,
        1,
        3,
    )
    assert probe["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
    assert spec["volumes"][0]["secret"]["defaultMode"] == 420
    assert spec["volumes"][1]["hostPath"]["type"] == ""
    assert spec["volumes"][2]["emptyDir"] == {}
    again = copy.deepcopy(spec)
    pod.default_pod_spec(again)
    assert again == spec


def test_default_pod_only_fields() -> None:
    obj = {
        "spec": {
            "hostNetwork": True,
            "containers": [
                {"name": "a", "image": "x:1", "ports": [{"containerPort": 8080}], "resources": {"limits": {"cpu": "1"}}}
            ],
        }
    }
    pod.default_pod(obj)
    c = obj["spec"]["containers"][0]
    assert c["resources"]["requests"] == {"cpu": "1"}
    assert c["ports"][0]["hostPort"] == 8080
    assert obj["spec"]["enableServiceLinks"] is True


# -- validation ---------------------------------------------------------------------------------------


def _valid(**extra: object) -> dict:
    spec = _spec()
    spec.update(extra)
    pod.default_pod_spec(spec)
    return spec


def _fields(causes: list) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in causes]


def test_valid_spec_has_no_causes() -> None:
    spec = _valid(
        volumes=[{"name": "data", "emptyDir": {}}],
        tolerations=[{"operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoSchedule"}],
        nodeSelector={"kubernetes.io/os": "linux"},
    )
    spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    spec["containers"][0]["resources"] = {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert pod.validate_pod_spec(spec, "spec") == []


def test_containers_required() -> None:
    spec = _valid()
    spec["containers"] = []
    assert ("spec.containers", "FieldValueRequired") in _fields(pod.validate_pod_spec(spec, "spec"))


def test_container_names_and_image() -> None:
    spec = _valid(initContainers=[{"name": "web", "image": "x"}])
    spec["containers"].append({"name": "Bad_Name"})
    pod.default_pod_spec(spec)
    got = _fields(pod.validate_pod_spec(spec, "spec"))
    assert ("spec.containers[0].name", "FieldValueDuplicate") in got
    assert ("spec.containers[1].name", "FieldValueInvalid") in got
    assert ("spec.containers[1].image", "FieldValueRequired") in got


def test_ports_and_enums() -> None:
    spec = _valid(restartPolicy="Sometimes", dnsPolicy="Bogus")
    spec["containers"][0]["ports"] = [{"containerPort": 70000, "protocol": "ICMP"}]
    causes = pod.validate_pod_spec(spec, "spec")
    got = _fields(causes)
    assert ("spec.containers[0].ports[0].containerPort", "FieldValueInvalid") in got
    assert ("spec.containers[0].ports[0].protocol", "FieldValueNotSupported") in got
    assert ("spec.restartPolicy", "FieldValueNotSupported") in got
    assert ("spec.dnsPolicy", "FieldValueNotSupported") in got
    msg = next(c.message for c in causes if c.field == "spec.containers[0].ports[0].containerPort")
    assert msg == "Invalid value: 70000: must be between 1 and 65535, inclusive"
    msg = next(c.message for c in causes if c.field == "spec.restartPolicy")
    assert msg == 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'


def test_volumes_and_mounts() -> None:
    spec = _valid(volumes=[{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}, "hostPath": {"path": "/"}}])
    spec["containers"][0]["volumeMounts"] = [{"name": "missing", "mountPath": "/x"}]
    got = _fields(pod.validate_pod_spec(spec, "spec"))
    assert ("spec.volumes[1].name", "FieldValueDuplicate") in got
    assert ("spec.volumes[1].emptyDir", "FieldValueForbidden") in got  # hostPath comes first, as upstream
    assert ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound") in got


def test_resources() -> None:
    spec = _valid()
    spec["containers"][0]["resources"] = {"requests": {"cpu": "2", "memory": "lots"}, "limits": {"cpu": "1"}}
    causes = pod.validate_pod_spec(spec, "spec")
    got = _fields(causes)
    assert ("spec.containers[0].resources.requests[memory]", "FieldValueInvalid") in got
    msg = next(c.message for c in causes if c.field == "spec.containers[0].resources.requests[cpu]")
    assert msg == 'Invalid value: "2": must be less than or equal to cpu limit of 1'


def test_probe_handler_count() -> None:
    spec = _valid()
    spec["containers"][0]["readinessProbe"] = {}
    spec["containers"][0]["livenessProbe"] = {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}
    got = _fields(pod.validate_pod_spec(spec, "spec"))
    assert ("spec.containers[0].readinessProbe", "FieldValueRequired") in got
    assert ("spec.containers[0].livenessProbe.tcpSocket", "FieldValueForbidden") in got


def test_tolerations_and_node_selector() -> None:
    spec = _valid(
        tolerations=[{"key": "k", "operator": "Maybe"}, {"key": "k", "effect": "Sometimes"}, {"operator": "Equal"}],
        nodeSelector={"bad key!": "v"},
        terminationGracePeriodSeconds=-5,
    )
    got = _fields(pod.validate_pod_spec(spec, "spec"))
    assert ("spec.tolerations[0].operator", "FieldValueNotSupported") in got
    assert ("spec.tolerations[1].effect", "FieldValueNotSupported") in got
    assert ("spec.tolerations[2].operator", "FieldValueInvalid") in got
    assert ("spec.nodeSelector", "FieldValueInvalid") in got
    assert ("spec.terminationGracePeriodSeconds", "FieldValueInvalid") in got


def test_pod_update_allows_image_and_tolerations() -> None:
    old = _valid(tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["containers"][0]["image"] = "nginx:2"
    new["tolerations"].append({"key": "b", "operator": "Exists"})
    new["activeDeadlineSeconds"] = 100
    assert pod.validate_pod_spec_update(new, old, "spec") == []


def test_pod_update_forbids_other_changes() -> None:
    old = _valid()
    new = copy.deepcopy(old)
    new["containers"][0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    causes = pod.validate_pod_spec_update(new, old, "spec")
    assert [(c.field, c.reason) for c in causes] == [("spec", "FieldValueForbidden")]
    assert causes[0].message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    )


def test_pod_update_ignores_zero_value_differences() -> None:
    old = _valid()
    new = copy.deepcopy(old)
    new["hostNetwork"] = False
    new["containers"][0]["resources"] = {}
    assert pod.validate_pod_spec_update(new, old, "spec") == []


def test_pod_update_tolerations_removal_forbidden() -> None:
    old = _valid(tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["tolerations"] = []
    assert ("spec.tolerations", "FieldValueForbidden") in _fields(pod.validate_pod_spec_update(new, old, "spec"))
