"""Upstream's default RBAC policy as data: the roles and bindings every cluster starts with.

The facts (names, rules, subjects) follow upstream's bootstrap policy
(plugin/pkg/auth/authorizer/rbac/bootstrappolicy); the api-server reconciles these objects at
start-up. Every object carries the ``kubernetes.io/bootstrapping: rbac-defaults`` label and the
``rbac.authorization.kubernetes.io/autoupdate: "true"`` annotation, which tells the reconciler it may
add missing rules back. Roles for API groups kubeha does not serve are kept where upstream has
them, so clients see the same policy; rules about absent resources simply never match.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubeha.api.schema import Obj

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ["get", "list", "watch"]
READ_WRITE = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"
NODES = "system:nodes"


def rule(
    verbs: Sequence[str] | str,
    groups: Sequence[str] | str = (),
    resources: Sequence[str] | str = (),
    names: Sequence[str] | str = (),
    urls: Sequence[str] | str = (),
) -> Obj:
    """A PolicyRule; a single string stands for a one-item list ("" is the core group)."""

    def lst(v: Sequence[str] | str) -> list[str]:
        return [v] if isinstance(v, str) else list(v)

    out: Obj = {}
    if groups or groups == "":
        out["apiGroups"] = lst(groups)
    if names:
        out["resourceNames"] = lst(names)
    if resources:
        out["resources"] = lst(resources)
    if urls:
        out["nonResourceURLs"] = lst(urls)
    out["verbs"] = lst(verbs)
    return out


def _events() -> Obj:
    return rule(["create", "patch", "update"], ["", "events.k8s.io"], "events")


def _meta(name: str, namespace: str = "", labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {**BOOTSTRAP_LABEL, **(labels or {})}
    meta["annotations"] = {AUTOUPDATE: "true"}
    return meta


def _cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(name, labels=labels), "rules": rules}


def _aggregated(name: str, into: str | None) -> Obj:
    """admin/edit/view: rules are aggregated from roles labelled aggregate-to-<name>."""
    role = _cluster_role(name, [], {AGGREGATE_TO + into: "true"} if into else None)
    role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + name: "true"}}]}
    return role


def _subject(kind: str, name: str, namespace: str = "") -> Obj:
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"apiGroup": GROUP, "kind": kind, "name": name}


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list[Obj], namespace: str = "") -> Obj:
    b: Obj = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": _meta(name, namespace),
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role},
    }
    if subjects:
        b["subjects"] = subjects
    return b


# -- cluster roles --------------------------------------------------------------------------------


def _aggregate_to_admin() -> list[Obj]:
    return [
        rule("create", "authorization.k8s.io", "localsubjectaccessreviews"),
        rule(READ_WRITE, GROUP, ["rolebindings", "roles"]),
    ]


def _aggregate_to_edit() -> list[Obj]:
    return [
        rule(READ, "", ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"]),
        rule("impersonate", "", "serviceaccounts"),
        rule(WRITE, "", ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
        rule("create", "", "pods/eviction"),
        rule(
            WRITE,
            "",
            [
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule("create", "", "serviceaccounts/token"),
        rule(
            WRITE,
            "apps",
            [
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, "autoscaling", "horizontalpodautoscalers"),
        rule(WRITE, "batch", ["cronjobs", "jobs"]),
        rule(
            WRITE,
            "extensions",
            [
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
        ),
        rule(WRITE, "policy", "poddisruptionbudgets"),
        rule(WRITE, "networking.k8s.io", ["ingresses", "networkpolicies"]),
        rule(READ_WRITE, "coordination.k8s.io", "leases"),
    ]


def _aggregate_to_view() -> list[Obj]:
    return [
        rule(
            READ,
            "",
            [
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            "",
            [
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, "", "namespaces"),
        rule(READ, "discovery.k8s.io", "endpointslices"),
        rule(
            READ,
            "apps",
            [
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(READ, "autoscaling", ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(READ, "batch", ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
        rule(
            READ,
            "extensions",
            [
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
        ),
        rule(READ, "policy", ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ, "networking.k8s.io", ["ingresses", "ingresses/status", "networkpolicies"]),
    ]


def _leader_lease(name: str) -> list[Obj]:
    return [
        rule("create", "coordination.k8s.io", "leases"),
        rule(["get", "update"], "coordination.k8s.io", "leases", names=name),
    ]


def _approver(signer: str) -> Obj:
    return rule("approve", "certificates.k8s.io", "signers", names=signer)


def _system_roles() -> list[Obj]:
    tokenreview = rule("create", "authentication.k8s.io", "tokenreviews")
    sar = rule("create", "authorization.k8s.io", "subjectaccessreviews")
    csr_client = "system:certificates.k8s.io:certificatesigningrequests:"
    return [
        _cluster_role("cluster-admin", [rule("*", "*", "*"), rule("*", urls="*")]),
        _cluster_role("system:aggregate-to-admin", _aggregate_to_admin(), {AGGREGATE_TO + "admin": "true"}),
        _cluster_role("system:aggregate-to-edit", _aggregate_to_edit(), {AGGREGATE_TO + "edit": "true"}),
        _cluster_role("system:aggregate-to-view", _aggregate_to_view(), {AGGREGATE_TO + "view": "true"}),
        _cluster_role("system:auth-delegator", [tokenreview, sar]),
        _cluster_role(
            "system:basic-user",
            [
                rule("create", "authorization.k8s.io", ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule("create", "authentication.k8s.io", "selfsubjectreviews"),
            ],
        ),
        _cluster_role(
            csr_client + "nodeclient",
            [rule("create", "certificates.k8s.io", "certificatesigningrequests/nodeclient")],
        ),
        _cluster_role(
            csr_client + "selfnodeclient",
            [rule("create", "certificates.k8s.io", "certificatesigningrequests/selfnodeclient")],
        ),
        _cluster_role(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            [_approver("kubernetes.io/kube-apiserver-client")],
        ),
        _cluster_role(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            [_approver("kubernetes.io/kube-apiserver-client-kubelet")],
        ),
        _cluster_role(
            "system:certificates.k8s.io:kubelet-serving-approver", [_approver("kubernetes.io/kubelet-serving")]
        ),
        _cluster_role(
            "system:certificates.k8s.io:legacy-unknown-approver", [_approver("kubernetes.io/legacy-unknown")]
        ),
        _cluster_role(
            "system:discovery",
            [
                rule(
                    "get",
                    urls=[
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                )
            ],
        ),
        _cluster_role("system:kube-aggregator", [rule(READ, "", ["endpoints", "services"])]),
        _cluster_role(
            "system:kube-controller-manager",
            [
                _events(),
                *_leader_lease("kube-controller-manager"),
                rule("create", "", ["secrets", "serviceaccounts"]),
                rule("delete", "", "secrets"),
                rule("get", "", ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
                rule("update", "", ["secrets", "serviceaccounts"]),
                tokenreview,
                sar,
                rule(["list", "watch"], "*", "*"),
                rule("create", "", "serviceaccounts/token"),
            ],
        ),
        _cluster_role("system:kube-dns", [rule(["list", "watch"], "", ["endpoints", "services"])]),
        _cluster_role(
            "system:kube-scheduler",
            [
                _events(),
                *_leader_lease("kube-scheduler"),
                rule(READ, "", "nodes"),
                rule(["delete", "get", "list", "watch"], "", "pods"),
                rule("create", "", ["bindings", "pods/binding"]),
                rule(["patch", "update"], "", "pods/status"),
                rule(READ, "", ["replicationcontrollers", "services"]),
                rule(READ, ["apps", "extensions"], "replicasets"),
                rule(READ, "apps", "statefulsets"),
                rule(READ, "policy", "poddisruptionbudgets"),
                rule(READ, "", ["persistentvolumeclaims", "persistentvolumes"]),
                tokenreview,
                sar,
                rule(READ, "storage.k8s.io", "csinodes"),
                rule(READ, "", "namespaces"),
                rule(READ, "storage.k8s.io", "csidrivers"),
                rule(READ, "storage.k8s.io", "csistoragecapacities"),
            ],
        ),
        _cluster_role(
            "system:kubelet-api-admin",
            [
                rule(READ, "", "nodes"),
                rule("proxy", "", "nodes"),
                rule("*", "", ["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"]),
            ],
        ),
        _cluster_role(
            "system:monitoring",
            [
                rule(
                    "get",
                    urls=[
                        "/healthz",
                        "/healthz/*",
                        "/livez",
                        "/livez/*",
                        "/metrics",
                        "/metrics/slis",
                        "/readyz",
                        "/readyz/*",
                    ],
                )
            ],
        ),
        _cluster_role("system:node", _node_rules()),
        _cluster_role(
            "system:node-bootstrapper",
            [rule(["create", "get", "list", "watch"], "certificates.k8s.io", "certificatesigningrequests")],
        ),
        _cluster_role(
            "system:node-problem-detector",
            [rule("get", "", "nodes"), rule("patch", "", "nodes/status"), _events()],
        ),
        _cluster_role(
            "system:node-proxier",
            [
                rule(["list", "watch"], "", ["endpoints", "services"]),
                rule(READ, "", "nodes"),
                _events(),
                rule(["list", "watch"], "discovery.k8s.io", "endpointslices"),
            ],
        ),
        _cluster_role(
            "system:persistent-volume-provisioner",
            [
                rule(["create", "delete", "get", "list", "watch"], "", "persistentvolumes"),
                rule(["get", "list", "update", "watch"], "", "persistentvolumeclaims"),
                rule(READ, "storage.k8s.io", "storageclasses"),
                rule("watch", "", "events"),
                _events(),
            ],
        ),
        _cluster_role(
            "system:public-info-viewer", [rule("get", urls=["/healthz", "/livez", "/readyz", "/version", "/version/"])]
        ),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [rule("get", urls=["/.well-known/openid-configuration", "/openid/v1/jwks"])],
        ),
        _cluster_role(
            "system:volume-scheduler",
            [
                rule(["get", "list", "patch", "update", "watch"], "", "persistentvolumes"),
                rule(READ, "storage.k8s.io", "storageclasses"),
                rule(["get", "list", "patch", "update", "watch"], "", "persistentvolumeclaims"),
            ],
        ),
    ]


def _node_rules() -> list[Obj]:
    """system:node. The Node authorizer (a later slice) narrows these to the kubelet's own objects."""
    return [
        rule("create", "authentication.k8s.io", "tokenreviews"),
        rule("create", "authorization.k8s.io", ["localsubjectaccessreviews", "subjectaccessreviews"]),
        rule(READ, "", "services"),
        rule(["create", "get", "list", "watch"], "", "nodes"),
        rule(["patch", "update"], "", "nodes/status"),
        rule(["patch", "update"], "", "nodes"),
        rule(["create", "patch", "update"], "", "events"),
        rule(READ, "", "pods"),
        rule(["create", "delete"], "", "pods"),
        rule(["patch", "update"], "", "pods/status"),
        rule("create", "", "pods/eviction"),
        rule(READ, "", ["configmaps", "secrets"]),
        rule("get", "", ["persistentvolumeclaims", "persistentvolumes"]),
        rule("get", "", "endpoints"),
        rule(["create", "get", "list", "watch"], "certificates.k8s.io", "certificatesigningrequests"),
        rule(["create", "delete", "get", "patch", "update"], "coordination.k8s.io", "leases"),
        rule("get", "storage.k8s.io", "volumeattachments"),
        rule("create", "", "serviceaccounts/token"),
        rule(["get", "patch", "update"], "", "persistentvolumeclaims/status"),
        rule(READ, "storage.k8s.io", "csidrivers"),
        rule(["create", "delete", "get", "patch", "update"], "storage.k8s.io", "csinodes"),
        rule(READ, "node.k8s.io", "runtimeclasses"),
    ]


