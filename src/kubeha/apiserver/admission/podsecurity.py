"""PodSecurity: the Pod Security Standards (privileged, baseline, restricted) chosen per namespace by
the labels ``pod-security.kubernetes.io/{enforce,audit,warn}[-version]``, as upstream's built-in
pod-security-admission.

- ``enforce`` rejects violating pods (403);
- ``audit`` records ``pod-security.kubernetes.io/audit-violations`` on the request's audit event;
- ``warn`` returns ``Warning`` headers, for pods and for workload templates (deployments, jobs...),
  which are never rejected;
- a namespace whose enforce level gets stricter warns about the existing pods that violate it.

There are no exemptions unless configured (upstream has no built-in ones and neither do we; the
admission configuration file is not read yet). The checks are those of Kubernetes v1.32, the
version this server reports; a pinned ``-version`` selects the older form of the checks that
changed since (sysctls, SELinux types, runAsUser, restricted capabilities, Windows pods).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubeha.api import errors
from kubeha.api.schema import Obj
from kubeha.apiserver.admission import (
    CREATE,
    UPDATE,
    Attributes,
    ValidatingPlugin,
    add_annotation,
    add_warning,
    forbidden,
    register_plugin,
)
from kubeha.apiserver.admission import lookup as lk

PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
PRIVILEGED, BASELINE, RESTRICTED = "privileged", "baseline", "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)
LATEST = "latest"
CURRENT_MINOR = 32  # the Kubernetes version this server speaks for ("latest")
ENFORCE_POLICY_ANNOTATION = PREFIX + "enforce-policy"
AUDIT_VIOLATIONS_ANNOTATION = PREFIX + "audit-violations"
MAX_PODS_TO_CHECK = 3000  # upstream's bound on the namespace-update dry run
_VERSION_RE = re.compile(r"^v1\.(0|[1-9][0-9]*)$")
IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"})

# where each workload keeps its pod template (group, resource) -> path of keys
TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "replicationcontrollers"): ("spec", "template"),
    ("", "podtemplates"): ("template",),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}


# -- levels, versions, policies ------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelVersion:
    level: str
    version: str = LATEST  # "latest" or "v1.x"

    @property
    def minor(self) -> int:
        """The minor version whose checks apply (newer than this server's: the latest checks)."""
        if self.version == LATEST:
            return CURRENT_MINOR
        return min(int(self.version.split(".", 1)[1]), CURRENT_MINOR)

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion = LevelVersion(PRIVILEGED)
    audit: LevelVersion = LevelVersion(PRIVILEGED)
    warn: LevelVersion = LevelVersion(PRIVILEGED)

    def fully_privileged(self) -> bool:
        return all(lv.level == PRIVILEGED for lv in (self.enforce, self.audit, self.warn))


def _strictness(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def policy_from_labels(labels: dict[str, Any] | None) -> tuple[Policy, list[errors.Cause]]:
    """The namespace's policy and what is wrong with its labels. As upstream, a bad enforce level
    fails closed (restricted) and a bad audit or warn level fails open (privileged)."""
    labels = labels or {}
    causes: list[errors.Cause] = []
    found: dict[str, LevelVersion] = {}

    def bad(key: str, value: Any, detail: str) -> None:
        causes.append(errors.invalid_value(f"metadata.labels[{key}]", value, detail))

    for mode in MODES:
        level, version = PRIVILEGED, LATEST
        key = PREFIX + mode
        if key in labels:
            value = labels[key]
            if value in LEVELS:
                level = value
            else:
                bad(key, value, "must be one of " + ", ".join(LEVELS))
                level = RESTRICTED if mode == "enforce" else PRIVILEGED
        vkey = f"{key}-version"
        if vkey in labels:
            value = labels[vkey]
            if value == LATEST or (isinstance(value, str) and _VERSION_RE.match(value)):
                version = value
            else:
                bad(vkey, value, 'must be "latest" or "v1.x"')
        found[mode] = LevelVersion(level, version)
    # warn defaults to a stricter enforce level, so users see what enforcement will refuse
    enforce_key = PREFIX + "enforce"
    has_enforce = enforce_key in labels and labels[enforce_key] in LEVELS
    if (
        PREFIX + "warn" not in labels
        and has_enforce
        and _strictness(found["enforce"].level) > _strictness(found["warn"].level)
    ):
        version = found["warn"].version if PREFIX + "warn-version" in labels else found["enforce"].version
        found["warn"] = LevelVersion(found["enforce"].level, version)
    return Policy(found["enforce"], found["audit"], found["warn"]), causes


# -- the checks ----------------------------------------------------------------------------------------


def _join_quote(items: Iterable[str]) -> str:
    items = list(items)
    return '"' + '", "'.join(items) + '"' if items else ""


def _plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def _containers_of(spec: Obj) -> list[Obj]:
    """Init containers, containers, then ephemeral containers (upstream's visiting order)."""
    return [
        c
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in (spec.get(key) or [])
        if isinstance(c, dict)
    ]


def _sc(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _setters(pod_bad: bool, containers: list[str]) -> list[str]:
    out = ["pod"] if pod_bad else []
    if containers:
        out.append(f"{_plural('container', 'containers', len(containers))} {_join_quote(containers)}")
    return out


def _windows(spec: Obj) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


Result = tuple[str, str] | None
CheckFn = Callable[[Obj, Obj, int], Result]


def check_host_process(meta: Obj, spec: Obj, minor: int) -> Result:
    bad = [c.get("name", "") for c in _containers_of(spec) if (_sc(c).get("windowsOptions") or {}).get("hostProcess")]
    pod = bool((_sc(spec).get("windowsOptions") or {}).get("hostProcess"))
    setters = _setters(pod, bad)
    if setters:
        return "hostProcess", " and ".join(setters) + " must not set securityContext.windowsOptions.hostProcess=true"
    return None


def check_host_namespaces(meta: Obj, spec: Obj, minor: int) -> Result:
    used = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    return ("host namespaces", ", ".join(used)) if used else None


def check_privileged(meta: Obj, spec: Obj, minor: int) -> Result:
    bad = [c.get("name", "") for c in _containers_of(spec) if _sc(c).get("privileged")]
    if bad:
        return "privileged", (
            f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} must not set "
            "securityContext.privileged=true"
        )
    return None


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _caps(c: Obj, key: str) -> list[str]:
    return [str(x) for x in ((_sc(c).get("capabilities") or {}).get(key) or [])]


def check_capabilities_baseline(meta: Obj, spec: Obj, minor: int) -> Result:
    bad, caps = [], set()
    for c in _containers_of(spec):
        extra = [x for x in _caps(c, "add") if x not in BASELINE_CAPABILITIES]
        if extra:
            bad.append(c.get("name", ""))
            caps.update(extra)
    if bad:
        return "non-default capabilities", (
            f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} must not include "
            f"{_join_quote(sorted(caps))} in securityContext.capabilities.add"
        )
    return None


def check_host_path_volumes(meta: Obj, spec: Obj, minor: int) -> Result:
    bad = [
        v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("hostPath") is not None
    ]
    return ("hostPath volumes", f"{_plural('volume', 'volumes', len(bad))} {_join_quote(bad)}") if bad else None


def check_host_ports(meta: Obj, spec: Obj, minor: int) -> Result:
    bad: list[str] = []
    ports: set[str] = set()
    for c in _containers_of(spec):
        used = [int(p.get("hostPort") or 0) for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(c.get("name", ""))
            ports.update(str(p) for p in used)
    if bad:
        n = len(bad)
        return "hostPort", (
            f"{_plural('container', 'containers', n)} {_join_quote(bad)} {_plural('uses', 'use', n)} "
            f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}"
        )
    return None


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def check_apparmor(meta: Obj, spec: Obj, minor: int) -> Result:
    values: set[str] = set()

    def bad_profile(obj: Obj) -> bool:
        profile = _sc(obj).get("appArmorProfile")
        if isinstance(profile, dict) and profile.get("type") not in ("RuntimeDefault", "Localhost"):
            values.add(str(profile.get("type") or ""))
            return True
        return False

    pod = bad_profile(spec)
    containers = [c.get("name", "") for c in _containers_of(spec) if bad_profile(c)]
    setters = _setters(pod, containers)
    value_list = sorted(values)
    annotations = (meta.get("annotations") or {}) if isinstance(meta.get("annotations"), dict) else {}
    bad_annotations = sorted(
        f'{k}="{v}"'
        for k, v in annotations.items()
        if k.startswith(APPARMOR_ANNOTATION_PREFIX) and v and v != "runtime/default" and not v.startswith("localhost/")
    )
    if bad_annotations:
        value_list += bad_annotations
        setters.append(_plural("annotation", "annotations", len(bad_annotations)))
    if setters:
        reason = _plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(value_list))
        return reason, f"{' and '.join(setters)} must not set AppArmor profile type to {_join_quote(value_list)}"
    return None


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def check_selinux(meta: Obj, spec: Obj, minor: int) -> Result:
    allowed = SELINUX_TYPES_1_31 if minor >= 31 else SELINUX_TYPES_1_0
    types: set[str] = set()
    flags = {"user": False, "role": False}

    def bad(obj: Obj) -> bool:
        opts = _sc(obj).get("seLinuxOptions")
        if not isinstance(opts, dict):
            return False
        ok = True
        if (opts.get("type") or "") not in allowed:
            types.add(str(opts.get("type") or ""))
            ok = False
        for key in ("user", "role"):
            if opts.get(key):
                flags[key] = True
                ok = False
        return not ok

    pod = bad(spec)
    containers = [c.get("name", "") for c in _containers_of(spec) if bad(c)]
    setters = _setters(pod, containers)
    if not setters:
        return None
    data = []
    if types:
        data.append(f"{_plural('type', 'types', len(types))} {_join_quote(sorted(types))}")
    data += [f"{k} may not be set" for k in ("user", "role") if flags[k]]
    return "seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}"


