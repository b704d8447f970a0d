"""The pod spec family (``io.k8s.api.core.v1``): Pod, PodSpec, PodTemplateSpec and everything they hold.

Pods, and every workload template (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs...),
share these declarations; the defaulting and validation functions at the end of this module are
shared the same way. Field numbers come from upstream ``k8s.io/api/core/v1/generated.proto`` and
the strategic-merge / list metadata mirrors upstream's struct tags. The field set is Kubernetes
1.32's, so real-world manifests never fail strict field validation.

Inline embeddings: Go embeds a few structs inline (``Volume`` embeds ``VolumeSource``, ``Probe``
embeds ``ProbeHandler``, ``EphemeralContainer`` embeds ``EphemeralContainerCommon``, several
selectors embed ``LocalObjectReference``). In JSON their fields sit directly in the outer object; in
protobuf they travel as one nested message. We declare the flattened fields with number 0 (JSON
only) and add one marker field whose JSON name is ``""``: its number and type say where the nested
message sits in protobuf. Only the protobuf codec looks at ``""`` fields; JSON walks skip them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from kubeha.api import errors
from kubeha.api import validation as v
from kubeha.api.errors import Cause
from kubeha.api.schema import (
    BOOL,
    CORE,
    INT32,
    INT64,
    INT_OR_STRING,
    META,
    QUANTITY,
    STRING,
    STRUCTS,
    TIME,
    Field,
    ListOf,
    MapOf,
    Obj,
    Ref,
    Struct,
    TypeSpec,
    f,
    inline,
    list_of,
    map_of,
    struct,
    type_meta_fields,
)

# -- the pod and its spec --------------------------------------------------------------------------------

struct(
    CORE + "Pod",
    "A group of containers scheduled together on one node, sharing network and volumes.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, CORE + "PodSpec", "Desired behaviour of the pod."),
    f("status", 3, CORE + "PodStatus", "Most recently observed state of the pod; read-only for clients."),
    gvk=("", "v1", "Pod"),
)

struct(
    CORE + "PodSpec",
    "Desired state of a pod: its containers, volumes and scheduling constraints.",
    f(
        "volumes",
        1,
        list_of(CORE + "Volume"),
        "Volumes the containers may mount.",
        strategy="merge,retainKeys",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f(
        "initContainers",
        20,
        list_of(CORE + "Container"),
        "Containers run to completion, in order, before the main containers start.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f(
        "containers",
        2,
        list_of(CORE + "Container"),
        "The pod's main containers; at least one.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
        required=True,
    ),
    f(
        "ephemeralContainers",
        34,
        list_of(CORE + "EphemeralContainer"),
        "Debugging containers added through the ephemeralcontainers subresource.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f(
        "restartPolicy",
        3,
        STRING,
        "Restart policy for the containers: Always, OnFailure or Never.",
        enum=("Always", "OnFailure", "Never"),
        default="Always",
    ),
    f(
        "terminationGracePeriodSeconds",
        4,
        INT64,
        "Seconds the pod may take to stop gracefully.",
        pointer=True,
        default=30,
    ),
    f("activeDeadlineSeconds", 5, INT64, "Seconds the pod may be active before the system fails it.", pointer=True),
    f(
        "dnsPolicy",
        6,
        STRING,
        "How the pod's DNS is configured.",
        enum=("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
        default="ClusterFirst",
    ),
    f("nodeSelector", 7, map_of(STRING), "Labels a node must have for the pod to run on it."),
    f("serviceAccountName", 8, STRING, "Service account whose identity the pod runs with."),
    f("serviceAccount", 9, STRING, "Deprecated alias of serviceAccountName."),
    f("automountServiceAccountToken", 21, BOOL, "Whether an API token is mounted automatically.", pointer=True),
    f("nodeName", 10, STRING, "The node the pod is bound to; set by the scheduler."),
    f("hostNetwork", 11, BOOL, "Use the node's network namespace."),
    f("hostPID", 12, BOOL, "Use the node's PID namespace."),
    f("hostIPC", 13, BOOL, "Use the node's IPC namespace."),
    f(
        "shareProcessNamespace",
        27,
        BOOL,
        "Put all containers of the pod in one PID namespace so they can see and signal each other's processes.",
        pointer=True,
    ),
    f("securityContext", 14, CORE + "PodSecurityContext", "Pod-wide security settings.", default={}),
    f(
        "imagePullSecrets",
        15,
        list_of(CORE + "LocalObjectReference"),
        "Secrets used to pull the pod's images.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f("hostname", 16, STRING, "Hostname of the pod; defaults to the pod name."),
    f("subdomain", 17, STRING, "Subdomain making the pod's FQDN <hostname>.<subdomain>.<ns>.svc.<domain>."),
    f("affinity", 18, CORE + "Affinity", "Scheduling affinity rules."),
    f("schedulerName", 19, STRING, "Scheduler that places the pod.", default="default-scheduler"),
    f("tolerations", 22, list_of(CORE + "Toleration"), "Taints the pod tolerates.", list_type="atomic"),
    f(
        "hostAliases",
        23,
        list_of(CORE + "HostAlias"),
        "Extra /etc/hosts entries.",
        strategy="merge",
        merge_key="ip",
        list_type="map",
        map_keys=("ip",),
    ),
    f("priorityClassName", 24, STRING, "Name of the pod's PriorityClass."),
    f("priority", 25, INT32, "Priority value, resolved from priorityClassName by admission.", pointer=True),
    f("dnsConfig", 26, CORE + "PodDNSConfig", "Extra DNS settings."),
    f(
        "readinessGates",
        28,
        list_of(CORE + "PodReadinessGate"),
        "Extra conditions required for readiness.",
        list_type="atomic",
    ),
    f("runtimeClassName", 29, STRING, "RuntimeClass that runs the pod.", pointer=True),
    f("enableServiceLinks", 30, BOOL, "Whether service environment variables are injected.", pointer=True),
    f(
        "preemptionPolicy",
        31,
        STRING,
        "Whether the pod may preempt lower-priority pods.",
        pointer=True,
        enum=("PreemptLowerPriority", "Never"),
    ),
    f("overhead", 32, map_of(QUANTITY), "Resource overhead of running the pod's sandbox."),
    f(
        "topologySpreadConstraints",
        33,
        list_of(CORE + "TopologySpreadConstraint"),
        "How the pod spreads across topology domains.",
        strategy="merge",
        merge_key="topologyKey",
        list_type="map",
        map_keys=("topologyKey", "whenUnsatisfiable"),
    ),
    f(
        "setHostnameAsFQDN",
        35,
        BOOL,
        "Set the pod's hostname to its fully qualified domain name instead of the short name.",
        pointer=True,
    ),
    f("os", 36, CORE + "PodOS", "Operating system the pod needs."),
    f(
        "hostUsers",
        37,
        BOOL,
        "Whether the pod uses the node's user namespace; false gives the pod a user namespace of its own.",
        pointer=True,
    ),
    f(
        "schedulingGates",
        38,
        list_of(CORE + "PodSchedulingGate"),
        "Gates that block scheduling while present.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f(
        "resourceClaims",
        39,
        list_of(CORE + "PodResourceClaim"),
        "Dynamic resource claims of the pod.",
        strategy="merge,retainKeys",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f("resources", 40, CORE + "ResourceRequirements", "Pod-level resource requests and limits."),
)

struct(
    CORE + "PodTemplateSpec",
    "Metadata and spec from which a controller stamps out pods.",
    f("metadata", 1, META + "ObjectMeta", "Labels and annotations of the pods created from this template."),
    f("spec", 2, CORE + "PodSpec", "Spec of the pods created from this template."),
)

# -- containers ------------------------------------------------------------------------------------------

_CONTAINER_FIELDS = (
    f("name", 1, STRING, "Container name, a DNS label unique within the pod.", required=True),
    f("image", 2, STRING, "Container image reference."),
    f("command", 3, list_of(STRING), "Entrypoint; replaces the image's ENTRYPOINT.", list_type="atomic"),
    f("args", 4, list_of(STRING), "Arguments; replace the image's CMD.", list_type="atomic"),
    f("workingDir", 5, STRING, "Working directory of the process."),
    f(
        "ports",
        6,
        list_of(CORE + "ContainerPort"),
        "Ports the container exposes (informational).",
        strategy="merge",
        merge_key="containerPort",
        list_type="map",
        map_keys=("containerPort", "protocol"),
    ),
    f(
        "envFrom",
        19,
        list_of(CORE + "EnvFromSource"),
        "Sources whose keys become environment variables.",
        list_type="atomic",
    ),
    f(
        "env",
        7,
        list_of(CORE + "EnvVar"),
        "Environment variables.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f("resources", 8, CORE + "ResourceRequirements", "Compute resources of the container."),
    f(
        "resizePolicy",
        23,
        list_of(CORE + "ContainerResizePolicy"),
        "Per-resource policy saying whether an in-place resize restarts the container.",
        list_type="atomic",
    ),
    f("restartPolicy", 24, STRING, "For init containers only: Always makes it a sidecar.", pointer=True),
    f(
        "volumeMounts",
        9,
        list_of(CORE + "VolumeMount"),
        "Volumes mounted into the container.",
        strategy="merge",
        merge_key="mountPath",
        list_type="map",
        map_keys=("mountPath",),
    ),
    f(
        "volumeDevices",
        21,
        list_of(CORE + "VolumeDevice"),
        "Raw block devices from the pod's volumes to expose inside the container.",
        strategy="merge",
        merge_key="devicePath",
        list_type="map",
        map_keys=("devicePath",),
    ),
    f("livenessProbe", 10, CORE + "Probe", "Restarts the container when it fails."),
    f("readinessProbe", 11, CORE + "Probe", "Removes the pod from service endpoints when it fails."),
    f("startupProbe", 22, CORE + "Probe", "Holds the other probes until the container has started."),
    f("lifecycle", 12, CORE + "Lifecycle", "Start and stop hooks."),
    f(
        "terminationMessagePath",
        13,
        STRING,
        "File whose content becomes the termination message.",
        default="/dev/termination-log",
    ),
    f(
        "terminationMessagePolicy",
        20,
        STRING,
        "How the termination message is filled.",
        enum=("File", "FallbackToLogsOnError"),
        default="File",
    ),
    f(
        "imagePullPolicy",
        14,
        STRING,
        "When to pull the image: Always, Never or IfNotPresent.",
        enum=("Always", "Never", "IfNotPresent"),
    ),
    f("securityContext", 15, CORE + "SecurityContext", "Container security settings."),
    f("stdin", 16, BOOL, "Keep a stdin buffer open."),
    f("stdinOnce", 17, BOOL, "Close stdin once the first attached client disconnects (needs stdin)."),
    f("tty", 18, BOOL, "Allocate a TTY."),
)

struct(
    CORE + "Container",
    "One application container run inside a pod.",
    *_CONTAINER_FIELDS,
)

struct(
    CORE + "EphemeralContainerCommon",
    "Container fields shared by ephemeral containers (protobuf-only wrapper).",
    *_CONTAINER_FIELDS,
)

struct(
    CORE + "EphemeralContainer",
    "A debugging container added to a running pod; it is never restarted.",
    *inline(1, CORE + "EphemeralContainerCommon"),
    f("targetContainerName", 2, STRING, "Container whose namespaces this one joins."),
)

struct(
    CORE + "ContainerPort",
    "A network port a container exposes.",
    f("name", 1, STRING, "Name services can refer to; an IANA_SVC_NAME."),
    f("hostPort", 2, INT32, "Port exposed on the node."),
    f("containerPort", 3, INT32, "Port number in the pod's network namespace.", required=True),
    f("protocol", 4, STRING, "TCP, UDP or SCTP.", enum=("TCP", "UDP", "SCTP"), default="TCP"),
    f("hostIP", 5, STRING, "Node IP address the host port is bound to."),
)

struct(
    CORE + "EnvVar",
    "One environment variable of a container.",
    f("name", 1, STRING, "Variable name.", required=True),
    f("value", 2, STRING, "Literal value; $(VAR) references are expanded."),
    f("valueFrom", 3, CORE + "EnvVarSource", "Source of the value when not literal."),
)

struct(
    CORE + "EnvVarSource",
    "Where an environment variable's value comes from.",
    f(
        "fieldRef",
        1,
        CORE + "ObjectFieldSelector",
        "Take the value from a field of the pod (metadata, spec or status).",
    ),
    f(
        "resourceFieldRef",
        2,
        CORE + "ResourceFieldSelector",
        "Take the value from a container's resource limit or request.",
    ),
    f(
        "configMapKeyRef",
        3,
        CORE + "ConfigMapKeySelector",
        "Take the value from a key of a ConfigMap in the pod's namespace.",
    ),
    f("secretKeyRef", 4, CORE + "SecretKeySelector", "Take the value from a key of a Secret in the pod's namespace."),
)

struct(
    CORE + "ObjectFieldSelector",
    "Selects a field of the pod (downward API).",
    f("apiVersion", 1, STRING, "API version the field path is written against; defaults to v1.", default="v1"),
    f("fieldPath", 2, STRING, "Path of the selected field, e.g. metadata.name or status.podIP.", required=True),
)

struct(
    CORE + "ResourceFieldSelector",
    "Selects a container resource request or limit (downward API).",
    f("containerName", 1, STRING, "Container whose resources are read; required for volumes, optional for env vars."),
    f("resource", 2, STRING, "Resource to read, e.g. limits.cpu or requests.memory.", required=True),
    f("divisor", 3, QUANTITY, "Unit the value is divided by before it is exposed; defaults to 1."),
)

struct(
    CORE + "LocalObjectReference",
    "A reference to an object by name in the same namespace.",
    f("name", 1, STRING, "Name of the referenced object, in the same namespace."),
)

struct(
    CORE + "ConfigMapKeySelector",
    "Selects one key of a ConfigMap.",
    *inline(1, CORE + "LocalObjectReference"),
    f("key", 2, STRING, "Key of the ConfigMap entry to read.", required=True),
    f("optional", 3, BOOL, "Whether a missing ConfigMap or key is tolerated.", pointer=True),
)

struct(
    CORE + "SecretKeySelector",
    "Selects one key of a Secret.",
    *inline(1, CORE + "LocalObjectReference"),
    f("key", 2, STRING, "Key of the Secret entry to read.", required=True),
    f("optional", 3, BOOL, "Whether a missing Secret or key is tolerated.", pointer=True),
)

struct(
    CORE + "EnvFromSource",
    "A ConfigMap or Secret whose keys all become environment variables.",
    f("prefix", 1, STRING, "String put in front of every variable name taken from the source."),
    f("configMapRef", 2, CORE + "ConfigMapEnvSource", "ConfigMap whose keys all become environment variables."),
    f("secretRef", 3, CORE + "SecretEnvSource", "Secret whose keys all become environment variables."),
)

struct(
    CORE + "ConfigMapEnvSource",
    "A ConfigMap used as a whole set of environment variables.",
    *inline(1, CORE + "LocalObjectReference"),
    f("optional", 2, BOOL, "Whether the ConfigMap may be missing.", pointer=True),
)

struct(
    CORE + "SecretEnvSource",
    "A Secret used as a whole set of environment variables.",
    *inline(1, CORE + "LocalObjectReference"),
    f("optional", 2, BOOL, "Whether the Secret may be missing.", pointer=True),
)

struct(
    CORE + "VolumeMount",
    "Where a volume is mounted inside a container.",
    f("name", 1, STRING, "Name of the pod volume to mount.", required=True),
    f("readOnly", 2, BOOL, "Mount read-only."),
    f(
        "recursiveReadOnly",
        7,
        STRING,
        "Whether a read-only mount is read-only in its submounts too: Disabled, IfPossible or Enabled.",
        pointer=True,
    ),
    f("mountPath", 3, STRING, "Path inside the container.", required=True),
    f("subPath", 4, STRING, "Sub-path of the volume to mount instead of its root."),
    f(
        "mountPropagation",
        5,
        STRING,
        "How mounts propagate between host and container: None, HostToContainer or Bidirectional.",
        pointer=True,
        enum=("None", "HostToContainer", "Bidirectional"),
    ),
    f(
        "subPathExpr",
        6,
        STRING,
        "Like subPath, with $(VAR) references to the container's environment expanded; exclusive with subPath.",
    ),
)

struct(
    CORE + "VolumeDevice",
    "Where a raw block volume appears inside a container.",
    f("name", 1, STRING, "Name of a persistentVolumeClaim volume of the pod.", required=True),
    f("devicePath", 2, STRING, "Path inside the container where the device is mapped.", required=True),
)

struct(
    CORE + "ResourceRequirements",
    "Compute resources a container (or pod) requests and may use at most.",
    f("limits", 1, map_of(QUANTITY), "Maximum amount of each resource."),
    f("requests", 2, map_of(QUANTITY), "Amount of each resource reserved for scheduling."),
    f(
        "claims",
        3,
        list_of(CORE + "ResourceClaim"),
        "Resource claims the container uses.",
        list_type="map",
        map_keys=("name",),
    ),
)

struct(
    CORE + "ResourceClaim",
    "A reference from a container to one of the pod's resource claims.",
    f(
        "name",
        1,
        STRING,
        "Name of the entry in the pod's spec.resourceClaims whose resources the container uses.",
        required=True,
    ),
    f(
        "request",
        2,
        STRING,
        "One request of that claim whose devices alone are made available; empty means the whole claim.",
    ),
)

struct(
    CORE + "ContainerResizePolicy",
    "How a container reacts when one of its resources is resized in place.",
    f("resourceName", 1, STRING, "Resource the policy applies to: cpu or memory.", required=True),
    f(
        "restartPolicy",
        2,
        STRING,
        "What a resize of this resource does to the container: NotRequired or RestartContainer.",
        required=True,
    ),
)

# -- probes and lifecycle hooks --------------------------------------------------------------------------

struct(
    CORE + "ProbeHandler",
    "The action a probe performs (protobuf-only wrapper; its fields are inlined in Probe).",
    f("exec", 1, CORE + "ExecAction", "Run a command inside the container."),
    f("httpGet", 2, CORE + "HTTPGetAction", "Send an HTTP GET request."),
    f("tcpSocket", 3, CORE + "TCPSocketAction", "Open a TCP connection to a port."),
    f("grpc", 4, CORE + "GRPCAction", "Call the standard gRPC health-checking service."),
)

struct(
    CORE + "Probe",
    "A periodic health check of a container.",
    *inline(1, CORE + "ProbeHandler"),
    f("initialDelaySeconds", 2, INT32, "Seconds after start before the first probe."),
    f("timeoutSeconds", 3, INT32, "Seconds before a probe times out.", default=1),
    f("periodSeconds", 4, INT32, "Seconds between probes.", default=10),
    f("successThreshold", 5, INT32, "Consecutive successes to count as healthy.", default=1),
    f("failureThreshold", 6, INT32, "Consecutive failures to count as unhealthy.", default=3),
    f(
        "terminationGracePeriodSeconds",
        7,
        INT64,
        "Grace period used instead of the pod's when a failure of this probe kills the container.",
        pointer=True,
    ),
)

struct(
    CORE + "ExecAction",
    "Runs a command inside the container.",
    f(
        "command",
        1,
        list_of(STRING),
        "Command line run in the container's root directory without a shell; exit status 0 is success.",
        list_type="atomic",
    ),
)

struct(
    CORE + "HTTPGetAction",
    "Sends an HTTP GET request.",
    f("path", 1, STRING, "Request path.", default="/"),
    f("port", 2, INT_OR_STRING, "Port number or name.", required=True),
    f("host", 3, STRING, "Host name to connect to; defaults to the pod IP."),
    f("scheme", 4, STRING, "HTTP or HTTPS.", enum=("HTTP", "HTTPS"), default="HTTP"),
    f("httpHeaders", 5, list_of(CORE + "HTTPHeader"), "Custom headers sent with the request.", list_type="atomic"),
)

struct(
    CORE + "HTTPHeader",
    "One HTTP header of a probe request.",
    f("name", 1, STRING, "Header field name.", required=True),
    f("value", 2, STRING, "Header field value.", required=True),
)

struct(
    CORE + "TCPSocketAction",
    "Opens a TCP connection.",
    f("port", 1, INT_OR_STRING, "Port number or named container port to connect to.", required=True),
    f("host", 2, STRING, "Host name to connect to; defaults to the pod IP."),
)

struct(
    CORE + "GRPCAction",
    "Calls the standard gRPC health checking service.",
    f("port", 1, INT32, "Port number of the gRPC service.", required=True),
    f(
        "service",
        2,
        STRING,
        "Service name sent in the health-check request; empty asks about the server as a whole.",
        pointer=True,
    ),
)

struct(
    CORE + "Lifecycle",
    "Hooks run right after a container starts and right before it stops.",
    f("postStart", 1, CORE + "LifecycleHandler", "Handler run right after the container is created."),
    f("preStop", 2, CORE + "LifecycleHandler", "Handler run before the container is stopped."),
)

struct(
    CORE + "LifecycleHandler",
    "The action of a lifecycle hook.",
    f("exec", 1, CORE + "ExecAction", "Run a command inside the container."),
    f("httpGet", 2, CORE + "HTTPGetAction", "Send an HTTP GET request."),
    f("tcpSocket", 3, CORE + "TCPSocketAction", "Deprecated and ignored; kept for compatibility."),
    f("sleep", 4, CORE + "SleepAction", "Pause for a number of seconds."),
)

struct(
    CORE + "SleepAction",
    "Pauses for a number of seconds.",
    f("seconds", 1, INT64, "Number of seconds to sleep.", required=True),
)

# -- security --------------------------------------------------------------------------------------------

struct(
    CORE + "SecurityContext",
    "Security settings of one container; they override the pod's.",
    f(
        "capabilities",
        1,
        CORE + "Capabilities",
        "Linux capabilities added to or dropped from the runtime's default set.",
    ),
    f("privileged", 2, BOOL, "Run the container privileged, close to root on the host.", pointer=True),
    f("seLinuxOptions", 3, CORE + "SELinuxOptions", "SELinux context of the container; overrides the pod's."),
    f("windowsOptions", 10, CORE + "WindowsSecurityContextOptions", "Windows-specific settings; override the pod's."),
    f("runAsUser", 4, INT64, "UID the container's process runs as; overrides the pod's.", pointer=True),
    f("runAsGroup", 8, INT64, "Primary GID of the container's process; overrides the pod's.", pointer=True),
    f(
        "runAsNonRoot",
        5,
        BOOL,
        "Require a non-root user; the kubelet refuses to start the container otherwise.",
        pointer=True,
    ),
    f("readOnlyRootFilesystem", 6, BOOL, "Mount the container's root filesystem read-only.", pointer=True),
    f(
        "allowPrivilegeEscalation",
        7,
        BOOL,
        "Whether a process may gain more privileges than its parent (the no_new_privs flag).",
        pointer=True,
    ),
    f("procMount", 9, STRING, "Kind of /proc mount: Default or Unmasked.", pointer=True, enum=("Default", "Unmasked")),
    f("seccompProfile", 11, CORE + "SeccompProfile", "Seccomp profile of the container; overrides the pod's."),
    f("appArmorProfile", 12, CORE + "AppArmorProfile", "AppArmor profile of the container; overrides the pod's."),
)

struct(
    CORE + "PodSecurityContext",
    "Security settings applied to every container of a pod.",
    f("seLinuxOptions", 1, CORE + "SELinuxOptions", "SELinux context of every container that sets none of its own."),
    f(
        "windowsOptions",
        8,
        CORE + "WindowsSecurityContextOptions",
        "Windows-specific settings of every container that sets none of its own.",
    ),
    f("runAsUser", 2, INT64, "Default UID of every container's process.", pointer=True),
    f("runAsGroup", 6, INT64, "Default primary GID of every container's process.", pointer=True),
    f("runAsNonRoot", 3, BOOL, "Require every container to run as a non-root user.", pointer=True),
    f(
        "supplementalGroups",
        4,
        list_of(INT64),
        "Extra GIDs given to the first process of every container.",
        list_type="atomic",
    ),
    f(
        "supplementalGroupsPolicy",
        12,
        STRING,
        "How supplementary groups are worked out: Merge (with the image's) or Strict (only those listed).",
        pointer=True,
        enum=("Merge", "Strict"),
    ),
    f(
        "fsGroup",
        5,
        INT64,
        "GID that owns supported volumes and joins every container's supplementary groups.",
        pointer=True,
    ),
    f("sysctls", 7, list_of(CORE + "Sysctl"), "Namespaced kernel parameters set for the pod.", list_type="atomic"),
    f(
        "fsGroupChangePolicy",
        9,
        STRING,
        "When volume ownership and permissions are changed: OnRootMismatch or Always.",
        pointer=True,
        enum=("OnRootMismatch", "Always"),
    ),
    f("seccompProfile", 10, CORE + "SeccompProfile", "Seccomp profile of every container that sets none of its own."),
    f(
        "appArmorProfile",
        11,
        CORE + "AppArmorProfile",
        "AppArmor profile of every container that sets none of its own.",
    ),
    f(
        "seLinuxChangePolicy",
        13,
        STRING,
        "How volumes get their SELinux label: Recursive relabelling or MountOption.",
        pointer=True,
    ),
)

struct(
    CORE + "Capabilities",
    "Linux capabilities added to or dropped from a container.",
    f("add", 1, list_of(STRING), "Capabilities to add.", list_type="atomic"),
    f("drop", 2, list_of(STRING), "Capabilities to remove.", list_type="atomic"),
)

struct(
    CORE + "SELinuxOptions",
    "SELinux label applied to a container.",
    f("user", 1, STRING, "SELinux user label."),
    f("role", 2, STRING, "SELinux role label."),
    f("type", 3, STRING, "SELinux type label."),
    f("level", 4, STRING, "SELinux level label."),
)

struct(
    CORE + "SeccompProfile",
    "The seccomp profile a container runs under.",
    f(
        "type",
        1,
        STRING,
        "Kind of profile: RuntimeDefault, Unconfined or Localhost.",
        enum=("Unconfined", "RuntimeDefault", "Localhost"),
        required=True,
    ),
    f(
        "localhostProfile",
        2,
        STRING,
        "Profile file on the node, relative to the kubelet's seccomp directory; only with type Localhost.",
        pointer=True,
    ),
)

struct(
    CORE + "AppArmorProfile",
    "The AppArmor profile a container runs under.",
    f(
        "type",
        1,
        STRING,
        "Kind of profile: RuntimeDefault, Unconfined or Localhost.",
        enum=("Unconfined", "RuntimeDefault", "Localhost"),
        required=True,
    ),
    f("localhostProfile", 2, STRING, "Name of a profile loaded on the node; only with type Localhost.", pointer=True),
)

struct(
    CORE + "WindowsSecurityContextOptions",
    "Windows-specific security settings.",
    f("gmsaCredentialSpecName", 1, STRING, "Name of the GMSA credential spec to use.", pointer=True),
    f(
        "gmsaCredentialSpec",
        2,
        STRING,
        "Contents of the GMSA credential spec, filled in by the GMSA admission webhook.",
        pointer=True,
    ),
    f("runAsUserName", 3, STRING, "Windows user name the entrypoint runs as.", pointer=True),
    f("hostProcess", 4, BOOL, "Run the container as a Windows HostProcess container.", pointer=True),
)

struct(
    CORE + "Sysctl",
    "A namespaced kernel parameter set for the pod.",
    f("name", 1, STRING, "Kernel parameter name.", required=True),
    f("value", 2, STRING, "Value to set.", required=True),
)

# -- volumes ---------------------------------------------------------------------------------------------

struct(
    CORE + "VolumeSource",
    "The storage behind a volume; exactly one source is set.",
    f("hostPath", 1, CORE + "HostPathVolumeSource", "A file or directory of the node's filesystem."),
    f("emptyDir", 2, CORE + "EmptyDirVolumeSource", "An empty directory that lives as long as the pod."),
    f(
        "gcePersistentDisk",
        3,
        CORE + "GCEPersistentDiskVolumeSource",
        "A GCE persistent disk (deprecated; use the CSI driver).",
    ),
    f(
        "awsElasticBlockStore",
        4,
        CORE + "AWSElasticBlockStoreVolumeSource",
        "An AWS EBS volume (deprecated; use the CSI driver).",
    ),
    f("gitRepo", 5, CORE + "GitRepoVolumeSource", "A directory holding a clone of a git repository (deprecated)."),
    f("secret", 6, CORE + "SecretVolumeSource", "Files made from the keys of a Secret."),
    f("nfs", 7, CORE + "NFSVolumeSource", "An NFS export."),
    f("iscsi", 8, CORE + "ISCSIVolumeSource", "An iSCSI disk."),
    f("glusterfs", 9, CORE + "GlusterfsVolumeSource", "A GlusterFS volume (deprecated)."),
    f(
        "persistentVolumeClaim",
        10,
        CORE + "PersistentVolumeClaimVolumeSource",
        "The volume bound to a PersistentVolumeClaim in the pod's namespace.",
    ),
    f("rbd", 11, CORE + "RBDVolumeSource", "A Ceph RADOS block device (deprecated)."),
    f("flexVolume", 12, CORE + "FlexVolumeSource", "A volume from a FlexVolume driver (deprecated)."),
    f("cinder", 13, CORE + "CinderVolumeSource", "An OpenStack Cinder volume (deprecated; use the CSI driver)."),
    f("cephfs", 14, CORE + "CephFSVolumeSource", "A CephFS mount (deprecated)."),
    f("flocker", 15, CORE + "FlockerVolumeSource", "A Flocker dataset (deprecated)."),
    f(
        "downwardAPI",
        16,
        CORE + "DownwardAPIVolumeSource",
        "Files holding fields of the pod and resources of its containers.",
    ),
    f("fc", 17, CORE + "FCVolumeSource", "A Fibre Channel disk."),
    f("azureFile", 18, CORE + "AzureFileVolumeSource", "An Azure File share (deprecated; use the CSI driver)."),
    f("configMap", 19, CORE + "ConfigMapVolumeSource", "Files made from the keys of a ConfigMap."),
    f(
        "vsphereVolume",
        20,
        CORE + "VsphereVirtualDiskVolumeSource",
        "A vSphere virtual disk (deprecated; use the CSI driver).",
    ),
    f("quobyte", 21, CORE + "QuobyteVolumeSource", "A Quobyte volume (deprecated)."),
    f("azureDisk", 22, CORE + "AzureDiskVolumeSource", "An Azure data disk (deprecated; use the CSI driver)."),
    f(
        "photonPersistentDisk",
        23,
        CORE + "PhotonPersistentDiskVolumeSource",
        "A Photon Controller persistent disk (deprecated).",
    ),
    f(
        "projected",
        26,
        CORE + "ProjectedVolumeSource",
        "Secrets, config maps, downward API data and tokens merged into one directory.",
    ),
    f("portworxVolume", 24, CORE + "PortworxVolumeSource", "A Portworx volume (deprecated)."),
    f("scaleIO", 25, CORE + "ScaleIOVolumeSource", "A ScaleIO volume (deprecated)."),
    f("storageos", 27, CORE + "StorageOSVolumeSource", "A StorageOS volume (deprecated)."),
    f("csi", 28, CORE + "CSIVolumeSource", "An ephemeral volume provided by a CSI driver."),
    f(
        "ephemeral",
        29,
        CORE + "EphemeralVolumeSource",
        "A PersistentVolumeClaim created with the pod and deleted with it.",
    ),
    f("image", 30, CORE + "ImageVolumeSource", "An OCI image or artifact mounted read-only."),
)

struct(
    CORE + "Volume",
    "A named volume that containers of the pod can mount.",
    f("name", 1, STRING, "Volume name, a DNS label unique within the pod.", required=True),
    *inline(2, CORE + "VolumeSource"),
)

struct(
    CORE + "KeyToPath",
    "Maps a key of a ConfigMap or Secret to a file path in a volume.",
    f("key", 1, STRING, "Key to project.", required=True),
    f("path", 2, STRING, "Relative path of the file the key is written to; may not contain '..'.", required=True),
    f(
        "mode",
        3,
        INT32,
        "Permission bits of this file (0000-0777); defaults to the volume's defaultMode.",
        pointer=True,
    ),
)

struct(
    CORE + "HostPathVolumeSource",
    "A file or directory of the node's filesystem.",
    f("path", 1, STRING, "Path on the node.", required=True),
    f(
        "type",
        2,
        STRING,
        "What must (or will be made to) exist at the path.",
        pointer=True,
        enum=("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"),
        default="",
    ),
)

struct(
    CORE + "EmptyDirVolumeSource",
    "A scratch directory that lives as long as the pod.",
    f("medium", 1, STRING, "Storage medium: empty (node disk) or Memory."),
    f("sizeLimit", 2, QUANTITY, "Maximum size of the directory."),
)

struct(
    CORE + "SecretVolumeSource",
    "A Secret's keys presented as files.",
    f("secretName", 1, STRING, "Name of the Secret."),
    f(
        "items",
        2,
        list_of(CORE + "KeyToPath"),
        "Keys to project and their paths; when empty every key becomes a file named after it.",
        list_type="atomic",
    ),
    f("defaultMode", 3, INT32, "File mode bits of the created files (decimal in JSON).", pointer=True, default=420),
    f("optional", 4, BOOL, "Whether a missing Secret or key is tolerated.", pointer=True),
)

struct(
    CORE + "ConfigMapVolumeSource",
    "A ConfigMap's keys presented as files.",
    *inline(1, CORE + "LocalObjectReference"),
    f(
        "items",
        2,
        list_of(CORE + "KeyToPath"),
        "Keys to project and their paths; when empty every key becomes a file named after it.",
        list_type="atomic",
    ),
    f("defaultMode", 3, INT32, "File mode bits of the created files (decimal in JSON).", pointer=True, default=420),
    f("optional", 4, BOOL, "Whether a missing ConfigMap or key is tolerated.", pointer=True),
)

struct(
    CORE + "DownwardAPIVolumeSource",
    "Pod fields and resources presented as files.",
    f(
        "items",
        1,
        list_of(CORE + "DownwardAPIVolumeFile"),
        "Files to create, each from a pod field or a container resource.",
        list_type="atomic",
    ),
    f(
        "defaultMode",
        2,
        INT32,
        "Permission bits of the created files (0000-0777); defaults to 0644.",
        pointer=True,
        default=420,
    ),
)

struct(
    CORE + "DownwardAPIVolumeFile",
    "One file of a downward API volume.",
    f("path", 1, STRING, "Relative path of the file to create; may not contain '..'.", required=True),
    f("fieldRef", 2, CORE + "ObjectFieldSelector", "Pod field to write: annotations, labels, name, namespace or uid."),
    f("resourceFieldRef", 3, CORE + "ResourceFieldSelector", "Container resource limit or request to write."),
    f(
        "mode",
        4,
        INT32,
        "Permission bits of this file (0000-0777); defaults to the volume's defaultMode.",
        pointer=True,
    ),
)

struct(
    CORE + "ProjectedVolumeSource",
    "Several sources projected into one directory.",
    f("sources", 1, list_of(CORE + "VolumeProjection"), "The sources merged into the volume.", list_type="atomic"),
    f(
        "defaultMode",
        2,
        INT32,
        "Permission bits of the created files (0000-0777); defaults to 0644.",
        pointer=True,
        default=420,
    ),
)

struct(
    CORE + "VolumeProjection",
    "One source of a projected volume.",
    f("secret", 1, CORE + "SecretProjection", "Keys of a Secret to project."),
    f("downwardAPI", 2, CORE + "DownwardAPIProjection", "Pod fields and container resources to project."),
    f("configMap", 3, CORE + "ConfigMapProjection", "Keys of a ConfigMap to project."),
    f(
        "serviceAccountToken",
        4,
        CORE + "ServiceAccountTokenProjection",
        "A token of the pod's service account to project.",
    ),
    f(
        "clusterTrustBundle",
        5,
        CORE + "ClusterTrustBundleProjection",
        "Certificates of ClusterTrustBundle objects, projected into one file.",
    ),
)

struct(
    CORE + "SecretProjection",
    "A Secret projected into a projected volume.",
    *inline(1, CORE + "LocalObjectReference"),
    f(
        "items",
        2,
        list_of(CORE + "KeyToPath"),
        "Keys to project and their paths; when empty every key becomes a file named after it.",
        list_type="atomic",
    ),
    f("optional", 4, BOOL, "Whether a missing Secret or key is tolerated.", pointer=True),
)

struct(
    CORE + "ConfigMapProjection",
    "A ConfigMap projected into a projected volume.",
    *inline(1, CORE + "LocalObjectReference"),
    f(
        "items",
        2,
        list_of(CORE + "KeyToPath"),
        "Keys to project and their paths; when empty every key becomes a file named after it.",
        list_type="atomic",
    ),
    f("optional", 4, BOOL, "Whether a missing ConfigMap or key is tolerated.", pointer=True),
)

struct(
    CORE + "DownwardAPIProjection",
    "Downward API files projected into a projected volume.",
    f(
        "items",
        1,
        list_of(CORE + "DownwardAPIVolumeFile"),
        "Files to create, each from a pod field or a container resource.",
        list_type="atomic",
    ),
)

struct(
    CORE + "ServiceAccountTokenProjection",
    "A bound service account token written as a file.",
    f("audience", 1, STRING, "Audience the token is meant for; defaults to the API server's identifier."),
    f(
        "expirationSeconds",
        2,
        INT64,
        "Requested token lifetime in seconds (at least 600, default 3600); the kubelet renews it early.",
        pointer=True,
        default=3600,
    ),
    f("path", 3, STRING, "Relative path of the token file.", required=True),
)

struct(
    CORE + "ClusterTrustBundleProjection",
    "Certificates of ClusterTrustBundle objects written as a file.",
    f(
        "name",
        1,
        STRING,
        "Pick one ClusterTrustBundle by name; exclusive with signerName and labelSelector.",
        pointer=True,
    ),
    f("signerName", 2, STRING, "Pick every ClusterTrustBundle of this signer.", pointer=True),
    f(
        "labelSelector",
        3,
        META + "LabelSelector",
        "Restrict the bundles picked by signerName to those with matching labels.",
    ),
    f("optional", 5, BOOL, "Whether the pod may start when no bundle is found.", pointer=True),
    f("path", 4, STRING, "Relative path of the file written.", required=True),
)

struct(
    CORE + "PersistentVolumeClaimVolumeSource",
    "A PersistentVolumeClaim in the pod's namespace.",
    f("claimName", 1, STRING, "Name of the claim.", required=True),
    f("readOnly", 2, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "NFSVolumeSource",
    "An NFS export.",
    f("server", 1, STRING, "Host name or IP address of the NFS server.", required=True),
    f("path", 2, STRING, "Path exported by the server.", required=True),
    f("readOnly", 3, BOOL, "Mount the export read-only."),
)

struct(
    CORE + "CSIVolumeSource",
    "An inline volume provided by a CSI driver.",
    f("driver", 1, STRING, "Name of the CSI driver that provides the volume.", required=True),
    f("readOnly", 2, BOOL, "Mount the volume read-only.", pointer=True),
    f("fsType", 3, STRING, "Filesystem type, e.g. ext4; empty lets the driver choose.", pointer=True),
    f("volumeAttributes", 4, map_of(STRING), "Driver-specific properties handed to the CSI driver."),
    f(
        "nodePublishSecretRef",
        5,
        CORE + "LocalObjectReference",
        "Secret with sensitive data handed to the driver's publish calls.",
    ),
)

struct(
    CORE + "EphemeralVolumeSource",
    "A claim created with the pod and deleted with it.",
    f(
        "volumeClaimTemplate",
        1,
        CORE + "PersistentVolumeClaimTemplate",
        "Template of the PersistentVolumeClaim made for the pod, named <pod>-<volume>.",
    ),
)

struct(
    CORE + "PersistentVolumeClaimTemplate",
    "Template of the claim created for an ephemeral volume.",
    f("metadata", 1, META + "ObjectMeta", "Labels and annotations copied into the created claim."),
    f("spec", 2, CORE + "PersistentVolumeClaimSpec", "Spec copied unchanged into the created claim.", required=True),
)

struct(
    CORE + "PersistentVolumeClaimSpec",
    "What storage a claim asks for.",
    f(
        "accessModes",
        1,
        list_of(STRING),
        "Access modes the volume must support, e.g. ReadWriteOnce.",
        list_type="atomic",
    ),
    f("selector", 4, META + "LabelSelector", "Label query over the volumes the claim may bind to."),
    f(
        "resources",
        2,
        CORE + "VolumeResourceRequirements",
        "Minimum resources, such as storage size, the volume must have.",
    ),
    f("volumeName", 3, STRING, "Name of a particular PersistentVolume to bind to."),
    f("storageClassName", 5, STRING, "StorageClass the claim requires; the empty string means no class.", pointer=True),
    f(
        "volumeMode",
        6,
        STRING,
        "Whether the volume is a formatted filesystem or a raw device: Filesystem or Block.",
        pointer=True,
        enum=("Block", "Filesystem"),
        default="Filesystem",
    ),
    f("dataSource", 7, CORE + "TypedLocalObjectReference", "Existing snapshot or claim the new volume is filled from."),
    f(
        "dataSourceRef",
        8,
        CORE + "TypedObjectReference",
        "Object of any populator kind, possibly in another namespace, the volume is filled from.",
    ),
    f("volumeAttributesClassName", 9, STRING, "VolumeAttributesClass the claim uses.", pointer=True),
)

struct(
    CORE + "VolumeResourceRequirements",
    "Storage a claim requests.",
    f("limits", 1, map_of(QUANTITY), "Maximum amount of each resource."),
    f("requests", 2, map_of(QUANTITY), "Minimum amount of each resource required."),
)

struct(
    CORE + "TypedLocalObjectReference",
    "A reference to an object of a given kind in the same namespace.",
    f("apiGroup", 1, STRING, "API group of the referenced kind; empty for the core group.", pointer=True),
    f("kind", 2, STRING, "Kind of the referenced object.", required=True),
    f("name", 3, STRING, "Name of the referenced object.", required=True),
)

struct(
    CORE + "TypedObjectReference",
    "A reference to an object of a given kind, possibly in another namespace.",
    f("apiGroup", 1, STRING, "API group of the referenced kind; empty for the core group.", pointer=True),
    f("kind", 2, STRING, "Kind of the referenced object.", required=True),
    f("name", 3, STRING, "Name of the referenced object.", required=True),
    f(
        "namespace",
        4,
        STRING,
        "Namespace of the referenced object; another namespace needs a ReferenceGrant.",
        pointer=True,
    ),
)

struct(
    CORE + "ImageVolumeSource",
    "An OCI image or artifact mounted read-only.",
    f("reference", 1, STRING, "Image or artifact reference to mount, written as for a container image."),
    f(
        "pullPolicy",
        2,
        STRING,
        "When to pull: Always, Never or IfNotPresent.",
        enum=("Always", "Never", "IfNotPresent"),
    ),
)

struct(
    CORE + "GitRepoVolumeSource",
    "A directory cloned from a git repository (deprecated).",
    f("repository", 1, STRING, "URL of the repository.", required=True),
    f("revision", 2, STRING, "Commit hash to check out."),
    f("directory", 3, STRING, "Directory to clone into; '.' clones into the volume root."),
)

struct(
    CORE + "ISCSIVolumeSource",
    "An iSCSI disk.",
    f("targetPortal", 1, STRING, "Target portal as IP or IP:port (port 3260 by default).", required=True),
    f("iqn", 2, STRING, "iSCSI qualified name of the target.", required=True),
    f("lun", 3, INT32, "Target LUN number.", required=True),
    f("iscsiInterface", 4, STRING, "iSCSI interface name that uses the transport; defaults to 'default' (tcp)."),
    f("fsType", 5, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("readOnly", 6, BOOL, "Mount the volume read-only."),
    f("portals", 7, list_of(STRING), "Extra target portals, each IP or IP:port.", list_type="atomic"),
    f("chapAuthDiscovery", 8, BOOL, "Use CHAP authentication for iSCSI discovery."),
    f("chapAuthSession", 11, BOOL, "Use CHAP authentication for the iSCSI session."),
    f("secretRef", 10, CORE + "LocalObjectReference", "Secret holding the CHAP credentials."),
    f("initiatorName", 12, STRING, "Custom iSCSI initiator name for the connection.", pointer=True),
)

struct(
    CORE + "GlusterfsVolumeSource",
    "A GlusterFS volume.",
    f("endpoints", 1, STRING, "Endpoints object listing the Glusterfs servers.", required=True),
    f("path", 2, STRING, "Glusterfs volume path.", required=True),
    f("readOnly", 3, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "RBDVolumeSource",
    "A Ceph RBD block device.",
    f("monitors", 1, list_of(STRING), "Addresses of the Ceph monitors.", list_type="atomic", required=True),
    f("image", 2, STRING, "RADOS image name.", required=True),
    f("fsType", 3, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("pool", 4, STRING, "RADOS pool name; defaults to rbd."),
    f("user", 5, STRING, "RADOS user name; defaults to admin."),
    f("keyring", 6, STRING, "Path of the keyring file; defaults to /etc/ceph/keyring."),
    f("secretRef", 7, CORE + "LocalObjectReference", "Secret with the user's key; takes precedence over keyring."),
    f("readOnly", 8, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "FlexVolumeSource",
    "A volume provided by a FlexVolume driver.",
    f("driver", 1, STRING, "Name of the FlexVolume driver.", required=True),
    f("fsType", 2, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("secretRef", 3, CORE + "LocalObjectReference", "Secret handed to the driver's calls."),
    f("readOnly", 4, BOOL, "Mount the volume read-only."),
    f("options", 5, map_of(STRING), "Extra driver-specific options."),
)

struct(
    CORE + "CinderVolumeSource",
    "An OpenStack Cinder volume.",
    f("volumeID", 1, STRING, "ID of the Cinder volume.", required=True),
    f("fsType", 2, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("readOnly", 3, BOOL, "Mount the volume read-only."),
    f("secretRef", 4, CORE + "LocalObjectReference", "Secret with the OpenStack connection parameters."),
)

struct(
    CORE + "CephFSVolumeSource",
    "A CephFS mount.",
    f("monitors", 1, list_of(STRING), "Addresses of the Ceph monitors.", list_type="atomic", required=True),
    f("path", 2, STRING, "Path inside the CephFS mounted as the volume root; defaults to /."),
    f("user", 3, STRING, "RADOS user name; defaults to admin."),
    f("secretFile", 4, STRING, "Path of the user's key file; defaults to /etc/ceph/user.secret."),
    f("secretRef", 5, CORE + "LocalObjectReference", "Secret with the user's key; takes precedence over secretFile."),
    f("readOnly", 6, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "FlockerVolumeSource",
    "A Flocker dataset.",
    f("datasetName", 1, STRING, "Name of the dataset, kept as metadata."),
    f("datasetUUID", 2, STRING, "UUID of the dataset."),
)

struct(
    CORE + "FCVolumeSource",
    "A Fibre Channel disk.",
    f("targetWWNs", 1, list_of(STRING), "World wide names of the targets.", list_type="atomic"),
    f("lun", 2, INT32, "Target LUN number.", pointer=True),
    f("fsType", 3, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("readOnly", 4, BOOL, "Mount the volume read-only."),
    f(
        "wwids",
        5,
        list_of(STRING),
        "World wide identifiers of the volume; exclusive with targetWWNs and lun.",
        list_type="atomic",
    ),
)

struct(
    CORE + "AzureFileVolumeSource",
    "An Azure File share.",
    f("secretName", 1, STRING, "Secret holding the storage account name and key.", required=True),
    f("shareName", 2, STRING, "Name of the file share.", required=True),
    f("readOnly", 3, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "AzureDiskVolumeSource",
    "An Azure data disk.",
    f("diskName", 1, STRING, "Name of the data disk in blob storage.", required=True),
    f("diskURI", 2, STRING, "URI of the data disk.", required=True),
    f(
        "cachingMode",
        3,
        STRING,
        "Host caching mode: None, ReadOnly or ReadWrite.",
        pointer=True,
        enum=("None", "ReadOnly", "ReadWrite"),
    ),
    f("fsType", 4, STRING, "Filesystem type to mount, e.g. ext4 or xfs.", pointer=True),
    f("readOnly", 5, BOOL, "Mount the volume read-only.", pointer=True),
    f(
        "kind",
        6,
        STRING,
        "Disk kind: Shared, Dedicated or Managed.",
        pointer=True,
        enum=("Shared", "Dedicated", "Managed"),
    ),
)

struct(
    CORE + "VsphereVirtualDiskVolumeSource",
    "A vSphere virtual disk.",
    f("volumePath", 1, STRING, "Path that identifies the vSphere volume.", required=True),
    f("fsType", 2, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("storagePolicyName", 3, STRING, "Name of the storage policy (SPBM) profile."),
    f("storagePolicyID", 4, STRING, "ID of the storage policy (SPBM) profile."),
)

struct(
    CORE + "QuobyteVolumeSource",
    "A Quobyte volume.",
    f("registry", 1, STRING, "Quobyte registries as host:port pairs, comma-separated.", required=True),
    f("volume", 2, STRING, "Name of an existing Quobyte volume.", required=True),
    f("readOnly", 3, BOOL, "Mount the volume read-only."),
    f("user", 4, STRING, "User volume access is mapped to; defaults to serviceaccount."),
    f("group", 5, STRING, "Group volume access is mapped to."),
    f("tenant", 6, STRING, "Backend tenant that owns the volume."),
)

struct(
    CORE + "PhotonPersistentDiskVolumeSource",
    "A Photon Controller persistent disk.",
    f("pdID", 1, STRING, "ID of the Photon persistent disk.", required=True),
    f("fsType", 2, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
)

struct(
    CORE + "PortworxVolumeSource",
    "A Portworx volume.",
    f("volumeID", 1, STRING, "ID of the Portworx volume.", required=True),
    f("fsType", 2, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("readOnly", 3, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "ScaleIOVolumeSource",
    "A ScaleIO volume.",
    f("gateway", 1, STRING, "Address of the ScaleIO API gateway.", required=True),
    f("system", 2, STRING, "Name of the storage system.", required=True),
    f("secretRef", 3, CORE + "LocalObjectReference", "Secret with the ScaleIO user's credentials.", required=True),
    f("sslEnabled", 4, BOOL, "Talk to the gateway over SSL."),
    f("protectionDomain", 5, STRING, "Protection domain of the storage."),
    f("storagePool", 6, STRING, "Storage pool within the protection domain."),
    f("storageMode", 7, STRING, "Provisioning mode: ThickProvisioned or ThinProvisioned."),
    f("volumeName", 8, STRING, "Name of a volume already created in the system."),
    f("fsType", 9, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("readOnly", 10, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "StorageOSVolumeSource",
    "A StorageOS volume.",
    f("volumeName", 1, STRING, "Name of the StorageOS volume, unique within its namespace."),
    f("volumeNamespace", 2, STRING, "StorageOS namespace of the volume; defaults to the pod's namespace."),
    f("fsType", 3, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("readOnly", 4, BOOL, "Mount the volume read-only."),
    f("secretRef", 5, CORE + "LocalObjectReference", "Secret with the StorageOS API credentials."),
)

struct(
    CORE + "GCEPersistentDiskVolumeSource",
    "A Google Compute Engine persistent disk.",
    f("pdName", 1, STRING, "Name of the persistent disk in GCE.", required=True),
    f("fsType", 2, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("partition", 3, INT32, "Partition to mount; 0 or absent mounts the whole disk."),
    f("readOnly", 4, BOOL, "Mount the volume read-only."),
)

struct(
    CORE + "AWSElasticBlockStoreVolumeSource",
    "An AWS EBS volume.",
    f("volumeID", 1, STRING, "ID of the EBS volume.", required=True),
    f("fsType", 2, STRING, "Filesystem type to mount, e.g. ext4 or xfs."),
    f("partition", 3, INT32, "Partition to mount; 0 or absent mounts the whole disk."),
    f("readOnly", 4, BOOL, "Mount the volume read-only."),
)

# -- scheduling ------------------------------------------------------------------------------------------

struct(
    CORE + "Affinity",
    "Node and pod affinity and anti-affinity rules.",
    f("nodeAffinity", 1, CORE + "NodeAffinity", "Node affinity rules of the pod."),
    f("podAffinity", 2, CORE + "PodAffinity", "Rules that place the pod near pods that match."),
    f("podAntiAffinity", 3, CORE + "PodAntiAffinity", "Rules that keep the pod away from pods that match."),
)

struct(
    CORE + "NodeAffinity",
    "Rules on which nodes a pod may or prefers to run.",
    f(
        "requiredDuringSchedulingIgnoredDuringExecution",
        1,
        CORE + "NodeSelector",
        "Node constraints that must hold when the pod is scheduled; not re-checked later.",
    ),
    f(
        "preferredDuringSchedulingIgnoredDuringExecution",
        2,
        list_of(CORE + "PreferredSchedulingTerm"),
        "Weighted node preferences the scheduler tries to honour.",
        list_type="atomic",
    ),
)

struct(
    CORE + "NodeSelector",
    "Terms that a node must match; the terms are ORed.",
    f(
        "nodeSelectorTerms",
        1,
        list_of(CORE + "NodeSelectorTerm"),
        "Terms ORed together: a node must match at least one.",
        list_type="atomic",
        required=True,
    ),
)

struct(
    CORE + "NodeSelectorTerm",
    "Requirements on node labels and fields; they are ANDed.",
    f(
        "matchExpressions",
        1,
        list_of(CORE + "NodeSelectorRequirement"),
        "Requirements on node labels, all of which must hold.",
        list_type="atomic",
    ),
    f(
        "matchFields",
        2,
        list_of(CORE + "NodeSelectorRequirement"),
        "Requirements on node fields (metadata.name), all of which must hold.",
        list_type="atomic",
    ),
)

struct(
    CORE + "NodeSelectorRequirement",
    "One requirement on a node label or field.",
    f("key", 1, STRING, "Label key or field name the requirement tests.", required=True),
    f(
        "operator",
        2,
        STRING,
        "In, NotIn, Exists, DoesNotExist, Gt or Lt.",
        enum=("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"),
        required=True,
    ),
    f(
        "values",
        3,
        list_of(STRING),
        "Values to compare: a set for In/NotIn, none for Exists/DoesNotExist, one integer for Gt/Lt.",
        list_type="atomic",
    ),
)

struct(
    CORE + "PreferredSchedulingTerm",
    "A weighted node preference.",
    f("weight", 1, INT32, "Weight of this preference, 1-100.", required=True),
    f("preference", 2, CORE + "NodeSelectorTerm", "Node selector term the weight applies to.", required=True),
)

struct(
    CORE + "PodAffinity",
    "Rules to place a pod near other pods.",
    f(
        "requiredDuringSchedulingIgnoredDuringExecution",
        1,
        list_of(CORE + "PodAffinityTerm"),
        "Affinity terms that must hold when the pod is scheduled; not re-checked later.",
        list_type="atomic",
    ),
    f(
        "preferredDuringSchedulingIgnoredDuringExecution",
        2,
        list_of(CORE + "WeightedPodAffinityTerm"),
        "Weighted affinity terms the scheduler tries to honour.",
        list_type="atomic",
    ),
)

struct(
    CORE + "PodAntiAffinity",
    "Rules to keep a pod away from other pods.",
    f(
        "requiredDuringSchedulingIgnoredDuringExecution",
        1,
        list_of(CORE + "PodAffinityTerm"),
        "Anti-affinity terms that must hold when the pod is scheduled; not re-checked later.",
        list_type="atomic",
    ),
    f(
        "preferredDuringSchedulingIgnoredDuringExecution",
        2,
        list_of(CORE + "WeightedPodAffinityTerm"),
        "Weighted anti-affinity terms the scheduler tries to honour.",
        list_type="atomic",
    ),
)

struct(
    CORE + "PodAffinityTerm",
    "A set of pods, and the topology domain they must (not) share with this pod.",
    f("labelSelector", 1, META + "LabelSelector", "Pods this term refers to."),
    f(
        "namespaces",
        2,
        list_of(STRING),
        "Namespaces the label selector looks in; with no namespaceSelector, empty means the pod's own.",
        list_type="atomic",
    ),
    f("topologyKey", 3, STRING, "Node label defining co-location.", required=True),
    f(
        "namespaceSelector",
        4,
        META + "LabelSelector",
        "Label query over the namespaces the term looks in; an empty selector means all of them.",
    ),
    f(
        "matchLabelKeys",
        5,
        list_of(STRING),
        "Label keys whose values on the incoming pod are added to labelSelector as 'key in (value)'.",
        list_type="atomic",
    ),
    f(
        "mismatchLabelKeys",
        6,
        list_of(STRING),
        "Label keys whose values on the incoming pod are added to labelSelector as 'key notin (value)'.",
        list_type="atomic",
    ),
)

struct(
    CORE + "WeightedPodAffinityTerm",
    "A weighted pod affinity term.",
    f("weight", 1, INT32, "Weight of this term, 1-100.", required=True),
    f("podAffinityTerm", 2, CORE + "PodAffinityTerm", "The pod affinity term the weight applies to.", required=True),
)

struct(
    CORE + "Toleration",
    "Allows a pod onto nodes carrying a matching taint.",
    f("key", 1, STRING, "Taint key; empty with operator Exists matches every taint."),
    f("operator", 2, STRING, "Exists or Equal.", enum=("Exists", "Equal")),
    f("value", 3, STRING, "Taint value to match with operator Equal."),
    f(
        "effect",
        4,
        STRING,
        "Taint effect to match; empty matches all effects.",
        enum=("NoSchedule", "PreferNoSchedule", "NoExecute"),
    ),
    f("tolerationSeconds", 5, INT64, "How long a NoExecute taint is tolerated.", pointer=True),
)

struct(
    CORE + "TopologySpreadConstraint",
    "How evenly matching pods must spread across topology domains.",
    f("maxSkew", 1, INT32, "Largest allowed difference of matching pods between domains.", required=True),
    f("topologyKey", 2, STRING, "Node label defining the domains.", required=True),
    f(
        "whenUnsatisfiable",
        3,
        STRING,
        "DoNotSchedule or ScheduleAnyway.",
        enum=("DoNotSchedule", "ScheduleAnyway"),
        required=True,
    ),
    f("labelSelector", 4, META + "LabelSelector", "Finds the pods counted in each topology domain."),
    f(
        "minDomains",
        5,
        INT32,
        "Minimum number of eligible domains; with fewer, the global minimum counts as 0.",
        pointer=True,
    ),
    f(
        "nodeAffinityPolicy",
        6,
        STRING,
        "Whether the pod's node affinity and selector limit the domains counted: Honor or Ignore.",
        pointer=True,
        enum=("Ignore", "Honor"),
    ),
    f(
        "nodeTaintsPolicy",
        7,
        STRING,
        "Whether node taints limit the domains counted: Honor or Ignore.",
        pointer=True,
        enum=("Ignore", "Honor"),
    ),
    f(
        "matchLabelKeys",
        8,
        list_of(STRING),
        "Label keys whose values on the incoming pod are added to labelSelector.",
        list_type="atomic",
    ),
)

struct(
    CORE + "PodSchedulingGate",
    "A gate that keeps a pod unscheduled while present.",
    f("name", 1, STRING, "Name of the gate; the pod is not scheduled while any gate remains.", required=True),
)

struct(
    CORE + "PodResourceClaim",
    "A dynamic resource claim the pod uses.",
    f("name", 1, STRING, "Name of this claim within the pod, used by containers' resources.claims.", required=True),
    f("resourceClaimName", 3, STRING, "Name of an existing ResourceClaim in the pod's namespace.", pointer=True),
    f(
        "resourceClaimTemplateName",
        4,
        STRING,
        "Name of a ResourceClaimTemplate a claim is made from for this pod.",
        pointer=True,
    ),
)

struct(
    CORE + "PodOS",
    "The operating system a pod needs.",
    f("name", 1, STRING, "Operating system of the pod: linux or windows.", required=True),
)

# -- networking and DNS ----------------------------------------------------------------------------------

struct(
    CORE + "HostAlias",
    "An extra /etc/hosts entry.",
    f("ip", 1, STRING, "IP address of the hosts-file entry.", required=True),
    f("hostnames", 2, list_of(STRING), "Host names for that IP address.", list_type="atomic"),
)

struct(
    CORE + "PodDNSConfig",
    "DNS settings merged into the pod's resolv.conf.",
    f("nameservers", 1, list_of(STRING), "DNS server IP addresses added to those dnsPolicy gives.", list_type="atomic"),
    f("searches", 2, list_of(STRING), "DNS search domains added to those dnsPolicy gives.", list_type="atomic"),
    f(
        "options",
        3,
        list_of(CORE + "PodDNSConfigOption"),
        "Resolver options merged with those dnsPolicy gives.",
        list_type="atomic",
    ),
)

struct(
    CORE + "PodDNSConfigOption",
    "One resolver option.",
    f("name", 1, STRING, "Option name, e.g. ndots."),
    f("value", 2, STRING, "Option value.", pointer=True),
)

struct(
    CORE + "PodReadinessGate",
    "A pod condition that must be true before the pod counts as ready.",
    f("conditionType", 1, STRING, "Pod condition type that must be True for the pod to be ready.", required=True),
)

# -- status ----------------------------------------------------------------------------------------------

struct(
    CORE + "PodStatus",
    "Observed state of a pod, written by the kubelet and the scheduler.",
    f(
        "phase",
        1,
        STRING,
        "Coarse lifecycle phase: Pending, Running, Succeeded, Failed or Unknown.",
        enum=("Pending", "Running", "Succeeded", "Failed", "Unknown"),
    ),
    f(
        "conditions",
        2,
        list_of(CORE + "PodCondition"),
        "Current conditions of the pod.",
        strategy="merge",
        merge_key="type",
        list_type="map",
        map_keys=("type",),
    ),
    f("message", 3, STRING, "Human-readable explanation of the pod's state."),
    f("reason", 4, STRING, "Brief CamelCase reason for the pod's state, e.g. Evicted."),
    f("nominatedNodeName", 11, STRING, "Node on which the pod is expected to run after preemption."),
    f("hostIP", 5, STRING, "Primary IP of the pod's node."),
    f(
        "hostIPs",
        16,
        list_of(CORE + "HostIP"),
        "IP addresses of the pod's node; the first equals hostIP.",
        strategy="merge",
        merge_key="ip",
        list_type="atomic",
    ),
    f("podIP", 6, STRING, "Primary IP of the pod."),
    f(
        "podIPs",
        12,
        list_of(CORE + "PodIP"),
        "All IPs of the pod.",
        strategy="merge",
        merge_key="ip",
        list_type="map",
        map_keys=("ip",),
    ),
    f("startTime", 7, TIME, "When the kubelet acknowledged the pod."),
    f(
        "initContainerStatuses",
        10,
        list_of(CORE + "ContainerStatus"),
        "Status of each init container.",
        list_type="atomic",
    ),
    f("containerStatuses", 8, list_of(CORE + "ContainerStatus"), "Status of each main container.", list_type="atomic"),
    f(
        "qosClass",
        9,
        STRING,
        "Quality of service class derived from the resources.",
        enum=("Guaranteed", "Burstable", "BestEffort"),
    ),
    f(
        "ephemeralContainerStatuses",
        13,
        list_of(CORE + "ContainerStatus"),
        "Status of each ephemeral container.",
        list_type="atomic",
    ),
    f("resize", 14, STRING, "State of a requested in-place resize: Proposed, InProgress, Deferred or Infeasible."),
    f(
        "resourceClaimStatuses",
        15,
        list_of(CORE + "PodResourceClaimStatus"),
        "Names of the ResourceClaims generated for the pod's claims.",
        strategy="merge,retainKeys",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
)

struct(
    CORE + "PodCondition",
    "One condition of a pod (PodScheduled, Initialized, ContainersReady, Ready...).",
    f("type", 1, STRING, "Condition type.", required=True),
    f("status", 2, STRING, "True, False or Unknown.", required=True),
    f("lastProbeTime", 3, TIME, "When the condition was last probed."),
    f("lastTransitionTime", 4, TIME, "When the condition last changed status."),
    f("reason", 5, STRING, "CamelCase reason for the last transition."),
    f("message", 6, STRING, "Human-readable details of the last transition."),
)

struct(
    CORE + "PodIP",
    "One IP address assigned to a pod.",
    f("ip", 1, STRING, "One IP address of the pod.", required=True),
)

struct(
    CORE + "HostIP",
    "One IP address of the pod's node.",
    f("ip", 1, STRING, "One IP address of the pod's node.", required=True),
)

struct(
    CORE + "ContainerStatus",
    "Observed state of one container.",
    f("name", 1, STRING, "Container name.", required=True),
    f("state", 2, CORE + "ContainerState", "Current state."),
    f("lastState", 3, CORE + "ContainerState", "State of the previous run."),
    f("ready", 4, BOOL, "Whether the readiness probe passes.", required=True),
    f("restartCount", 5, INT32, "Number of restarts.", required=True),
    f("image", 6, STRING, "Image the container runs.", required=True),
    f("imageID", 7, STRING, "Resolved image ID.", required=True),
    f("containerID", 8, STRING, "Runtime container ID, as <type>://<id>."),
    f("started", 9, BOOL, "Whether the startup probe has passed.", pointer=True),
    f("allocatedResources", 10, map_of(QUANTITY), "Resources the node has allocated to the container."),
    f("resources", 11, CORE + "ResourceRequirements", "Requests and limits actually applied to the running container."),
    f(
        "volumeMounts",
        12,
        list_of(CORE + "VolumeMountStatus"),
        "Volumes mounted in the container and how.",
        strategy="merge",
        merge_key="mountPath",
        list_type="map",
        map_keys=("mountPath",),
    ),
    f("user", 13, CORE + "ContainerUser", "Identity of the container's first process, as the runtime reports it."),
    f(
        "allocatedResourcesStatus",
        14,
        list_of(CORE + "ResourceStatus"),
        "Health of the resources allocated to the container.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
)

struct(
    CORE + "ContainerState",
    "State of a container; exactly one member is set.",
    f("waiting", 1, CORE + "ContainerStateWaiting", "Details of a container not yet running."),
    f("running", 2, CORE + "ContainerStateRunning", "Details of a running container."),
    f("terminated", 3, CORE + "ContainerStateTerminated", "Details of a container that has exited."),
)

struct(
    CORE + "ContainerStateWaiting",
    "The container is not running yet.",
    f("reason", 1, STRING, "Why the container is not running yet, e.g. ContainerCreating or ImagePullBackOff."),
    f("message", 2, STRING, "Details of why the container is waiting."),
)

struct(
    CORE + "ContainerStateRunning",
    "The container is running.",
    f("startedAt", 1, TIME, "When the container last started."),
)

struct(
    CORE + "ContainerStateTerminated",
    "The container has exited.",
    f("exitCode", 1, INT32, "Exit status of the container's process.", required=True),
    f("signal", 2, INT32, "Signal that ended the container, if any."),
    f("reason", 3, STRING, "Brief reason for the termination, e.g. Completed or OOMKilled."),
    f("message", 4, STRING, "Details of the termination."),
    f("startedAt", 5, TIME, "When the container started."),
    f("finishedAt", 6, TIME, "When the container exited."),
    f("containerID", 7, STRING, "Runtime ID of the container, as <type>://<id>."),
)

struct(
    CORE + "VolumeMountStatus",
    "Observed state of a volume mount.",
    f("name", 1, STRING, "Name of the mounted volume.", required=True),
    f("mountPath", 2, STRING, "Path inside the container where the volume is mounted.", required=True),
    f("readOnly", 3, BOOL, "Whether the mount is read-only."),
    f("recursiveReadOnly", 4, STRING, "Whether read-only holds recursively: Disabled or Enabled.", pointer=True),
)

struct(
    CORE + "ContainerUser",
    "Identity the container's first process runs as.",
    f("linux", 1, CORE + "LinuxContainerUser", "Identity on Linux."),
)

struct(
    CORE + "LinuxContainerUser",
    "Linux user and groups of the container's first process.",
    f("uid", 1, INT64, "UID of the first process.", required=True),
    f("gid", 2, INT64, "Primary GID of the first process.", required=True),
    f("supplementalGroups", 3, list_of(INT64), "Supplementary GIDs of the first process.", list_type="atomic"),
)

struct(
    CORE + "ResourceStatus",
    "Health of the devices allocated for one resource.",
    f("name", 1, STRING, "Resource name as in the container's resources, e.g. claim:<claim>/<request>.", required=True),
    f(
        "resources",
        2,
        list_of(CORE + "ResourceHealth"),
        "Health of each device allocated for this resource.",
        list_type="map",
        map_keys=("resourceID",),
    ),
)

struct(
    CORE + "ResourceHealth",
    "Health of one allocated device.",
    f("resourceID", 1, STRING, "Unique ID of the allocated device.", required=True),
    f("health", 2, STRING, "Health of the device: Healthy, Unhealthy or Unknown."),
)

struct(
    CORE + "PodResourceClaimStatus",
    "Name of the ResourceClaim generated for a pod claim.",
    f("name", 1, STRING, "Name of the entry in spec.resourceClaims.", required=True),
    f(
        "resourceClaimName",
        2,
        STRING,
        "Name of the ResourceClaim generated for it; absent when none was needed.",
        pointer=True,
    ),
)


# =====================================================================================================
# Quantities
# =====================================================================================================

_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
}
QUANTITY_FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def parse_quantity(s: Any) -> Decimal:
    """Value of a resource quantity ("100m", "1Gi", "2e3", 5) as an exact Decimal; ValueError if malformed."""
    if isinstance(s, bool):
        raise ValueError(QUANTITY_FORMAT_ERROR)
    if isinstance(s, int | float):
        return Decimal(str(s))
    if not isinstance(s, str):
        raise ValueError(QUANTITY_FORMAT_ERROR)
    m = _QUANTITY_RE.match(s.strip())
    if not m:
        raise ValueError(QUANTITY_FORMAT_ERROR)
    number, suffix = m.groups()
    if number.count(".") > 1 or number.strip("+-") in ("", "."):
        raise ValueError(QUANTITY_FORMAT_ERROR)
    try:
        value = Decimal(number)
    except InvalidOperation as exc:
        raise ValueError(QUANTITY_FORMAT_ERROR) from exc
    if suffix in _BINARY_SUFFIXES:
        return value * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return value * _DECIMAL_SUFFIXES[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return value * (Decimal(10) ** int(suffix[1:]))
        except ValueError as exc:
            raise ValueError(QUANTITY_FORMAT_ERROR) from exc
    raise ValueError(QUANTITY_FORMAT_ERROR)


# =====================================================================================================
# Defaulting
# =====================================================================================================


def image_tag(image: str) -> str:
    """The tag of an image reference: "latest" when neither tag nor digest is given, "" for a bare digest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def default_pull_policy(image: str) -> str:
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    # Go zero values count as unset: 0 becomes the default too.
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _default_handler(probe)