# -- controller roles (system:controller:<name>, bound to kube-system service accounts) -------------

_APPS_EXT = ["apps", "extensions"]


def _controller_rules() -> dict[str, list[Obj]]:
    ev = _events()
    return {
        "attachdetach-controller": [
            rule(["list", "watch"], "", ["persistentvolumeclaims", "persistentvolumes"]),
            rule(READ, "", "nodes"),
            rule(["patch", "update"], "", "nodes/status"),
            rule(["list", "watch"], "", "pods"),
            ev,
            rule(["create", "delete", "get", "list", "watch"], "storage.k8s.io", "volumeattachments"),
            rule(READ, "storage.k8s.io", "csidrivers"),
            rule(READ, "storage.k8s.io", "csinodes"),
        ],
        "certificate-controller": [
            rule(["delete", "get", "list", "watch"], "certificates.k8s.io", "certificatesigningrequests"),
            rule(
                "update",
                "certificates.k8s.io",
                ["certificatesigningrequests/approval", "certificatesigningrequests/status"],
            ),
            rule("approve", "certificates.k8s.io", "signers", names="kubernetes.io/kube-apiserver-client-kubelet"),
            rule(
                "sign",
                "certificates.k8s.io",
                "signers",
                names=[
                    "kubernetes.io/kube-apiserver-client",
                    "kubernetes.io/kube-apiserver-client-kubelet",
                    "kubernetes.io/kubelet-serving",
                    "kubernetes.io/legacy-unknown",
                ],
            ),
            rule("create", "authorization.k8s.io", "subjectaccessreviews"),
            ev,
        ],
        "clusterrole-aggregation-controller": [
            rule(["escalate", "get", "list", "patch", "update", "watch"], GROUP, "clusterroles"),
        ],
        "cronjob-controller": [
            rule(["get", "list", "update", "watch"], "batch", "cronjobs"),
            rule(["create", "delete", "get", "list", "patch", "update", "watch"], "batch", "jobs"),
            rule("update", "batch", "cronjobs/status"),
            rule("update", "batch", "cronjobs/finalizers"),
            rule(["delete", "list", "watch"], "", "pods"),
            ev,
        ],
        "daemon-set-controller": [
            rule(READ, _APPS_EXT, "daemonsets"),
            rule("update", _APPS_EXT, "daemonsets/status"),
            rule("update", _APPS_EXT, "daemonsets/finalizers"),
            rule(["list", "watch"], "", "nodes"),
            rule(["create", "delete", "list", "patch", "watch"], "", "pods"),
            rule("create", "", "pods/binding"),
            rule(["create", "delete", "get", "list", "patch", "update", "watch"], "apps", "controllerrevisions"),
            ev,
        ],
        "deployment-controller": [
            rule(["get", "list", "update", "watch"], _APPS_EXT, "deployments"),
            rule("update", _APPS_EXT, "deployments/status"),
            rule("update", _APPS_EXT, "deployments/finalizers"),
            rule(["create", "delete", "get", "list", "patch", "update", "watch"], _APPS_EXT, "replicasets"),
            rule(["get", "list", "update", "watch"], "", "pods"),
            ev,
        ],
        "disruption-controller": [
            rule(READ, _APPS_EXT, "deployments"),
            rule(READ, _APPS_EXT, "replicasets"),
            rule(READ, "", "replicationcontrollers"),
            rule(READ, "policy", "poddisruptionbudgets"),
            rule(READ, "apps", "statefulsets"),
            rule("update", "policy", "poddisruptionbudgets/status"),
            rule(["patch", "update"], "", "pods/status"),
            rule("get", "*", "*/scale"),
            ev,
        ],
        "endpoint-controller": [
            rule(READ, "", ["pods", "services"]),
            rule(["create", "delete", "get", "list", "update", "watch"], "", "endpoints"),
            rule("create", "", "endpoints/restricted"),
            ev,
        ],
        "endpointslice-controller": [
            rule(READ, "", ["nodes", "pods", "services"]),
            rule("update", "", "services/finalizers"),
            rule(["create", "delete", "get", "list", "update", "watch"], "discovery.k8s.io", "endpointslices"),
            ev,
        ],
        "endpointslicemirroring-controller": [
            rule(READ, "", ["endpoints", "services"]),
            rule("update", "", "services/finalizers"),
            rule("update", "", "endpoints/finalizers"),
            rule(["create", "delete", "get", "list", "update", "watch"], "discovery.k8s.io", "endpointslices"),
            ev,
        ],
        "generic-garbage-collector": [
            rule(["delete", "get", "list", "patch", "update", "watch"], "*", "*"),
            ev,
        ],
        "horizontal-pod-autoscaler": [
            rule(READ, "autoscaling", "horizontalpodautoscalers"),
            rule("update", "autoscaling", "horizontalpodautoscalers/status"),
            rule(["get", "update"], "*", "*/scale"),
            rule(["list", "watch"], "", "pods"),
            rule(["list", "watch"], "metrics.k8s.io", "pods"),
            rule(READ, "custom.metrics.k8s.io", "*"),
            rule(READ, "external.metrics.k8s.io", "*"),
            ev,
        ],
        "job-controller": [
            rule(["get", "list", "patch", "update", "watch"], "batch", "jobs"),
            rule("update", "batch", "jobs/status"),
            rule("update", "batch", "jobs/finalizers"),
            rule(["create", "delete", "list", "patch", "watch"], "", "pods"),
            ev,
        ],
        "namespace-controller": [
            rule(["delete", "get", "list", "watch"], "", "namespaces"),
            rule("update", "", ["namespaces/finalize", "namespaces/status"]),
            rule(["delete", "deletecollection", "get", "list", "watch"], "*", "*"),
        ],
        "node-controller": [
            rule(["delete", "get", "list", "patch", "update", "watch"], "", "nodes"),
            rule(["patch", "update"], "", "nodes/status"),
            rule(["patch", "update"], "", "pods/status"),
            rule(["delete", "get", "list", "watch"], "", "pods"),
            ev,
        ],
        "pod-garbage-collector": [
            rule(["delete", "list", "watch"], "", "pods"),
            rule(READ, "", "nodes"),
            rule("patch", "", "pods/status"),
        ],
        "replicaset-controller": [
            rule(["get", "list", "update", "watch"], _APPS_EXT, "replicasets"),
            rule("update", _APPS_EXT, "replicasets/status"),
            rule("update", _APPS_EXT, "replicasets/finalizers"),
            rule(["create", "delete", "list", "patch", "watch"], "", "pods"),
            ev,
        ],
        "resourcequota-controller": [
            rule(["list", "watch"], "*", "*"),
            rule("update", "", "resourcequotas/status"),
            ev,
        ],
        "root-ca-cert-publisher": [rule(["create", "update"], "", "configmaps"), ev],
        "service-account-controller": [rule("create", "", "serviceaccounts"), ev],
        "statefulset-controller": [
            rule(["list", "watch"], "", "pods"),
            rule(READ, "apps", "statefulsets"),
            rule("update", "apps", "statefulsets/status"),
            rule("update", "apps", "statefulsets/finalizers"),
            rule(["create", "delete", "get", "patch", "update"], "", "pods"),
            rule(["create", "delete", "get", "list", "patch", "update", "watch"], "apps", "controllerrevisions"),
            rule(["create", "get", "list", "watch"], "", "persistentvolumeclaims"),
            rule(["delete", "update"], "", "persistentvolumeclaims"),
            rule("update", "", "pods/finalizers"),
            ev,
        ],
        "ttl-after-finished-controller": [rule(["delete", "get", "list", "watch"], "batch", "jobs"), ev],
        "ttl-controller": [rule(["list", "patch", "update", "watch"], "", "nodes"), ev],
    }


