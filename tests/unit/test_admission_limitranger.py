"""LimitRanger admission: defaults from Container items, min/max/ratio checks for containers, pods
and claims, with upstream's messages."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, load_all, lookup
from kubeha.apiserver import admission
from kubeha.apiserver.admission import limitranger as lr

load_all()


def _info(resource: str) -> ResourceInfo:
    info = lookup("", "v1", resource)
    assert info is not None
    return info


PODS, LIMITRANGES = _info("pods"), _info("limitranges")
# claims are not served yet: the plugin only looks at group and resource
PVCS = lookup("", "v1", "persistentvolumeclaims") or ResourceInfo(
    "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", namespaced=True, schema=""
)


class FakeCacher:
    def __init__(self, objs: dict[str, Any]) -> None:
        self.objs = objs

    async def list(self, namespace_prefix: str | None = None) -> tuple[list[Any], int]:
        return [o for k, o in self.objs.items() if namespace_prefix is None or k.startswith(namespace_prefix)], 1

    def get(self, key: str) -> Any:
        return self.objs.get(key)


class FakeCtx:
    """Watch caches over a fixed set of objects."""

    def __init__(self, *objs: tuple[ResourceInfo, dict[str, Any]]) -> None:
        self.caches: dict[str, dict[str, Any]] = {}
        for info, obj in objs:
            md = obj["metadata"]
            self.caches.setdefault(info.key_prefix(), {})[info.key(md.get("namespace"), md["name"])] = obj

    async def cacher(self, info: ResourceInfo) -> FakeCacher:
        return FakeCacher(self.caches.get(info.key_prefix(), {}))


def limit_range(name: str, *items: dict[str, Any], ns: str = "ns") -> tuple[ResourceInfo, dict[str, Any]]:
    return LIMITRANGES, {"metadata": {"name": name, "namespace": ns}, "spec": {"limits": list(items)}}


def pod(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(containers)}
    if init:
        spec["initContainers"] = init
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


def container(name: str = "c", requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> Any:
    res: dict[str, Any] = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return {"name": name, "image": "busybox", "resources": res}


def run(ctx: FakeCtx, obj: dict[str, Any], info: ResourceInfo = PODS, op: str = admission.CREATE) -> dict[str, Any]:
    plugin = lr.LimitRanger(ctx)
    attrs = admission.Attributes(op, info, "ns", "", obj)
    assert plugin.handles(attrs)
    asyncio.run(plugin.admit(attrs))
    asyncio.run(plugin.validate(attrs))
    return obj


def refused(ctx: FakeCtx, obj: dict[str, Any], info: ResourceInfo = PODS) -> str:
    with pytest.raises(errors.StatusError) as e:
        run(ctx, obj, info)
    assert e.value.code == 403
    return e.value.message


def test_defaults_fill_missing_requests_and_limits_and_annotate() -> None:
    ctx = FakeCtx(
        limit_range(
            "lr",
            {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m"}},
        )
    )
    p = run(ctx, pod(container("a", requests={"memory": "64Mi"}), container("b", limits={"cpu": "1"})))
    a, b = p["spec"]["containers"]
    assert a["resources"] == {
        "requests": {"memory": "64Mi", "cpu": "100m"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    # the default request of memory falls back to the default limit (LimitRange defaulting)
    assert b["resources"] == {"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}
    assert p["metadata"]["annotations"][lr.ANNOTATION] == (
        "LimitRanger plugin set: cpu request for container a; cpu, memory limit for container a; "
        "cpu, memory request for container b; memory limit for container b"
    )


def test_defaults_reach_init_containers() -> None:
    ctx = FakeCtx(limit_range("lr", {"type": "Container", "default": {"cpu": "200m"}}))
    p = run(ctx, pod(container("c", limits={"cpu": "100m"}, requests={"cpu": "100m"}), init=[container("i")]))
    assert p["spec"]["initContainers"][0]["resources"] == {"limits": {"cpu": "200m"}, "requests": {"cpu": "200m"}}
    assert p["metadata"]["annotations"][lr.ANNOTATION] == (
        "LimitRanger plugin set: cpu request for init container i; cpu limit for init container i"
    )


def test_no_limit_ranges_changes_nothing() -> None:
    p = pod(container())
    assert run(FakeCtx(), p) == pod(container())


def test_container_max_and_min_messages() -> None:
    ctx = FakeCtx(limit_range("lr", {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "100Mi"}}))
    msg = refused(ctx, pod(container("c", requests={"cpu": "500m", "memory": "50Mi"}, limits={"cpu": "2"})))
    assert msg == (
        'pods "p" is forbidden: [minimum memory usage per Container is 100Mi, but request is 50Mi, '
        "maximum cpu usage per Container is 1, but limit is 2]"
    )
    # max without a limit: the default limit comes from max, so it passes
    run(ctx, pod(container("c", requests={"cpu": "500m", "memory": "100Mi"})))


def test_missing_request_and_limit_messages() -> None:
    assert lr.min_violation("Container", "cpu", Decimal("0.1"), {}, {}) == (
        "minimum cpu usage per Container is 100m.  No request is specified"
    )
    assert lr.max_violation("Pod", "memory", Decimal(2**30), {}, {}) == (
        "maximum memory usage per Pod is 1Gi.  No limit is specified"
    )
    assert lr.max_violation("Container", "cpu", Decimal(1), {"cpu": Decimal(2)}, {"cpu": Decimal(1)}) == (
        "maximum cpu usage per Container is 1, but request is 2"
    )
    assert lr.min_violation("Container", "cpu", Decimal(1), {"cpu": Decimal(1)}, {"cpu": Decimal("0.5")}) == (
        "minimum cpu usage per Container is 1, but limit is 500m"
    )


def test_limit_request_ratio() -> None:
    ctx = FakeCtx(limit_range("lr", {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}))
    msg = refused(ctx, pod(container("c", requests={"cpu": "100m"}, limits={"cpu": "300m"})))
    assert (
        msg
        == 'pods "p" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000'
    )
    run(ctx, pod(container("c", requests={"cpu": "100m"}, limits={"cpu": "200m"})))
    msg = refused(ctx, pod(container("c", limits={"cpu": "200m"}, requests={"cpu": "0"})))
    assert msg.endswith(
        "cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"
    )


def test_pod_type_checks_the_effective_total() -> None:
    ctx = FakeCtx(limit_range("lr", {"type": "Pod", "max": {"cpu": "1"}}))
    two = pod(
        container("a", requests={"cpu": "300m"}, limits={"cpu": "600m"}),
        container("b", requests={"cpu": "300m"}, limits={"cpu": "600m"}),
    )
    assert refused(ctx, two) == 'pods "p" is forbidden: maximum cpu usage per Pod is 1, but limit is 1200m'
    # a plain init container counts at its peak, a sidecar adds up
    p = pod(container("a", limits={"cpu": "400m"}), init=[container("i", limits={"cpu": "900m"})])
    assert lr.pod_total(p, "limits") == {"cpu": Decimal("0.9")}
    side = {**container("s", limits={"cpu": "300m"}), "restartPolicy": "Always"}
    p = pod(container("a", limits={"cpu": "400m"}), init=[side, container("i", limits={"cpu": "500m"})])
    assert lr.pod_total(p, "limits") == {"cpu": Decimal("0.8")}


def test_persistent_volume_claim_storage_bounds() -> None:
    ctx = FakeCtx(
        limit_range("lr", {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}})
    )

    def claim(size: str) -> dict[str, Any]:
        return {"metadata": {"name": "data", "namespace": "ns"}, "spec": {"resources": {"requests": {"storage": size}}}}

    run(ctx, claim("2Gi"), PVCS)
    assert refused(ctx, claim("500Mi"), PVCS) == (
        'persistentvolumeclaims "data" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, '
        "but request is 500Mi"
    )
    assert refused(ctx, claim("10Gi"), PVCS).endswith(
        "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi"
    )


def test_scope_pod_updates_subresources_and_deleting_objects() -> None:
    plugin = lr.LimitRanger(FakeCtx())
    p = pod(container())
    assert not plugin.handles(admission.Attributes(admission.UPDATE, PODS, "ns", "p", p, p))
    assert not plugin.handles(admission.Attributes(admission.CREATE, PODS, "ns", "p", p, subresource="binding"))
    claim = {"metadata": {"name": "d"}, "spec": {}}
    assert plugin.handles(admission.Attributes(admission.UPDATE, PVCS, "ns", "d", claim, claim))
    ctx = FakeCtx(limit_range("lr", {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}}))
    old = {"metadata": {"name": "d", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "spec": {}}
    attrs = admission.Attributes(admission.UPDATE, PVCS, "ns", "d", claim, old)
    asyncio.run(lr.LimitRanger(ctx).validate(attrs))  # being deleted: not checked


def test_limit_ranges_of_other_namespaces_do_not_apply() -> None:
    ctx = FakeCtx(limit_range("lr", {"type": "Container", "max": {"cpu": "1"}}, ns="other"))
    run(ctx, pod(container("c", limits={"cpu": "4"})))
