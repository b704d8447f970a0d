"""core/v1 declarations, registrations and strategies (defaulting, validation, update rules)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from kubeha.api import registry, schema
from kubeha.api.core import v1
from kubeha.api.errors import Cause

CORE = schema.CORE


def fields(causes: list[Cause]) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in causes]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def info(resource: str) -> registry.ResourceInfo:
    found = registry.lookup("", "v1", resource)
    assert found is not None, resource
    return found


# -- declarations ----------------------------------------------------------------------------------


def test_top_level_kinds_have_gvk_type_meta_and_metadata() -> None:
    for kind in (
        "Namespace",
        "Node",
        "Service",
        "Endpoints",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Event",
        "Binding",
    ):
        s = schema.KINDS[("", "v1", kind)]
        assert s.name == CORE + kind
        assert s.by_json["apiVersion"].number == 0
        assert s.by_json["kind"].number == 0
        assert s.by_json["metadata"].number == 1
        assert s.by_json["metadata"].type == schema.ref(schema.META + "ObjectMeta")


def test_protobuf_numbers_follow_upstream() -> None:
    spec = schema.STRUCTS[CORE + "ServiceSpec"]
    assert spec.by_json["clusterIPs"].number == 18
    assert spec.by_json["ipFamilies"].number == 19
    assert spec.by_json["ipFamilyPolicy"].number == 17
    assert spec.by_json["trafficDistribution"].number == 23
    secret = schema.STRUCTS[CORE + "Secret"]
    assert (secret.by_json["data"].number, secret.by_json["stringData"].number, secret.by_json["immutable"].number) == (
        2,
        4,
        5,
    )
    assert secret.by_json["data"].type == schema.map_of(schema.BYTES)
    event = schema.STRUCTS[CORE + "Event"]
    assert event.by_json["eventTime"].type == schema.MICROTIME
    assert event.by_json["reportingInstance"].number == 15
    assert schema.STRUCTS[CORE + "NodeStatus"].by_json["capacity"].type == schema.map_of(schema.QUANTITY)
    assert schema.STRUCTS[CORE + "NodeSpec"].by_json["podCIDRs"].number == 7


def test_strategic_merge_metadata() -> None:
    ports = schema.STRUCTS[CORE + "ServiceSpec"].by_json["ports"]
    assert (ports.strategy, ports.merge_key, ports.list_type, ports.map_keys) == (
        "merge",
        "port",
        "map",
        ("port", "protocol"),
    )
    for name in ("conditions", "addresses"):
        fl = schema.STRUCTS[CORE + "NodeStatus"].by_json[name]
        assert (fl.strategy, fl.merge_key) == ("merge", "type")
    secrets = schema.STRUCTS[CORE + "ServiceAccount"].by_json["secrets"]
    assert (secrets.strategy, secrets.merge_key) == ("merge", "name")
    assert schema.STRUCTS[CORE + "ServiceStatus"].by_json["conditions"].type == schema.list_of(
        schema.META + "Condition"
    )


# -- registration ----------------------------------------------------------------------------------


def test_resources_registered_with_upstream_names() -> None:
    expect = {
        "namespaces": ("Namespace", False, ("ns",), ()),
        "pods": ("Pod", True, ("po",), ("all",)),
        "nodes": ("Node", False, ("no",), ()),
        "services": ("Service", True, ("svc",), ("all",)),
        "endpoints": ("Endpoints", True, ("ep",), ()),
        "configmaps": ("ConfigMap", True, ("cm",), ()),
        "secrets": ("Secret", True, (), ()),
        "serviceaccounts": ("ServiceAccount", True, ("sa",), ()),
        "events": ("Event", True, ("ev",), ()),
        "bindings": ("Binding", True, (), ()),
    }
    for resource, (kind, namespaced, short, cats) in expect.items():
        i = info(resource)
        assert (i.kind, i.namespaced, i.short_names, i.categories) == (kind, namespaced, short, cats), resource
        assert i.schema in schema.STRUCTS
    assert info("bindings").verbs == ("create",)
    assert "deletecollection" not in info("namespaces").verbs
    assert info("endpoints").singular == "endpoints"
    assert info("pods").key("default", "p") == "/registry/pods/default/p"
    assert info("nodes").key(None, "n1") == "/registry/nodes/n1"


def test_subresources() -> None:
    pods = info("pods")
    names = {s.name for s in pods.subresources}
    assert {"status", "binding", "eviction", "log", "exec", "attach", "portforward"} <= names
    eviction = pods.subresource("eviction")
    assert eviction is not None
    assert (eviction.kind, eviction.group, eviction.version, eviction.verbs) == (
        "Eviction",
        "policy",
        "v1",
        ("create",),
    )
    binding = pods.subresource("binding")
    assert binding is not None and (binding.kind, binding.verbs) == ("Binding", ("create",))
    log = pods.subresource("log")
    assert log is not None and (log.kind, log.verbs) == ("Pod", ("get",))
    for resource in ("namespaces", "nodes", "services", "pods"):
        st = info(resource).subresource("status")
        assert st is not None and st.verbs == ("get", "patch", "update")
        assert info(resource).strategy.has_status
    token = info("serviceaccounts").subresource("token")
    assert token is not None and token.group == "authentication.k8s.io"


def test_strategy_flags() -> None:
    assert info("namespaces").strategy.name_kind == "label"
    assert info("services").strategy.name_kind == "label"
    assert info("events").strategy.name_kind == "path"
    assert info("endpoints").strategy.allow_create_on_update
    assert not info("nodes").strategy.allow_create_on_update
    for resource in ("pods", "services", "namespaces", "nodes", "configmaps", "secrets", "events"):
        assert not info(resource).strategy.track_generation, resource


def test_field_selectors() -> None:
    pod = {
        "spec": {"nodeName": "n1", "hostNetwork": True, "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]},
    }
    sel = info("pods").field_selectors
    assert sel["spec.nodeName"](pod) == "n1"
    assert sel["spec.hostNetwork"](pod) == "true"
    assert sel["spec.hostNetwork"]({}) == "false"
    assert sel["status.phase"](pod) == "Running"
    assert sel["status.podIP"](pod) == "10.0.0.1"
    assert sel["spec.schedulerName"](pod) == ""
    assert set(sel) >= {"spec.restartPolicy", "spec.serviceAccountName", "status.nominatedNodeName"}
    ev = {
        "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"},
        "source": {"component": "kubelet"},
        "type": "Normal",
    }
    esel = info("events").field_selectors
    assert esel["involvedObject.kind"](ev) == "Pod"
    assert esel["involvedObject.uid"](ev) == "u1"
    assert esel["source"](ev) == "kubelet"
    assert esel["involvedObject.namespace"](ev) == ""
    assert info("nodes").field_selectors["spec.unschedulable"]({"spec": {"unschedulable": True}}) == "true"
    assert info("secrets").field_selectors["type"]({"type": "Opaque"}) == "Opaque"


# -- namespaces ------------------------------------------------------------------------------------


def test_namespace_create_defaults() -> None:
    st = info("namespaces").strategy
    ns: dict[str, Any] = {"metadata": {"name": "team-a", "labels": {"x": "y"}}, "status": {"phase": "Terminating"}}
    st.default(ns)
    st.prepare_for_create(ns)
    assert ns["metadata"]["labels"] == {"x": "y", "kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["status"] == {"phase": "Active"}
    assert st.validate(ns) == []


def test_namespace_update_keeps_finalizers_and_resets_label() -> None:
    st = info("namespaces").strategy
    old = {
        "metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "a"}},
        "spec": {"finalizers": ["kubernetes"]},
    }
    new = {"metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "b"}}, "spec": {"finalizers": []}}
    st.default(new)
    st.prepare_for_update(new, old)
    assert new["metadata"]["labels"]["kubernetes.io/metadata.name"] == "a"
    assert new["spec"]["finalizers"] == ["kubernetes"]


def test_namespace_finalize_changes_only_finalizers() -> None:
    st = info("namespaces").strategy
    assert isinstance(st, v1.NamespaceStrategy)
    old = {
        "metadata": {"name": "a", "labels": {"l": "1"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating"},
    }
    new = {"metadata": {"name": "a"}, "spec": {"finalizers": []}, "status": {"phase": "Active"}}
    st.prepare_for_finalize_update(new, old)
    assert "finalizers" not in new["spec"]
    assert new["status"] == {"phase": "Terminating"}
    assert new["metadata"]["labels"] == {"l": "1"}


def test_namespace_validation() -> None:
    st = info("namespaces").strategy
    bad = {"metadata": {"name": "a"}, "spec": {"finalizers": ["custom"]}}
    assert fields(st.validate(bad)) == [("spec.finalizers", "FieldValueInvalid")]
    assert st.validate({"metadata": {"name": "a"}, "spec": {"finalizers": ["example.com/x"]}}) == []
    live = {"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}
    assert fields(st.validate_status_update(live, live)) == [("status.phase", "FieldValueInvalid")]
    dying = {"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Terminating"}}
    assert st.validate_status_update(dying, dying) == []


# -- nodes -----------------------------------------------------------------------------------------


def test_node_defaults_and_create_keeps_status() -> None:
    st = info("nodes").strategy
    node: dict[str, Any] = {
        "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi"}},
    }
    st.default(node)
    st.prepare_for_create(node)
    assert node["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}
    assert node["status"]["capacity"] == {"cpu": "4", "memory": "8Gi"}


def test_node_taint_validation() -> None:
    st = info("nodes").strategy
    node = {
        "metadata": {"name": "n1"},
        "spec": {
            "taints": [
                {"key": "a", "effect": "NoSchedule"},
                {"key": "bad key", "effect": "Sometimes"},
                {"key": "a", "effect": "NoSchedule"},
                {"key": "c"},
            ]
        },
    }
    got = fields(st.validate(node))
    assert ("spec.taints[1].key", "FieldValueInvalid") in got
    assert ("spec.taints[1].effect", "FieldValueNotSupported") in got
    assert ("spec.taints[2]", "FieldValueDuplicate") in got
    assert ("spec.taints[3].effect", "FieldValueRequired") in got


def test_node_update_rules() -> None:
    st = info("nodes").strategy
    old = {
        "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"], "providerID": "p1"},
    }
    new = copy.deepcopy(old)
    assert st.validate_update(new, old) == []
    new["spec"].update(podCIDR="10.244.2.0/24", podCIDRs=["10.244.2.0/24"], providerID="p2")
    assert fields(st.validate_update(new, old)) == [
        ("spec.podCIDRs", "FieldValueForbidden"),
        ("spec.providerID", "FieldValueForbidden"),
    ]
    # assigning a CIDR to a node without one is the node-ipam controller's job
    fresh = {"metadata": {"name": "n1"}, "spec": {}}
    assert st.validate_update(new, fresh) == []
    bad = {"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["nope"]}}
    assert fields(st.validate(bad)) == [("spec.podCIDRs[0]", "FieldValueInvalid")]


# -- services --------------------------------------------------------------------------------------


def svc(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    info("services").strategy.default(obj)
    return obj


def test_service_defaults_cluster_ip() -> None:
    s = defaulted(svc(selector={"app": "web"}, ports=[{"port": 80}]))
    spec = s["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert "allocateLoadBalancerNodePorts" not in spec
    assert info("services").strategy.validate(s) == []


def test_service_defaults_by_type() -> None:
    np = defaulted(svc(type="NodePort", ports=[{"port": 80, "targetPort": "http"}]))["spec"]
    assert np["externalTrafficPolicy"] == "Cluster"
    assert np["ports"][0]["targetPort"] == "http"
    lb = defaulted(svc(type="LoadBalancer", ports=[{"port": 80}]))["spec"]
    assert lb["allocateLoadBalancerNodePorts"] is True
    assert lb["externalTrafficPolicy"] == "Cluster"
    ext = defaulted(svc(type="ExternalName", externalName="example.com"))["spec"]
    assert "ipFamilies" not in ext and "ipFamilyPolicy" not in ext and "internalTrafficPolicy" not in ext
    headless = defaulted(svc(clusterIP="None", ports=[{"port": 80}]))["spec"]
    assert headless["ipFamilyPolicy"] == "PreferDualStack"
    assert headless["clusterIPs"] == ["None"]
    sticky = defaulted(svc(sessionAffinity="ClientIP", ports=[{"port": 80}]))["spec"]
    assert sticky["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    v6 = defaulted(svc(clusterIP="fd00::10", ports=[{"port": 80}]))["spec"]
    assert v6["ipFamilies"] == ["IPv6"] and v6["clusterIPs"] == ["fd00::10"]
    for s in (np, lb, ext, headless, sticky, v6):
        assert v1.validate_service_spec(s) == [], s


def test_service_ports_required_unless_headless_or_external_name() -> None:
    st = info("services").strategy
    assert fields(st.validate(defaulted(svc(selector={"a": "b"})))) == [("spec.ports", "FieldValueRequired")]
    assert st.validate(defaulted(svc(clusterIP="None"))) == []
    assert fields(st.validate(defaulted(svc(type="ExternalName")))) == [("spec.externalName", "FieldValueRequired")]


def test_service_port_validation() -> None:
    st = info("services").strategy
    s = defaulted(
        svc(
            ports=[
                {"port": 0, "name": "a"},
                {"port": 80, "name": "b", "targetPort": 70000, "nodePort": 30001, "protocol": "HTTP"},
                {"port": 81},
                {"port": 81, "name": "a", "targetPort": "Not_A_Name"},
            ]
        )
    )
    got = fields(st.validate(s))
    assert ("spec.ports[0].port", "FieldValueInvalid") in got
    assert ("spec.ports[1].targetPort", "FieldValueInvalid") in got
    assert ("spec.ports[1].nodePort", "FieldValueForbidden") in got
    assert ("spec.ports[1].protocol", "FieldValueNotSupported") in got
    assert ("spec.ports[2].name", "FieldValueRequired") in got
    assert ("spec.ports[3].name", "FieldValueDuplicate") in got
    assert ("spec.ports[3].targetPort", "FieldValueInvalid") in got
    assert ("spec.ports[3]", "FieldValueDuplicate") in got


def test_service_type_and_ip_validation() -> None:
    st = info("services").strategy
    assert fields(st.validate(defaulted(svc(type="Weird", ports=[{"port": 80}])))) == [
        ("spec.type", "FieldValueNotSupported")
    ]
    got = fields(st.validate(defaulted(svc(clusterIP="10.0.0.300", ports=[{"port": 80}]))))
    assert ("spec.clusterIP", "FieldValueInvalid") in got
    got = fields(st.validate(defaulted(svc(type="NodePort", clusterIP="None", ports=[{"port": 80}]))))
    assert ("spec.clusterIP", "FieldValueInvalid") in got
    got = fields(st.validate(defaulted(svc(type="ExternalName", externalName="x.example", clusterIP="10.0.0.1"))))
    assert ("spec.clusterIP", "FieldValueForbidden") in got
    got = fields(st.validate(defaulted(svc(ports=[{"port": 80}], loadBalancerSourceRanges=["10.0.0.0/8"]))))
    assert ("spec.LoadBalancerSourceRanges", "FieldValueForbidden") in got
    got = fields(
        st.validate(defaulted(svc(ports=[{"port": 80}], ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="SingleStack")))
    )
    assert ("spec.ipFamilies", "FieldValueInvalid") in got


def test_service_update_cluster_ip_immutable() -> None:
    st = info("services").strategy
    old = defaulted(svc(clusterIP="10.96.0.5", ports=[{"port": 80}]))
    new = defaulted(svc(clusterIP="10.96.0.6", ports=[{"port": 80}]))
    st.prepare_for_update(new, old)
    assert ("spec.clusterIPs[0]", "FieldValueInvalid") in fields(st.validate_update(new, old))


def test_service_update_keeps_allocated_values() -> None:
    st = info("services").strategy
    old = defaulted(
        svc(type="NodePort", clusterIP="10.96.0.5", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    )
    new = defaulted(svc(type="NodePort", ports=[{"name": "http", "port": 80}]))
    st.prepare_for_update(new, old)
    assert new["spec"]["clusterIP"] == "10.96.0.5"
    assert new["spec"]["clusterIPs"] == ["10.96.0.5"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    assert st.validate_update(new, old) == []


def test_service_update_to_external_name_drops_cluster_ip() -> None:
    st = info("services").strategy
    old = defaulted(svc(type="NodePort", clusterIP="10.96.0.5", ports=[{"port": 80, "nodePort": 30080}]))
    new = copy.deepcopy(old)
    new["spec"].update(type="ExternalName", externalName="db.example.com")
    st.default(new)
    st.prepare_for_update(new, old)
    spec = new["spec"]
    assert "clusterIP" not in spec and "clusterIPs" not in spec
    assert "ipFamilies" not in spec and "ipFamilyPolicy" not in spec
    assert "nodePort" not in spec["ports"][0]
    assert "externalTrafficPolicy" not in spec
    assert st.validate_update(new, old) == []


def test_service_update_node_port_to_cluster_ip_clears_node_ports() -> None:
    st = info("services").strategy
    old = defaulted(svc(type="NodePort", clusterIP="10.96.0.5", ports=[{"port": 80, "nodePort": 30080}]))
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    st.default(new)
    st.prepare_for_update(new, old)
    assert "nodePort" not in new["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in new["spec"]
    assert new["spec"]["clusterIP"] == "10.96.0.5"
    assert st.validate_update(new, old) == []


def test_service_status_update_validation() -> None:
    st = info("services").strategy
    s = {"status": {"loadBalancer": {"ingress": [{"ip": "nope"}, {"hostname": "1.2.3.4"}]}}}
    assert fields(st.validate_status_update(s, s)) == [
        ("status.loadBalancer.ingress[0].ip", "FieldValueInvalid"),
        ("status.loadBalancer.ingress[1].hostname", "FieldValueInvalid"),
    ]


# -- endpoints -------------------------------------------------------------------------------------


def test_endpoints_default_and_validate() -> None:
    st = info("endpoints").strategy
    ep: dict[str, Any] = {
        "metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 8080}]}],
    }
    st.default(ep)
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert st.validate(ep) == []
    ep["subsets"][0]["addresses"].append({"ip": "169.254.1.1"})
    ep["subsets"][0]["ports"].append({"port": 99999, "name": "b"})
    got = fields(st.validate(ep))
    assert ("subsets[0].addresses[1].ip", "FieldValueInvalid") in got
    assert ("subsets[0].ports[0].name", "FieldValueRequired") in got
    assert ("subsets[0].ports[1].port", "FieldValueInvalid") in got


# -- configmaps ------------------------------------------------------------------------------------


def test_configmap_keys_and_size() -> None:
    st = info("configmaps").strategy
    assert st.validate({"data": {"a.conf": "x", "B_2-c": "y"}, "binaryData": {"bin": b64("z")}}) == []
    got = fields(st.validate({"data": {"bad/key": "x", "dup": "1"}, "binaryData": {"dup": b64("1")}}))
    assert got == [("data[bad/key]", "FieldValueInvalid"), ("binaryData[dup]", "FieldValueInvalid")]
    big = {"data": {"big": "x" * (1024 * 1024)}}
    assert fields(st.validate(big)) == [("data", "FieldValueTooLong")]


def test_configmap_immutable() -> None:
    st = info("configmaps").strategy
    old = {"data": {"a": "1"}, "immutable": True}
    assert st.validate_update(copy.deepcopy(old), old) == []
    changed = {"data": {"a": "2"}, "immutable": True}
    assert fields(st.validate_update(changed, old)) == [("data", "FieldValueForbidden")]
    unset = {"data": {"a": "1"}, "immutable": False}
    assert fields(st.validate_update(unset, old)) == [("immutable", "FieldValueForbidden")]
    # a mutable configmap may change and become immutable
    assert st.validate_update(changed, {"data": {"a": "1"}}) == []


# -- secrets ---------------------------------------------------------------------------------------


def test_secret_string_data_merged_into_data() -> None:
    st = info("secrets").strategy
    s: dict[str, Any] = {
        "metadata": {"name": "s"},
        "data": {"a": b64("old"), "b": b64("keep")},
        "stringData": {"a": "new", "c": "ü"},
    }
    st.default(s)
    assert "stringData" not in s
    assert s["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in s["data"].items()} == {"a": "new", "b": "keep", "c": "ü"}
    assert st.validate(s) == []


def test_secret_type_specific_keys() -> None:
    st = info("secrets").strategy
    tls = {"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}}
    assert fields(st.validate(tls)) == [("data[tls.key]", "FieldValueRequired")]
    sa = {"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"}
    assert fields(st.validate(sa)) == [
        ("metadata.annotations[kubernetes.io/service-account.name]", "FieldValueRequired")
    ]
    dcj = {
        "metadata": {"name": "t"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64("{nope")},
    }
    assert fields(st.validate(dcj)) == [("data[.dockerconfigjson]", "FieldValueInvalid")]
    dcj["data"] = {".dockerconfigjson": b64('{"auths": {}}')}
    assert st.validate(dcj) == []
    basic = {"metadata": {"name": "t"}, "type": "kubernetes.io/basic-auth", "data": {"password": b64("p")}}
    assert st.validate(basic) == []
    bad = {"metadata": {"name": "t"}, "data": {"k": "not base64!"}}
    assert fields(st.validate(bad)) == [("data[k]", "FieldValueInvalid")]


def test_secret_update_rules() -> None:
    st = info("secrets").strategy
    old = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": b64("1")}, "immutable": True}
    new = copy.deepcopy(old)
    new["type"] = "example.com/other"
    new["data"]["a"] = b64("2")
    assert fields(st.validate_update(new, old)) == [("type", "FieldValueInvalid"), ("data", "FieldValueForbidden")]


# -- events, bindings ------------------------------------------------------------------------------


def test_event_namespace_must_match() -> None:
    st = info("events").strategy
    ok = {"metadata": {"name": "p.1", "namespace": "ns1"}, "involvedObject": {"kind": "Pod", "namespace": "ns1"}}
    assert st.validate(ok) == []
    node_event = {"metadata": {"name": "n.1", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "n"}}
    assert st.validate(node_event) == []
    bad = {"metadata": {"name": "p.1", "namespace": "ns2"}, "involvedObject": {"kind": "Pod", "namespace": "ns1"}}
    assert fields(st.validate(bad)) == [("involvedObject.namespace", "FieldValueInvalid")]


def test_new_style_event_requires_reporting_fields() -> None:
    st = info("events").strategy
    ev = {
        "metadata": {"name": "p.1", "namespace": "ns1"},
        "involvedObject": {"kind": "Pod", "namespace": "ns1"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
    }
    assert fields(st.validate(ev)) == [
        ("reportingController", "FieldValueRequired"),
        ("reportingInstance", "FieldValueRequired"),
        ("action", "FieldValueRequired"),
        ("reason", "FieldValueRequired"),
    ]
    ev.update(reportingComponent="kubeha.io/scheduler", reportingInstance="s-1", action="Binding", reason="Scheduled")
    assert st.validate(ev) == []


def test_binding_validation() -> None:
    st = info("bindings").strategy
    assert st.validate({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}}) == []
    assert fields(st.validate({"metadata": {"name": "p"}, "target": {"kind": "Pod"}})) == [
        ("target.kind", "FieldValueNotSupported"),
        ("target.name", "FieldValueRequired"),
    ]


# -- pods ------------------------------------------------------------------------------------------


def _needs_pod_helpers() -> None:
    for name in ("parse_quantity", "default_pod_spec", "validate_pod_spec"):
        if not hasattr(v1.pod, name):
            pytest.skip(f"kubeha.api.core.pod.{name} not available yet")


def container(
    name: str, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return {"name": name, "image": "busybox", "resources": res}


def test_pod_qos_class() -> None:
    _needs_pod_helpers()
    assert v1.pod_qos_class({"containers": [container("a")]}) == "BestEffort"
    guaranteed = {"containers": [container("a", limits={"cpu": "500m", "memory": "64Mi"})]}
    assert v1.pod_qos_class(guaranteed) == "Guaranteed"
    equal = {
        "containers": [
            container("a", requests={"cpu": "0.5", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "64Mi"})
        ]
    }
    assert v1.pod_qos_class(equal) == "Guaranteed"
    burst = {"containers": [container("a", requests={"cpu": "100m"}, limits={"cpu": "500m", "memory": "64Mi"})]}
    assert v1.pod_qos_class(burst) == "Burstable"
    partial = {"containers": [container("a", limits={"cpu": "1", "memory": "1Gi"}), container("b")]}
    assert v1.pod_qos_class(partial) == "Burstable"


def test_pod_create_sets_pending_status() -> None:
    _needs_pod_helpers()
    st = info("pods").strategy
    p: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [container("a")], "schedulingGates": [{"name": "wait"}]},
        "status": {"phase": "Running"},
    }
    st.default(p)
    st.prepare_for_create(p)
    assert p["status"]["phase"] == "Pending"
    assert p["status"]["qosClass"] == "BestEffort"
    assert p["status"]["conditions"][0]["reason"] == "SchedulingGated"
    assert st.validate(p) == []


def test_pod_status_update_validation() -> None:
    st = info("pods").strategy
    p = {"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.2"}, {"ip": "bad"}]}}
    assert fields(st.validate_status_update(p, p)) == [
        ("status.podIPs[1].ip", "FieldValueInvalid"),
        ("status.podIPs[0].ip", "FieldValueInvalid"),
    ]