def _default_handler(handler: Any) -> None:
    if not isinstance(handler, dict):
        return
    http = handler.get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = default_pull_policy(str(c.get("image") or ""))
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for port in c.get("ports") or []:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))
    for env in c.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"


def _default_items_field_refs(items: Any) -> None:
    for item in items or []:
        ref = item.get("fieldRef") if isinstance(item, dict) else None
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"


def _default_volume(v: Any) -> None:
    if not isinstance(v, dict):
        return
    if not any(k in v for k in volume_source_names()):
        v["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(key)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = 420
    hp = v.get("hostPath")
    if isinstance(hp, dict) and hp.get("type") is None:
        hp["type"] = ""
    dapi = v.get("downwardAPI")
    if isinstance(dapi, dict):
        _default_items_field_refs(dapi.get("items"))
    proj = v.get("projected")
    if isinstance(proj, dict):
        for source in proj.get("sources") or []:
            if not isinstance(source, dict):
                continue
            token = source.get("serviceAccountToken")
            if isinstance(token, dict) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
            dp = source.get("downwardAPI")
            if isinstance(dp, dict):
                _default_items_field_refs(dp.get("items"))
    image = v.get("image")
    if isinstance(image, dict) and not image.get("pullPolicy"):
        image["pullPolicy"] = default_pull_policy(str(image.get("reference") or ""))
    eph = v.get("ephemeral")
    claim_spec = ((eph or {}).get("volumeClaimTemplate") or {}).get("spec") if isinstance(eph, dict) else None
    if isinstance(claim_spec, dict) and not claim_spec.get("volumeMode"):
        claim_spec["volumeMode"] = "Filesystem"


_SOURCE_NAMES = tuple(fl.json for fl in STRUCTS[CORE + "VolumeSource"].fields)


def volume_source_names() -> tuple[str, ...]:
    """JSON names of the volume source members (hostPath, emptyDir, secret, ...)."""
    return _SOURCE_NAMES


def default_pod_spec(spec: Obj) -> None:
    """Upstream defaulting of a PodSpec, in place (pods and workload templates alike).

    serviceAccountName is left alone: admission fills it for pods only.
    """
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            _default_container(c)
    for vol in spec.get("volumes") or []:
        _default_volume(vol)


def default_pod(pod: Obj) -> None:
    """Defaulting of a Pod object: the PodSpec defaults plus what upstream applies to pods only.

    Requests default to limits, service links are enabled, and host-network pods publish each
    container port on the host. Templates of workloads do not get these (as upstream).
    """
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = c.get("resources") if isinstance(c, dict) else None
            if isinstance(res, dict) and isinstance(res.get("limits"), dict) and res["limits"]:
                requests = res.setdefault("requests", {})
                for name, value in res["limits"].items():
                    requests.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                for port in c.get("ports") or []:
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")


# =====================================================================================================
# Validation
# =====================================================================================================

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
TOLERATION_OPERATORS = ["Equal", "Exists"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
NODE_SELECTOR_OPERATORS = ["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"]
HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]
MAX_INT32 = 2**31 - 1
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
# Resources whose names need no domain prefix.
STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})