def check_proc_mount(meta: Obj, spec: Obj, minor: int) -> Result:
    bad, kinds = [], set()
    for c in _containers_of(spec):
        mount = _sc(c).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(c.get("name", ""))
            kinds.add(str(mount))
    if bad:
        return "procMount", (
            f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} must not set "
            f"securityContext.procMount to {_join_quote(sorted(kinds))}"
        )
    return None


def _seccomp_type(obj: Obj) -> str | None:
    profile = _sc(obj).get("seccompProfile")
    return str(profile.get("type") or "") if isinstance(profile, dict) else None


def _valid_seccomp(kind: str | None) -> bool:
    return kind in ("RuntimeDefault", "Localhost")


def check_seccomp_baseline(meta: Obj, spec: Obj, minor: int) -> Result:
    values: set[str] = set()
    pod_type = _seccomp_type(spec)
    pod = pod_type is not None and not _valid_seccomp(pod_type)
    if pod:
        values.add(str(pod_type))
    containers = []
    for c in _containers_of(spec):
        kind = _seccomp_type(c)
        if kind is not None and not _valid_seccomp(kind):
            containers.append(c.get("name", ""))
            values.add(kind)
    setters = _setters(pod, containers)
    if setters:
        return "seccompProfile", (
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_join_quote(sorted(values))}"
        )
    return None


