"""Test-only struct declarations for the codec tests (decode, protobuf, openapi).

Two families, both under names no real declaration uses:

* ``test.codec.*``: a small kind exercising every field type of the schema DSL;
* ``test.mimic.*``: cut-down copies of ConfigMap / Secret / Namespace / Deployment with upstream's
  field numbers (a subset: unlisted numbers must be skipped by the decoder). They are not in
  ``schema.KINDS``; tests patch ``MIMIC_KINDS`` in temporarily so the real kinds stay untouched.
"""

from __future__ import annotations

from kubeha.api import schema
from kubeha.api.schema import (
    ANY,
    BOOL,
    BYTES,
    DOUBLE,
    INT32,
    INT64,
    INT_OR_STRING,
    MICROTIME,
    QUANTITY,
    RAW,
    STRING,
    TIME,
    Field,
    Struct,
    f,
    list_of,
    map_of,
    type_meta_fields,
)

GROUP = "codec.test.kubeha.io"
FOO = "test.codec.Foo"
T = "test.codec."
M = "test.mimic."


def _declare(name: str, doc: str, *fields: Field, gvk: tuple[str, str, str] | None = None) -> Struct:
    if name in schema.STRUCTS:  # imported twice under different module names: keep the first
        return schema.STRUCTS[name]
    if gvk is not None:
        return schema.struct(name, doc, *fields, gvk=gvk)
    s = Struct(name=name, doc=doc, fields=list(fields))
    schema.STRUCTS[name] = s
    return s