CONTROLLER_PREFIX = "system:controller:"


def controller_roles() -> list[Obj]:
    return [_cluster_role(CONTROLLER_PREFIX + name, rules) for name, rules in sorted(_controller_rules().items())]


def cluster_roles() -> list[Obj]:
    """Default ClusterRoles (system, user-facing and controller roles), sorted by name.

    admin, edit and view carry an aggregationRule and empty rules; :func:`kubeha.apiserver.rbac.aggregate`
    fills them from the ``system:aggregate-to-*`` roles.
    """
    roles = [
        _aggregated("admin", None),
        _aggregated("edit", "admin"),
        _aggregated("view", "edit"),
        *_system_roles(),
        *controller_roles(),
    ]
    return sorted(roles, key=lambda r: r["metadata"]["name"])


# -- bindings -------------------------------------------------------------------------------------


def _crb(role: str, *subjects: Obj, name: str | None = None) -> Obj:
    return _binding("ClusterRoleBinding", name or role, "ClusterRole", role, list(subjects))


def cluster_role_bindings() -> list[Obj]:
    def user(n: str) -> Obj:
        return _subject("User", n)

    def group(n: str) -> Obj:
        return _subject("Group", n)

    bindings = [
        _crb("cluster-admin", group(MASTERS)),
        _crb("system:basic-user", group(AUTHENTICATED)),
        _crb("system:discovery", group(AUTHENTICATED)),
        _crb("system:public-info-viewer", group(AUTHENTICATED), group(UNAUTHENTICATED)),
        _crb("system:monitoring", group("system:monitoring")),
        # upstream keeps this binding without subjects: the Node authorizer grants kubelets instead
        _crb("system:node"),
        _crb("system:node-proxier", user("system:kube-proxy")),
        _crb("system:kube-controller-manager", user("system:kube-controller-manager")),
        _crb("system:kube-dns", _subject("ServiceAccount", "kube-dns", "kube-system")),
        _crb("system:kube-scheduler", user("system:kube-scheduler")),
        _crb("system:volume-scheduler", user("system:kube-scheduler")),
        _crb("system:service-account-issuer-discovery", group("system:serviceaccounts")),
    ]
    for name in _controller_rules():
        bindings.append(_crb(CONTROLLER_PREFIX + name, _subject("ServiceAccount", name, "kube-system")))
    return sorted(bindings, key=lambda b: b["metadata"]["name"])


