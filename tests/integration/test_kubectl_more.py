"""Acceptance, the rest of the new-user walk: services, selectors, paging, waits, errors, explain.

Two api-servers share one etcd; every test runs with kubectl 1.32 and 1.27. Expected texts are
what kubectl prints against a real cluster for the same requests.
"""

from __future__ import annotations

import base64
import json
import re
import time

import yaml

from tests.integration.test_kubectl_basic import header, row
from tests.support.kubectl import Kubectl

MULTI = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-cfg, namespace: {ns}}}
data: {{mode: blue}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: {ns}, labels: {{app: app}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers: [{{name: main, image: "nginx:1.27", ports: [{{containerPort: 80}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: app, namespace: {ns}}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: 80}}]
"""


def test_services_expose_and_get_all(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    node_port = 30900 + int(kubectl.version.split(".")[1])  # one per kubectl version: they share etcd
    assert (
        kubectl.ok("create", "service", "clusterip", "cip", "-n", ns, "--tcp=80:8080").strip() == "service/cip created"
    )
    out = kubectl_b.ok("create", "service", "nodeport", "np", "-n", ns, "--tcp=81:8081", f"--node-port={node_port}")
    assert out.strip() == "service/np created"
    kubectl.ok("create", "deployment", "web", "-n", ns, "--image=nginx:1.27")
    out = kubectl.ok("expose", "deployment", "web", "-n", ns, "--port=8080", "--target-port=80")
    assert out.strip() == "service/web exposed"
    svcs = kubectl_b.ok("get", "svc", "-n", ns, "-o", "wide")
    assert header(svcs) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    cip = row(svcs, "cip")
    assert cip[1] == "ClusterIP" and re.fullmatch(r"10\.\d+\.\d+\.\d+", cip[2]) and cip[3:5] == ["<none>", "80/TCP"]
    assert cip[6] == "app=cip"
    np = row(svcs, "np")
    assert np[1] == "NodePort" and np[4] == f"81:{node_port}/TCP"
    assert row(svcs, "web")[4] == "8080/TCP" and row(svcs, "web")[6] == "app=web"
    # the allocated IPs differ
    assert len({row(svcs, n)[2] for n in ("cip", "np", "web")}) == 3
    out = kubectl.ok("get", "all", "-n", ns)
    assert "service/cip" in out and "service/web" in out and "deployment.apps/web" in out
    out = kubectl.ok("describe", "service", "web", "-n", ns)
    assert re.search(r"^Selector:\s+app=web$", out, re.M) and re.search(r"^TargetPort:\s+80/TCP$", out, re.M), out


def test_apply_multi_document_then_delete_f(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    manifest = MULTI.format(ns=ns)
    res = kubectl.apply(manifest)
    assert res.rc == 0, res.stderr
    assert res.stdout.splitlines() == [
        "configmap/app-cfg created",
        "deployment.apps/app created",
        "service/app created",
    ]
    changed = manifest.replace("mode: blue", "mode: green").replace("replicas: 1", "replicas: 3")
    res = kubectl_b.apply(changed)
    assert res.stdout.splitlines() == [
        "configmap/app-cfg configured",
        "deployment.apps/app configured",
        "service/app unchanged",
    ], res.stderr
    assert kubectl.ok("get", "deploy", "app", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "3"
    res = kubectl.run("delete", "-f", "-", input=changed)
    assert res.rc == 0, res.stderr
    assert res.stdout.splitlines() == [
        'configmap "app-cfg" deleted',
        'deployment.apps "app" deleted',
        'service "app" deleted',
    ]
    assert "No resources found" in kubectl_b.run("get", "cm,deploy,svc", "-n", ns).stderr


def test_selectors_and_paging(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    for i in range(5):
        kubectl.ok("create", "configmap", f"c{i}", "-n", ns, f"--from-literal=i={i}")
    kubectl.ok("label", "configmap", "c1", "c2", "-n", ns, "grp=a")
    names = kubectl_b.ok("get", "cm", "-n", ns, "-l", "grp=a", "-o", "name").split()
    assert names == ["configmap/c1", "configmap/c2"]
    names = kubectl.ok("get", "cm", "-n", ns, "-l", "grp!=a", "-o", "name").split()
    assert names == ["configmap/c0", "configmap/c3", "configmap/c4"]
    names = kubectl.ok("get", "cm", "-n", ns, "--field-selector", "metadata.name=c3", "-o", "name").split()
    assert names == ["configmap/c3"]
    names = kubectl_b.ok("get", "cm", "-n", ns, "--field-selector", "metadata.name!=c3", "-o", "name").split()
    assert names == ["configmap/c0", "configmap/c1", "configmap/c2", "configmap/c4"]
    # paging: kubectl follows the continue tokens and prints one table
    res = kubectl.run("get", "cm", "-n", ns, "--chunk-size=2", "-v=6")
    assert res.rc == 0, res.stderr
    assert len(re.findall(r"GET https://\S+/configmaps\?(?:continue=\S+&)?limit=2 200", res.stderr)) == 3, res.stderr
    assert [line.split()[0] for line in res.stdout.splitlines()] == ["NAME", "c0", "c1", "c2", "c3", "c4"]
    # pods: the extra field selectors, and the upstream wording for unknown ones
    kubectl.ok("run", "p1", "-n", ns, "--image=busybox", "--restart=Never")
    out = kubectl_b.ok("get", "pods", "-n", ns, "--field-selector", "status.phase=Pending", "-o", "name")
    assert out.split() == ["pod/p1"]
    err = kubectl.fail("get", "pods", "-n", ns, "--field-selector", "foo=bar")
    assert "field label not supported: foo" in err
    err = kubectl.fail("get", "cm", "-n", ns, "--field-selector", "foo=bar")
    assert '"foo" is not a known field selector: only "metadata.name", "metadata.namespace"' in err


def test_wait_for_delete_and_watch_only(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "gone", "-n", ns)
    watcher = kubectl_b.popen("get", "cm", "-n", ns, "--watch-only", "-o", "name")
    waiter = kubectl_b.popen("wait", "--for=delete", "configmap/gone", "-n", ns, "--timeout=20s")
    try:
        time.sleep(1.0)  # let both list+watch before the writes
        kubectl.ok("create", "configmap", "fresh", "-n", ns)
        assert kubectl.ok("delete", "configmap", "gone", "-n", ns).strip() == 'configmap "gone" deleted'
        out, err = waiter.communicate(timeout=20)
        assert waiter.returncode == 0, err
        assert out.strip() == "configmap/gone condition met"
    finally:
        waiter.kill()
        time.sleep(0.5)
        watcher.kill()
    out, _ = watcher.communicate(timeout=5)
    # --watch-only prints changes only: nothing that existed before, then each event's object
    assert out.split() == ["configmap/fresh", "configmap/gone"], out


def test_conflicts_and_invalid_input(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1")
    # duplicate create from a file
    res = kubectl_b.create(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg, namespace: {ns}}}\n")
    assert res.rc != 0
    assert (
        'Error from server (AlreadyExists): error when creating "STDIN": configmaps "cfg" already exists' in res.stderr
    )
    # stale update: replace with the resourceVersion read before someone else's write
    stale = kubectl.ok("get", "configmap", "cfg", "-n", ns, "-o", "yaml")
    kubectl_b.ok("annotate", "configmap", "cfg", "-n", ns, "x=1")
    res = kubectl.run("replace", "-f", "-", input=stale)
    assert res.rc != 0
    assert (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on configmaps '
        '"cfg": the object has been modified; please apply your changes to the latest version and try again'
    ) in res.stderr
    # a body that does not decode: upstream's wording
    res = kubectl.create(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: t, namespace: {ns}}}\ndata: {{a: [1]}}\n")
    assert res.rc != 0
    assert (
        'Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot be handled '
        "as a ConfigMap: json: cannot unmarshal array into Go struct field ConfigMap.data of type string"
    ) in res.stderr
    res = kubectl.create(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: t, namespace: {ns}}}\nbogus: 1\n")
    assert (
        'Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot be handled '
        'as a ConfigMap: strict decoding error: unknown field "bogus"'
    ) in res.stderr
    # invalid values: 422 with the field causes
    res = kubectl_b.create(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: Bad_Svc, namespace: {ns}}}\n"
        "spec: {ports: [{port: 70000}]}\n"
    )
    assert res.rc != 0
    assert 'The Service "Bad_Svc" is invalid' in res.stderr
    assert 'metadata.name: Invalid value: "Bad_Svc"' in res.stderr
    assert "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive" in res.stderr
    # missing namespace
    err = kubectl.fail("create", "configmap", "x", "-n", "no-such-namespace-here")
    assert 'namespaces "no-such-namespace-here" not found' in err
    # a JSON patch whose test does not hold
    err = kubectl.fail(
        "patch", "configmap", "cfg", "-n", ns, "--type=json", "-p", '[{"op":"test","path":"/data/a","value":"2"}]'
    )
    assert "The request is invalid: : testing value /data/a failed: test failed" in err
    # nothing half-written
    assert kubectl.ok("get", "cm", "-n", ns, "-o", "name").split() == ["configmap/cfg"]


def test_create_token(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("create", "serviceaccount", "robot", "-n", ns)
    token = kubectl.ok("create", "token", "robot", "-n", ns, "--duration=15m").strip()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == f"system:serviceaccount:{ns}:robot"
    assert claims["exp"] - claims["iat"] == 900
    err = kubectl.fail("create", "token", "nobody", "-n", ns)
    assert 'serviceaccounts "nobody" not found' in err, err


def test_explain_paths_and_discovery(kubectl: Kubectl) -> None:
    out = kubectl.ok("explain", "pod.spec.containers.livenessProbe")
    assert re.search(r"^FIELD:\s+livenessProbe\s+<Probe>$", out, re.M), out
    for field in ("exec", "httpGet", "tcpSocket", "grpc", "periodSeconds", "failureThreshold"):
        assert re.search(rf"^\s+{field}\s+<", out, re.M), (field, out)
    out = kubectl.ok("explain", "deployment", "--recursive")
    assert re.search(r"^KIND:\s+Deployment$", out, re.M) and re.search(r"^GROUP:\s+apps$", out, re.M), out
    assert re.search(r"^\s+strategy\s+<DeploymentStrategy>$", out, re.M), out
    assert re.search(r"^\s+maxSurge\s+<string>$", out, re.M), out  # int-or-string refs print their JSON type
    out = kubectl.ok("explain", "service.spec.ports.port")
    assert re.search(r"^FIELD:\s+port\s+<integer>", out, re.M), out
    versions = kubectl.ok("api-versions").split()
    for gv in ("v1", "apps/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1"):
        assert gv in versions
    out = kubectl.ok("get", "--raw", "/readyz?verbose")
    assert "[+]etcd ok" in out and out.rstrip().endswith("readyz check passed"), out
    out = kubectl.ok("get", "--raw", "/metrics")
    assert "# TYPE apiserver_request_total counter" in out


def test_describe_more_kinds(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("create", "secret", "generic", "s1", "-n", ns, "--from-literal=password=abc")
    out = kubectl.ok("describe", "secret", "s1", "-n", ns)
    assert re.search(r"^Type:\s+Opaque$", out, re.M) and re.search(r"^password:\s+3 bytes$", out, re.M), out
    kubectl.ok("run", "p1", "-n", ns, "--image=busybox", "--restart=Never", "--labels=app=p")
    out = kubectl.ok("describe", "pod", "p1", "-n", ns)
    assert re.search(r"^Status:\s+Pending$", out, re.M) and re.search(r"^Node:\s+<none>$", out, re.M), out
    assert re.search(r"^QoS Class:\s+BestEffort$", out, re.M), out
    out = kubectl.ok("describe", "namespace", ns)
    assert re.search(rf"^Name:\s+{ns}$", out, re.M) and re.search(r"^Status:\s+Active$", out, re.M), out
    # server-side apply twice is a no-op the second time (same manager, same fields)
    cm = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ssa, namespace: {ns}}}\ndata: {{a: '1'}}\n"
    assert kubectl.run("apply", "--server-side", "-f", "-", input=cm).rc == 0
    rv = kubectl.ok("get", "cm", "ssa", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")
    assert (
        kubectl.run("apply", "--server-side", "-f", "-", input=cm).stdout.strip() == "configmap/ssa serverside-applied"
    )
    assert kubectl.ok("get", "cm", "ssa", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}") == rv
    doc = yaml.safe_load(kubectl.ok("get", "cm", "ssa", "-n", ns, "-o", "yaml", "--show-managed-fields"))
    assert [(m["manager"], m["operation"]) for m in doc["metadata"]["managedFields"]] == [("kubectl", "Apply")]