SAFE_SYSCTLS: tuple[tuple[int, frozenset[str]], ...] = (
    (
        0,
        frozenset(
            {
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_unprivileged_port_start",
            }
        ),
    ),
    (27, frozenset({"net.ipv4.ip_local_reserved_ports"})),
    (
        29,
        frozenset(
            {
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes",
            }
        ),
    ),
    (32, frozenset({"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})),
)


def safe_sysctls(minor: int) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for since, names in SAFE_SYSCTLS:
        if minor >= since:
            out |= names
    return out


def check_sysctls(meta: Obj, spec: Obj, minor: int) -> Result:
    allowed = safe_sysctls(minor)
    bad = [
        str(s.get("name", ""))
        for s in _sc(spec).get("sysctls") or []
        if isinstance(s, dict) and s.get("name") not in allowed
    ]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


ALLOWED_VOLUME_KEYS = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
RESTRICTED_VOLUME_KEYS = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def check_restricted_volumes(meta: Obj, spec: Obj, minor: int) -> Result:
    bad, kinds = [], set()
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        if any(v.get(k) is not None for k in ALLOWED_VOLUME_KEYS):
            continue
        bad.append(v.get("name", ""))
        kinds.add(next((k for k in RESTRICTED_VOLUME_KEYS if v.get(k) is not None), "unknown"))
    if bad:
        n = len(bad)
        return "restricted volume types", (
            f"{_plural('volume', 'volumes', n)} {_join_quote(bad)} {_plural('uses', 'use', n)} "
            f"{_plural('restricted volume type', 'restricted volume types', len(kinds))} {_join_quote(sorted(kinds))}"
        )
    return None


def check_allow_privilege_escalation(meta: Obj, spec: Obj, minor: int) -> Result:
    if minor >= 25 and _windows(spec):
        return None
    bad = [c.get("name", "") for c in _containers_of(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return "allowPrivilegeEscalation != false", (
            f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} must set "
            "securityContext.allowPrivilegeEscalation=false"
        )
    return None


def check_capabilities_restricted(meta: Obj, spec: Obj, minor: int) -> Result:
    if minor >= 25 and _windows(spec):
        return None
    missing_drop, adding, caps = [], [], set()
    for c in _containers_of(spec):
        if "ALL" not in _caps(c, "drop"):
            missing_drop.append(c.get("name", ""))
        extra = [x for x in _caps(c, "add") if x != "NET_BIND_SERVICE"]
        if extra:
            adding.append(c.get("name", ""))
            caps.update(extra)
    details = []
    if missing_drop:
        details.append(
            f"{_plural('container', 'containers', len(missing_drop))} {_join_quote(missing_drop)} must set "
            'securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_plural('container', 'containers', len(adding))} {_join_quote(adding)} must not include "
            f"{_join_quote(sorted(caps))} in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def check_run_as_non_root(meta: Obj, spec: Obj, minor: int) -> Result:
    pod_value = _sc(spec).get("runAsNonRoot")
    pod_bad = pod_value is False
    pod_ok = pod_value is True
    explicit, implicit = [], []
    for c in _containers_of(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is not None:
            if value is False:
                explicit.append(c.get("name", ""))
        elif not pod_ok:
            implicit.append(c.get("name", ""))
    setters = _setters(pod_bad, explicit)
    if setters:
        return "runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false"
    if implicit:
        return "runAsNonRoot != true", (
            f"pod or {_plural('container', 'containers', len(implicit))} {_join_quote(implicit)} must set "
            "securityContext.runAsNonRoot=true"
        )
    return None


def check_run_as_user(meta: Obj, spec: Obj, minor: int) -> Result:
    bad = [c.get("name", "") for c in _containers_of(spec) if _is_zero(_sc(c).get("runAsUser"))]
    setters = _setters(_is_zero(_sc(spec).get("runAsUser")), bad)
    if setters:
        return "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"
    return None


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def check_seccomp_restricted(meta: Obj, spec: Obj, minor: int) -> Result:
    if minor >= 25 and _windows(spec):
        return None
    values: set[str] = set()
    pod_type = _seccomp_type(spec)
    pod_bad = pod_type is not None and not _valid_seccomp(pod_type)
    pod_set = pod_type is not None and not pod_bad
    if pod_bad:
        values.add(str(pod_type))
    explicit, implicit = [], []
    for c in _containers_of(spec):
        kind = _seccomp_type(c)
        if kind is not None:
            if not _valid_seccomp(kind):
                explicit.append(c.get("name", ""))
                values.add(kind)
        elif not pod_set:
            implicit.append(c.get("name", ""))
    setters = _setters(pod_bad, explicit)
    if setters:
        return "seccompProfile", (
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_join_quote(sorted(values))}"
        )
    if implicit:
        return "seccompProfile", (
            f"pod or {_plural('container', 'containers', len(implicit))} {_join_quote(implicit)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
        )
    return None


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    fn: CheckFn
    since: int = 0  # the first minor version the check applies to
    overrides: tuple[str, ...] = ()  # baseline checks this restricted check replaces


CHECKS: tuple[Check, ...] = (
    Check("windowsHostProcess", BASELINE, check_host_process),
    Check("hostNamespaces", BASELINE, check_host_namespaces),
    Check("privileged", BASELINE, check_privileged),
    Check("capabilities_baseline", BASELINE, check_capabilities_baseline),
    Check("hostPathVolumes", BASELINE, check_host_path_volumes),
    Check("hostPorts", BASELINE, check_host_ports),
    Check("appArmorProfile", BASELINE, check_apparmor),
    Check("seLinuxOptions", BASELINE, check_selinux),
    Check("procMount", BASELINE, check_proc_mount),
    Check("seccompProfile_baseline", BASELINE, check_seccomp_baseline, since=19),
    Check("sysctls", BASELINE, check_sysctls),
    Check("restrictedVolumes", RESTRICTED, check_restricted_volumes, overrides=("hostPathVolumes",)),
    Check("allowPrivilegeEscalation", RESTRICTED, check_allow_privilege_escalation, since=8),
    Check("runAsNonRoot", RESTRICTED, check_run_as_non_root),
    Check("runAsUser", RESTRICTED, check_run_as_user, since=23),
    Check(
        "seccompProfile_restricted",
        RESTRICTED,
        check_seccomp_restricted,
        since=19,
        overrides=("seccompProfile_baseline",),
    ),
    Check(
        "capabilities_restricted",
        RESTRICTED,
        check_capabilities_restricted,
        since=22,
        overrides=("capabilities_baseline",),
    ),
)


def checks_for(lv: LevelVersion) -> list[Check]:
    """The checks of a level at a version: baseline ones first, then restricted ones, each sorted by
    ID (upstream's order, which fixes the order of reasons in messages)."""
    if lv.level == PRIVILEGED:
        return []
    minor = lv.minor
    chosen = [c for c in CHECKS if c.since <= minor and (c.level == BASELINE or lv.level == RESTRICTED)]
    replaced = {o for c in chosen for o in c.overrides}
    chosen = [c for c in chosen if c.id not in replaced]
    return sorted((c for c in chosen if c.level == BASELINE), key=lambda c: c.id) + sorted(
        (c for c in chosen if c.level == RESTRICTED), key=lambda c: c.id
    )


def evaluate(lv: LevelVersion, meta: Obj | None, spec: Obj | None) -> list[tuple[str, str]]:
    """The (reason, detail) of every check the pod (meta, spec) fails at ``lv``."""
    meta = meta if isinstance(meta, dict) else {}
    spec = spec if isinstance(spec, dict) else {}
    out = []
    for check in checks_for(lv):
        result = check.fn(meta, spec, lv.minor)
        if result is not None:
            out.append(result)
    return out


def forbidden_detail(results: list[tuple[str, str]]) -> str:
    """`reason (detail), reason, ...` (upstream's AggregateCheckResult.ForbiddenDetail)."""
    return ", ".join(f"{r} ({d})" if d else r for r, d in results)


def forbidden_reasons(results: list[tuple[str, str]]) -> str:
    return ", ".join(r for r, _ in results)


# -- pods and templates in requests --------------------------------------------------------------------


def pod_template(group: str, resource: str, obj: Obj | None) -> tuple[Obj, Obj] | None:
    """(metadata, spec) of the pod a workload object would create (None: no template)."""
    path = TEMPLATE_PATHS.get((group, resource))
    node: Any = obj
    for key in path or ():
        node = node.get(key) if isinstance(node, dict) else None
    if not path or not isinstance(node, dict):
        return None
    return node.get("metadata") or {}, node.get("spec") or {}


def significant_pod_update(new: Obj, old: Obj) -> bool:
    """Only image (and legacy seccomp annotation) changes or added containers can alter a running
    pod's standing, as upstream reasons."""
    seccomp = "seccomp.security.alpha.kubernetes.io/pod"
    if ((new.get("metadata") or {}).get("annotations") or {}).get(seccomp) != (
        (old.get("metadata") or {}).get("annotations") or {}
    ).get(seccomp):
        return True
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    for key in ("containers", "initContainers", "ephemeralContainers"):
        a, b = ns.get(key) or [], os_.get(key) or []
        if len(a) != len(b):
            return True
        if any((x or {}).get("image") != (y or {}).get("image") for x, y in zip(a, b, strict=False)):
            return True
    return False


# -- the plugin ---------------------------------------------------------------------------------------


class PodSecurity(ValidatingPlugin):
    exempt_namespaces: frozenset[str] = frozenset()
    exempt_users: frozenset[str] = frozenset()
    exempt_runtime_classes: frozenset[str] = frozenset()

    def handles(self, attrs: Attributes) -> bool:
        if attrs.operation not in (CREATE, UPDATE) or attrs.obj is None:
            return False
        if attrs.is_("", "namespaces"):
            return True
        if attrs.group == "" and attrs.resource == "pods":
            return attrs.subresource not in IGNORED_POD_SUBRESOURCES
        return not attrs.subresource and (attrs.group, attrs.resource) in TEMPLATE_PATHS

    async def validate(self, attrs: Attributes) -> None:
        if attrs.is_("", "namespaces"):
            await self._namespace(attrs)
            return
        if attrs.namespace in self.exempt_namespaces or attrs.user_name in self.exempt_users:
            return
        ns = await lk.get(self.ctx, lk.resource("", "v1", "namespaces"), "", attrs.namespace)
        policy, causes = policy_from_labels(_labels(ns))
        if attrs.group == "" and attrs.resource == "pods":
            if not causes and policy.fully_privileged():
                return
            if (
                attrs.operation == UPDATE
                and attrs.old_obj is not None
                and not significant_pod_update(attrs.obj or {}, attrs.old_obj)
            ):
                return
            pod = attrs.obj or {}
            self._evaluate(attrs, policy, causes, pod.get("metadata") or {}, pod.get("spec") or {}, enforce=True)
            return
        if not causes and policy.warn.level == PRIVILEGED and policy.audit.level == PRIVILEGED:
            return
        template = pod_template(attrs.group, attrs.resource, attrs.obj)
        if template is not None:
            self._evaluate(attrs, policy, causes, template[0], template[1], enforce=False)

    def _evaluate(
        self, attrs: Attributes, policy: Policy, causes: list[errors.Cause], meta: Obj, spec: Obj, *, enforce: bool
    ) -> None:
        if spec.get("runtimeClassName") in self.exempt_runtime_classes:
            return
        if causes:
            add_annotation(PREFIX + "error", "Failed to parse policy: " + "; ".join(c.message for c in causes))
        cache: dict[LevelVersion, list[tuple[str, str]]] = {}

        def results(lv: LevelVersion) -> list[tuple[str, str]]:
            if lv not in cache:
                cache[lv] = evaluate(lv, meta, spec)
            return cache[lv]

        if enforce:
            add_annotation(ENFORCE_POLICY_ANNOTATION, str(policy.enforce))
        audit = results(policy.audit)
        if audit:
            add_annotation(
                AUDIT_VIOLATIONS_ANNOTATION, f'would violate PodSecurity "{policy.audit}": {forbidden_detail(audit)}'
            )
        if enforce:
            denied = results(policy.enforce)
            if denied:
                raise forbidden(attrs, f'violates PodSecurity "{policy.enforce}": {forbidden_detail(denied)}')
        warn = results(policy.warn)
        if warn:
            add_warning(f'would violate PodSecurity "{policy.warn}": {forbidden_detail(warn)}')

    async def _namespace(self, attrs: Attributes) -> None:
        ns = attrs.obj or {}
        policy, causes = policy_from_labels(_labels(ns))
        name = attrs.object_name()
        if attrs.operation == CREATE:
            if causes:
                raise errors.invalid("", "Namespace", name, causes)
            return
        old_policy, old_causes = policy_from_labels(_labels(attrs.old_obj))
        if causes and (not old_causes or [c.message for c in causes] != [c.message for c in old_causes]):
            raise errors.invalid("", "Namespace", name, causes)
        new, old = policy.enforce, old_policy.enforce
        if new == old or new.level == PRIVILEGED:
            return
        if new.version == old.version and _strictness(new.level) <= _strictness(old.level):
            return
        if name in self.exempt_namespaces:
            return
        pods = await lk.cached_list(self.ctx, lk.resource("", "v1", "pods"), name)
        for warning in namespace_warnings(name, new, pods):
            add_warning(warning)


def namespace_warnings(namespace: str, enforce: LevelVersion, pods: list[Obj]) -> list[str]:
    """Warnings for existing pods that a new enforce level would refuse: one line per distinct set of
    reasons, naming the first pod (by name) and how many others share it (upstream's format)."""
    total = len(pods)
    checked = sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name") or ""))[:MAX_PODS_TO_CHECK]
    groups: dict[str, tuple[str, int]] = {}
    for pod in checked:
        found = evaluate(enforce, pod.get("metadata"), pod.get("spec"))
        if not found:
            continue
        reason = forbidden_reasons(found)
        pod_name = str((pod.get("metadata") or {}).get("name") or "")
        first, count = groups.get(reason, (pod_name, 0))
        groups[reason] = (min(first, pod_name), count + 1)
    out: list[str] = []
    if len(checked) < total:
        out.append(
            f"new PodSecurity enforce level only checked against the first {len(checked)} of {total} existing pods"
        )
    if groups:
        out.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level "{enforce}"')
    lines = []
    for reason, (first, count) in groups.items():
        if count == 1:
            lines.append(f"{first}: {reason}")
        elif count == 2:
            lines.append(f"{first} (and 1 other pod): {reason}")
        else:
            lines.append(f"{first} (and {count - 1} other pods): {reason}")
    return out + sorted(lines)


def _labels(obj: Obj | None) -> dict[str, Any]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


register_plugin("PodSecurity", PodSecurity)
