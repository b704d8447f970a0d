"""Acceptance: label, annotate, scale, patch (3 types), edit, delete."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.support.kubectl import Kubectl

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {tier: before}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.26
        env: [{name: A, value: "1"}]
      - name: sidecar
        image: busybox:1.36
"""


def _deploy(kubectl: Kubectl, ns: str) -> None:
    res = kubectl.create(DEPLOY, "-n", ns)
    assert res.rc == 0, res.stderr


def test_label_and_annotate(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1")
    assert kubectl.ok("label", "configmap", "cfg", "-n", ns, "env=prod", "team=core").strip() == "configmap/cfg labeled"
    assert kubectl.json("get", "cm", "cfg", "-n", ns)["metadata"]["labels"] == {"env": "prod", "team": "core"}
    err = kubectl.fail("label", "configmap", "cfg", "-n", ns, "env=dev")
    assert "already has a value (prod)" in err
    kubectl.ok("label", "configmap", "cfg", "-n", ns, "env=dev", "--overwrite", "team-")
    assert kubectl.json("get", "cm", "cfg", "-n", ns)["metadata"]["labels"] == {"env": "dev"}
    # Label selectors see it.
    assert kubectl.ok("get", "cm", "-n", ns, "-l", "env=dev", "-o", "name").strip() == "configmap/cfg"
    assert kubectl.ok("get", "cm", "-n", ns, "-l", "env=prod", "-o", "name").strip() == ""

    out = kubectl.ok("annotate", "configmap", "cfg", "-n", ns, "note=hello world")
    # kubectl 1.27 prints "annotate", later versions "annotated".
    assert out.strip() in ("configmap/cfg annotated", "configmap/cfg annotate")
    assert kubectl.json("get", "cm", "cfg", "-n", ns)["metadata"]["annotations"] == {"note": "hello world"}
    kubectl.ok("annotate", "configmap", "cfg", "-n", ns, "note-")
    assert not kubectl.json("get", "cm", "cfg", "-n", ns)["metadata"].get("annotations")


def test_scale(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    _deploy(kubectl, ns)
    assert kubectl.ok("scale", "deployment", "web", "-n", ns, "--replicas=4").strip() == "deployment.apps/web scaled"
    assert kubectl_b.json("get", "deployment", "web", "-n", ns)["spec"]["replicas"] == 4
    scale = json.loads(kubectl.ok("get", "--raw", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale"))
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["spec"] == {"replicas": 4}
    # --current-replicas is a precondition.
    err = kubectl.fail("scale", "deployment", "web", "-n", ns, "--current-replicas=2", "--replicas=1")
    assert "Expected replicas to be 2, was 4" in err


def test_patch_strategic_merge_json(kubectl: Kubectl, ns: str) -> None:
    _deploy(kubectl, ns)
    smp = '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}'
    assert kubectl.ok("patch", "deployment", "web", "-n", ns, "-p", smp).strip() == "deployment.apps/web patched"
    containers = kubectl.json("get", "deploy", "web", "-n", ns)["spec"]["template"]["spec"]["containers"]
    # Strategic merge: containers merged by name, the sidecar and web's env kept.
    assert [(c["name"], c["image"]) for c in containers] == [("web", "nginx:1.27"), ("sidecar", "busybox:1.36")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]

    out = kubectl.ok("patch", "deployment", "web", "-n", ns, "--type=merge", "-p", '{"metadata":{"labels":{"x":"y"}}}')
    assert out.strip() == "deployment.apps/web patched"
    assert kubectl.json("get", "deploy", "web", "-n", ns)["metadata"]["labels"] == {"tier": "before", "x": "y"}

    jp = '[{"op":"replace","path":"/spec/replicas","value":5},{"op":"remove","path":"/metadata/labels/x"}]'
    kubectl.ok("patch", "deployment", "web", "-n", ns, "--type=json", "-p", jp)
    deploy = kubectl.json("get", "deploy", "web", "-n", ns)
    assert deploy["spec"]["replicas"] == 5
    assert deploy["metadata"]["labels"] == {"tier": "before"}

    out = kubectl.ok("patch", "deployment", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":5}}')
    assert out.strip() == "deployment.apps/web patched (no change)"

    err = kubectl.fail(
        "patch", "deployment", "web", "-n", ns, "--type=json", "-p", '[{"op":"test","path":"/spec/replicas","value":9}]'
    )
    # A failed `test` is a 422 without a kind or name; kubectl prints it as an invalid request.
    assert "The request is invalid" in err
    assert kubectl.json("get", "deploy", "web", "-n", ns)["spec"]["replicas"] == 5


def test_edit(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    _deploy(kubectl, ns)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i -e 's/tier: before/tier: after/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    out = kubectl.ok("edit", "deployment", "web", "-n", ns, env={"KUBE_EDITOR": str(editor)})
    assert out.strip() == "deployment.apps/web edited"
    assert kubectl.json("get", "deploy", "web", "-n", ns)["metadata"]["labels"] == {"tier": "after"}


def test_delete_waits_until_gone(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "gone", "-n", ns, "--from-literal=a=1")
    _deploy(kubectl, ns)
    assert kubectl.ok("delete", "configmap", "gone", "-n", ns).strip() == 'configmap "gone" deleted'
    assert "NotFound" in kubectl_b.fail("get", "configmap", "gone", "-n", ns)
    assert kubectl.ok("delete", "deployment", "web", "-n", ns).strip() == 'deployment.apps "web" deleted'
    assert "NotFound" in kubectl_b.fail("get", "deployment", "web", "-n", ns)
    err = kubectl.fail("delete", "configmap", "gone", "-n", ns)
    assert 'configmaps "gone" not found' in err
