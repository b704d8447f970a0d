"""core/v1 resources other than the pod spec family (which lives in :mod:`kubeha.api.core.pod`).

Declares Namespace, Node, Service, Endpoints, ConfigMap, Secret, ServiceAccount, Event, Binding
and their parts with upstream names and protobuf numbers (k8s.io/api/core/v1/generated.proto),
and registers the served resources (pods included) with their strategies. IP and port
allocation for services is the api-server's job; the strategies here only default and validate.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
from decimal import Decimal
from typing import Any

import kubeha.api.core.pod as pod
import kubeha.api.meta.v1  # noqa: F401  (registers ObjectMeta, Condition, ...)
from kubeha.api import validation
from kubeha.api.errors import (
    Cause,
    duplicate,
    forbidden_field,
    invalid_value,
    not_supported,
    required,
    too_long,
)
from kubeha.api.registry import ResourceInfo, Strategy, SubresourceInfo, register
from kubeha.api.schema import (
    BOOL,
    BYTES,
    CORE,
    INT32,
    INT64,
    INT_OR_STRING,
    META,
    MICROTIME,
    QUANTITY,
    STRING,
    STRUCTS,
    TIME,
    Obj,
    f,
    list_of,
    map_of,
    struct,
    type_meta_fields,
)

GROUP = ""
VERSION = "v1"
OBJECT_META = META + "ObjectMeta"


def _kind(kind: str, doc: str, *fields: Any) -> None:
    """A top-level core/v1 kind: apiVersion, kind, metadata (field 1) and its own fields."""
    struct(
        CORE + kind,
        doc,
        *type_meta_fields(),
        f("metadata", 1, OBJECT_META, "Standard object metadata."),
        *fields,
        gvk=(GROUP, VERSION, kind),
    )


# -- shared small references -----------------------------------------------------------------------

# pod.py may already declare some of these (PodSpec uses LocalObjectReference); declaring a struct
# twice raises, so only the missing ones are declared here.
if CORE + "ObjectReference" not in STRUCTS:
    struct(
        CORE + "ObjectReference",
        "A reference to an object, possibly to a field inside it.",
        f("kind", 1, STRING, "Kind of the referent."),
        f("namespace", 2, STRING, "Namespace of the referent."),
        f("name", 3, STRING, "Name of the referent."),
        f("uid", 4, STRING, "UID of the referent."),
        f("apiVersion", 5, STRING, "API version of the referent."),
        f("resourceVersion", 6, STRING, "Specific resourceVersion the reference was made to."),
        f("fieldPath", 7, STRING, "A path inside the referent, e.g. spec.containers{name}."),
    )
if CORE + "LocalObjectReference" not in STRUCTS:
    struct(
        CORE + "LocalObjectReference",
        "A reference to an object by name in the same namespace.",
        f("name", 1, STRING, "Name of the referent.", default=""),
    )
if CORE + "TypedLocalObjectReference" not in STRUCTS:
    struct(
        CORE + "TypedLocalObjectReference",
        "A reference to an object of a given kind in the same namespace.",
        f("apiGroup", 1, STRING, "API group of the referent; empty for the core group.", pointer=True),
        f("kind", 2, STRING, "Kind of the referent.", required=True),
        f("name", 3, STRING, "Name of the referent.", required=True),
    )

# -- Namespace -------------------------------------------------------------------------------------

NAMESPACE_PHASES = ("Active", "Terminating")

struct(
    CORE + "NamespaceSpec",
    "Desired state of a namespace.",
    f(
        "finalizers",
        1,
        list_of(STRING),
        "Finalizers that must be removed before the namespace is deleted.",
        list_type="atomic",
    ),
)
struct(
    CORE + "NamespaceCondition",
    "A condition of a namespace.",
    f("type", 1, STRING, "Type of the condition.", required=True),
    f("status", 2, STRING, "True, False or Unknown.", required=True),
    f("lastTransitionTime", 4, TIME, "Last time the condition changed status."),
    f("reason", 5, STRING, "Machine-readable reason for the last transition."),
    f("message", 6, STRING, "Human-readable detail of the last transition."),
)
struct(
    CORE + "NamespaceStatus",
    "Observed state of a namespace.",
    f("phase", 1, STRING, "Lifecycle phase: Active or Terminating.", enum=NAMESPACE_PHASES),
    f(
        "conditions",
        2,
        list_of(CORE + "NamespaceCondition"),
        "Latest observations of the namespace's state.",
        strategy="merge",
        merge_key="type",
        list_type="map",
        map_keys=("type",),
    ),
)
_kind(
    "Namespace",
    "A scope for names; most objects live in one.",
    f("spec", 2, CORE + "NamespaceSpec", "Desired state of the namespace."),
    f("status", 3, CORE + "NamespaceStatus", "Observed state of the namespace."),
)

# -- Node ------------------------------------------------------------------------------------------

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

struct(
    CORE + "Taint",
    "A node taint: pods that do not tolerate it are kept off (or evicted from) the node.",
    f("key", 1, STRING, "Taint key.", required=True),
    f("value", 2, STRING, "Taint value."),
    f("effect", 3, STRING, "What happens to pods that do not tolerate the taint.", required=True, enum=TAINT_EFFECTS),
    f("timeAdded", 4, TIME, "When the taint was added (NoExecute taints only)."),
)
struct(
    CORE + "ConfigMapNodeConfigSource",
    "A ConfigMap holding a node's configuration.",
    f("namespace", 1, STRING, "Namespace of the ConfigMap.", required=True),
    f("name", 2, STRING, "Name of the ConfigMap.", required=True),
    f("uid", 3, STRING, "UID of the ConfigMap."),
    f("resourceVersion", 4, STRING, "resourceVersion of the ConfigMap."),
    f("kubeletConfigKey", 5, STRING, "Key of the kubelet configuration in the ConfigMap.", required=True),
)
struct(
    CORE + "NodeConfigSource",
    "Source of a node's configuration.",
    f("configMap", 2, CORE + "ConfigMapNodeConfigSource", "ConfigMap holding the configuration."),
)
struct(
    CORE + "NodeSpec",
    "Desired state of a node.",
    f("podCIDR", 1, STRING, "The pod IP range assigned to the node."),
    f("externalID", 2, STRING, "Deprecated; not used."),
    f("providerID", 3, STRING, "Cloud provider's ID of the node."),
    f("unschedulable", 4, BOOL, "Keeps new pods off the node when true."),
    f("taints", 5, list_of(CORE + "Taint"), "Taints of the node.", list_type="atomic"),
    f("configSource", 6, CORE + "NodeConfigSource", "Deprecated dynamic kubelet config source."),
    f(
        "podCIDRs",
        7,
        list_of(STRING),
        "Pod IP ranges of the node (one per IP family).",
        strategy="merge",
        list_type="set",
    ),
)
struct(
    CORE + "NodeCondition",
    "A condition of a node (Ready, MemoryPressure, ...).",
    f("type", 1, STRING, "Type of the condition.", required=True),
    f("status", 2, STRING, "True, False or Unknown.", required=True),
    f("lastHeartbeatTime", 3, TIME, "Last time the condition was probed."),
    f("lastTransitionTime", 4, TIME, "Last time the condition changed status."),
    f("reason", 5, STRING, "Machine-readable reason for the last transition."),
    f("message", 6, STRING, "Human-readable detail of the last transition."),
)
struct(
    CORE + "NodeAddress",
    "An address of a node.",
    f("type", 1, STRING, "Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.", required=True),
    f("address", 2, STRING, "The address.", required=True),
)
struct(
    CORE + "DaemonEndpoint",
    "A port a node daemon listens on.",
    f("Port", 1, INT32, "Port number.", required=True),
)
struct(
    CORE + "NodeDaemonEndpoints",
    "Ports of the daemons running on a node.",
    f("kubeletEndpoint", 1, CORE + "DaemonEndpoint", "Endpoint of the kubelet."),
)
struct(
    CORE + "NodeSwapStatus",
    "Swap memory of a node.",
    f("capacity", 1, INT64, "Total swap memory in bytes.", pointer=True),
)
struct(
    CORE + "NodeSystemInfo",
    "Identity and software versions of a node.",
    f("machineID", 1, STRING, "Machine ID (/etc/machine-id).", required=True),
    f("systemUUID", 2, STRING, "System UUID reported by the hardware.", required=True),
    f("bootID", 3, STRING, "Boot ID of the running kernel.", required=True),
    f("kernelVersion", 4, STRING, "Kernel version (uname -r).", required=True),
    f("osImage", 5, STRING, "OS image (from /etc/os-release).", required=True),
    f("containerRuntimeVersion", 6, STRING, "Container runtime name and version.", required=True),
    f("kubeletVersion", 7, STRING, "Kubelet version.", required=True),
    f("kubeProxyVersion", 8, STRING, "Deprecated kube-proxy version.", required=True),
    f("operatingSystem", 9, STRING, "Operating system (GOOS).", required=True),
    f("architecture", 10, STRING, "CPU architecture (GOARCH).", required=True),
    f("swap", 11, CORE + "NodeSwapStatus", "Swap memory information."),
)
struct(
    CORE + "ContainerImage",
    "An image present on a node.",
    f("names", 1, list_of(STRING), "Names (tags and digests) of the image.", list_type="atomic"),
    f("sizeBytes", 2, INT64, "Size of the image in bytes."),
)
struct(
    CORE + "AttachedVolume",
    "A volume attached to a node.",
    f("name", 1, STRING, "Name of the attached volume.", required=True),
    f("devicePath", 2, STRING, "Device path where the volume is available.", required=True),
)
struct(
    CORE + "NodeConfigStatus",
    "Status of a node's dynamic configuration.",
    f("assigned", 1, CORE + "NodeConfigSource", "Configuration the node should use."),
    f("active", 2, CORE + "NodeConfigSource", "Configuration the node is using."),
    f("lastKnownGood", 3, CORE + "NodeConfigSource", "Fallback configuration."),
    f("error", 4, STRING, "Error applying the configuration."),
)
struct(
    CORE + "NodeRuntimeHandlerFeatures",
    "Features a runtime handler supports.",
    f("recursiveReadOnlyMounts", 1, BOOL, "Supports recursive read-only mounts.", pointer=True),
    f("userNamespaces", 2, BOOL, "Supports user namespaces.", pointer=True),
)
struct(
    CORE + "NodeRuntimeHandler",
    "A runtime handler offered by a node's container runtime.",
    f("name", 1, STRING, "Handler name; empty for the default handler."),
    f("features", 2, CORE + "NodeRuntimeHandlerFeatures", "Features of the handler."),
)
struct(
    CORE + "NodeFeatures",
    "Features a node's kubelet and runtime implement.",
    f("supplementalGroupsPolicy", 1, BOOL, "Supports SupplementalGroupsPolicy.", pointer=True),
)
struct(
    CORE + "NodeStatus",
    "Observed state of a node.",
    f("capacity", 1, map_of(QUANTITY), "Total resources of the node."),
    f("allocatable", 2, map_of(QUANTITY), "Resources available for scheduling; defaults to capacity."),
    f("phase", 3, STRING, "Deprecated lifecycle phase.", enum=("Pending", "Running", "Terminated")),
    f(
        "conditions",
        4,
        list_of(CORE + "NodeCondition"),
        "Current conditions of the node.",
        strategy="merge",
        merge_key="type",
        list_type="map",
        map_keys=("type",),
    ),
    f(
        "addresses",
        5,
        list_of(CORE + "NodeAddress"),
        "Addresses of the node.",
        strategy="merge",
        merge_key="type",
        list_type="map",
        map_keys=("type",),
    ),
    f("daemonEndpoints", 6, CORE + "NodeDaemonEndpoints", "Ports of daemons on the node."),
    f("nodeInfo", 7, CORE + "NodeSystemInfo", "Identity and versions of the node."),
    f("images", 8, list_of(CORE + "ContainerImage"), "Images on the node.", list_type="atomic"),
    f("volumesInUse", 9, list_of(STRING), "Volumes in use (mounted) on the node.", list_type="atomic"),
    f("volumesAttached", 10, list_of(CORE + "AttachedVolume"), "Volumes attached to the node.", list_type="atomic"),
    f("config", 11, CORE + "NodeConfigStatus", "Status of dynamic configuration."),
    f("runtimeHandlers", 12, list_of(CORE + "NodeRuntimeHandler"), "Runtime handlers available.", list_type="atomic"),
    f("features", 13, CORE + "NodeFeatures", "Features the node implements."),
)
_kind(
    "Node",
    "A worker machine in the cluster.",
    f("spec", 2, CORE + "NodeSpec", "Desired state of the node."),
    f("status", 3, CORE + "NodeStatus", "Observed state of the node."),
)

# -- Service ---------------------------------------------------------------------------------------

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("SCTP", "TCP", "UDP")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
TRAFFIC_DISTRIBUTIONS = ("PreferClose",)
DEFAULT_CLIENT_IP_TIMEOUT = 10800  # 3 hours, upstream's default sticky-session timeout
MAX_CLIENT_IP_TIMEOUT = 86400
KUBELET_PORT = 10250

struct(
    CORE + "ServicePort",
    "A port a service exposes.",
    f("name", 1, STRING, "Name of the port; required (DNS label) when there is more than one."),
    f("protocol", 2, STRING, "TCP, UDP or SCTP.", default="TCP", enum=PROTOCOLS),
    f("port", 3, INT32, "Port the service exposes.", required=True),
    f("targetPort", 4, INT_OR_STRING, "Port number or name on the pods; defaults to port."),
    f("nodePort", 5, INT32, "Port on every node (NodePort and LoadBalancer services)."),
    f("appProtocol", 6, STRING, "Application protocol of the port."),
)
struct(
    CORE + "ClientIPConfig",
    "Settings of client-IP session affinity.",
    f("timeoutSeconds", 1, INT32, "Seconds a client sticks to an endpoint (1..86400).", pointer=True),
)
struct(
    CORE + "SessionAffinityConfig",
    "Settings of session affinity.",
    f("clientIP", 1, CORE + "ClientIPConfig", "Settings of ClientIP affinity."),
)
struct(
    CORE + "ServiceSpec",
    "Desired state of a service.",
    f(
        "ports",
        1,
        list_of(CORE + "ServicePort"),
        "Ports the service exposes.",
        strategy="merge",
        merge_key="port",
        list_type="map",
        map_keys=("port", "protocol"),
    ),
    f("selector", 2, map_of(STRING), "Labels of the pods that back the service."),
    f("clusterIP", 3, STRING, "Virtual IP of the service; None for headless services."),
    f("type", 4, STRING, "How the service is exposed.", enum=SERVICE_TYPES),
    f("externalIPs", 5, list_of(STRING), "Extra IPs nodes accept traffic for.", list_type="atomic"),
    f("sessionAffinity", 7, STRING, "ClientIP or None.", enum=SESSION_AFFINITIES),
    f("loadBalancerIP", 8, STRING, "Deprecated requested load-balancer IP."),
    f("loadBalancerSourceRanges", 9, list_of(STRING), "Client CIDRs a load balancer admits.", list_type="atomic"),
    f("externalName", 10, STRING, "DNS name an ExternalName service aliases."),
    f("externalTrafficPolicy", 11, STRING, "Routing of external traffic: Cluster or Local.", enum=TRAFFIC_POLICIES),
    f("healthCheckNodePort", 12, INT32, "Health-check node port of Local LoadBalancer services."),
    f("publishNotReadyAddresses", 13, BOOL, "Publish endpoints of pods that are not ready."),
    f("sessionAffinityConfig", 14, CORE + "SessionAffinityConfig", "Settings of session affinity."),
    f("ipFamilyPolicy", 17, STRING, "Single- or dual-stack.", pointer=True, enum=IP_FAMILY_POLICIES),
    f("clusterIPs", 18, list_of(STRING), "Virtual IPs of the service, one per family.", list_type="atomic"),
    f("ipFamilies", 19, list_of(STRING), "IP families of the service, primary first.", list_type="atomic"),
    f("allocateLoadBalancerNodePorts", 20, BOOL, "Allocate node ports for LoadBalancer services.", pointer=True),
    f("loadBalancerClass", 21, STRING, "Load-balancer implementation class.", pointer=True),
    f("internalTrafficPolicy", 22, STRING, "Routing of in-cluster traffic: Cluster or Local.", pointer=True),
    f("trafficDistribution", 23, STRING, "Preference for how traffic is spread over endpoints.", pointer=True),
)
struct(
    CORE + "PortStatus",
    "Status of a load-balancer port.",
    f("port", 1, INT32, "Port number.", required=True),
    f("protocol", 2, STRING, "TCP, UDP or SCTP.", required=True),
    f("error", 3, STRING, "Problem with the port, if any.", pointer=True),
)
struct(
    CORE + "LoadBalancerIngress",
    "An ingress point of a load balancer.",
    f("ip", 1, STRING, "IP of the ingress point."),
    f("hostname", 2, STRING, "DNS name of the ingress point."),
    f("ipMode", 3, STRING, "VIP or Proxy.", pointer=True),
    f("ports", 4, list_of(CORE + "PortStatus"), "Status of the ports.", list_type="atomic"),
)
struct(
    CORE + "LoadBalancerStatus",
    "Status of a load balancer.",
    f("ingress", 1, list_of(CORE + "LoadBalancerIngress"), "Ingress points of the load balancer.", list_type="atomic"),
)
struct(
    CORE + "ServiceStatus",
    "Observed state of a service.",
    f("loadBalancer", 1, CORE + "LoadBalancerStatus", "Status of the load balancer, if any."),
    f(
        "conditions",
        2,
        list_of(META + "Condition"),
        "Current conditions of the service.",
        strategy="merge",
        merge_key="type",
        list_type="map",
        map_keys=("type",),
    ),
)
_kind(
    "Service",
    "A named, load-balanced access point to a set of pods.",
    f("spec", 2, CORE + "ServiceSpec", "Desired state of the service."),
    f("status", 3, CORE + "ServiceStatus", "Observed state of the service."),
)

# -- Endpoints -------------------------------------------------------------------------------------

struct(
    CORE + "EndpointAddress",
    "One endpoint of a service.",
    f("ip", 1, STRING, "IP of the endpoint.", required=True),
    f("targetRef", 2, CORE + "ObjectReference", "The object (usually a pod) behind the endpoint."),
    f("hostname", 3, STRING, "Hostname of the endpoint."),
    f("nodeName", 4, STRING, "Node hosting the endpoint.", pointer=True),
)
struct(
    CORE + "EndpointPort",
    "A port of a set of endpoints.",
    f("name", 1, STRING, "Name of the port (matches the service port name)."),
    f("port", 2, INT32, "Port number.", required=True),
    f("protocol", 3, STRING, "TCP, UDP or SCTP.", enum=PROTOCOLS),
    f("appProtocol", 4, STRING, "Application protocol of the port.", pointer=True),
)
struct(
    CORE + "EndpointSubset",
    "Addresses that all share the same ports.",
    f("addresses", 1, list_of(CORE + "EndpointAddress"), "Ready addresses.", list_type="atomic"),
    f("notReadyAddresses", 2, list_of(CORE + "EndpointAddress"), "Addresses not ready yet.", list_type="atomic"),
    f("ports", 3, list_of(CORE + "EndpointPort"), "Ports of the addresses.", list_type="atomic"),
)
_kind(
    "Endpoints",
    "The endpoints backing a service.",
    f("subsets", 2, list_of(CORE + "EndpointSubset"), "Sets of addresses and ports.", list_type="atomic"),
)

# -- ConfigMap, Secret, ServiceAccount -------------------------------------------------------------

_kind(
    "ConfigMap",
    "Configuration data for pods.",
    f("data", 2, map_of(STRING), "UTF-8 configuration values."),
    f("binaryData", 3, map_of(BYTES), "Binary configuration values."),
    f("immutable", 4, BOOL, "When true, data and binaryData cannot change.", pointer=True),
)
_kind(
    "Secret",
    "Sensitive data for pods.",
    f("data", 2, map_of(BYTES), "Secret values (base64 in JSON)."),
    f("type", 3, STRING, "Type of the secret; decides which keys are required."),
    f("stringData", 4, map_of(STRING), "Write-only plain-text values merged into data."),
    f("immutable", 5, BOOL, "When true, data cannot change.", pointer=True),
)
_kind(
    "ServiceAccount",
    "An identity for processes that run in pods.",
    f(
        "secrets",
        2,
        list_of(CORE + "ObjectReference"),
        "Secrets pods of this account may use.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f(
        "imagePullSecrets",
        3,
        list_of(CORE + "LocalObjectReference"),
        "Secrets used to pull images.",
        list_type="atomic",
    ),
    f("automountServiceAccountToken", 4, BOOL, "Mount an API token into pods by default.", pointer=True),
)

# -- Event, Binding --------------------------------------------------------------------------------

struct(
    CORE + "EventSource",
    "The component that reported an event.",
    f("component", 1, STRING, "Component name."),
    f("host", 2, STRING, "Node name the component ran on."),
)
struct(
    CORE + "EventSeries",
    "A series of repeated occurrences of an event.",
    f("count", 1, INT32, "Occurrences so far."),
    f("lastObservedTime", 2, MICROTIME, "Time of the last occurrence."),
)
_kind(
    "Event",
    "A report of something that happened in the cluster.",
    f("involvedObject", 2, CORE + "ObjectReference", "The object the event is about.", required=True),
    f("reason", 3, STRING, "Short machine-readable reason."),
    f("message", 4, STRING, "Human-readable description."),
    f("source", 5, CORE + "EventSource", "Component that reported the event."),
    f("firstTimestamp", 6, TIME, "First time the event was recorded."),
    f("lastTimestamp", 7, TIME, "Most recent time the event was recorded."),
    f("count", 8, INT32, "Times the event has occurred."),
    f("type", 9, STRING, "Normal or Warning."),
    f("eventTime", 10, MICROTIME, "When the event was first observed."),
    f("series", 11, CORE + "EventSeries", "Series data, for repeated events."),
    f("action", 12, STRING, "What was done (or failed) about the object."),
    f("related", 13, CORE + "ObjectReference", "A second object involved."),
    f("reportingComponent", 14, STRING, "Controller that emitted the event."),
    f("reportingInstance", 15, STRING, "Instance of the controller that emitted the event."),
)
_kind(
    "Binding",
    "Ties an object (a pod) to another (a node); used by schedulers.",
    f("target", 2, CORE + "ObjectReference", "The object to bind to.", required=True),
)


# -- small helpers ---------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ip_family(ip: str) -> str | None:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def _is_cidr(v: str) -> bool:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        return False
    return "/" in v


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _spec(obj: Obj) -> Obj:
    s = obj.get("spec")
    return s if isinstance(s, dict) else {}


def _status(obj: Obj) -> Obj:
    s = obj.get("status")
    return s if isinstance(s, dict) else {}


def _b64_size(value: Any) -> int | None:
    """Decoded size of a base64 value; None when it is not valid base64."""
    if not isinstance(value, str):
        return None
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def _same_map(a: Any, b: Any) -> bool:
    # Go's DeepEqual on maps after a JSON round trip: absent and empty are the same here.
    return (a or {}) == (b or {})


# -- namespaces ------------------------------------------------------------------------------------

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
FINALIZER_KUBERNETES = "kubernetes"


class NamespaceStrategy(Strategy):
    has_status = True
    track_generation = False
    name_kind = "label"

    def default(self, obj: Obj) -> None:
        # Upstream defaults this label on every write, so it always mirrors the name.
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if name:
            labels = meta.get("labels") or {}
            labels[NAMESPACE_NAME_LABEL] = name
            meta["labels"] = labels

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        # again here (upstream Canonicalize): a generated name may be set only after defaulting
        self.default(obj)
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        finalizers = list(spec.get("finalizers") or [])
        if FINALIZER_KUBERNETES not in finalizers:
            finalizers.append(FINALIZER_KUBERNETES)
        spec["finalizers"] = finalizers

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # spec.finalizers changes only through the finalize subresource
        old_spec = _spec(old)
        new_spec = new.setdefault("spec", {})
        if "finalizers" in old_spec:
            new_spec["finalizers"] = copy.deepcopy(old_spec["finalizers"])
        else:
            new_spec.pop("finalizers", None)

    def prepare_for_finalize_update(self, new: Obj, old: Obj) -> None:
        """``namespaces/finalize``: only spec.finalizers comes from the request."""
        finalizers = _spec(new).get("finalizers")
        new.clear()
        new.update(copy.deepcopy(old))
        spec = new.setdefault("spec", {})
        if finalizers:
            spec["finalizers"] = finalizers
        else:
            spec.pop("finalizers", None)

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_finalizers(_spec(obj).get("finalizers"), "spec.finalizers")

    def validate_finalize_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        phase = _status(new).get("phase")
        if _meta(new).get("deletionTimestamp"):
            if phase != "Terminating":
                return [
                    invalid_value(
                        "status.phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"
                    )
                ]
        elif phase != "Active":
            return [invalid_value("status.phase", phase, "may only be 'Active' if `deletionTimestamp` is empty")]
        return []


# -- nodes -----------------------------------------------------------------------------------------


def too_many(path: str, have: int, limit: int) -> Cause:
    return Cause("FieldValueTooMany", path, f"Too many: {have}: must have at most {limit} items")


def validate_taints(taints: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(taints or []):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            causes.append(invalid_value(p, t, "must be an object"))
            continue
        key = t.get("key") or ""
        causes += [invalid_value(f"{p}.key", key, m) for m in validation.is_qualified_name(key)]
        if t.get("value"):
            causes += [invalid_value(f"{p}.value", t["value"], m) for m in validation.is_valid_label_value(t["value"])]
        effect = t.get("effect") or ""
        if not effect:
            causes.append(required(f"{p}.effect"))
        elif effect not in TAINT_EFFECTS:
            causes.append(not_supported(f"{p}.effect", effect, list(TAINT_EFFECTS)))
        if (key, effect) in seen:
            causes.append(duplicate(p, f"{key}:{effect}"))
        seen.add((key, effect))
    return causes


class NodeStrategy(Strategy):
    has_status = True
    track_generation = False

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            # podCIDR is podCIDRs[0]; old clients set only the singular field
            if spec.get("podCIDR") and not spec.get("podCIDRs"):
                spec["podCIDRs"] = [spec["podCIDR"]]
            elif spec.get("podCIDRs") and not spec.get("podCIDR"):
                spec["podCIDR"] = spec["podCIDRs"][0]
        status = obj.get("status")
        if isinstance(status, dict) and status.get("capacity") is not None and status.get("allocatable") is None:
            status["allocatable"] = dict(status["capacity"])

    def prepare_for_create(self, obj: Obj) -> None:
        # A kubelet registers its node with status filled in; upstream keeps it.
        pass

    def validate(self, obj: Obj) -> list[Cause]:
        spec = _spec(obj)
        causes = validate_taints(spec.get("taints"), "spec.taints")
        cidrs = spec.get("podCIDRs") or []
        families: set[int] = set()
        for i, c in enumerate(cidrs):
            if not isinstance(c, str) or not _is_cidr(c):
                causes.append(invalid_value(f"spec.podCIDRs[{i}]", c, "must be a valid CIDR"))
            else:
                families.add(ipaddress.ip_network(c, strict=False).version)
        if len(cidrs) > 2:
            causes.append(too_many("spec.podCIDRs", len(cidrs), 2))
        elif len(cidrs) == 2 and len(families) == 1 and not causes:
            causes.append(
                invalid_value("spec.podCIDRs", ",".join(cidrs), "may specify no more than one CIDR for each IP family")
            )
        if spec.get("podCIDR") and cidrs and spec["podCIDR"] != cidrs[0]:
            causes.append(invalid_value("spec.podCIDR", spec["podCIDR"], "must match the first element of podCIDRs"))
        for name, path in (("capacity", "status.capacity"), ("allocatable", "status.allocatable")):
            causes += _validate_resource_list(_status(obj).get(name), path)
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        old_spec, new_spec = _spec(old), _spec(new)
        old_cidrs = old_spec.get("podCIDRs") or []
        if old_cidrs and list(new_spec.get("podCIDRs") or []) != list(old_cidrs):
            causes.append(
                forbidden_field("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
            )
        old_pid = old_spec.get("providerID") or ""
        if old_pid and new_spec.get("providerID", "") != old_pid:
            causes.append(
                forbidden_field("spec.providerID", 'node updates may not change providerID except from "" to valid')
            )
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new)


def _validate_resource_list(resources: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for name, q in (resources or {}).items():
        p = f"{path}[{name}]"
        try:
            value = pod.parse_quantity(q)
        except (ValueError, ArithmeticError):
            causes.append(invalid_value(p, q, "must be a valid quantity"))
            continue
        if value < Decimal(0):
            causes.append(invalid_value(p, q, "must be greater than or equal to 0"))
    return causes


# -- services --------------------------------------------------------------------------------------


def _needs_cluster_ip(spec: Obj) -> bool:
    return spec.get("type") != "ExternalName"


def _needs_node_port(spec: Obj) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


def _needs_hc_node_port(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _is_headless(spec: Obj) -> bool:
    return spec.get("clusterIP") == "None"


def default_service_spec(spec: Obj) -> None:
    """Upstream's v1 defaults plus the IP-family defaults of a single-stack IPv4 cluster."""
    stype = spec.get("type") or "ClusterIP"
    spec["type"] = stype
    affinity = spec.get("sessionAffinity") or "None"
    spec["sessionAffinity"] = affinity
    if affinity == "None":
        spec.pop("sessionAffinityConfig", None)
    elif affinity == "ClientIP":
        cfg = spec.get("sessionAffinityConfig") or {}
        client = cfg.get("clientIP") or {}
        if client.get("timeoutSeconds") is None:
            client["timeoutSeconds"] = DEFAULT_CLIENT_IP_TIMEOUT
        cfg["clientIP"] = client
        spec["sessionAffinityConfig"] = cfg
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        # 0 and "" mean unset, as for Go's zero IntOrString
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]
    if stype in ("NodePort", "LoadBalancer") and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if stype != "ExternalName" and spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # old clients send only clusterIP; the plural field always starts with it
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if stype != "ExternalName":
        _default_ip_families(spec)