def _not_found(path: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", path, f"Not found: {errors._fmt(value)}")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_resource_list(res: Any, path: str) -> tuple[list[Cause], dict[str, Decimal]]:
    causes: list[Cause] = []
    parsed: dict[str, Decimal] = {}
    if not res:
        return causes, parsed
    if not isinstance(res, dict):
        return [errors.invalid_value(path, res, "must be a map of resource names to quantities")], parsed
    for name, raw in res.items():
        p = f"{path}[{name}]"
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            msgs = v.is_qualified_name(name)
            if msgs:
                causes.extend(errors.invalid_value(p, name, m) for m in msgs)
                continue
            if "/" not in name:
                causes.append(errors.invalid_value(p, name, "must be a standard resource type or fully qualified"))
                continue
        try:
            q = parse_quantity(raw)
        except ValueError as exc:
            causes.append(errors.invalid_value(p, raw, str(exc)))
            continue
        if q < 0:
            causes.append(errors.invalid_value(p, raw, "must be greater than or equal to 0"))
            continue
        if name not in STANDARD_CONTAINER_RESOURCES and q != q.to_integral_value():
            causes.append(errors.invalid_value(p, raw, "must be an integer"))
            continue
        parsed[name] = q
    return causes, parsed


def validate_resource_requirements(res: Any, path: str) -> list[Cause]:
    """Quantities parse and are non-negative; each request is at most its limit."""
    if not isinstance(res, dict):
        return []
    c1, limits = _validate_resource_list(res.get("limits"), f"{path}.limits")
    c2, requests = _validate_resource_list(res.get("requests"), f"{path}.requests")
    causes = c1 + c2
    for name, req in requests.items():
        if name not in limits:
            continue
        raw = res["requests"][name]
        lim_raw = res["limits"][name]
        extended = name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-")
        if extended and req != limits[name]:
            causes.append(
                errors.invalid_value(f"{path}.requests[{name}]", raw, f"must be equal to {name} limit of {lim_raw}")
            )
        elif req > limits[name]:
            causes.append(
                errors.invalid_value(
                    f"{path}.requests[{name}]", raw, f"must be less than or equal to {name} limit of {lim_raw}"
                )
            )
    return causes


def _validate_handler(handler: Any, path: str, kinds: tuple[str, ...]) -> list[Cause]:
    if not isinstance(handler, dict):
        return []
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        return [errors.required(path, "must specify a handler type")]
    causes: list[Cause] = [
        errors.forbidden_field(f"{path}.{k}", "may not specify more than 1 handler type") for k in present[1:]
    ]
    http = handler.get("httpGet")
    if isinstance(http, dict):
        causes.extend(_validate_port_ref(http.get("port"), f"{path}.httpGet.port"))
        scheme = http.get("scheme")
        if scheme and scheme not in ("HTTP", "HTTPS"):
            causes.append(errors.not_supported(f"{path}.httpGet.scheme", scheme, ["HTTP", "HTTPS"]))
    tcp = handler.get("tcpSocket")
    if isinstance(tcp, dict):
        causes.extend(_validate_port_ref(tcp.get("port"), f"{path}.tcpSocket.port"))
    grpc = handler.get("grpc")
    if isinstance(grpc, dict):
        causes.extend(v.validate_port_number(grpc.get("port"), f"{path}.grpc.port"))
    ex = handler.get("exec")
    if isinstance(ex, dict) and not ex.get("command"):
        causes.append(errors.required(f"{path}.exec.command"))
    sleep = handler.get("sleep")
    if isinstance(sleep, dict):
        seconds = sleep.get("seconds")
        if not _is_int(seconds) or seconds < 0:
            causes.append(errors.invalid_value(f"{path}.sleep.seconds", seconds, "must be greater than or equal to 0"))
    return causes


def _validate_port_ref(port: Any, path: str) -> list[Cause]:
    """A probe port: a number 1..65535 or an IANA_SVC_NAME."""
    if isinstance(port, str):
        return [errors.invalid_value(path, port, m) for m in v.is_valid_port_name(port)]
    if port is None:
        return [errors.required(path)]
    return v.validate_port_number(port, path)


def _validate_probe(probe: Any, path: str, kind: str) -> list[Cause]:
    if probe is None:
        return []
    if not isinstance(probe, dict):
        return [errors.invalid_value(path, probe, "must be an object")]
    causes = _validate_handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        causes.extend(v.validate_nonnegative(probe.get(key), f"{path}.{key}"))
    if kind in ("livenessProbe", "startupProbe") and probe.get("successThreshold") not in (None, 0, 1):
        causes.append(errors.invalid_value(f"{path}.successThreshold", probe["successThreshold"], "must be 1"))
    if kind == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
        causes.append(
            errors.invalid_value(
                f"{path}.terminationGracePeriodSeconds",
                probe["terminationGracePeriodSeconds"],
                "must not be set for readinessProbes",
            )
        )
    tgps = probe.get("terminationGracePeriodSeconds")
    if tgps is not None and (not _is_int(tgps) or tgps <= 0):
        causes.append(errors.invalid_value(f"{path}.terminationGracePeriodSeconds", tgps, "must be greater than 0"))
    return causes


def _validate_env(env: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, e in enumerate(env or []):
        p = f"{path}[{i}]"
        if not isinstance(e, dict):
            causes.append(errors.invalid_value(p, e, "must be an object"))
            continue
        name = e.get("name") or ""
        if not name:
            causes.append(errors.required(f"{p}.name"))
        elif "=" in name or any(ord(ch) < 32 or ord(ch) > 126 for ch in name):
            causes.append(
                errors.invalid_value(
                    f"{p}.name",
                    name,
                    "a valid environment variable name must consist only of printable ASCII characters other than '='",
                )
            )
        src = e.get("valueFrom")
        if src is not None:
            causes.extend(_validate_env_source(src, f"{p}.valueFrom", bool(e.get("value"))))
    return causes


def _validate_env_source(src: Any, path: str, has_value: bool) -> list[Cause]:
    if not isinstance(src, dict):
        return [errors.invalid_value(path, src, "must be an object")]
    kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if src.get(k) is not None]
    causes: list[Cause] = []
    if not kinds:
        causes.append(
            errors.invalid_value(
                path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
            )
        )
    elif len(kinds) > 1:
        causes.append(errors.invalid_value(path, "", "may not have more than one field specified at a time"))
    if has_value:
        causes.append(errors.invalid_value(path, "", "may not be specified when `value` is not empty"))
    for kind in ("configMapKeyRef", "secretKeyRef"):
        ref = src.get(kind)
        if isinstance(ref, dict):
            if not ref.get("key"):
                causes.append(errors.required(f"{path}.{kind}.key"))
            else:
                causes.extend(
                    errors.invalid_value(f"{path}.{kind}.key", ref["key"], m) for m in v.is_config_map_key(ref["key"])
                )
    field_ref = src.get("fieldRef")
    if isinstance(field_ref, dict) and not field_ref.get("fieldPath"):
        causes.append(errors.required(f"{path}.fieldRef.fieldPath"))
    res_ref = src.get("resourceFieldRef")
    if isinstance(res_ref, dict) and not res_ref.get("resource"):
        causes.append(errors.required(f"{path}.resourceFieldRef.resource"))
    return causes


def _validate_ports(ports: Any, path: str, host_network: bool) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(ports or []):
        p = f"{path}[{i}]"
        if not isinstance(port, dict):
            causes.append(errors.invalid_value(p, port, "must be an object"))
            continue
        name = port.get("name")
        if name:
            causes.extend(errors.invalid_value(f"{p}.name", name, m) for m in v.is_valid_port_name(name))
            if name in names:
                causes.append(errors.duplicate(f"{p}.name", name))
            names.add(name)
        cp = port.get("containerPort")
        if not cp:
            causes.append(errors.required(f"{p}.containerPort"))
        else:
            causes.extend(v.validate_port_number(cp, f"{p}.containerPort"))
        hp = port.get("hostPort")
        if hp:
            causes.extend(v.validate_port_number(hp, f"{p}.hostPort"))
            if host_network and hp != cp:
                causes.append(
                    errors.invalid_value(f"{p}.hostPort", hp, "must match `containerPort` when `hostNetwork` is true")
                )
        proto = port.get("protocol")
        if not proto:
            causes.append(errors.required(f"{p}.protocol"))
        elif proto not in PROTOCOLS:
            causes.append(errors.not_supported(f"{p}.protocol", proto, PROTOCOLS))
    return causes


def _validate_mounts(mounts: Any, path: str, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    paths: set[str] = set()
    for i, m in enumerate(mounts or []):
        p = f"{path}[{i}]"
        if not isinstance(m, dict):
            causes.append(errors.invalid_value(p, m, "must be an object"))
            continue
        name = m.get("name") or ""
        if not name:
            causes.append(errors.required(f"{p}.name"))
        elif name not in volumes:
            causes.append(_not_found(f"{p}.name", name))
        mount_path = m.get("mountPath") or ""
        if not mount_path:
            causes.append(errors.required(f"{p}.mountPath"))
        elif mount_path in paths:
            causes.append(errors.invalid_value(f"{p}.mountPath", mount_path, "must be unique"))
        paths.add(mount_path)
        sub = m.get("subPath")
        if sub:
            causes.extend(_validate_local_descending_path(sub, f"{p}.subPath"))
        if sub and m.get("subPathExpr"):
            causes.append(
                errors.invalid_value(
                    f"{p}.subPathExpr", m["subPathExpr"], "subPathExpr and subPath are mutually exclusive"
                )
            )
        prop = m.get("mountPropagation")
        if prop is not None and prop not in ("None", "HostToContainer", "Bidirectional"):
            causes.append(
                errors.not_supported(f"{p}.mountPropagation", prop, ["Bidirectional", "HostToContainer", "None"])
            )
    return causes


def _validate_local_descending_path(target: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if target.startswith("/"):
        causes.append(errors.invalid_value(path, target, "must be a relative path"))
    if ".." in target.replace("\\", "/").split("/"):
        causes.append(errors.invalid_value(path, target, "must not contain '..'"))
    return causes


def _validate_container(
    c: Any, path: str, volumes: set[str], host_network: bool, kind: str, names: set[str]
) -> list[Cause]:
    if not isinstance(c, dict):
        return [errors.invalid_value(path, c, "must be an object")]
    causes: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        causes.append(errors.required(f"{path}.name"))
    else:
        causes.extend(v.validate_dns1123_label(name, f"{path}.name"))
        if name in names:
            causes.append(errors.duplicate(f"{path}.name", name))
        names.add(name)
    if not c.get("image"):
        causes.append(errors.required(f"{path}.image"))
    policy = c.get("imagePullPolicy")
    if not policy:
        causes.append(errors.required(f"{path}.imagePullPolicy"))
    elif policy not in PULL_POLICIES:
        causes.append(errors.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    tmp = c.get("terminationMessagePolicy")
    if not tmp:
        causes.append(errors.required(f"{path}.terminationMessagePolicy"))
    elif tmp not in TERMINATION_MESSAGE_POLICIES:
        causes.append(errors.not_supported(f"{path}.terminationMessagePolicy", tmp, TERMINATION_MESSAGE_POLICIES))
    causes.extend(_validate_ports(c.get("ports"), f"{path}.ports", host_network))
    causes.extend(_validate_env(c.get("env"), f"{path}.env"))
    for i, src in enumerate(c.get("envFrom") or []):
        p = f"{path}.envFrom[{i}]"
        if not isinstance(src, dict):
            continue
        refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        if not refs:
            causes.append(errors.invalid_value(p, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            causes.append(errors.invalid_value(p, "", "may not have more than one field specified at a time"))
    causes.extend(_validate_mounts(c.get("volumeMounts"), f"{path}.volumeMounts", volumes))
    causes.extend(validate_resource_requirements(c.get("resources"), f"{path}.resources"))
    sidecar = kind == "initContainers" and c.get("restartPolicy") == "Always"
    restart = c.get("restartPolicy")
    if restart is not None:
        if kind != "initContainers":
            causes.append(errors.forbidden_field(f"{path}.restartPolicy", "may not be set for non-init containers"))
        elif restart != "Always":
            causes.append(errors.not_supported(f"{path}.restartPolicy", restart, ["Always"]))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe) is None:
            continue
        if kind == "initContainers" and not sidecar:
            causes.append(
                errors.forbidden_field(
                    f"{path}.{probe}", "may not be set for init containers without restartPolicy=Always"
                )
            )
            continue
        if kind == "ephemeralContainers":
            causes.append(errors.forbidden_field(f"{path}.{probe}", "cannot be set for an Ephemeral Container"))
            continue
        causes.extend(_validate_probe(c.get(probe), f"{path}.{probe}", probe))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        if kind == "initContainers" and not sidecar:
            causes.append(
                errors.forbidden_field(
                    f"{path}.lifecycle", "may not be set for init containers without restartPolicy=Always"
                )
            )
        else:
            for hook in ("postStart", "preStop"):
                if lifecycle.get(hook) is not None:
                    causes.extend(
                        _validate_handler(
                            lifecycle[hook], f"{path}.lifecycle.{hook}", ("exec", "httpGet", "tcpSocket", "sleep")
                        )
                    )
    return causes


def _validate_key_to_paths(items: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, item in enumerate(items or []):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            continue
        if not item.get("key"):
            causes.append(errors.required(f"{p}.key"))
        if not item.get("path"):
            causes.append(errors.required(f"{p}.path"))
        else:
            causes.extend(_validate_local_descending_path(item["path"], f"{p}.path"))
        causes.extend(_validate_mode(item.get("mode"), f"{p}.mode"))
    return causes


def _validate_mode(mode: Any, path: str) -> list[Cause]:
    if mode is None:
        return []
    if not _is_int(mode) or not 0 <= mode <= 0o777:
        return [errors.invalid_value(path, mode, FILE_MODE_ERROR)]
    return []


def _validate_volume_source(vol: Obj, path: str) -> list[Cause]:
    present = [k for k in _SOURCE_NAMES if vol.get(k) is not None]
    if not present:
        return [errors.required(path, "must specify a volume type")]
    causes: list[Cause] = [
        errors.forbidden_field(f"{path}.{k}", "may not specify more than 1 volume type") for k in present[1:]
    ]
    kind = present[0]
    src = vol[kind]
    p = f"{path}.{kind}"
    if not isinstance(src, dict):
        return [*causes, errors.invalid_value(p, src, "must be an object")]
    if kind == "hostPath":
        if not src.get("path"):
            causes.append(errors.required(f"{p}.path"))
        if src.get("type") is not None and src["type"] not in HOST_PATH_TYPES:
            causes.append(errors.not_supported(f"{p}.type", src["type"], HOST_PATH_TYPES))
    elif kind == "emptyDir":
        if src.get("sizeLimit") is not None:
            try:
                if parse_quantity(src["sizeLimit"]) < 0:
                    causes.append(
                        errors.invalid_value(f"{p}.sizeLimit", src["sizeLimit"], "must be greater than or equal to 0")
                    )
            except ValueError as exc:
                causes.append(errors.invalid_value(f"{p}.sizeLimit", src["sizeLimit"], str(exc)))
        medium = src.get("medium")
        if medium and medium != "Memory" and not str(medium).startswith("HugePages"):
            causes.append(errors.not_supported(f"{p}.medium", medium, ["", "Memory", "HugePages"]))
    elif kind == "secret":
        if not src.get("secretName"):
            causes.append(errors.required(f"{p}.secretName"))
        causes.extend(_validate_mode(src.get("defaultMode"), f"{p}.defaultMode"))
        causes.extend(_validate_key_to_paths(src.get("items"), f"{p}.items"))
    elif kind == "configMap":
        if not src.get("name"):
            causes.append(errors.required(f"{p}.name"))
        causes.extend(_validate_mode(src.get("defaultMode"), f"{p}.defaultMode"))
        causes.extend(_validate_key_to_paths(src.get("items"), f"{p}.items"))
    elif kind == "downwardAPI":
        causes.extend(_validate_mode(src.get("defaultMode"), f"{p}.defaultMode"))
    elif kind == "projected":
        causes.extend(_validate_mode(src.get("defaultMode"), f"{p}.defaultMode"))
        for i, proj in enumerate(src.get("sources") or []):
            if not isinstance(proj, dict):
                continue
            token = proj.get("serviceAccountToken")
            if isinstance(token, dict):
                tp = f"{p}.sources[{i}].serviceAccountToken"
                if not token.get("path"):
                    causes.append(errors.required(f"{tp}.path"))
                exp = token.get("expirationSeconds")
                if exp is not None and (not _is_int(exp) or exp < 600):
                    causes.append(
                        errors.invalid_value(
                            f"{tp}.expirationSeconds", exp, "may not specify a duration less than 10 minutes"
                        )
                    )
            for key in ("secret", "configMap"):
                ref = proj.get(key)
                if isinstance(ref, dict):
                    causes.extend(_validate_key_to_paths(ref.get("items"), f"{p}.sources[{i}].{key}.items"))
    elif kind == "persistentVolumeClaim":
        if not src.get("claimName"):
            causes.append(errors.required(f"{p}.claimName"))
    elif kind == "nfs":
        if not src.get("server"):
            causes.append(errors.required(f"{p}.server"))
        if not src.get("path"):
            causes.append(errors.required(f"{p}.path"))
        elif not str(src["path"]).startswith("/"):
            causes.append(errors.invalid_value(f"{p}.path", src["path"], "must be an absolute path"))
    elif kind == "csi":
        if not src.get("driver"):
            causes.append(errors.required(f"{p}.driver"))
    elif kind == "ephemeral":
        if not isinstance(src.get("volumeClaimTemplate"), dict):
            causes.append(errors.required(f"{p}.volumeClaimTemplate"))
    elif kind == "image":
        if not src.get("reference"):
            causes.append(errors.required(f"{p}.reference"))
    return causes


def _validate_volumes(volumes: Any, path: str) -> tuple[list[Cause], set[str]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(volumes or []):
        p = f"{path}[{i}]"
        if not isinstance(vol, dict):
            causes.append(errors.invalid_value(p, vol, "must be an object"))
            continue
        name = vol.get("name") or ""
        if not name:
            causes.append(errors.required(f"{p}.name"))
        else:
            causes.extend(v.validate_dns1123_label(name, f"{p}.name"))
            if name in names:
                causes.append(errors.duplicate(f"{p}.name", name))
            names.add(name)
        causes.extend(_validate_volume_source(vol, p))
    return causes, names


def validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, t in enumerate(tolerations or []):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            causes.append(errors.invalid_value(p, t, "must be an object"))
            continue
        key = t.get("key") or ""
        op = t.get("operator") or ""
        if key:
            causes.extend(errors.invalid_value(f"{p}.key", key, m) for m in v.is_qualified_name(key))
        elif op != "Exists":
            causes.append(
                errors.invalid_value(
                    f"{p}.operator",
                    op,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            causes.append(
                errors.invalid_value(
                    f"{p}.effect", t.get("effect") or "", "effect must be 'NoExecute' when `tolerationSeconds` is set"
                )
            )
        value = t.get("value") or ""
        if op in ("", "Equal"):
            causes.extend(errors.invalid_value(f"{p}.operator", value, m) for m in v.is_valid_label_value(value))
        elif op == "Exists":
            if value:
                causes.append(
                    errors.invalid_value(f"{p}.operator", t, "value must be empty when `operator` is 'Exists'")
                )
        else:
            causes.append(errors.not_supported(f"{p}.operator", op, TOLERATION_OPERATORS))
        effect = t.get("effect")
        if effect and effect not in TAINT_EFFECTS:
            causes.append(errors.not_supported(f"{p}.effect", effect, TAINT_EFFECTS))
    return causes


def _validate_node_selector_requirements(reqs: Any, path: str, fields: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, r in enumerate(reqs or []):
        p = f"{path}[{i}]"
        if not isinstance(r, dict):
            continue
        op = r.get("operator")
        values = r.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                causes.append(errors.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    errors.forbidden_field(
                        f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        elif op in ("Gt", "Lt"):
            if len(values) != 1:
                causes.append(
                    errors.required(f"{p}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
                )
        else:
            causes.append(errors.not_supported(f"{p}.operator", op, NODE_SELECTOR_OPERATORS))
        key = r.get("key") or ""
        if not fields:
            causes.extend(errors.invalid_value(f"{p}.key", key, m) for m in v.is_qualified_name(key))
    return causes


def _validate_node_selector_term(term: Any, path: str) -> list[Cause]:
    if not isinstance(term, dict):
        return []
    return _validate_node_selector_requirements(
        term.get("matchExpressions"), f"{path}.matchExpressions", False
    ) + _validate_node_selector_requirements(term.get("matchFields"), f"{path}.matchFields", True)


def _validate_affinity(aff: Any, path: str) -> list[Cause]:
    if not isinstance(aff, dict):
        return []
    causes: list[Cause] = []
    na = aff.get("nodeAffinity")
    if isinstance(na, dict):
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        rp = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        if isinstance(req, dict):
            terms = req.get("nodeSelectorTerms") or []
            if not terms:
                causes.append(errors.required(f"{rp}.nodeSelectorTerms", "must have at least one node selector term"))
            for i, term in enumerate(terms):
                causes.extend(_validate_node_selector_term(term, f"{rp}.nodeSelectorTerms[{i}]"))
        pp = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"
        for i, pref in enumerate(na.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            if not isinstance(pref, dict):
                continue
            causes.extend(_validate_weight(pref.get("weight"), f"{pp}[{i}].weight"))
            causes.extend(_validate_node_selector_term(pref.get("preference"), f"{pp}[{i}].preference"))
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if not isinstance(pa, dict):
            continue
        base = f"{path}.{kind}"
        for i, term in enumerate(pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
            causes.extend(
                _validate_pod_affinity_term(term, f"{base}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
            )
        for i, wt in enumerate(pa.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            if not isinstance(wt, dict):
                continue
            wp = f"{base}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            causes.extend(_validate_weight(wt.get("weight"), f"{wp}.weight"))
            causes.extend(_validate_pod_affinity_term(wt.get("podAffinityTerm"), f"{wp}.podAffinityTerm"))
    return causes


def _validate_weight(weight: Any, path: str) -> list[Cause]:
    if not _is_int(weight) or not 1 <= weight <= 100:
        return [errors.invalid_value(path, weight, "must be in the range 1-100")]
    return []


def _validate_pod_affinity_term(term: Any, path: str) -> list[Cause]:
    if not isinstance(term, dict):
        return []
    key = term.get("topologyKey") or ""
    if not key:
        return [errors.required(f"{path}.topologyKey", "can not be empty")]
    return [errors.invalid_value(f"{path}.topologyKey", key, m) for m in v.is_qualified_name(key)]


def _validate_spread(constraints: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(constraints or []):
        p = f"{path}[{i}]"
        if not isinstance(c, dict):
            continue
        skew = c.get("maxSkew")
        if not _is_int(skew) or skew <= 0:
            causes.append(errors.invalid_value(f"{p}.maxSkew", skew, "must be greater than zero"))
        key = c.get("topologyKey") or ""
        if not key:
            causes.append(errors.required(f"{p}.topologyKey", "can not be empty"))
        when = c.get("whenUnsatisfiable") or ""
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            causes.append(errors.not_supported(f"{p}.whenUnsatisfiable", when, ["DoNotSchedule", "ScheduleAnyway"]))
        pair = (key, when)
        if pair in seen:
            causes.append(errors.duplicate(p, f"{{{key}, {when}}}"))
        seen.add(pair)
    return causes


def validate_pod_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """Upstream ValidatePodSpec's important checks, with upstream field paths and messages."""
    if not isinstance(spec, dict):
        return [errors.required(path)]
    causes, volume_names = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    host_network = bool(spec.get("hostNetwork"))
    names: set[str] = set()
    containers = spec.get("containers")
    if not containers:
        causes.append(errors.required(f"{path}.containers"))
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(kind) or []):
            causes.extend(_validate_container(c, f"{path}.{kind}[{i}]", volume_names, host_network, kind, names))
    restart = spec.get("restartPolicy")
    if not restart:
        causes.append(errors.required(f"{path}.restartPolicy"))
    elif restart not in RESTART_POLICIES:
        causes.append(errors.not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES))
    dns = spec.get("dnsPolicy")
    if not dns:
        causes.append(errors.required(f"{path}.dnsPolicy"))
    elif dns not in DNS_POLICIES:
        causes.append(errors.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    elif dns == "None" and not spec.get("dnsConfig"):
        causes.append(errors.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
    dns_config = spec.get("dnsConfig")
    if isinstance(dns_config, dict):
        if len(dns_config.get("nameservers") or []) > 3:
            causes.append(
                errors.invalid_value(
                    f"{path}.dnsConfig.nameservers", dns_config["nameservers"], "must not have more than 3 nameservers"
                )
            )
        if dns == "None" and not dns_config.get("nameservers"):
            causes.append(
                errors.required(
                    f"{path}.dnsConfig.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
                )
            )
    causes.extend(v.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    causes.extend(
        v.validate_nonnegative(spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds")
    )
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not _is_int(ads) or not 1 <= ads <= MAX_INT32):
        causes.append(errors.invalid_value(f"{path}.activeDeadlineSeconds", ads, v.inclusive_range_error(1, MAX_INT32)))
    for key in ("serviceAccountName", "priorityClassName"):
        if spec.get(key):
            causes.extend(v.validate_dns1123_subdomain(spec[key], f"{path}.{key}"))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes.extend(v.validate_dns1123_label(spec[key], f"{path}.{key}"))
    if spec.get("nodeName"):
        causes.extend(v.validate_dns1123_subdomain(spec["nodeName"], f"{path}.nodeName"))
    causes.extend(validate_tolerations(spec.get("tolerations"), f"{path}.tolerations"))
    causes.extend(_validate_affinity(spec.get("affinity"), f"{path}.affinity"))
    causes.extend(_validate_spread(spec.get("topologySpreadConstraints"), f"{path}.topologySpreadConstraints"))
    for i, gate in enumerate(spec.get("readinessGates") or []):
        ct = gate.get("conditionType") if isinstance(gate, dict) else None
        causes.extend(
            errors.invalid_value(f"{path}.readinessGates[{i}].conditionType", ct, m)
            for m in v.is_qualified_name(str(ct or ""))
        )
    gates: set[str] = set()
    for i, gate in enumerate(spec.get("schedulingGates") or []):
        gname = gate.get("name") if isinstance(gate, dict) else None
        gp = f"{path}.schedulingGates[{i}].name"
        causes.extend(errors.invalid_value(gp, gname, m) for m in v.is_qualified_name(str(gname or "")))
        if gname in gates:
            causes.append(errors.duplicate(gp, gname))
        gates.add(str(gname))
    pod_os = spec.get("os")
    if isinstance(pod_os, dict) and pod_os.get("name") not in ("linux", "windows"):
        causes.append(errors.not_supported(f"{path}.os.name", pod_os.get("name"), ["linux", "windows"]))
    for i, alias in enumerate(spec.get("hostAliases") or []):
        if isinstance(alias, dict) and not alias.get("ip"):
            causes.append(errors.required(f"{path}.hostAliases[{i}].ip"))
    if spec.get("overhead"):
        causes.extend(_validate_resource_list(spec["overhead"], f"{path}.overhead")[0])
    if spec.get("resources"):
        causes.extend(validate_resource_requirements(spec["resources"], f"{path}.resources"))
    for i, secret in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(secret, dict) and not secret.get("name"):
            causes.append(errors.required(f"{path}.imagePullSecrets[{i}].name"))
    return causes


# =====================================================================================================
# Update rules
# =====================================================================================================

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _zero(value: Any) -> bool:
    return (
        value is None or value == "" or value == [] or value == {} or value is False or (_is_int(value) and value == 0)
    )


def normalize(value: Any, spec: TypeSpec | None) -> Any:
    """Comparable form of a JSON value: Go zero values of non-pointer fields dropped, as Go sees them.

    Two objects whose normalized forms are equal are semantically equal to upstream
    (absent, null, "" / 0 / false and empty lists all decode to the same Go value).
    """
    if isinstance(spec, Ref) and spec.name in STRUCTS and isinstance(value, dict):
        st: Struct = STRUCTS[spec.name]
        out: dict[str, Any] = {}
        for k, item in value.items():
            fld: Field | None = st.by_json.get(k)
            if fld is None:
                if item is not None:
                    out[k] = item
                continue
            if item is None or (not fld.pointer and _zero(item)):
                continue
            out[k] = normalize(item, fld.type)
        return out
    if isinstance(spec, ListOf) and isinstance(value, list):
        return [normalize(x, spec.item) for x in value]
    if isinstance(spec, MapOf) and isinstance(value, dict):
        return {k: normalize(x, spec.value) for k, x in value.items()}
    if spec == QUANTITY and isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return ("quantity", parse_quantity(value))
        except ValueError:
            return value
    return value


def _diff_paths(a: Any, b: Any, path: str, out: list[str]) -> None:
    if len(out) >= 10:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff_paths(a.get(k), b.get(k), f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff_paths(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(path)


def validate_pod_spec_update(new: Obj, old: Obj, path: str = "spec") -> list[Cause]:
    """Upstream pod update rules: only images, activeDeadlineSeconds, added tolerations,
    terminationGracePeriodSeconds (-n -> 1) and removed scheduling gates may change."""
    import copy

    causes: list[Cause] = []
    munged = copy.deepcopy(new)
    # Images may change: take the old ones so only other differences remain.
    for kind in ("containers", "initContainers"):
        new_list = munged.get(kind) or []
        old_list = old.get(kind) or []
        if len(new_list) == len(old_list):
            for nc, oc in zip(new_list, old_list, strict=True):
                if isinstance(nc, dict) and isinstance(oc, dict):
                    if "image" in oc:
                        nc["image"] = oc["image"]
                    else:
                        nc.pop("image", None)
    # activeDeadlineSeconds may be set, or lowered, never raised or removed.
    new_ads, old_ads = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if new_ads is not None and old_ads is not None and _is_int(new_ads) and _is_int(old_ads) and new_ads > old_ads:
        causes.append(
            errors.invalid_value(
                f"{path}.activeDeadlineSeconds", new_ads, "must be less than or equal to previous value"
            )
        )
    elif old_ads is not None and new_ads is None:
        causes.append(
            errors.invalid_value(
                f"{path}.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        )
    if new_ads is not None:
        if old_ads is None:
            munged.pop("activeDeadlineSeconds", None)
        else:
            munged["activeDeadlineSeconds"] = old_ads
    # Tolerations may only be added (existing ones may get a shorter tolerationSeconds).
    new_tol = new.get("tolerations") or []
    old_tol = old.get("tolerations") or []
    tol_causes = _validate_toleration_update(new_tol, old_tol, f"{path}.tolerations")
    causes.extend(tol_causes)
    if not tol_causes:
        if old_tol:
            munged["tolerations"] = old_tol
        else:
            munged.pop("tolerations", None)
    # A negative grace period may be raised to 1 (upstream's workaround for invalid old pods).
    old_grace = old.get("terminationGracePeriodSeconds")
    if _is_int(old_grace) and old_grace < 0 and new.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    # Scheduling gates may only be removed.
    new_gates = [g.get("name") for g in new.get("schedulingGates") or [] if isinstance(g, dict)]
    old_gates = [g.get("name") for g in old.get("schedulingGates") or [] if isinstance(g, dict)]
    if set(new_gates) <= set(old_gates):
        if old.get("schedulingGates"):
            munged["schedulingGates"] = old["schedulingGates"]
        else:
            munged.pop("schedulingGates", None)
    elif old_gates or new_gates:
        causes.append(
            errors.forbidden_field(f"{path}.schedulingGates", "only deletion is allowed, but found new scheduling gate")
        )
        munged["schedulingGates"] = old.get("schedulingGates") or []
    spec_ref = Ref(CORE + "PodSpec")
    a, b = normalize(munged, spec_ref), normalize(old, spec_ref)
    if a != b:
        changed: list[str] = []
        _diff_paths(b, a, path, changed)
        detail = POD_UPDATE_FORBIDDEN
        if changed:
            detail += "\n  changed: " + ", ".join(changed)
        causes.append(errors.forbidden_field(path, detail))
    return causes


def _validate_toleration_update(new: list[Any], old: list[Any], path: str) -> list[Cause]:
    """Every old toleration must still be there; a NoExecute one may only shorten its seconds."""
    causes = validate_tolerations(new, path)

    def key(t: Any) -> tuple[Any, ...]:
        return (t.get("key") or "", t.get("operator") or "Equal", t.get("value") or "", t.get("effect") or "")

    remaining = [t for t in new if isinstance(t, dict)]
    for ot in old:
        if not isinstance(ot, dict):
            continue
        match = next((t for t in remaining if key(t) == key(ot)), None)
        if match is None:
            causes.append(
                errors.forbidden_field(path, "existing toleration can not be modified except its tolerationSeconds")
            )
            continue
        remaining.remove(match)
        old_secs, new_secs = ot.get("tolerationSeconds"), match.get("tolerationSeconds")
        if old_secs is None and new_secs is not None:
            causes.append(
                errors.forbidden_field(path, "existing toleration can not be modified except its tolerationSeconds")
            )
        elif old_secs is not None and (new_secs is None or (new_secs > old_secs and new_secs > 0)):
            causes.append(
                errors.forbidden_field(path, "existing toleration can not be modified except its tolerationSeconds")
            )
    return causes