_declare(
    T + "Meta",
    "Cut-down object metadata.",
    f("name", 1, STRING, "Name of the object.", required=True),
    f("namespace", 3, STRING, "Namespace of the object."),
    f("creationTimestamp", 8, TIME, "When the object was created."),
    f("deletionGracePeriodSeconds", 10, INT64, "Grace period.", pointer=True),
    f("labels", 11, map_of(STRING), "Labels."),
)
_declare(
    T + "Item",
    "One item.",
    f("name", 1, STRING, "Item name.", required=True),
    f("value", 2, INT32, "Item value.", default=5),
    f("opts", 3, map_of(T + "Opt"), "Options by name."),
    # a Go embedded struct: its own message in protobuf, inlined fields in JSON
    f("", 4, T + "Handler", "protobuf-only embedding"),
    f("cmd", 0, STRING, "Command (from the embedded Handler)."),
    f("args", 0, list_of(STRING), "Arguments (from the embedded Handler)."),
)
_declare(
    T + "Handler",
    "Embedded handler.",
    f("cmd", 1, STRING, "Command."),
    f("args", 2, list_of(STRING), "Arguments."),
)
_declare(
    T + "Opt",
    "An option.",
    f("on", 1, BOOL, "Whether it is on."),
    f("level", 2, STRING, "Level.", default="low", enum=("low", "high")),
)
_declare(
    T + "Spec",
    "Spec of a Foo.",
    f("replicas", 1, INT32, "Desired count.", pointer=True, default=1),
    f("paused", 2, BOOL, "Paused."),
    f(
        "items",
        3,
        list_of(T + "Item"),
        "Items.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f("ratio", 4, DOUBLE, "A ratio."),
    f("data", 5, map_of(BYTES), "Binary data."),
    f("qty", 6, QUANTITY, "A quantity."),
    f("port", 7, INT_OR_STRING, "A port."),
    f("raw", 8, RAW, "Embedded object."),
    f("when", 9, MICROTIME, "A micro time."),
    f("tags", 10, list_of(STRING), "Tags.", list_type="set"),
    f("nums", 11, list_of(INT64), "Numbers."),
    f("free", 12, ANY, "Free-form JSON."),
    f("mode", 13, STRING, "Mode.", enum=("Fast", "Slow")),
    f("big", 14, INT64, "A big number."),
    f("strategy", 15, STRING, "Strategy.", default="RollingUpdate"),
    f("next", 16, T + "Spec", "A nested spec (recursion).", pointer=True),
    f("groups", 17, map_of(list_of(STRING)), "Lists by name (wrapper messages)."),
    f("flags", 18, list_of(BOOL), "Flags."),
    f("weights", 19, list_of(DOUBLE), "Weights."),
    f("limits", 20, map_of(QUANTITY), "Limits."),
    f("zero", 21, INT32, "Kept when zero.", pointer=True),
    f("empty", 22, STRING, "Kept when empty.", pointer=True),
)
_declare(
    T + "Status",
    "Status of a Foo.",
    f("phase", 1, STRING, "Phase."),
    f("observed", 2, INT64, "Observed generation."),
)
_declare(
    FOO,
    "A test kind.",
    *type_meta_fields(),
    f("metadata", 1, T + "Meta", "Standard metadata."),
    f("spec", 2, T + "Spec", "Spec."),
    f("status", 3, T + "Status", "Status."),
    gvk=(GROUP, "v1", "Foo"),
)

# -- mimics of real kinds (upstream field numbers) ------------------------------------------------

_declare(
    M + "ObjectMeta",
    "ObjectMeta subset.",
    f("name", 1, STRING),
    f("generateName", 2, STRING),
    f("namespace", 3, STRING),
    f("uid", 5, STRING),
    f("resourceVersion", 6, STRING),
    f("generation", 7, INT64),
    f("creationTimestamp", 8, TIME),
    f("deletionTimestamp", 9, TIME, pointer=True),
    f("labels", 11, map_of(STRING)),
    f("annotations", 12, map_of(STRING)),
    f("finalizers", 14, list_of(STRING)),
)
_declare(
    M + "ConfigMap",
    "ConfigMap.",
    *type_meta_fields(),
    f("metadata", 1, M + "ObjectMeta"),
    f("data", 2, map_of(STRING)),
    f("binaryData", 3, map_of(BYTES)),
    f("immutable", 4, BOOL, pointer=True),
)
_declare(
    M + "Secret",
    "Secret.",
    *type_meta_fields(),
    f("metadata", 1, M + "ObjectMeta"),
    f("data", 2, map_of(BYTES)),
    f("type", 3, STRING),
    f("stringData", 4, map_of(STRING)),
    f("immutable", 5, BOOL, pointer=True),
)
_declare(M + "NamespaceSpec", "NamespaceSpec.", f("finalizers", 1, list_of(STRING)))
_declare(M + "NamespaceStatus", "NamespaceStatus.", f("phase", 1, STRING))
_declare(
    M + "Namespace",
    "Namespace.",
    *type_meta_fields(),
    f("metadata", 1, M + "ObjectMeta"),
    f("spec", 2, M + "NamespaceSpec"),
    f("status", 3, M + "NamespaceStatus"),
)
_declare(M + "LabelSelector", "LabelSelector.", f("matchLabels", 1, map_of(STRING)))
_declare(M + "ResourceRequirements", "Resources.", f("limits", 1, map_of(QUANTITY)), f("requests", 2, map_of(QUANTITY)))
_declare(
    M + "Container",
    "Container.",
    f("name", 1, STRING),
    f("image", 2, STRING),
    f("command", 3, list_of(STRING)),
    f("resources", 8, M + "ResourceRequirements"),
    f("imagePullPolicy", 14, STRING),
)
_declare(
    M + "PodSpec",
    "PodSpec.",
    f("containers", 2, list_of(M + "Container")),
    f("restartPolicy", 3, STRING),
    f("terminationGracePeriodSeconds", 4, INT64, pointer=True),
    f("dnsPolicy", 6, STRING),
)
_declare(M + "PodTemplateSpec", "PodTemplateSpec.", f("metadata", 1, M + "ObjectMeta"), f("spec", 2, M + "PodSpec"))
_declare(M + "DeploymentStrategy", "DeploymentStrategy.", f("type", 1, STRING))
_declare(
    M + "DeploymentSpec",
    "DeploymentSpec.",
    f("replicas", 1, INT32, pointer=True),
    f("selector", 2, M + "LabelSelector", pointer=True),
    f("template", 3, M + "PodTemplateSpec"),
    f("strategy", 4, M + "DeploymentStrategy"),
    f("minReadySeconds", 5, INT32),
    f("revisionHistoryLimit", 6, INT32, pointer=True),
    f("paused", 7, BOOL),
    f("progressDeadlineSeconds", 9, INT32, pointer=True),
)
_declare(
    M + "DeploymentStatus",
    "DeploymentStatus.",
    f("observedGeneration", 1, INT64),
    f("replicas", 2, INT32),
    f("updatedReplicas", 3, INT32),
    f("availableReplicas", 4, INT32),
    f("unavailableReplicas", 5, INT32),
    f("readyReplicas", 7, INT32),
)
_declare(
    M + "Deployment",
    "Deployment.",
    *type_meta_fields(),
    f("metadata", 1, M + "ObjectMeta"),
    f("spec", 2, M + "DeploymentSpec"),
    f("status", 3, M + "DeploymentStatus"),
)

MIMIC_KINDS = {
    ("", "v1", "ConfigMap"): schema.STRUCTS[M + "ConfigMap"],
    ("", "v1", "Secret"): schema.STRUCTS[M + "Secret"],
    ("", "v1", "Namespace"): schema.STRUCTS[M + "Namespace"],
    ("apps", "v1", "Deployment"): schema.STRUCTS[M + "Deployment"],
}

# What the kubectl 1.32 fixtures decode to (tests/unit/fixtures/protobuf/*.bin): the JSON form, with
# Go omitempty zero values dropped and non-pointer structs kept.
KUBECTL_EXPECTED = {
    "configmap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}},
    "secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "Yg=="}},
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {}, "status": {}},
    "deployment": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
            },
            "strategy": {},
        },
        "status": {},
    },
}
