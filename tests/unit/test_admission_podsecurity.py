"""PodSecurity admission: label parsing, each Pod Security Standards check and its message, enforce /
warn / audit, workload templates, and the namespace-update dry run."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, load_all, lookup
from kubeha.apiserver import admission
from kubeha.apiserver.admission import podsecurity as ps

load_all()


def _info(group: str, resource: str) -> ResourceInfo:
    info = lookup(group, "v1", resource)
    assert info is not None
    return info


PODS, NAMESPACES, DEPLOYMENTS = _info("", "pods"), _info("", "namespaces"), _info("apps", "deployments")
RESTRICTED = ps.LevelVersion(ps.RESTRICTED)
BASELINE = ps.LevelVersion(ps.BASELINE)


class FakeCacher:
    def __init__(self, objs: dict[str, Any]) -> None:
        self.objs = objs

    async def list(self, namespace_prefix: str | None = None) -> tuple[list[Any], int]:
        return [o for k, o in self.objs.items() if namespace_prefix is None or k.startswith(namespace_prefix)], 1

    def get(self, key: str) -> Any:
        return self.objs.get(key)


class FakeCtx:
    def __init__(self, *objs: tuple[ResourceInfo, dict[str, Any]]) -> None:
        self.caches: dict[str, dict[str, Any]] = {}
        for info, obj in objs:
            md = obj["metadata"]
            self.caches.setdefault(info.key_prefix(), {})[info.key(md.get("namespace"), md["name"])] = obj

    async def cacher(self, info: ResourceInfo) -> FakeCacher:
        return FakeCacher(self.caches.get(info.key_prefix(), {}))


def namespace(name: str = "ns", **labels: str) -> tuple[ResourceInfo, dict[str, Any]]:
    return NAMESPACES, {"metadata": {"name": name, "labels": {f"{ps.PREFIX}{k}": v for k, v in labels.items()}}}


def restricted_container(name: str = "c") -> dict[str, Any]:
    return {
        "name": name,
        "image": "busybox",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def pod(*containers: dict[str, Any], name: str = "x", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"containers": list(containers) or [{"name": "c", "image": "busybox"}], **spec},
    }


def spec_of(**spec: Any) -> dict[str, Any]:
    return {"containers": [{"name": "c", "image": "busybox"}], **spec}


def violations(lv: ps.LevelVersion, spec: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
    return ps.forbidden_detail(ps.evaluate(lv, meta or {}, spec))


def admit(
    ctx: FakeCtx, obj: dict[str, Any], info: ResourceInfo = PODS, op: str = admission.CREATE, old: Any = None
) -> admission.RequestScope:
    scope = admission.RequestScope()
    token = admission.SCOPE.set(scope)
    try:
        name = obj["metadata"]["name"] if op != admission.CREATE else ""
        attrs = admission.Attributes(op, info, obj["metadata"].get("namespace", ""), name, obj, old)
        plugin = ps.PodSecurity(ctx)
        if plugin.handles(attrs):
            asyncio.run(plugin.validate(attrs))
    finally:
        admission.SCOPE.reset(token)
    return scope


# -- labels ------------------------------------------------------------------------------------------


def test_policy_from_labels_defaults_and_warn_follows_enforce() -> None:
    policy, causes = ps.policy_from_labels({})
    assert policy.fully_privileged() and not causes
    policy, _ = ps.policy_from_labels({ps.PREFIX + "enforce": "baseline", ps.PREFIX + "enforce-version": "v1.25"})
    assert str(policy.enforce) == "baseline:v1.25" and str(policy.warn) == "baseline:v1.25"
    assert str(policy.audit) == "privileged:latest"
    # an explicit warn level is kept
    policy, _ = ps.policy_from_labels({ps.PREFIX + "enforce": "restricted", ps.PREFIX + "warn": "privileged"})
    assert policy.warn.level == "privileged"


def test_bad_labels_fail_closed_for_enforce_and_open_for_warn() -> None:
    policy, causes = ps.policy_from_labels(
        {ps.PREFIX + "enforce": "strict", ps.PREFIX + "warn": "x", ps.PREFIX + "audit-version": "1.2"}
    )
    assert policy.enforce.level == "restricted" and policy.warn.level == "privileged"
    assert [c.message for c in causes] == [
        'Invalid value: "strict": must be one of privileged, baseline, restricted',
        'Invalid value: "1.2": must be "latest" or "v1.x"',
        'Invalid value: "x": must be one of privileged, baseline, restricted',
    ]
    assert causes[0].field == "metadata.labels[pod-security.kubernetes.io/enforce]"


# -- baseline checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (spec_of(hostNetwork=True, hostPID=True), "host namespaces (hostNetwork=true, hostPID=true)"),
        (
            spec_of(securityContext={"windowsOptions": {"hostProcess": True}}),
            "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)",
        ),
        (
            {"containers": [{"name": "a", "securityContext": {"privileged": True}}, {"name": "b"}]},
            'privileged (container "a" must not set securityContext.privileged=true)',
        ),
        (
            {
                "containers": [
                    {"name": "a", "securityContext": {"capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}},
                    {"name": "b", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
                ]
            },
            'non-default capabilities (containers "a", "b" must not include "NET_ADMIN", "SYS_ADMIN" in '
            "securityContext.capabilities.add)",
        ),
        (
            spec_of(volumes=[{"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}]),
            'hostPath volumes (volume "h")',
        ),
        (
            {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}, {"hostPort": 8080}]}]},
            'hostPort (container "c" uses hostPorts 80, 8080)',
        ),
        (
            {"containers": [{"name": "c", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]},
            'forbidden AppArmor profile (container "c" must not set AppArmor profile type to "Unconfined")',
        ),
        (
            spec_of(securityContext={"seLinuxOptions": {"type": "spc_t", "user": "root"}}),
            'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)',
        ),
        (
            {"containers": [{"name": "c", "securityContext": {"procMount": "Unmasked"}}]},
            'procMount (container "c" must not set securityContext.procMount to "Unmasked")',
        ),
        (
            spec_of(securityContext={"seccompProfile": {"type": "Unconfined"}}),
            'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
        ),
        (
            spec_of(securityContext={"sysctls": [{"name": "kernel.msgmax"}, {"name": "net.ipv4.tcp_syncookies"}]}),
            "forbidden sysctls (kernel.msgmax)",
        ),
    ],
)
def test_baseline_checks(spec: dict[str, Any], expected: str) -> None:
    assert violations(BASELINE, spec) == expected
    assert violations(ps.LevelVersion(ps.PRIVILEGED), spec) == ""


def test_apparmor_annotations_and_allowed_values() -> None:
    meta = {"annotations": {ps.APPARMOR_ANNOTATION_PREFIX + "c": "unconfined"}}
    assert violations(BASELINE, spec_of(), meta) == (
        "forbidden AppArmor profile (annotation must not set AppArmor profile type to "
        '"container.apparmor.security.beta.kubernetes.io/c="unconfined"")'
    )
    ok = {"annotations": {ps.APPARMOR_ANNOTATION_PREFIX + "c": "runtime/default"}}
    assert violations(BASELINE, spec_of(), ok) == ""


def test_sysctls_and_selinux_follow_the_pinned_version() -> None:
    spec = spec_of(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem"}]})
    assert violations(BASELINE, spec) == ""
    assert violations(ps.LevelVersion(ps.BASELINE, "v1.31"), spec) == "forbidden sysctls (net.ipv4.tcp_rmem)"
    se = spec_of(securityContext={"seLinuxOptions": {"type": "container_engine_t"}})
    assert violations(BASELINE, se) == ""
    assert violations(ps.LevelVersion(ps.BASELINE, "v1.30"), se).startswith("seLinuxOptions")


def test_baseline_allows_a_plain_pod() -> None:
    assert violations(BASELINE, spec_of()) == ""


# -- restricted checks ---------------------------------------------------------------------------------


def test_restricted_message_for_a_plain_pod() -> None:
    assert violations(RESTRICTED, spec_of()) == (
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")'
    )


def test_restricted_accepts_a_compliant_pod_and_pod_level_settings() -> None:
    assert violations(RESTRICTED, {"containers": [restricted_container()]}) == ""
    c = restricted_container()
    del c["securityContext"]["runAsNonRoot"], c["securityContext"]["seccompProfile"]
    spec = {"containers": [c], "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost"}}}
    assert violations(RESTRICTED, spec) == ""


def test_restricted_specific_checks() -> None:
    c = restricted_container()
    c["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE", "NET_RAW"]
    c["securityContext"]["runAsUser"] = 0
    spec = {
        "containers": [c],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "s"}}],
    }
    # restrictedVolumes replaces hostPathVolumes, capabilities_restricted replaces the baseline check
    assert violations(RESTRICTED, spec) == (
        'unrestricted capabilities (container "c" must not include "NET_RAW" in securityContext.capabilities.add), '
        'restricted volume types (volumes "h", "n" use restricted volume types "hostPath", "nfs"), '
        'runAsUser=0 (container "c" must not set runAsUser=0)'
    )
    c2 = restricted_container()
    c2["securityContext"]["runAsNonRoot"] = False
    assert violations(RESTRICTED, {"containers": [c2]}) == (
        'runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)'
    )


def test_windows_pods_skip_linux_only_restricted_checks() -> None:
    spec = spec_of(os={"name": "windows"}, securityContext={"runAsNonRoot": True})
    assert violations(RESTRICTED, spec) == ""
    assert "allowPrivilegeEscalation" in violations(ps.LevelVersion(ps.RESTRICTED, "v1.24"), spec)


def test_containers_are_listed_init_first_and_pluralised() -> None:
    spec = {
        "initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
        "containers": [{"name": "c", "securityContext": {"privileged": True}}],
    }
    assert violations(BASELINE, spec) == 'privileged (containers "i", "c" must not set securityContext.privileged=true)'


# -- the plugin ----------------------------------------------------------------------------------------


def test_enforce_rejects_pods_with_upstream_message() -> None:
    ctx = FakeCtx(namespace(enforce="baseline"))
    with pytest.raises(errors.StatusError) as e:
        admit(ctx, pod({"name": "c", "image": "busybox", "securityContext": {"privileged": True}}))
    assert e.value.code == 403
    assert e.value.message == (
        'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set '
        "securityContext.privileged=true)"
    )
    scope = admit(ctx, pod())
    assert scope.warnings == [] and scope.annotations == {ps.ENFORCE_POLICY_ANNOTATION: "baseline:latest"}


def test_warn_and_audit_for_pods() -> None:
    ctx = FakeCtx(namespace(warn="restricted", audit="baseline"))
    scope = admit(ctx, pod(hostNetwork=True))
    assert scope.warnings == [
        'would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true), '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")'
    ]
    assert scope.annotations[ps.AUDIT_VIOLATIONS_ANNOTATION] == (
        'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'
    )


def test_templates_are_warned_never_rejected() -> None:
    ctx = FakeCtx(namespace(enforce="restricted", warn="restricted"))
    deployment = {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"template": {"metadata": {}, "spec": spec_of()}},
    }
    scope = admit(ctx, deployment, DEPLOYMENTS)
    assert len(scope.warnings) == 1 and scope.warnings[0].startswith(
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
    )
    assert ps.ENFORCE_POLICY_ANNOTATION not in scope.annotations
    cron = {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec_of(hostPID=True)}}}}}
    assert ps.pod_template("batch", "cronjobs", cron) == ({}, spec_of(hostPID=True))
    assert ps.pod_template("", "podtemplates", {"template": {"spec": {}}}) == ({}, {})


def test_privileged_namespaces_and_ignored_requests() -> None:
    ctx = FakeCtx(namespace())
    bad = pod({"name": "c", "securityContext": {"privileged": True}})
    assert admit(ctx, bad).annotations == {}
    ctx = FakeCtx(namespace(enforce="restricted"))
    # status updates and insignificant pod updates are not evaluated
    admit(ctx, bad, op=admission.UPDATE, old=copy.deepcopy(bad))
    plugin = ps.PodSecurity(ctx)
    assert not plugin.handles(admission.Attributes(admission.UPDATE, PODS, "ns", "x", bad, bad, subresource="status"))
    changed = copy.deepcopy(bad)
    changed["spec"]["containers"][0]["image"] = "other"
    with pytest.raises(errors.StatusError):
        admit(ctx, changed, op=admission.UPDATE, old=bad)


def test_namespace_labels_are_validated() -> None:
    ns = {"metadata": {"name": "n1", "labels": {ps.PREFIX + "enforce": "nope"}}}
    with pytest.raises(errors.StatusError) as e:
        admit(FakeCtx(), ns, NAMESPACES)
    assert e.value.code == 422
    assert e.value.message == (
        'Namespace "n1" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "nope": '
        "must be one of privileged, baseline, restricted"
    )


def test_stricter_enforce_level_warns_about_existing_pods() -> None:
    pods = [
        (PODS, pod({"name": "c", "securityContext": {"privileged": True}}, name=n, hostNetwork=True))
        for n in ("b", "a", "c")
    ]
    pods.append((PODS, pod(name="fine")))
    ctx = FakeCtx(*pods)
    old = {"metadata": {"name": "ns", "labels": {}}}
    new = {"metadata": {"name": "ns", "labels": {ps.PREFIX + "enforce": "baseline"}}}
    scope = admit(ctx, new, NAMESPACES, op=admission.UPDATE, old=old)
    assert scope.warnings == [
        'existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest"',
        "a (and 2 other pods): host namespaces, privileged",
    ]
    # relaxing, or not changing, the level does not warn
    assert admit(ctx, old, NAMESPACES, op=admission.UPDATE, old=new).warnings == []
    assert admit(ctx, new, NAMESPACES, op=admission.UPDATE, old=new).warnings == []


def test_namespace_warning_counts() -> None:
    lv = BASELINE
    one = ps.namespace_warnings("n", lv, [pod({"name": "c", "securityContext": {"privileged": True}}, name="p")])
    assert one[1] == "p: privileged"
    two = ps.namespace_warnings("n", lv, [pod(name=n, hostIPC=True) for n in ("q", "p")])
    assert two[1] == "p (and 1 other pod): host namespaces"