def _role(namespace: str, name: str, rules: list[Obj]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "Role", "metadata": _meta(name, namespace), "rules": rules}


def namespaced_roles() -> dict[str, list[Obj]]:
    """Default Roles by namespace (leader election, bootstrap tokens, the authentication configmap)."""
    ks, kp = "kube-system", "kube-public"
    return {
        ks: [
            _role(
                ks,
                "extension-apiserver-authentication-reader",
                [rule(READ, "", "configmaps", names="extension-apiserver-authentication")],
            ),
            _role(
                ks,
                "system::leader-locking-kube-controller-manager",
                [
                    rule("watch", "", "configmaps"),
                    rule(["get", "update"], "", "configmaps", names="kube-controller-manager"),
                ],
            ),
            _role(
                ks,
                "system::leader-locking-kube-scheduler",
                [rule("watch", "", "configmaps"), rule(["get", "update"], "", "configmaps", names="kube-scheduler")],
            ),
            _role(ks, CONTROLLER_PREFIX + "bootstrap-signer", [rule(READ, "", "secrets")]),
            _role(
                ks, CONTROLLER_PREFIX + "cloud-provider", [rule(["create", "get", "list", "watch"], "", "configmaps")]
            ),
            _role(
                ks,
                CONTROLLER_PREFIX + "token-cleaner",
                [rule(["delete", "get", "list", "watch"], "", "secrets"), _events()],
            ),
        ],
        kp: [
            _role(
                kp,
                CONTROLLER_PREFIX + "bootstrap-signer",
                [
                    rule(READ, "", "configmaps"),
                    rule("update", "", "configmaps", names="cluster-info"),
                    _events(),
                ],
            ),
        ],
    }


