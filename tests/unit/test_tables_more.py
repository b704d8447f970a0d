"""Table printers for batch, rbac, certificates, scheduling, node and quota kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeha.api import registry
from kubeha.apiserver import tables

registry.load_all()

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ts(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(group: str, version: str, resource: str, objs: list[dict[str, Any]]) -> dict[str, Any]:
    info = registry.lookup(group, version, resource)
    assert info is not None, (group, version, resource)
    return tables.table_for(info, objs, at=NOW)


def cells(group: str, version: str, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    t = table(group, version, resource, [obj])
    return {c["name"]: v for c, v in zip(t["columnDefinitions"], t["rows"][0]["cells"], strict=True)}


def columns(group: str, version: str, resource: str) -> list[tuple[str, int]]:
    return [(c["name"], c["priority"]) for c in table(group, version, resource, [])["columnDefinitions"]]


def meta(name: str = "x", age: timedelta = timedelta(hours=5), **extra: Any) -> dict[str, Any]:
    return {"name": name, "creationTimestamp": ts(age), **extra}


# -- jobs -------------------------------------------------------------------------------------------


def job(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **m: Any) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "pi", "image": "perl:5"}, {"name": "log", "image": "busybox"}]}}
    return {
        "metadata": meta("pi", **m),
        "spec": {"template": template, "selector": {"matchLabels": {"job-name": "pi"}}, **(spec or {})},
        "status": status or {},
    }


def test_job_columns() -> None:
    assert columns("batch", "v1", "jobs") == [
        ("Name", 0),
        ("Status", 0),
        ("Completions", 0),
        ("Duration", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ]


def test_complete_job() -> None:
    start, done = ts(timedelta(minutes=10)), ts(timedelta(minutes=9, seconds=15))
    j = job(
        {"completions": 1, "parallelism": 1},
        {
            "succeeded": 1,
            "startTime": start,
            "completionTime": done,
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    )
    assert cells("batch", "v1", "jobs", j) == {
        "Name": "pi",
        "Status": "Complete",
        "Completions": "1/1",
        "Duration": "45s",
        "Age": "5h",
        "Containers": "pi,log",
        "Images": "perl:5,busybox",
        "Selector": "job-name=pi",
    }


def test_running_job_duration_counts_to_now() -> None:
    j = job({"completions": 5}, {"succeeded": 2, "startTime": ts(timedelta(minutes=3))})
    c = cells("batch", "v1", "jobs", j)
    assert (c["Status"], c["Completions"], c["Duration"]) == ("Running", "2/5", "3m")


def test_job_not_started_has_empty_duration() -> None:
    c = cells("batch", "v1", "jobs", job({"completions": 3}))
    assert (c["Status"], c["Completions"], c["Duration"]) == ("Running", "0/3", "")


@pytest.mark.parametrize(
    ("spec", "text"),
    [({"parallelism": 4}, "1/1 of 4"), ({"parallelism": 1}, "1/1"), ({}, "1/1")],
)
def test_job_completions_without_completion_count(spec: dict[str, Any], text: str) -> None:
    assert cells("batch", "v1", "jobs", job(spec, {"succeeded": 1}))["Completions"] == text


@pytest.mark.parametrize(
    ("conditions", "deleting", "status"),
    [
        ([{"type": "Failed", "status": "True"}], False, "Failed"),
        ([{"type": "Suspended", "status": "True"}], False, "Suspended"),
        ([{"type": "Suspended", "status": "False"}], False, "Running"),
        ([{"type": "FailureTarget", "status": "True"}], False, "FailureTarget"),
        ([{"type": "Suspended", "status": "True"}], True, "Terminating"),
        # a finished job stays Complete/Failed while it is being deleted
        ([{"type": "Complete", "status": "True"}], True, "Complete"),
        ([{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}], False, "Failed"),
    ],
)
def test_job_status(conditions: list[dict[str, Any]], deleting: bool, status: str) -> None:
    extra = {"deletionTimestamp": ts(timedelta(seconds=1))} if deleting else {}
    assert cells("batch", "v1", "jobs", job({}, {"conditions": conditions}, **extra))["Status"] == status


# -- cronjobs ---------------------------------------------------------------------------------------


def cronjob(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "hello", "image": "busybox:1.36"}]}}
    return {
        "metadata": meta("hello", age=timedelta(days=2)),
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": template, "selector": {"matchLabels": {"app": "hello"}}}},
            **spec,
        },
        "status": status or {},
    }


def test_cronjob_columns() -> None:
    assert columns("batch", "v1", "cronjobs") == [
        ("Name", 0),
        ("Schedule", 0),
        ("Timezone", 0),
        ("Suspend", 0),
        ("Active", 0),
        ("Last Schedule", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ]


def test_cronjob_cells() -> None:
    cj = cronjob(
        {"suspend": False, "timeZone": "Etc/UTC"},
        {"active": [{"name": "hello-1"}, {"name": "hello-2"}], "lastScheduleTime": ts(timedelta(seconds=42))},
    )
    assert cells("batch", "v1", "cronjobs", cj) == {
        "Name": "hello",
        "Schedule": "*/5 * * * *",
        "Timezone": "Etc/UTC",
        "Suspend": "False",
        "Active": 2,
        "Last Schedule": "42s",
        "Age": "2d",
        "Containers": "hello",
        "Images": "busybox:1.36",
        "Selector": "app=hello",
    }


def test_cronjob_never_scheduled() -> None:
    c = cells("batch", "v1", "cronjobs", cronjob({"suspend": True}))
    assert (c["Timezone"], c["Suspend"], c["Active"], c["Last Schedule"]) == ("<none>", "True", 0, "<none>")
    c = cells("batch", "v1", "cronjobs", cronjob({}))
    assert c["Suspend"] == "<unset>"


# -- generic "created at" kinds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "resource"),
    [("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"), ("", "limitranges")],
)
def test_created_at_kinds(group: str, resource: str) -> None:
    t = table(group, "v1", resource, [{"metadata": {"name": "r", "creationTimestamp": "2024-05-01T10:20:30+02:00"}}])
    assert [(c["name"], c["type"]) for c in t["columnDefinitions"]] == [("Name", "string"), ("Created At", "date")]
    assert t["rows"][0]["cells"] == ["r", "2024-05-01T08:20:30Z"]


def test_created_at_without_timestamp_is_go_zero_time() -> None:
    t = table("rbac.authorization.k8s.io", "v1", "roles", [{"metadata": {"name": "r"}}])
    assert t["rows"][0]["cells"] == ["r", "0001-01-01T00:00:00Z"]


# -- bindings ---------------------------------------------------------------------------------------


SUBJECTS = [
    {"kind": "User", "name": "alice"},
    {"kind": "Group", "name": "devs"},
    {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"},
    {"kind": "User", "name": "bob"},
    {"kind": "Group", "name": "ops"},
]


@pytest.mark.parametrize(("resource", "kind"), [("rolebindings", "Role"), ("clusterrolebindings", "ClusterRole")])
def test_bindings(resource: str, kind: str) -> None:
    assert columns("rbac.authorization.k8s.io", "v1", resource) == [
        ("Name", 0),
        ("Role", 0),
        ("Age", 0),
        ("Users", 1),
        ("Groups", 1),
        ("ServiceAccounts", 1),
    ]
    b = {"metadata": meta("b"), "roleRef": {"kind": kind, "name": "edit"}, "subjects": SUBJECTS}
    assert cells("rbac.authorization.k8s.io", "v1", resource, b) == {
        "Name": "b",
        "Role": f"{kind}/edit",
        "Age": "5h",
        "Users": "alice, bob",
        "Groups": "devs, ops",
        "ServiceAccounts": "ci/builder",
    }


def test_binding_without_subjects() -> None:
    b = {"metadata": meta("b"), "roleRef": {"kind": "ClusterRole", "name": "view"}}
    c = cells("rbac.authorization.k8s.io", "v1", "rolebindings", b)
    assert (c["Users"], c["Groups"], c["ServiceAccounts"]) == ("", "", "")


# -- certificate signing requests -------------------------------------------------------------------


def csr(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": meta("node-csr", age=timedelta(minutes=4)),
        "spec": {"request": "LS0t", "username": "system:node:n1", **spec},
        "status": status or {},
    }


def test_csr_columns_and_cells() -> None:
    assert columns("certificates.k8s.io", "v1", "certificatesigningrequests") == [
        ("Name", 0),
        ("Age", 0),
        ("SignerName", 0),
        ("Requestor", 0),
        ("RequestedDuration", 0),
        ("Condition", 0),
    ]
    obj = csr(
        {"signerName": "kubernetes.io/kubelet-serving", "expirationSeconds": 86400},
        {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0tLS1CRUdJTg=="},
    )
    assert cells("certificates.k8s.io", "v1", "certificatesigningrequests", obj) == {
        "Name": "node-csr",
        "Age": "4m",
        "SignerName": "kubernetes.io/kubelet-serving",
        "Requestor": "system:node:n1",
        "RequestedDuration": "24h",
        "Condition": "Approved,Issued",
    }


@pytest.mark.parametrize(
    ("types", "cert", "text"),
    [
        ([], False, "Pending"),
        (["Denied"], False, "Denied"),
        (["Approved", "Denied"], False, "Denied"),
        (["Approved", "Failed"], False, "Approved,Failed"),
        (["Approved"], True, "Approved,Issued"),
    ],
)
def test_csr_condition(types: list[str], cert: bool, text: str) -> None:
    status: dict[str, Any] = {"conditions": [{"type": t, "status": "True"} for t in types]}
    if cert:
        status["certificate"] = "LS0t"
    assert tables.csr_condition(csr({}, status)) == text


def test_csr_without_signer_or_duration() -> None:
    c = cells("certificates.k8s.io", "v1", "certificatesigningrequests", csr({}))
    assert (c["SignerName"], c["RequestedDuration"], c["Condition"]) == ("<none>", "<none>", "Pending")


# -- priority classes, runtime classes --------------------------------------------------------------


def test_priorityclass() -> None:
    assert columns("scheduling.k8s.io", "v1", "priorityclasses") == [
        ("Name", 0),
        ("Value", 0),
        ("Global-Default", 0),
        ("Age", 0),
        ("PreemptionPolicy", 0),
    ]
    pc = {"metadata": meta("high"), "value": 1000000, "globalDefault": True, "preemptionPolicy": "Never"}
    assert cells("scheduling.k8s.io", "v1", "priorityclasses", pc) == {
        "Name": "high",
        "Value": 1000000,
        "Global-Default": True,
        "Age": "5h",
        "PreemptionPolicy": "Never",
    }
    c = cells("scheduling.k8s.io", "v1", "priorityclasses", {"metadata": meta("low"), "value": -5})
    assert (c["Value"], c["Global-Default"], c["PreemptionPolicy"]) == (-5, False, "")


def test_runtimeclass() -> None:
    rc = {"metadata": meta("host", age=timedelta(days=9)), "handler": "host"}
    assert cells("node.k8s.io", "v1", "runtimeclasses", rc) == {"Name": "host", "Handler": "host", "Age": "9d"}


# -- resource quotas --------------------------------------------------------------------------------


def test_resourcequota() -> None:
    assert columns("", "v1", "resourcequotas") == [("Name", 0), ("Request", 0), ("Limit", 0), ("Age", 0)]
    rq = {
        "metadata": meta("compute"),
        "status": {
            "hard": {
                "requests.cpu": "2",
                "pods": "10",
                "limits.memory": "2Gi",
                "limits.cpu": "4",
                "requests.memory": "1Gi",
            },
            "used": {"requests.cpu": "500m", "pods": "3", "limits.cpu": "1", "requests.memory": "256Mi"},
        },
    }
    assert cells("", "v1", "resourcequotas", rq) == {
        "Name": "compute",
        "Request": "pods: 3/10, requests.cpu: 500m/2, requests.memory: 256Mi/1Gi",
        "Limit": "limits.cpu: 1/4, limits.memory: 0/2Gi",
        "Age": "5h",
    }


def test_resourcequota_before_the_controller_fills_status() -> None:
    c = cells("", "v1", "resourcequotas", {"metadata": meta("q"), "spec": {"hard": {"pods": "1"}}})
    assert (c["Request"], c["Limit"]) == ("", "")


# -- kinds that already had printers keep them ------------------------------------------------------


def test_controllerrevisions_and_pdbs_have_printers() -> None:
    assert [n for n, _ in columns("apps", "v1", "controllerrevisions")] == ["Name", "Controller", "Revision", "Age"]
    assert [n for n, _ in columns("policy", "v1", "poddisruptionbudgets")] == [
        "Name",
        "Min Available",
        "Max Unavailable",
        "Allowed Disruptions",
        "Age",
    ]


def test_every_listable_resource_prints_a_name_column() -> None:
    for info in registry.RESOURCES.values():
        if "list" not in info.verbs:
            continue
        cols = tables.columns_for(info)
        assert any(c["format"] == "name" for c in cols), info.resource
        row = tables.table_for(info, [{"metadata": {"name": "n"}}], at=NOW)["rows"][0]["cells"]
        assert len(row) == len(cols), info.resource
