"""Acceptance: client-side and server-side apply through both api-servers."""

from __future__ import annotations

from tests.support.kubectl import Kubectl

MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  labels: {{app: demo}}
data:
  mode: {mode}
  keep: "yes"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  labels: {{app: demo}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: demo}}
  template:
    metadata:
      labels: {{app: demo}}
    spec:
      containers:
      - name: app
        image: {image}
        env:
        - {{name: MODE, value: {mode}}}
        - {{name: KEEP, value: "1"}}
        ports:
        - {{containerPort: 8080}}
"""


def test_apply_then_reapply_changed(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    first = MANIFEST.format(mode="blue", replicas=1, image="nginx:1.26")
    res = kubectl.apply(first, "-n", ns)
    assert res.rc == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["configmap/app-config created", "deployment.apps/demo created"]

    # Unchanged manifest through the other api-server: nothing to do.
    res = kubectl_b.apply(first, "-n", ns)
    assert res.rc == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["configmap/app-config unchanged", "deployment.apps/demo unchanged"]

    # A field set outside the manifest must survive re-apply (3-way merge keeps it).
    kubectl.ok("label", "deployment", "demo", "-n", ns, "owner=ops")

    second = MANIFEST.format(mode="green", replicas=3, image="nginx:1.27")
    res = kubectl_b.apply(second, "-n", ns)
    assert res.rc == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["configmap/app-config configured", "deployment.apps/demo configured"]

    cm = kubectl.json("get", "configmap", "app-config", "-n", ns)
    assert cm["data"] == {"mode": "green", "keep": "yes"}
    deploy = kubectl.json("get", "deployment", "demo", "-n", ns)
    assert deploy["spec"]["replicas"] == 3
    assert deploy["metadata"]["labels"] == {"app": "demo", "owner": "ops"}
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.27"
    assert container["env"] == [{"name": "MODE", "value": "green"}, {"name": "KEEP", "value": "1"}]
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert deploy["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in deploy["metadata"]["annotations"]


def test_apply_removes_fields_dropped_from_the_manifest(kubectl: Kubectl, ns: str) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: trim}}\ndata: {data}\n"
    assert kubectl.apply(cm.format(data='{a: "1", b: "2"}'), "-n", ns).rc == 0
    assert kubectl.apply(cm.format(data='{a: "1"}'), "-n", ns).rc == 0
    assert kubectl.json("get", "configmap", "trim", "-n", ns)["data"] == {"a": "1"}


SSA = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: ssa}}
data: {{a: "{a}", c: "3"}}
"""


def test_server_side_apply_and_conflicts(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    res = kubectl.apply(SSA.format(a="1"), "--server-side", "-n", ns)
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "configmap/ssa serverside-applied"
    # kubectl hides managedFields unless asked.
    cm = kubectl.json("get", "configmap", "ssa", "-n", ns, "--show-managed-fields")
    assert cm["data"] == {"a": "1", "c": "3"}
    managers = {(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers

    # Another manager claims .data.a with a different value: a conflict unless forced.
    res = kubectl_b.apply(SSA.format(a="2"), "--server-side", "--field-manager=other", "-n", ns)
    assert res.rc != 0
    assert "conflict" in res.stderr.lower()
    assert ".data.a" in res.stderr
    assert kubectl.json("get", "configmap", "ssa", "-n", ns)["data"]["a"] == "1"

    res = kubectl_b.apply(SSA.format(a="2"), "--server-side", "--field-manager=other", "--force-conflicts", "-n", ns)
    assert res.rc == 0, res.stderr
    assert kubectl.json("get", "configmap", "ssa", "-n", ns)["data"] == {"a": "2", "c": "3"}


def test_server_side_apply_conflicts_with_create(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "ssa", "-n", ns, "--from-literal=a=0")
    res = kubectl.apply(SSA.format(a="1"), "--server-side", "-n", ns)
    assert res.rc != 0
    assert 'conflict with "kubectl-create"' in res.stderr
    assert kubectl.apply(SSA.format(a="1"), "--server-side", "--force-conflicts", "-n", ns).rc == 0
    assert kubectl.json("get", "configmap", "ssa", "-n", ns)["data"] == {"a": "1", "c": "3"}