def namespaced_role_bindings() -> dict[str, list[Obj]]:
    ks, kp = "kube-system", "kube-public"

    def rb(ns: str, name: str, *subjects: Obj) -> Obj:
        return _binding("RoleBinding", name, "Role", name, list(subjects), ns)

    def sa(name: str) -> Obj:
        return _subject("ServiceAccount", name, ks)

    return {
        ks: [
            _binding(
                "RoleBinding",
                "system::extension-apiserver-authentication-reader",
                "Role",
                "extension-apiserver-authentication-reader",
                [_subject("User", "system:kube-controller-manager"), _subject("User", "system:kube-scheduler")],
                ks,
            ),
            rb(
                ks,
                "system::leader-locking-kube-controller-manager",
                _subject("User", "system:kube-controller-manager"),
                sa("kube-controller-manager"),
            ),
            rb(
                ks,
                "system::leader-locking-kube-scheduler",
                _subject("User", "system:kube-scheduler"),
                sa("kube-scheduler"),
            ),
            rb(ks, CONTROLLER_PREFIX + "bootstrap-signer", sa("bootstrap-signer")),
            rb(ks, CONTROLLER_PREFIX + "cloud-provider", sa("cloud-provider")),
            rb(ks, CONTROLLER_PREFIX + "token-cleaner", sa("token-cleaner")),
        ],
        kp: [rb(kp, CONTROLLER_PREFIX + "bootstrap-signer", sa("bootstrap-signer"))],
    }
