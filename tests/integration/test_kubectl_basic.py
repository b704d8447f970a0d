"""Acceptance: kubectl create / get / describe / discovery / errors, as a new user runs them.

Two api-servers share one etcd; every test runs with kubectl 1.32 and 1.27.
"""

from __future__ import annotations

import re

import yaml

from tests.support.kubectl import Kubectl


def header(table: str) -> list[str]:
    """Column titles of kubectl's table output (tabwriter pads with 3 spaces; titles may hold one)."""
    return re.split(r"\s{2,}", table.splitlines()[0].strip())


def row(table: str, name: str) -> list[str]:
    for line in table.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in:\n{table}")


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports: [{containerPort: 80}]
"""


def test_create_the_basic_kinds(kubectl: Kubectl, ns: str) -> None:
    assert kubectl.ok("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1").strip() == "configmap/cfg created"
    out = kubectl.ok("create", "secret", "generic", "creds", "-n", ns, "--from-literal=password=s3cret")
    assert out.strip() == "secret/creds created"
    out = kubectl.ok("create", "deployment", "web", "-n", ns, "--image=nginx:1.27", "--replicas=2")
    assert out.strip() == "deployment.apps/web created"

    cm = kubectl.json("get", "configmap", "cfg", "-n", ns)
    assert (cm["kind"], cm["apiVersion"], cm["data"]) == ("ConfigMap", "v1", {"a": "1"})
    assert cm["metadata"]["namespace"] == ns
    assert cm["metadata"]["uid"] and cm["metadata"]["resourceVersion"] and cm["metadata"]["creationTimestamp"]
    secret = kubectl.json("get", "secret", "creds", "-n", ns)
    assert (secret["type"], secret["data"]) == ("Opaque", {"password": "czNjcmV0"})
    deploy = kubectl.json("get", "deployment", "web", "-n", ns)
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    # Defaults filled by the server, as upstream.
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert deploy["metadata"]["generation"] == 1


def test_get_tables(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("create", "deployment", "web", "-n", ns, "--image=nginx:1.27", "--replicas=2")
    kubectl.ok("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
    assert kubectl.apply(POD, "-n", ns).rc == 0

    pods = kubectl.ok("get", "pods", "-n", ns)
    assert header(pods) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row(pods, "web-0")[:4] == ["web-0", "0/1", "Pending", "0"]
    wide = kubectl.ok("get", "pods", "-n", ns, "-o", "wide")
    assert header(wide) == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]

    deploys = kubectl.ok("get", "deployments", "-n", ns)
    assert header(deploys) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row(deploys, "web")[:2] == ["web", "0/2"]
    wide = kubectl.ok("get", "deploy", "-n", ns, "-o", "wide")
    assert header(wide) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert row(wide, "web")[5:] == ["nginx", "nginx:1.27", "app=web"]

    cms = kubectl.ok("get", "configmaps", "-n", ns)
    assert header(cms) == ["NAME", "DATA", "AGE"]
    assert row(cms, "cfg")[:2] == ["cfg", "2"]
    namespaces = kubectl.ok("get", "namespaces")
    assert header(namespaces) == ["NAME", "STATUS", "AGE"]
    assert row(namespaces, ns)[:2] == [ns, "Active"]
    assert row(namespaces, "default")[:2] == ["default", "Active"]


def test_get_output_formats(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("create", "deployment", "web", "-n", ns, "--image=nginx:1.27")
    doc = yaml.safe_load(kubectl.ok("get", "deployment", "web", "-n", ns, "-o", "yaml"))
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == ("apps/v1", "Deployment", "web")
    listing = kubectl.json("get", "deployments", "-n", ns)
    assert [item["metadata"]["name"] for item in listing["items"]] == ["web"]
    assert listing["items"][0]["kind"] == "Deployment"
    assert kubectl.ok("get", "deployment", "web", "-n", ns, "-o", "jsonpath={.metadata.name}") == "web"
    names = kubectl.ok("get", "deployments", "-n", ns, "-o", "name")
    assert names.strip() == "deployment.apps/web"


def test_describe(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "cfg", "-n", ns, "--from-literal=greeting=hello")
    kubectl.ok("create", "deployment", "web", "-n", ns, "--image=nginx:1.27", "--replicas=3")
    out = kubectl.ok("describe", "configmap", "cfg", "-n", ns)
    assert re.search(r"^Name:\s+cfg$", out, re.M)
    assert re.search(rf"^Namespace:\s+{ns}$", out, re.M)
    assert re.search(r"^greeting:\n-+\nhello$", out, re.M), out
    out = kubectl.ok("describe", "deployment", "web", "-n", ns)
    assert re.search(r"^Name:\s+web$", out, re.M)
    assert re.search(r"^Replicas:\s+3 desired", out, re.M), out
    assert re.search(r"^\s+Image:\s+nginx:1.27$", out, re.M), out


def test_readyz_raw(kubectl: Kubectl) -> None:
    assert kubectl.ok("get", "--raw", "/readyz").strip() == "ok"


def test_api_resources(kubectl: Kubectl) -> None:
    out = kubectl.ok("api-resources")
    assert header(out) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert row(out, "pods") == ["pods", "po", "v1", "true", "Pod"]
    assert row(out, "deployments") == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert row(out, "namespaces") == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert row(out, "configmaps") == ["configmaps", "cm", "v1", "true", "ConfigMap"]


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl.ok("explain", "deployment.spec.replicas")
    assert re.search(r"^KIND:\s+Deployment$", out, re.M), out
    assert re.search(r"^FIELD:\s+replicas\s+<integer>$", out, re.M), out
    description = out.split("DESCRIPTION:", 1)[1].strip()
    assert description, out


def test_error_messages(kubectl: Kubectl, ns: str) -> None:
    err = kubectl.fail("create", "namespace", ns)
    assert f'Error from server (AlreadyExists): namespaces "{ns}" already exists' in err

    err = kubectl.fail("get", "configmap", "nope", "-n", ns)
    assert 'Error from server (NotFound): configmaps "nope" not found' in err

    bad = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: bad, namespace: {ns}}}
spec:
  replicas: -1
  selector: {{matchLabels: {{app: bad}}}}
  template:
    metadata: {{labels: {{app: bad}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"""
    res = kubectl.create(bad)
    assert res.rc != 0
    assert 'The Deployment "bad" is invalid' in res.stderr
    assert "spec.replicas: Invalid value: -1" in res.stderr

    # Generator commands wrap the server's message: "error: failed to create configmap: ConfigMap ..."
    err = kubectl.fail("create", "configmap", "Bad_Name", "-n", ns)
    assert 'ConfigMap "Bad_Name" is invalid' in err
    assert "metadata.name: Invalid value" in err
