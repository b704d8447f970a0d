"""DaemonSet decisions: node eligibility, node pinning, revisions, rolling-update budget."""

from __future__ import annotations

from typing import Any

from kubeha.controllers import daemonset as d

Obj = dict[str, Any]


def ds(**pod_spec: Any) -> Obj:
    return {
        "metadata": {"name": "agent", "namespace": "kube-system", "uid": "ds-uid", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a"}], **pod_spec}},
        },
    }


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


CP = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def test_taints_and_tolerations() -> None:
    assert d.should_run(ds(), node("w")) == (True, True)
    assert d.should_run(ds(), node("cp", taints=[CP])) == (False, True)  # NoSchedule: existing pods stay
    tolerating = ds(tolerations=[{"key": CP["key"], "operator": "Exists", "effect": "NoSchedule"}])
    assert d.should_run(tolerating, node("cp", taints=[CP])) == (True, True)
    evict = {"key": "dedicated", "value": "x", "effect": "NoExecute"}
    assert d.should_run(ds(), node("n", taints=[evict])) == (False, False)
    # automatic daemon tolerations: unreachable/not-ready NoExecute and unschedulable NoSchedule
    auto = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    ]
    assert d.should_run(ds(), node("n", taints=auto)) == (True, True)
    net = [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    assert d.should_run(ds(), node("n", taints=net))[0] is False
    assert d.should_run(ds(hostNetwork=True), node("n", taints=net))[0] is True


def test_node_selector_and_affinity() -> None:
    sel = ds(nodeSelector={"disk": "ssd"})
    assert d.should_run(sel, node("a", {"disk": "ssd"}))[0]
    assert not d.should_run(sel, node("b", {"disk": "hdd"}))[0]
    aff = ds(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]},
                    ]
                }
            }
        }
    )
    assert d.should_run(aff, node("x", {"zone": "b"}))[0]
    assert d.should_run(aff, node("special"))[0]
    assert not d.should_run(aff, node("y", {"zone": "c"}))[0]
    gt = [{"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["4"]}]}]
    assert d.node_selector_terms_match(gt, node("big", {"cpu": "8"}))
    assert not d.node_selector_terms_match(gt, node("small", {"cpu": "2"}))
    assert not d.node_selector_terms_match([{}], node("any"))  # an empty term matches nothing


def test_pin_to_node_keeps_other_requirements() -> None:
    spec: Obj = {}
    d.pin_to_node(spec, "n1")
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]
    spec2: Obj = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]
                }
            }
        }
    }
    d.pin_to_node(spec2, "n2")
    term = spec2["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [{"key": "zone", "operator": "Exists"}]
    assert term["matchFields"][0]["values"] == ["n2"]
    pod = {"spec": spec2}
    assert d.DaemonSetController.pod_node(pod) == "n2"


def test_daemon_tolerations_are_added_once() -> None:
    tols = d.daemon_tolerations(
        {
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 5,
                }
            ]
        }
    )
    not_ready = [t for t in tols if t["key"] == "node.kubernetes.io/not-ready"]
    assert not_ready == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    ]
    assert len(tols) == len(d.DAEMON_TOLERATIONS)


def test_revision_hash_is_stable_and_changes_with_the_template() -> None:
    a = d.revision_data(ds()["spec"]["template"])
    assert a["spec"]["template"]["$patch"] == "replace"
    h1, h2 = d.revision_hash(a), d.revision_hash(a)
    assert h1 == h2 and set(h1) <= set("bcdfghjklmnpqrstvwxz2456789")
    b = d.revision_data(ds(hostNetwork=True)["spec"]["template"])
    assert d.revision_hash(b) != h1
    assert d.revision_hash(a, 1) != h1  # a collision count moves the name
    cr = d.new_revision(ds(), "DaemonSet", a, 3)
    assert cr["metadata"]["name"] == f"agent-{h1}" and cr["revision"] == 3
    assert cr["metadata"]["labels"][d.REVISION_HASH_LABEL] == h1
    assert cr["metadata"]["ownerReferences"][0]["uid"] == "ds-uid"


def test_int_or_percent() -> None:
    assert d.int_or_percent(2, 10, True) == 2
    assert d.int_or_percent("25%", 10, True) == 3
    assert d.int_or_percent("25%", 10, False) == 2
    assert d.fnv32a(b"") == 0x811C9DC5
