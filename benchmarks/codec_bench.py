"""The modelling-library measurement: plain dicts + orjson vs msgspec vs pydantic, and protobuf decoding.

Run: ``.venv/bin/python benchmarks/codec_bench.py [--rounds N]``. Prints median ops/s of
bytes -> model -> bytes for a realistic Pod and Deployment, and the ratio to orjson-dict, then
protobuf request decoding with our hand-written wire reader vs dynamic ``protobuf``-runtime
messages built from the same schema.

The msgspec Structs and pydantic models are generated from ``kubeha.api.schema`` (every field of
every struct reachable from the kind, all optional), i.e. the model each library would need to
carry the same information as our declarations.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

import orjson

from kubeha.api import decode, protobuf, registry, schema
from kubeha.api.schema import ListOf, MapOf, Obj, Ref, Scalar, TypeSpec

POD: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-7d4b9c8f6d-x2k9p",
        "generateName": "web-7d4b9c8f6d-",
        "namespace": "default",
        "uid": "5f1c2a9e-1b7d-4c3a-9e2f-8a6b4d3c2e1f",
        "resourceVersion": "123456",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"},
        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d4b9c8f6d",
                "uid": "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    },
    "spec": {
        "volumes": [
            {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
            {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "creds", "secret": {"secretName": "web-creds", "defaultMode": 256}},
        ],
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "command": ["nginx"],
                "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [
                    {"name": "MODE", "value": "production"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {
                        "name": "PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "web-creds", "key": "password"}},
                    },
                ],
                "resources": {
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/nginx/conf.d", "readOnly": True},
                    {"name": "cache", "mountPath": "/var/cache/nginx"},
                ],
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                    "initialDelaySeconds": 5,
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "tcpSocket": {"port": "http"},
                    "timeoutSeconds": 1,
                    "periodSeconds": 5,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            },
            {
                "name": "exporter",
                "image": "nginx/nginx-prometheus-exporter:1.1",
                "args": ["--nginx.scrape-uri=http://localhost:8080/stub_status"],
                "ports": [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}],
                "resources": {
                    "limits": {"cpu": "100m", "memory": "64Mi"},
                    "requests": {"cpu": "10m", "memory": "32Mi"},
                },
                "livenessProbe": {
                    "exec": {"command": ["/bin/sh", "-c", "true"]},
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            },
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "serviceAccountName": "web",
        "serviceAccount": "web",
        "nodeName": "worker-1",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 101, "fsGroup": 101},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ],
        "priority": 1,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    },
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:07Z"},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2024-05-01T10:00:07Z"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"},
        ],
        "hostIP": "192.168.10.11",
        "podIP": "10.244.1.17",
        "podIPs": [{"ip": "10.244.1.17"}],
        "startTime": "2024-05-01T10:00:00Z",
        "containerStatuses": [
            {
                "name": "exporter",
                "state": {"running": {"startedAt": "2024-05-01T10:00:03Z"}},
                "ready": True,
                "restartCount": 1,
                "image": "nginx/nginx-prometheus-exporter:1.1",
                "imageID": "docker-pullable://nginx/nginx-prometheus-exporter@sha256:0123abcd",
                "containerID": "docker://abcdef0123456789",
                "started": True,
            },
            {
                "name": "web",
                "state": {"running": {"startedAt": "2024-05-01T10:00:02Z"}},
                "ready": True,
                "restartCount": 2,
                "image": "nginx:1.25",
                "imageID": "docker-pullable://nginx@sha256:4567cdef",
                "containerID": "docker://0123456789abcdef",
                "started": True,
            },
        ],
        "qosClass": "Burstable",
    },
}

DEPLOYMENT: Obj = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "uid": "9e8d7c6b-5a4f-3e2d-1c0b-a9f8e7d6c5b4",
        "resourceVersion": "123400",
        "generation": 3,
        "creationTimestamp": "2024-05-01T09:00:00Z",
        "labels": {"app": "web"},
        "annotations": {"deployment.kubernetes.io/revision": "2"},
    },
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "frontend"}},
            "spec": copy.deepcopy(POD["spec"]),
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    },
    "status": {
        "observedGeneration": 3,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2024-05-01T10:00:07Z",
                "lastTransitionTime": "2024-05-01T10:00:07Z",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": "2024-05-01T10:00:07Z",
                "lastTransitionTime": "2024-05-01T09:00:00Z",
                "reason": "NewReplicaSetAvailable",
                "message": 'ReplicaSet "web-7d4b9c8f6d" has successfully progressed.',
            },
        ],
    },
}
DEPLOYMENT["spec"]["template"]["spec"].pop("nodeName")


# -- helpers -----------------------------------------------------------------------------------------


def reachable(root: str, inline: bool = False) -> list[str]:
    """Struct names reachable from ``root``, dependencies first (cycles broken arbitrarily).

    ``inline``: also follow protobuf-only embedded structs (fields with JSON name "").
    """
    order: list[str] = []
    seen: set[str] = set()

    def refs(t: TypeSpec) -> list[str]:
        if isinstance(t, Ref):
            return [t.name]
        if isinstance(t, (ListOf, MapOf)):
            return refs(t.item if isinstance(t, ListOf) else t.value)
        return []

    def visit(name: str) -> None:
        if name in seen or name not in schema.STRUCTS:
            return
        seen.add(name)
        for fl in schema.STRUCTS[name].fields:
            for r in refs(fl.type) if fl.json or inline else []:
                visit(r)
        order.append(name)

    visit(root)
    return order


def ops_per_second(fn: Callable[[], object], rounds: int, min_time: float = 0.2) -> tuple[float, float]:
    """(median, best) ops/s over ``rounds`` batches; best is the steadier figure on a busy machine."""
    n = 1
    while True:  # calibrate a batch that takes about min_time
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time:
            break
        n *= 2
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), max(rates)


# -- msgspec / pydantic models generated from the schema --------------------------------------------


def msgspec_model(root: str) -> Any:
    import msgspec

    made: dict[str, Any] = {}

    def py(t: TypeSpec) -> Any:
        if isinstance(t, Scalar):
            return {
                "string": str,
                "int32": int,
                "int64": int,
                "bool": bool,
                "double": float,
                "bytes": str,
                "quantity": str | int | float,
                "intorstring": int | str,
                "time": str,
                "microtime": str,
            }.get(t.name, Any)
        if isinstance(t, Ref):
            return made.get(t.name, Any)
        if isinstance(t, ListOf):
            return list[py(t.item)]  # type: ignore[misc]
        return dict[str, py(t.value)]  # type: ignore[misc,union-attr]

    for name in reachable(root):
        s = schema.STRUCTS[name]
        fields = [("f_" + fl.json, Optional[py(fl.type)], None) for fl in s.fields if fl.json]  # noqa: UP045
        made[name] = msgspec.defstruct(
            s.short_name, fields, omit_defaults=True, rename=lambda n: n[2:], forbid_unknown_fields=False
        )
    return made[root]


def pydantic_model(root: str) -> Any:
    import pydantic

    made: dict[str, Any] = {}

    def py(t: TypeSpec) -> Any:
        if isinstance(t, Scalar):
            return {
                "string": str,
                "int32": int,
                "int64": int,
                "bool": bool,
                "double": float,
                "bytes": str,
                "quantity": str | int | float,
                "intorstring": int | str,
                "time": str,
                "microtime": str,
            }.get(t.name, Any)
        if isinstance(t, Ref):
            return made.get(t.name, Any)
        if isinstance(t, ListOf):
            return list[py(t.item)]  # type: ignore[misc]
        return dict[str, py(t.value)]  # type: ignore[misc,union-attr]

    config = pydantic.ConfigDict(populate_by_name=True, extra="ignore")
    for name in reachable(root):
        s = schema.STRUCTS[name]
        fields = {
            "f_" + fl.json: (Optional[py(fl.type)], pydantic.Field(None, alias=fl.json))  # noqa: UP045
            for fl in s.fields
            if fl.json
        }
        made[name] = pydantic.create_model(s.short_name, __config__=config, **fields)  # type: ignore[call-overload]
    return made[root]


# -- protobuf via the runtime library (the alternative to our hand-written reader) ------------------


class DynamicProtobuf:
    """Messages built with the ``protobuf`` runtime from the schema, then converted to JSON-form dicts."""

    def __init__(self, root: str) -> None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        fdp = descriptor_pb2.FileDescriptorProto(name="kubeha_bench.proto", package="kb", syntax="proto2")
        FD = descriptor_pb2.FieldDescriptorProto
        specials = {
            "quantity": ("Quantity", [("string", 1, FD.TYPE_STRING)]),
            "time": ("Time", [("seconds", 1, FD.TYPE_INT64), ("nanos", 2, FD.TYPE_INT32)]),
            "intorstring": (
                "IntOrString",
                [("type", 1, FD.TYPE_INT64), ("intVal", 2, FD.TYPE_INT32), ("strVal", 3, FD.TYPE_STRING)],
            ),
            "raw": ("Raw", [("raw", 1, FD.TYPE_BYTES)]),
        }
        for msg_name, fields in specials.values():
            m = fdp.message_type.add(name=msg_name)
            for fname, num, ftype in fields:
                m.field.add(name=fname, number=num, type=ftype, label=FD.LABEL_OPTIONAL)
        scalar_types = {
            "string": FD.TYPE_STRING,
            "int32": FD.TYPE_INT32,
            "int64": FD.TYPE_INT64,
            "bool": FD.TYPE_BOOL,
            "double": FD.TYPE_DOUBLE,
            "bytes": FD.TYPE_BYTES,
        }
        special_msg = {"quantity": ".kb.Quantity", "time": ".kb.Time", "microtime": ".kb.Time",
                       "intorstring": ".kb.IntOrString", "rawextension": ".kb.Raw", "any": ".kb.Raw"}  # fmt: skip
        self.names = {n: n.replace(".", "_") for n in reachable(root, inline=True)}

        def set_type(fd: Any, t: TypeSpec) -> None:
            if isinstance(t, Scalar):
                if t.name in scalar_types:
                    fd.type = scalar_types[t.name]
                else:
                    fd.type, fd.type_name = FD.TYPE_MESSAGE, special_msg[t.name]
            elif isinstance(t, Ref):
                fd.type, fd.type_name = FD.TYPE_MESSAGE, ".kb." + self.names[t.name]
            else:
                raise TypeError("nested containers are not used by the benchmark objects")

        for name, msg_name in self.names.items():
            m = fdp.message_type.add(name=msg_name)
            for fl in schema.STRUCTS[name].fields:
                if not fl.number:
                    continue
                fd = m.field.add(name=fl.json or f"inline{fl.number}", number=fl.number)
                if isinstance(fl.type, ListOf):
                    fd.label = FD.LABEL_REPEATED
                    set_type(fd, fl.type.item)
                elif isinstance(fl.type, MapOf):
                    entry = m.nested_type.add(name=fl.json[:1].upper() + fl.json[1:] + "Entry")
                    entry.options.map_entry = True
                    entry.field.add(name="key", number=1, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL)
                    vf = entry.field.add(name="value", number=2, label=FD.LABEL_OPTIONAL)
                    set_type(vf, fl.type.value)
                    fd.label, fd.type = FD.LABEL_REPEATED, FD.TYPE_MESSAGE
                    fd.type_name = f".kb.{msg_name}.{entry.name}"
                else:
                    fd.label = FD.LABEL_OPTIONAL
                    set_type(fd, fl.type)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        self.cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("kb." + self.names[root]))
        self.root = root

    def decode(self, raw: bytes) -> Obj:
        msg = self.cls()
        msg.ParseFromString(raw)
        return self._to_dict(msg, self.root)

    def _to_dict(self, msg: Any, name: str) -> Obj:
        s = schema.STRUCTS[name]
        out: Obj = {}
        for fd, value in msg.ListFields():
            fl = s.by_number[fd.number]
            t = fl.type
            if not fl.json and isinstance(t, Ref):  # embedded struct: inlined in JSON
                out.update(self._to_dict(value, t.name))
            elif isinstance(t, ListOf):
                out[fl.json] = [self._value(t.item, v) for v in value]
            elif isinstance(t, MapOf):
                out[fl.json] = {k: self._value(t.value, v) for k, v in value.items()}
            else:
                v = self._value(t, value)
                if fl.pointer or isinstance(t, Ref) or v not in ("", 0, None):
                    out[fl.json] = v
        return out

    def _value(self, t: TypeSpec, v: Any) -> Any:
        if isinstance(t, Ref):
            return self._to_dict(v, t.name)
        if isinstance(t, Scalar):
            n = t.name
            if n == "quantity":
                return v.string or "0"
            if n in ("time", "microtime"):
                return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v.seconds)) if v.ListFields() else None
            if n == "intorstring":
                return v.strVal if v.type == 1 else v.intVal
            if n in ("rawextension", "any"):
                return orjson.loads(v.raw) if v.raw else None
            if n == "bytes":
                import base64

                return base64.b64encode(v).decode()
        return v


# -- main --------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    registry.load_all()
    rows: list[tuple[str, str, tuple[float, float], float]] = []
    for label, obj in (("Pod", POD), ("Deployment", DEPLOYMENT)):
        group, _, version = obj["apiVersion"].rpartition("/")
        sname = schema.KINDS[(group, version, obj["kind"])].name
        body = orjson.dumps(obj)
        unknown = decode.find_unknown_fields(sname, orjson.loads(body))
        if unknown:
            print(f"warning: {label} fields not in our schema: {unknown}", file=sys.stderr)

        def plain(body: bytes = body) -> bytes:
            return orjson.dumps(orjson.loads(body))

        def ours(body: bytes = body, sname: str = sname) -> bytes:
            o = decode.loads(body)
            decode.find_unknown_fields(sname, o)
            decode.apply_defaults(sname, o)
            return orjson.dumps(o)

        def ours_strict(body: bytes = body, sname: str = sname) -> bytes:
            o = decode.loads(body)
            decode.find_unknown_fields(sname, o)
            decode.find_duplicate_fields(body)
            decode.check_types(sname, o)
            decode.apply_defaults(sname, o)
            return orjson.dumps(o)

        import msgspec

        ms_type = msgspec_model(sname)
        ms_dec = msgspec.json.Decoder(ms_type)
        ms_enc = msgspec.json.Encoder()

        def with_msgspec(body: bytes = body, dec: Any = ms_dec, enc: Any = ms_enc) -> bytes:
            return enc.encode(dec.decode(body))  # type: ignore[no-any-return]

        pd_type = pydantic_model(sname)

        def with_pydantic(body: bytes = body, pd_type: Any = pd_type) -> bytes:
            return pd_type.model_validate_json(body).model_dump_json(by_alias=True, exclude_none=True).encode()  # type: ignore[no-any-return]

        assert orjson.loads(with_msgspec()) == obj, "msgspec model lost data"
        assert orjson.loads(with_pydantic()) == obj, "pydantic model lost data"
        measured = []
        for name, fn in (
            ("orjson dict (bare)", plain),
            ("orjson dict + unknown-fields + defaults (ours)", ours),
            ("ours + duplicates + type checks (Strict)", ours_strict),
            ("msgspec Struct", with_msgspec),
            ("pydantic v2 model", with_pydantic),
        ):
            measured.append((name, ops_per_second(fn, args.rounds)))
        base = measured[0][1][0]
        rows.extend((label, name, rate, rate[0] / base) for name, rate in measured)

    # protobuf request decoding: hand-written reader vs protobuf runtime + conversion
    dep_name = schema.KINDS[("apps", "v1", "Deployment")].name
    pb_body = protobuf.encode_body(DEPLOYMENT)
    raw = protobuf.encode_message(dep_name, DEPLOYMENT)
    dyn = DynamicProtobuf(dep_name)
    expected = protobuf.decode_body(pb_body)
    got = {"apiVersion": "apps/v1", "kind": "Deployment", **dyn.decode(raw)}
    assert got == expected, "dynamic protobuf decoding differs from the hand-written reader"
    pb_rows = []
    pb_cases: list[tuple[str, Callable[[], object]]] = [
        ("hand-written wire reader (decode_body)", lambda: protobuf.decode_body(pb_body)),
        ("protobuf runtime (upb) parse + to dict", lambda: dyn.decode(raw)),
        ("protobuf runtime parse only", lambda: dyn.cls.FromString(raw)),
        ("encode_body (tests/benchmarks only)", lambda: protobuf.encode_body(DEPLOYMENT)),
    ]
    for name, pb_fn in pb_cases:
        pb_rows.append((name, ops_per_second(pb_fn, args.rounds)))

    print(f"JSON bytes -> model -> bytes (median of {args.rounds} rounds; Pod {len(orjson.dumps(POD))} B, "
          f"Deployment {len(orjson.dumps(DEPLOYMENT))} B)")  # fmt: skip
    print(f"{'object':<11} {'approach':<48} {'median/s':>10} {'best/s':>10} {'vs orjson':>9}")
    for label, name, (median, best), ratio in rows:
        print(f"{label:<11} {name:<48} {median:>10.0f} {best:>10.0f} {ratio:>8.2f}x")
    print(f"\nprotobuf Deployment request ({len(pb_body)} B)")
    for name, (median, best) in pb_rows:
        print(f"  {name:<48} {median:>10.0f} median/s {best:>10.0f} best/s")


if __name__ == "__main__":
    main()