def _default_ip_families(spec: Obj) -> None:
    ips = [ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"]
    if spec.get("ipFamilyPolicy") is None:
        if _is_headless(spec) and not spec.get("selector"):
            # headless services without selectors may carry endpoints of any family
            spec["ipFamilyPolicy"] = "PreferDualStack"
        elif len(spec.get("ipFamilies") or []) == 2 or len(ips) == 2:
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    if not spec.get("ipFamilies"):
        families = [fam for fam in (_ip_family(ip) for ip in ips) if fam]
        spec["ipFamilies"] = families or ["IPv4"]


def _patch_allocated_values(new: Obj, old: Obj) -> None:
    """Keep allocated IPs and node ports a client left out of an update (``kubectl replace``/apply)."""
    if _needs_cluster_ip(old) and _needs_cluster_ip(new):
        if not new.get("clusterIP") and old.get("clusterIP"):
            new["clusterIP"] = old["clusterIP"]
        if not new.get("clusterIPs") and old.get("clusterIPs"):
            new["clusterIPs"] = list(old["clusterIPs"])
    if _needs_node_port(old) and _needs_node_port(new):
        old_ports = [p for p in old.get("ports") or [] if isinstance(p, dict)]
        new_ports = [p for p in new.get("ports") or [] if isinstance(p, dict)]
        used = {p.get("nodePort") for p in old_ports} & {p.get("nodePort") for p in new_ports}
        by_name = {p.get("name", ""): p.get("nodePort") for p in old_ports}
        for p in new_ports:
            if not p.get("nodePort"):
                candidate = by_name.get(p.get("name", ""))
                if candidate and candidate not in used:
                    p["nodePort"] = candidate
    if _needs_hc_node_port(old) and _needs_hc_node_port(new):
        if not new.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
            new["healthCheckNodePort"] = old["healthCheckNodePort"]


def _drop_type_dependent_fields(new_svc: Obj, old_svc: Obj) -> None:
    """On a type change, clear values that no longer apply, unless the client changed them itself."""
    new, old = new_svc.setdefault("spec", {}), _spec(old_svc)
    if _needs_cluster_ip(old) and not _needs_cluster_ip(new):
        if new.get("clusterIP", "") == old.get("clusterIP", "") and (new.get("clusterIPs") or []) == (
            old.get("clusterIPs") or []
        ):
            new.pop("clusterIP", None)
            new.pop("clusterIPs", None)
        if (new.get("ipFamilies") or []) == (old.get("ipFamilies") or []):
            new.pop("ipFamilies", None)
        if new.get("ipFamilyPolicy") == old.get("ipFamilyPolicy"):
            new.pop("ipFamilyPolicy", None)
    if _needs_node_port(old) and not _needs_node_port(new):
        old_nps = [p.get("nodePort", 0) for p in old.get("ports") or [] if isinstance(p, dict)]
        new_nps = [p.get("nodePort", 0) for p in new.get("ports") or [] if isinstance(p, dict)]
        if old_nps == new_nps:
            for p in new.get("ports") or []:
                if isinstance(p, dict):
                    p.pop("nodePort", None)
    if _needs_hc_node_port(old) and not _needs_hc_node_port(new):
        if new.get("healthCheckNodePort", 0) == old.get("healthCheckNodePort", 0):
            new.pop("healthCheckNodePort", None)
    if old.get("type") == "LoadBalancer" and new.get("type") != "LoadBalancer":
        if new.get("allocateLoadBalancerNodePorts") == old.get("allocateLoadBalancerNodePorts"):
            new.pop("allocateLoadBalancerNodePorts", None)
        if new.get("loadBalancerClass") == old.get("loadBalancerClass"):
            new.pop("loadBalancerClass", None)
    if _needs_node_port(old) and not _needs_node_port(new):
        if new.get("externalTrafficPolicy") == old.get("externalTrafficPolicy"):
            new.pop("externalTrafficPolicy", None)
    if new.get("type") != "LoadBalancer":
        status = new_svc.get("status")
        if isinstance(status, dict):
            status.pop("loadBalancer", None)


def validate_service_spec(spec: Obj, annotations: dict[str, str] | None = None) -> list[Cause]:
    """Upstream ValidateService, without the ObjectMeta part (the REST layer does that)."""
    causes: list[Cause] = []
    stype = spec.get("type")
    headless = _is_headless(spec)
    ports = spec.get("ports") or []
    if not ports and not headless and stype != "ExternalName":
        causes.append(required("spec.ports"))
    if not stype:
        causes.append(required("spec.type"))
    elif stype not in SERVICE_TYPES:
        causes.append(not_supported("spec.type", stype, list(SERVICE_TYPES)))

    cluster_ip = spec.get("clusterIP") or ""
    if stype == "LoadBalancer":
        for i, p in enumerate(ports):
            if isinstance(p, dict) and p.get("port") == KUBELET_PORT:
                causes.append(
                    invalid_value(
                        f"spec.ports[{i}]",
                        p.get("port"),
                        f"may not expose port {KUBELET_PORT} externally since it is used by kubelet",
                    )
                )
        if headless:
            causes.append(
                invalid_value("spec.clusterIP", cluster_ip, "may not be set to 'None' for LoadBalancer services")
            )
    elif stype == "NodePort" and headless:
        causes.append(invalid_value("spec.clusterIP", cluster_ip, "may not be set to 'None' for NodePort services"))
    elif stype == "ExternalName":
        if cluster_ip:
            causes.append(forbidden_field("spec.clusterIP", "may not be set for ExternalName services"))
        if spec.get("clusterIPs"):
            causes.append(forbidden_field("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            causes.append(forbidden_field("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy"):
            causes.append(forbidden_field("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        name = spec.get("externalName") or ""
        if not name:
            causes.append(required("spec.externalName"))
        else:
            # a trailing dot (fully qualified) is accepted
            causes += validation.validate_dns1123_subdomain(name.rstrip("."), "spec.externalName")

    causes += _validate_service_ports(spec, ports, headless)

    if spec.get("selector") is not None:
        causes += validation.validate_labels(spec["selector"], "spec.selector")

    affinity = spec.get("sessionAffinity")
    if not affinity:
        causes.append(required("spec.sessionAffinity"))
    elif affinity not in SESSION_AFFINITIES:
        causes.append(not_supported("spec.sessionAffinity", affinity, list(SESSION_AFFINITIES)))
    elif affinity == "ClientIP":
        causes += _validate_client_ip_config(spec.get("sessionAffinityConfig"))
    elif spec.get("sessionAffinityConfig") is not None:
        causes.append(forbidden_field("spec.sessionAffinityConfig", "must not be set when session affinity is None"))

    if stype != "ExternalName":
        causes += _validate_cluster_ips(spec)
        causes += _validate_ip_families(spec)

    for i, ip in enumerate(spec.get("externalIPs") or []):
        if not isinstance(ip, str) or _ip_family(ip) is None:
            causes.append(invalid_value(f"spec.externalIPs[{i}]", ip, "must be a valid IP address"))
        elif ipaddress.ip_address(ip).is_unspecified or ipaddress.ip_address(ip).is_loopback:
            causes.append(
                invalid_value(f"spec.externalIPs[{i}]", ip, "may not be unspecified or in the loopback range")
            )

    causes += _validate_lb_fields(spec, annotations or {})
    causes += _validate_traffic_policies(spec)
    return causes


def _validate_port_entry(p: Obj, path: str, several: bool, names: set[str]) -> list[Cause]:
    """What service and endpoints ports share: a name (required when there are several, a DNS
    label, unique; recorded in ``names``), the port number and the protocol."""
    causes: list[Cause] = []
    name = p.get("name") or ""
    if several and not name:
        causes.append(required(f"{path}.name"))
    elif name:
        causes += validation.validate_dns1123_label(name, f"{path}.name")
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        names.add(name)
    causes += validation.validate_port_number(p.get("port"), f"{path}.port")
    proto = p.get("protocol") or ""
    if not proto:
        causes.append(required(f"{path}.protocol"))
    elif proto not in PROTOCOLS:
        causes.append(not_supported(f"{path}.protocol", proto, list(PROTOCOLS)))
    return causes


def _validate_service_ports(spec: Obj, ports: list[Any], headless: bool) -> list[Cause]:
    causes: list[Cause] = []
    stype = spec.get("type")
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    lb_protocols: set[str] = set()
    for i, p in enumerate(ports):
        path = f"spec.ports[{i}]"
        if not isinstance(p, dict):
            causes.append(invalid_value(path, p, "must be an object"))
            continue
        causes += _validate_port_entry(p, path, len(ports) > 1, names)
        proto = p.get("protocol") or ""
        if stype == "LoadBalancer" and proto in PROTOCOLS:
            lb_protocols.add(proto)
        target = p.get("targetPort")
        if isinstance(target, str):
            causes += [invalid_value(f"{path}.targetPort", target, m) for m in validation.is_valid_port_name(target)]
        elif target is not None:
            causes += validation.validate_port_number(target, f"{path}.targetPort")
        node_port = p.get("nodePort") or 0
        if node_port:
            if stype == "ClusterIP":
                causes.append(forbidden_field(f"{path}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            causes += validation.validate_port_number(node_port, f"{path}.nodePort")
            if (node_port, proto) in seen_node_ports:
                causes.append(duplicate(f"{path}.nodePort", node_port))
            seen_node_ports.add((node_port, proto))
        key = (p.get("port"), proto)
        if key in seen_ports:
            causes.append(duplicate(path, f"{{{proto} {p.get('port')}}}"))
        seen_ports.add(key)
        if p.get("appProtocol"):
            causes += [
                invalid_value(f"{path}.appProtocol", p["appProtocol"], m)
                for m in validation.is_qualified_name(p["appProtocol"])
            ]
    return causes


def _validate_client_ip_config(cfg: Any) -> list[Cause]:
    path = "spec.sessionAffinityConfig"
    if not isinstance(cfg, dict):
        return [required(path, "when session affinity type is ClientIP")]
    client = cfg.get("clientIP")
    if not isinstance(client, dict):
        return [required(f"{path}.clientIP", "when session affinity type is ClientIP")]
    timeout = client.get("timeoutSeconds")
    if timeout is None:
        return [required(f"{path}.clientIP.timeoutSeconds", "when session affinity type is ClientIP")]
    if not _is_int(timeout) or not 0 < timeout <= MAX_CLIENT_IP_TIMEOUT:
        return [
            invalid_value(
                f"{path}.clientIP.timeoutSeconds",
                timeout,
                f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}s",
            )
        ]
    return []


def _validate_cluster_ips(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    cluster_ip = spec.get("clusterIP") or ""
    ips = list(spec.get("clusterIPs") or [])
    if cluster_ip and cluster_ip != "None" and _ip_family(cluster_ip) is None:
        causes.append(invalid_value("spec.clusterIP", cluster_ip, "must be empty, 'None', or a valid IP address"))
    if ips and cluster_ip != ips[0]:
        causes.append(invalid_value("spec.clusterIPs", ",".join(map(str, ips)), "first value must match `clusterIP`"))
    if len(ips) > 2:
        causes.append(invalid_value("spec.clusterIPs", ",".join(map(str, ips)), "may only hold up to 2 values"))
    families = []
    for i, ip in enumerate(ips):
        if ip == "None":
            if i != 0 or len(ips) != 1:
                causes.append(invalid_value(f"spec.clusterIPs[{i}]", ip, "'None' must be the first and only value"))
            continue
        fam = _ip_family(ip) if isinstance(ip, str) else None
        if fam is None:
            causes.append(invalid_value(f"spec.clusterIPs[{i}]", ip, "must be empty, 'None', or a valid IP address"))
        else:
            families.append(fam)
    if len(families) == 2 and families[0] == families[1]:
        causes.append(invalid_value("spec.clusterIPs[1]", ips[1], "may specify no more than one IP for each IP family"))
    return causes


def _validate_ip_families(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        causes.append(not_supported("spec.ipFamilyPolicy", policy, list(IP_FAMILY_POLICIES)))
    families = list(spec.get("ipFamilies") or [])
    for i, fam in enumerate(families):
        if fam not in IP_FAMILIES:
            causes.append(not_supported(f"spec.ipFamilies[{i}]", fam, list(IP_FAMILIES)))
        elif fam in families[:i]:
            causes.append(duplicate(f"spec.ipFamilies[{i}]", fam))
    if len(families) > 2:
        causes.append(
            invalid_value("spec.ipFamilies", ",".join(families), "may specify no more than one IP for each IP family")
        )
    if policy == "SingleStack" and len(families) > 1:
        causes.append(
            invalid_value(
                "spec.ipFamilies",
                ",".join(families),
                "when multiple IP families are specified, "
                "`ipFamilyPolicy` must be set to 'PreferDualStack' or 'RequireDualStack'",
            )
        )
    ips = [ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"]
    for i, ip in enumerate(ips[: len(families)]):
        fam = _ip_family(ip) if isinstance(ip, str) else None
        if fam is not None and fam != families[i]:
            causes.append(
                invalid_value(
                    f"spec.clusterIPs[{i}]", ip, f"expected an {families[i]} value as indicated by `ipFamilies[{i}]`"
                )
            )
    return causes


def _validate_lb_fields(spec: Obj, annotations: dict[str, str]) -> list[Cause]:
    causes: list[Cause] = []
    stype = spec.get("type")
    ranges = spec.get("loadBalancerSourceRanges") or []
    ann_key = "service.beta.kubernetes.io/load-balancer-source-ranges"
    if ranges or ann_key in annotations:
        if ranges:
            path, values = "spec.LoadBalancerSourceRanges", [str(r).strip() for r in ranges]
        else:
            path = f"metadata.annotations[{ann_key}]"
            values = [r.strip() for r in annotations[ann_key].split(",") if r.strip()]
        if stype != "LoadBalancer":
            causes.append(forbidden_field(path, "may only be used when `type` is 'LoadBalancer'"))
        if not all(_is_cidr(v) for v in values):
            causes.append(
                invalid_value(
                    path, ",".join(values), "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 "
                )
            )
    lb_ip = spec.get("loadBalancerIP") or ""
    if lb_ip and _ip_family(lb_ip) is None:
        causes.append(invalid_value("spec.loadBalancerIP", lb_ip, "must be a valid IP address"))
    alloc = spec.get("allocateLoadBalancerNodePorts")
    if stype == "LoadBalancer":
        if alloc is None:
            causes.append(required("spec.allocateLoadBalancerNodePorts"))
    elif alloc is not None:
        causes.append(
            forbidden_field("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
        )
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        if stype != "LoadBalancer":
            causes.append(forbidden_field("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
        else:
            causes += [
                invalid_value("spec.loadBalancerClass", lb_class, m) for m in validation.is_qualified_name(lb_class)
            ]
    return causes


def _validate_traffic_policies(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    stype = spec.get("type")
    etp = spec.get("externalTrafficPolicy") or ""
    if stype in ("NodePort", "LoadBalancer"):
        if not etp:
            causes.append(required("spec.externalTrafficPolicy"))
        elif etp not in TRAFFIC_POLICIES:
            causes.append(not_supported("spec.externalTrafficPolicy", etp, list(TRAFFIC_POLICIES)))
    elif etp:
        causes.append(
            invalid_value("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
        )
    hc = spec.get("healthCheckNodePort") or 0
    if hc:
        if not _needs_hc_node_port(spec):
            causes.append(
                invalid_value(
                    "spec.healthCheckNodePort",
                    hc,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
        else:
            causes += validation.validate_port_number(hc, "spec.healthCheckNodePort")
    itp = spec.get("internalTrafficPolicy")
    if stype != "ExternalName":
        if not itp:
            causes.append(required("spec.internalTrafficPolicy"))
        elif itp not in TRAFFIC_POLICIES:
            causes.append(not_supported("spec.internalTrafficPolicy", itp, list(TRAFFIC_POLICIES)))
    td = spec.get("trafficDistribution")
    if td is not None and td not in TRAFFIC_DISTRIBUTIONS:
        causes.append(not_supported("spec.trafficDistribution", td, list(TRAFFIC_DISTRIBUTIONS)))
    return causes


def validate_service_update(new: Obj, old: Obj) -> list[Cause]:
    """The primary cluster IP and IP family may not change, except to or from ExternalName."""
    causes: list[Cause] = []
    if new.get("type") == "ExternalName" or old.get("type") == "ExternalName":
        return causes
    old_ips, new_ips = list(old.get("clusterIPs") or []), list(new.get("clusterIPs") or [])
    if old_ips:
        if not new_ips:
            causes.append(required("spec.clusterIPs[0]", "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            causes.append(invalid_value("spec.clusterIPs[0]", new_ips[0], "may not change once set"))
        elif len(old_ips) > 1 and len(new_ips) > 1 and new_ips[1] != old_ips[1]:
            causes.append(invalid_value("spec.clusterIPs[1]", new_ips[1], "may not change once set"))
    old_fams, new_fams = list(old.get("ipFamilies") or []), list(new.get("ipFamilies") or [])
    if old_fams and new_fams and old_fams[0] != new_fams[0]:
        causes.append(invalid_value("spec.ipFamilies[0]", new_fams[0], "may not change once set"))
    return causes


def validate_load_balancer_status(status: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, ing in enumerate(status.get("ingress") or []):
        if not isinstance(ing, dict):
            continue
        p = f"{path}.ingress[{i}]"
        if ing.get("ip") and _ip_family(ing["ip"]) is None:
            causes.append(invalid_value(f"{p}.ip", ing["ip"], "must be a valid IP address"))
        if ing.get("ipMode") is not None:
            if not ing.get("ip"):
                causes.append(forbidden_field(f"{p}.ipMode", "may not be specified when `ip` is not set"))
            elif ing["ipMode"] not in ("VIP", "Proxy"):
                causes.append(not_supported(f"{p}.ipMode", ing["ipMode"], ["Proxy", "VIP"]))
        if ing.get("hostname"):
            causes += validation.validate_dns1123_subdomain(ing["hostname"], f"{p}.hostname")
            if _ip_family(ing["hostname"]) is not None:
                causes.append(invalid_value(f"{p}.hostname", ing["hostname"], "must be a DNS name, not an IP address"))
    return causes


class ServiceStrategy(Strategy):
    has_status = True
    track_generation = False
    allow_create_on_update = True
    name_kind = "label"

    def default(self, obj: Obj) -> None:
        default_service_spec(obj.setdefault("spec", {}))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        new_spec = new.setdefault("spec", {})
        old_spec = _spec(old)
        _patch_allocated_values(new_spec, old_spec)
        # singular changed, plural untouched: the plural follows the singular
        if new_spec.get("clusterIP", "") != old_spec.get("clusterIP", "") and (new_spec.get("clusterIPs") or []) == (
            old_spec.get("clusterIPs") or []
        ):
            if new_spec.get("clusterIP"):
                new_spec["clusterIPs"] = [new_spec["clusterIP"]]
            else:
                new_spec.pop("clusterIPs", None)
        _drop_type_dependent_fields(new, old)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_service_spec(_spec(obj), _meta(obj).get("annotations"))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_service_update(_spec(new), _spec(old)) + self.validate(new)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_load_balancer_status(_status(new).get("loadBalancer") or {}, "status.loadBalancer")


# -- endpoints -------------------------------------------------------------------------------------


def validate_endpoints(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for i, subset in enumerate(obj.get("subsets") or []):
        path = f"subsets[{i}]"
        if not isinstance(subset, dict):
            causes.append(invalid_value(path, subset, "must be an object"))
            continue
        addrs = list(subset.get("addresses") or [])
        not_ready = list(subset.get("notReadyAddresses") or [])
        if not addrs and not not_ready:
            causes.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
        for kind, items in (("addresses", addrs), ("notReadyAddresses", not_ready)):
            for j, a in enumerate(items):
                causes += _validate_endpoint_address(a, f"{path}.{kind}[{j}]")
        ports = list(subset.get("ports") or [])
        names: set[str] = set()
        for j, p in enumerate(ports):
            pp = f"{path}.ports[{j}]"
            if not isinstance(p, dict):
                causes.append(invalid_value(pp, p, "must be an object"))
                continue
            causes += _validate_port_entry(p, pp, len(ports) > 1, names)
    return causes


def _validate_endpoint_address(a: Any, path: str) -> list[Cause]:
    if not isinstance(a, dict):
        return [invalid_value(path, a, "must be an object")]
    causes: list[Cause] = []
    ip = a.get("ip") or ""
    if _ip_family(ip) is None:
        causes.append(invalid_value(f"{path}.ip", ip, "must be a valid IP address"))
    else:
        addr = ipaddress.ip_address(ip)
        # Upstream also rejects loopback; we allow it because single-host api-servers (tests, `kubeha dev`)
        # advertise 127.0.0.1 in the `kubernetes` endpoints.
        if addr.is_unspecified or addr.is_link_local or addr.is_multicast:
            causes.append(invalid_value(f"{path}.ip", ip, "may not be unspecified, link-local or multicast"))
    if a.get("hostname"):
        causes += validation.validate_dns1123_label(a["hostname"], f"{path}.hostname")
    if a.get("nodeName"):
        causes += validation.validate_dns1123_subdomain(a["nodeName"], f"{path}.nodeName")
    return causes


class EndpointsStrategy(Strategy):
    track_generation = False
    allow_create_on_update = True

    def default(self, obj: Obj) -> None:
        for subset in obj.get("subsets") or []:
            for p in (subset.get("ports") or []) if isinstance(subset, dict) else []:
                if isinstance(p, dict) and not p.get("protocol"):
                    p["protocol"] = "TCP"

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_endpoints(obj)


# -- configmaps and secrets ------------------------------------------------------------------------

MAX_DATA_SIZE = 1024 * 1024  # upstream MaxSecretSize, shared by ConfigMap


def _validate_immutable_data(new: Obj, old: Obj, fields: tuple[str, ...]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    msg = "field is immutable when `immutable` is set"
    causes: list[Cause] = []
    if new.get("immutable") is not True:
        causes.append(forbidden_field("immutable", msg))
    for name in fields:
        if not _same_map(new.get(name), old.get(name)):
            causes.append(forbidden_field(name, msg))
    return causes


class ConfigMapStrategy(Strategy):
    track_generation = False

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        total = 0
        data = obj.get("data") or {}
        for key, value in data.items():
            causes += [invalid_value(f"data[{key}]", key, m) for m in validation.is_config_map_key(key)]
            total += len(key) + len(str(value).encode())
        for key, value in (obj.get("binaryData") or {}).items():
            causes += [invalid_value(f"binaryData[{key}]", key, m) for m in validation.is_config_map_key(key)]
            if key in data:
                causes.append(invalid_value(f"binaryData[{key}]", key, "duplicate of key present in data"))
            size = _b64_size(value)
            if size is None:
                causes.append(invalid_value(f"binaryData[{key}]", "<binary>", "must be base64 encoded"))
                size = 0
            total += len(key) + size
        if total > MAX_DATA_SIZE:
            causes.append(too_long("data", "", MAX_DATA_SIZE))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _validate_immutable_data(new, old, ("data", "binaryData")) + self.validate(new)


SECRET_TYPE_OPAQUE = "Opaque"
SECRET_TYPE_SA_TOKEN = "kubernetes.io/service-account-token"
SECRET_SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
# type -> keys of which at least one must be present (all listed keys are reported when none is)
SECRET_REQUIRED_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "kubernetes.io/dockercfg": ((".dockercfg",),),
    "kubernetes.io/dockerconfigjson": ((".dockerconfigjson",),),
    "kubernetes.io/basic-auth": (("username", "password"),),
    "kubernetes.io/ssh-auth": (("ssh-privatekey",),),
    "kubernetes.io/tls": (("tls.key",), ("tls.crt",)),
}
SECRET_JSON_KEYS = {"kubernetes.io/dockercfg": ".dockercfg", "kubernetes.io/dockerconfigjson": ".dockerconfigjson"}


def merge_string_data(secret: Obj) -> None:
    """Fold the write-only ``stringData`` into ``data`` (base64), as upstream's conversion does."""
    string_data = secret.pop("stringData", None)
    if not string_data:
        return
    data = secret.get("data") or {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    secret["data"] = data


class SecretStrategy(Strategy):
    track_generation = False

    def default(self, obj: Obj) -> None:
        merge_string_data(obj)
        if not obj.get("type"):
            obj["type"] = SECRET_TYPE_OPAQUE

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        data = obj.get("data") or {}
        total = 0
        decoded: dict[str, bytes] = {}
        for key, value in data.items():
            causes += [invalid_value(f"data[{key}]", key, m) for m in validation.is_config_map_key(key)]
            try:
                raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
            except (binascii.Error, ValueError):
                causes.append(invalid_value(f"data[{key}]", "<secret contents redacted>", "must be base64 encoded"))
                raw = b""
            decoded[key] = raw
            total += len(key) + len(raw)
        if total > MAX_DATA_SIZE:
            causes.append(too_long("data", "", MAX_DATA_SIZE))
        stype = obj.get("type") or SECRET_TYPE_OPAQUE
        if stype == SECRET_TYPE_SA_TOKEN:
            annotations = _meta(obj).get("annotations") or {}
            if not annotations.get(SECRET_SA_NAME_ANNOTATION):
                causes.append(required(f"metadata.annotations[{SECRET_SA_NAME_ANNOTATION}]"))
        for group in SECRET_REQUIRED_KEYS.get(stype, ()):
            if not any(decoded.get(k) for k in group):
                causes += [required(f"data[{k}]") for k in group]
        json_key = SECRET_JSON_KEYS.get(stype)
        if json_key and decoded.get(json_key):
            try:
                json.loads(decoded[json_key])
            except ValueError as exc:
                causes.append(invalid_value(f"data[{json_key}]", "<secret contents redacted>", str(exc)))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = validation.validate_immutable(new.get("type"), old.get("type"), "type")
        return causes + _validate_immutable_data(new, old, ("data",)) + self.validate(new)


class ServiceAccountStrategy(Strategy):
    track_generation = False


# -- events ----------------------------------------------------------------------------------------

EVENT_REASON_LIMIT = 128
EVENT_ACTION_LIMIT = 128
EVENT_REPORTING_INSTANCE_LIMIT = 128
EVENT_NOTE_LIMIT = 1024


def validate_event_legacy(event: Obj) -> list[Cause]:
    """Upstream legacyValidateEvent: the checks every Event passes, whatever API wrote it."""
    causes: list[Cause] = []
    namespace = _meta(event).get("namespace") or ""
    involved = event.get("involvedObject") or {}
    inv_ns = involved.get("namespace") or ""
    if not event.get("eventTime"):
        # old-style events: the event lives in its object's namespace ("default" for cluster objects)
        if not inv_ns:
            if namespace not in ("", "default"):
                causes.append(invalid_value("involvedObject.namespace", inv_ns, "does not match event.namespace"))
        elif namespace != inv_ns:
            causes.append(invalid_value("involvedObject.namespace", inv_ns, "does not match event.namespace"))
    else:
        if not inv_ns and namespace not in ("default", "kube-system"):
            causes.append(invalid_value("involvedObject.namespace", inv_ns, "does not match event.namespace"))
        controller = event.get("reportingComponent") or ""
        if not controller:
            causes.append(required("reportingController"))
        causes += [
            invalid_value("reportingController", controller, m)
            for m in validation.is_qualified_name(controller)
            if controller
        ]
        for key, name, limit in (
            ("reportingInstance", "reportingInstance", EVENT_REPORTING_INSTANCE_LIMIT),
            ("action", "action", EVENT_ACTION_LIMIT),
            ("reason", "reason", EVENT_REASON_LIMIT),
        ):
            value = event.get(key) or ""
            if not value:
                causes.append(required(name))
            elif len(value) > limit:
                causes.append(invalid_value(name, "", f"can have at most {limit} characters"))
        if len(event.get("message") or "") > EVENT_NOTE_LIMIT:
            causes.append(invalid_value("message", "", f"can have at most {EVENT_NOTE_LIMIT} characters"))
    causes += validation.validate_dns1123_subdomain(namespace, "namespace") if namespace else []
    return causes


class EventStrategy(Strategy):
    track_generation = False
    name_kind = "path"

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_event_legacy(obj)


# -- bindings --------------------------------------------------------------------------------------


def validate_binding(binding: Obj) -> list[Cause]:
    """Upstream ValidatePodBinding: the target is a node, named."""
    target = binding.get("target") or {}
    causes: list[Cause] = []
    kind = target.get("kind") or ""
    if kind and kind != "Node":
        causes.append(not_supported("target.kind", kind, ["Node", "<empty>"]))
    if not target.get("name"):
        causes.append(required("target.name"))
    return causes


class BindingStrategy(Strategy):
    track_generation = False

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_binding(obj)


# -- pods ------------------------------------------------------------------------------------------


def _containers(spec: Obj) -> list[Obj]:
    out = []
    for key in ("initContainers", "containers"):
        out += [c for c in spec.get(key) or [] if isinstance(c, dict)]
    return out


def _qty(v: Any) -> Decimal | None:
    try:
        return pod.parse_quantity(v)
    except (ValueError, ArithmeticError):
        return None


def pod_qos_class(spec: Obj) -> str:
    """Upstream GetPodQOS over cpu and memory of all (init) containers."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for c in _containers(spec):
        res = c.get("resources") or {}
        c_limits = {k: _qty(v) for k, v in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        # requests default to limits when absent (upstream defaulting)
        c_requests = {k: _qty(v) for k, v in (res.get("requests") or {}).items() if k in ("cpu", "memory")}
        for k, v in c_limits.items():
            c_requests.setdefault(k, v)
        for k, v in c_requests.items():
            if v:
                requests[k] = requests.get(k, Decimal(0)) + v
        found = set()
        for k, v in c_limits.items():
            if v:
                found.add(k)
                limits[k] = limits.get(k, Decimal(0)) + v
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _pod_ip(obj: Obj) -> str:
    status = _status(obj)
    ips = status.get("podIPs") or []
    if ips and isinstance(ips[0], dict):
        return str(ips[0].get("ip") or "")
    return str(status.get("podIP") or "")


class PodStrategy(Strategy):
    has_status = True
    track_generation = False

    def default(self, obj: Obj) -> None:
        obj.setdefault("spec", {})
        pod.default_pod(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        spec = _spec(obj)
        status: Obj = {"phase": "Pending", "qosClass": pod_qos_class(spec)}
        if spec.get("schedulingGates"):
            status["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }
            ]
        obj["status"] = status

    def validate(self, obj: Obj) -> list[Cause]:
        return pod.validate_pod_spec(_spec(obj), "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return pod.validate_pod_spec_update(_spec(new), _spec(old), "spec")

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        status = _status(new)
        nominated = status.get("nominatedNodeName")
        if nominated:
            causes += validation.validate_dns1123_subdomain(nominated, "status.nominatedNodeName")
        ips = status.get("podIPs") or []
        for i, entry in enumerate(ips):
            ip = entry.get("ip") if isinstance(entry, dict) else None
            if not isinstance(ip, str) or _ip_family(ip) is None:
                causes.append(invalid_value(f"status.podIPs[{i}].ip", ip, "must be a valid IP address"))
        if status.get("podIP") and ips and isinstance(ips[0], dict) and ips[0].get("ip") != status["podIP"]:
            causes.append(invalid_value("status.podIPs[0].ip", ips[0].get("ip"), "must match status.podIP"))
        return causes


# -- registration ----------------------------------------------------------------------------------


def _s(obj: Obj, *path: str) -> str:
    cur: Any = obj
    for part in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _status_sub(kind: str) -> SubresourceInfo:
    return SubresourceInfo("status", kind)


NAMESPACES = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "namespaces",
        "Namespace",
        namespaced=False,
        schema=CORE + "Namespace",
        strategy=NamespaceStrategy(),
        short_names=("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        subresources=(_status_sub("Namespace"), SubresourceInfo("finalize", "Namespace", verbs=("update",))),
        field_selectors={"status.phase": lambda o: _s(o, "status", "phase")},
    )
)

PODS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "pods",
        "Pod",
        namespaced=True,
        schema=CORE + "Pod",
        strategy=PodStrategy(),
        short_names=("po",),
        categories=("all",),
        subresources=(
            SubresourceInfo("attach", "PodAttachOptions", verbs=("create", "get")),
            SubresourceInfo("binding", "Binding", verbs=("create",)),
            SubresourceInfo("eviction", "Eviction", group="policy", version="v1", verbs=("create",)),
            SubresourceInfo("exec", "PodExecOptions", verbs=("create", "get")),
            SubresourceInfo("log", "Pod", verbs=("get",)),
            SubresourceInfo("portforward", "PodPortForwardOptions", verbs=("create", "get")),
            _status_sub("Pod"),
        ),
        field_selectors={
            "spec.nodeName": lambda o: _s(o, "spec", "nodeName"),
            "spec.restartPolicy": lambda o: _s(o, "spec", "restartPolicy"),
            "spec.schedulerName": lambda o: _s(o, "spec", "schedulerName"),
            "spec.serviceAccountName": lambda o: _s(o, "spec", "serviceAccountName"),
            "spec.hostNetwork": lambda o: "true" if _spec(o).get("hostNetwork") else "false",
            "status.phase": lambda o: _s(o, "status", "phase"),
            "status.podIP": _pod_ip,
            "status.nominatedNodeName": lambda o: _s(o, "status", "nominatedNodeName"),
        },
    )
)

NODES = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "nodes",
        "Node",
        namespaced=False,
        schema=CORE + "Node",
        strategy=NodeStrategy(),
        short_names=("no",),
        subresources=(_status_sub("Node"),),
        field_selectors={"spec.unschedulable": lambda o: "true" if _spec(o).get("unschedulable") else "false"},
    )
)

SERVICES = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "services",
        "Service",
        namespaced=True,
        schema=CORE + "Service",
        strategy=ServiceStrategy(),
        short_names=("svc",),
        categories=("all",),
        subresources=(_status_sub("Service"),),
    )
)

ENDPOINTS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "endpoints",
        "Endpoints",
        namespaced=True,
        schema=CORE + "Endpoints",
        strategy=EndpointsStrategy(),
        singular="endpoints",
        short_names=("ep",),
    )
)

CONFIGMAPS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "configmaps",
        "ConfigMap",
        namespaced=True,
        schema=CORE + "ConfigMap",
        strategy=ConfigMapStrategy(),
        short_names=("cm",),
    )
)

SECRETS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "secrets",
        "Secret",
        namespaced=True,
        schema=CORE + "Secret",
        strategy=SecretStrategy(),
        field_selectors={"type": lambda o: _s(o, "type")},
    )
)

SERVICEACCOUNTS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "serviceaccounts",
        "ServiceAccount",
        namespaced=True,
        schema=CORE + "ServiceAccount",
        strategy=ServiceAccountStrategy(),
        short_names=("sa",),
        subresources=(
            SubresourceInfo("token", "TokenRequest", group="authentication.k8s.io", version="v1", verbs=("create",)),
        ),
    )
)

EVENTS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "events",
        "Event",
        namespaced=True,
        schema=CORE + "Event",
        strategy=EventStrategy(),
        short_names=("ev",),
        field_selectors={
            "involvedObject.kind": lambda o: _s(o, "involvedObject", "kind"),
            "involvedObject.namespace": lambda o: _s(o, "involvedObject", "namespace"),
            "involvedObject.name": lambda o: _s(o, "involvedObject", "name"),
            "involvedObject.uid": lambda o: _s(o, "involvedObject", "uid"),
            "involvedObject.apiVersion": lambda o: _s(o, "involvedObject", "apiVersion"),
            "involvedObject.resourceVersion": lambda o: _s(o, "involvedObject", "resourceVersion"),
            "involvedObject.fieldPath": lambda o: _s(o, "involvedObject", "fieldPath"),
            "reason": lambda o: _s(o, "reason"),
            "reportingComponent": lambda o: _s(o, "reportingComponent"),
            "source": lambda o: _s(o, "source", "component"),
            "type": lambda o: _s(o, "type"),
        },
    )
)

BINDINGS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "bindings",
        "Binding",
        namespaced=True,
        schema=CORE + "Binding",
        strategy=BindingStrategy(),
        verbs=("create",),
    )
)
