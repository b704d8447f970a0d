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

from kubeha.api.schema import (
    BOOL,
    CORE,
    INT32,
    INT64,
    INT_OR_STRING,
    META,
    QUANTITY,
    STRING,
    TIME,
    f,
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
    f("shareProcessNamespace", 27, BOOL, "", pointer=True),
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
    f("setHostnameAsFQDN", 35, BOOL, "", pointer=True),
    f("os", 36, CORE + "PodOS", "Operating system the pod needs."),
    f("hostUsers", 37, BOOL, "", pointer=True),
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

struct(
    CORE + "Container",
    "One application container run inside a pod.",
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
    f("resizePolicy", 23, list_of(CORE + "ContainerResizePolicy"), "", list_type="atomic"),
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
        "",
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
    f("stdinOnce", 17, BOOL, ""),
    f("tty", 18, BOOL, "Allocate a TTY."),
)

struct(
    CORE + "EphemeralContainer",
    "A debugging container added to a running pod; it is never restarted.",
    f(
        "",
        1,
        CORE + "EphemeralContainerCommon",
        "protobuf-only: the fields of EphemeralContainerCommon are inlined in this object's JSON",
    ),
    f("name", 0, STRING, "Container name, a DNS label unique within the pod.", required=True),
    f("image", 0, STRING, "Container image reference."),
    f("command", 0, list_of(STRING), "Entrypoint; replaces the image's ENTRYPOINT.", list_type="atomic"),
    f("args", 0, list_of(STRING), "Arguments; replace the image's CMD.", list_type="atomic"),
    f("workingDir", 0, STRING, "Working directory of the process."),
    f(
        "ports",
        0,
        list_of(CORE + "ContainerPort"),
        "Ports the container exposes (informational).",
        strategy="merge",
        merge_key="containerPort",
        list_type="map",
        map_keys=("containerPort", "protocol"),
    ),
    f(
        "envFrom",
        0,
        list_of(CORE + "EnvFromSource"),
        "Sources whose keys become environment variables.",
        list_type="atomic",
    ),
    f(
        "env",
        0,
        list_of(CORE + "EnvVar"),
        "Environment variables.",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
    f("resources", 0, CORE + "ResourceRequirements", "Compute resources of the container."),
    f("resizePolicy", 0, list_of(CORE + "ContainerResizePolicy"), "", list_type="atomic"),
    f("restartPolicy", 0, STRING, "For init containers only: Always makes it a sidecar.", pointer=True),
    f(
        "volumeMounts",
        0,
        list_of(CORE + "VolumeMount"),
        "Volumes mounted into the container.",
        strategy="merge",
        merge_key="mountPath",
        list_type="map",
        map_keys=("mountPath",),
    ),
    f(
        "volumeDevices",
        0,
        list_of(CORE + "VolumeDevice"),
        "",
        strategy="merge",
        merge_key="devicePath",
        list_type="map",
        map_keys=("devicePath",),
    ),
    f("livenessProbe", 0, CORE + "Probe", "Restarts the container when it fails."),
    f("readinessProbe", 0, CORE + "Probe", "Removes the pod from service endpoints when it fails."),
    f("startupProbe", 0, CORE + "Probe", "Holds the other probes until the container has started."),
    f("lifecycle", 0, CORE + "Lifecycle", "Start and stop hooks."),
    f(
        "terminationMessagePath",
        0,
        STRING,
        "File whose content becomes the termination message.",
        default="/dev/termination-log",
    ),
    f(
        "terminationMessagePolicy",
        0,
        STRING,
        "How the termination message is filled.",
        enum=("File", "FallbackToLogsOnError"),
        default="File",
    ),
    f(
        "imagePullPolicy",
        0,
        STRING,
        "When to pull the image: Always, Never or IfNotPresent.",
        enum=("Always", "Never", "IfNotPresent"),
    ),
    f("securityContext", 0, CORE + "SecurityContext", "Container security settings."),
    f("stdin", 0, BOOL, "Keep a stdin buffer open."),
    f("stdinOnce", 0, BOOL, ""),
    f("tty", 0, BOOL, "Allocate a TTY."),
    f("targetContainerName", 2, STRING, "Container whose namespaces this one joins."),
)

struct(
    CORE + "EphemeralContainerCommon",
    "Container fields shared by ephemeral containers (protobuf-only wrapper).",
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
    f("resizePolicy", 23, list_of(CORE + "ContainerResizePolicy"), "", list_type="atomic"),
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
        "",
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
    f("stdinOnce", 17, BOOL, ""),
    f("tty", 18, BOOL, "Allocate a TTY."),
)

struct(
    CORE + "ContainerPort",
    "A network port a container exposes.",
    f("name", 1, STRING, "Name services can refer to; an IANA_SVC_NAME."),
    f("hostPort", 2, INT32, "Port exposed on the node."),
    f("containerPort", 3, INT32, "Port number in the pod's network namespace.", required=True),
    f("protocol", 4, STRING, "TCP, UDP or SCTP.", enum=("TCP", "UDP", "SCTP"), default="TCP"),
    f("hostIP", 5, STRING, ""),
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
    f("fieldRef", 1, CORE + "ObjectFieldSelector", ""),
    f("resourceFieldRef", 2, CORE + "ResourceFieldSelector", ""),
    f("configMapKeyRef", 3, CORE + "ConfigMapKeySelector", ""),
    f("secretKeyRef", 4, CORE + "SecretKeySelector", ""),
)

struct(
    CORE + "ObjectFieldSelector",
    "Selects a field of the pod (downward API).",
    f("apiVersion", 1, STRING, "", default="v1"),
    f("fieldPath", 2, STRING, "", required=True),
)

struct(
    CORE + "ResourceFieldSelector",
    "Selects a container resource request or limit (downward API).",
    f("containerName", 1, STRING, ""),
    f("resource", 2, STRING, "", required=True),
    f("divisor", 3, QUANTITY, ""),
)

struct(
    CORE + "ConfigMapKeySelector",
    "Selects one key of a ConfigMap.",
    f(
        "",
        1,
        CORE + "LocalObjectReference",
        "protobuf-only: the fields of LocalObjectReference are inlined in this object's JSON",
    ),
    f("name", 0, STRING, ""),
    f("key", 2, STRING, "", required=True),
    f("optional", 3, BOOL, "", pointer=True),
)

struct(
    CORE + "SecretKeySelector",
    "Selects one key of a Secret.",
    f(
        "",
        1,
        CORE + "LocalObjectReference",
        "protobuf-only: the fields of LocalObjectReference are inlined in this object's JSON",
    ),
    f("name", 0, STRING, ""),
    f("key", 2, STRING, "", required=True),
    f("optional", 3, BOOL, "", pointer=True),
)

struct(
    CORE + "EnvFromSource",
    "A ConfigMap or Secret whose keys all become environment variables.",
    f("prefix", 1, STRING, ""),
    f("configMapRef", 2, CORE + "ConfigMapEnvSource", ""),
    f("secretRef", 3, CORE + "SecretEnvSource", ""),
)

struct(
    CORE + "ConfigMapEnvSource",
    "A ConfigMap used as a whole set of environment variables.",
    f(
        "",
        1,
        CORE + "LocalObjectReference",
        "protobuf-only: the fields of LocalObjectReference are inlined in this object's JSON",
    ),
    f("name", 0, STRING, ""),
    f("optional", 2, BOOL, "", pointer=True),
)

struct(
    CORE + "SecretEnvSource",
    "A Secret used as a whole set of environment variables.",
    f(
        "",
        1,
        CORE + "LocalObjectReference",
        "protobuf-only: the fields of LocalObjectReference are inlined in this object's JSON",
    ),
    f("name", 0, STRING, ""),
    f("optional", 2, BOOL, "", pointer=True),
)

struct(
    CORE + "VolumeMount",
    "Where a volume is mounted inside a container.",
    f("name", 1, STRING, "Name of the pod volume to mount.", required=True),
    f("readOnly", 2, BOOL, "Mount read-only."),
    f("recursiveReadOnly", 7, STRING, "", pointer=True),
    f("mountPath", 3, STRING, "Path inside the container.", required=True),
    f("subPath", 4, STRING, "Sub-path of the volume to mount instead of its root."),
    f("mountPropagation", 5, STRING, "", pointer=True, enum=("None", "HostToContainer", "Bidirectional")),
    f("subPathExpr", 6, STRING, ""),
)

struct(
    CORE + "VolumeDevice",
    "Where a raw block volume appears inside a container.",
    f("name", 1, STRING, "", required=True),
    f("devicePath", 2, STRING, "", required=True),
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
    f("name", 1, STRING, "", required=True),
    f("request", 2, STRING, ""),
)

struct(
    CORE + "ContainerResizePolicy",
    "How a container reacts when one of its resources is resized in place.",
    f("resourceName", 1, STRING, "", required=True),
    f("restartPolicy", 2, STRING, "", required=True),
)

# -- probes and lifecycle hooks --------------------------------------------------------------------------

struct(
    CORE + "Probe",
    "A periodic health check of a container.",
    f("", 1, CORE + "ProbeHandler", "protobuf-only: the fields of ProbeHandler are inlined in this object's JSON"),
    f("exec", 0, CORE + "ExecAction", ""),
    f("httpGet", 0, CORE + "HTTPGetAction", ""),
    f("tcpSocket", 0, CORE + "TCPSocketAction", ""),
    f("grpc", 0, CORE + "GRPCAction", ""),
    f("initialDelaySeconds", 2, INT32, "Seconds after start before the first probe."),
    f("timeoutSeconds", 3, INT32, "Seconds before a probe times out.", default=1),
    f("periodSeconds", 4, INT32, "Seconds between probes.", default=10),
    f("successThreshold", 5, INT32, "Consecutive successes to count as healthy.", default=1),
    f("failureThreshold", 6, INT32, "Consecutive failures to count as unhealthy.", default=3),
    f("terminationGracePeriodSeconds", 7, INT64, "", pointer=True),
)

struct(
    CORE + "ProbeHandler",
    "The action a probe performs (protobuf-only wrapper; its fields are inlined in Probe).",
    f("exec", 1, CORE + "ExecAction", ""),
    f("httpGet", 2, CORE + "HTTPGetAction", ""),
    f("tcpSocket", 3, CORE + "TCPSocketAction", ""),
    f("grpc", 4, CORE + "GRPCAction", ""),
)

struct(
    CORE + "ExecAction",
    "Runs a command inside the container.",
    f("command", 1, list_of(STRING), "", list_type="atomic"),
)

struct(
    CORE + "HTTPGetAction",
    "Sends an HTTP GET request.",
    f("path", 1, STRING, "Request path.", default="/"),
    f("port", 2, INT_OR_STRING, "Port number or name.", required=True),
    f("host", 3, STRING, ""),
    f("scheme", 4, STRING, "HTTP or HTTPS.", enum=("HTTP", "HTTPS"), default="HTTP"),
    f("httpHeaders", 5, list_of(CORE + "HTTPHeader"), "", list_type="atomic"),
)

struct(
    CORE + "HTTPHeader",
    "One HTTP header of a probe request.",
    f("name", 1, STRING, "", required=True),
    f("value", 2, STRING, "", required=True),
)

struct(
    CORE + "TCPSocketAction",
    "Opens a TCP connection.",
    f("port", 1, INT_OR_STRING, "", required=True),
    f("host", 2, STRING, ""),
)

struct(
    CORE + "GRPCAction",
    "Calls the standard gRPC health checking service.",
    f("port", 1, INT32, "", required=True),
    f("service", 2, STRING, "", pointer=True),
)

struct(
    CORE + "Lifecycle",
    "Hooks run right after a container starts and right before it stops.",
    f("postStart", 1, CORE + "LifecycleHandler", ""),
    f("preStop", 2, CORE + "LifecycleHandler", ""),
)

struct(
    CORE + "LifecycleHandler",
    "The action of a lifecycle hook.",
    f("exec", 1, CORE + "ExecAction", ""),
    f("httpGet", 2, CORE + "HTTPGetAction", ""),
    f("tcpSocket", 3, CORE + "TCPSocketAction", ""),
    f("sleep", 4, CORE + "SleepAction", ""),
)

struct(
    CORE + "SleepAction",
    "Pauses for a number of seconds.",
    f("seconds", 1, INT64, "", required=True),
)

# -- security --------------------------------------------------------------------------------------------

struct(
    CORE + "SecurityContext",
    "Security settings of one container; they override the pod's.",
    f("capabilities", 1, CORE + "Capabilities", ""),
    f("privileged", 2, BOOL, "", pointer=True),
    f("seLinuxOptions", 3, CORE + "SELinuxOptions", ""),
    f("windowsOptions", 10, CORE + "WindowsSecurityContextOptions", ""),
    f("runAsUser", 4, INT64, "", pointer=True),
    f("runAsGroup", 8, INT64, "", pointer=True),
    f("runAsNonRoot", 5, BOOL, "", pointer=True),
    f("readOnlyRootFilesystem", 6, BOOL, "", pointer=True),
    f("allowPrivilegeEscalation", 7, BOOL, "", pointer=True),
    f("procMount", 9, STRING, "", pointer=True, enum=("Default", "Unmasked")),
    f("seccompProfile", 11, CORE + "SeccompProfile", ""),
    f("appArmorProfile", 12, CORE + "AppArmorProfile", ""),
)

struct(
    CORE + "PodSecurityContext",
    "Security settings applied to every container of a pod.",
    f("seLinuxOptions", 1, CORE + "SELinuxOptions", ""),
    f("windowsOptions", 8, CORE + "WindowsSecurityContextOptions", ""),
    f("runAsUser", 2, INT64, "", pointer=True),
    f("runAsGroup", 6, INT64, "", pointer=True),
    f("runAsNonRoot", 3, BOOL, "", pointer=True),
    f("supplementalGroups", 4, list_of(INT64), "", list_type="atomic"),
    f("supplementalGroupsPolicy", 12, STRING, "", pointer=True, enum=("Merge", "Strict")),
    f("fsGroup", 5, INT64, "", pointer=True),
    f("sysctls", 7, list_of(CORE + "Sysctl"), "", list_type="atomic"),
    f("fsGroupChangePolicy", 9, STRING, "", pointer=True, enum=("OnRootMismatch", "Always")),
    f("seccompProfile", 10, CORE + "SeccompProfile", ""),
    f("appArmorProfile", 11, CORE + "AppArmorProfile", ""),
    f("seLinuxChangePolicy", 13, STRING, "", pointer=True),
)

struct(
    CORE + "Capabilities",
    "Linux capabilities added to or dropped from a container.",
    f("add", 1, list_of(STRING), "", list_type="atomic"),
    f("drop", 2, list_of(STRING), "", list_type="atomic"),
)

struct(
    CORE + "SELinuxOptions",
    "SELinux label applied to a container.",
    f("user", 1, STRING, ""),
    f("role", 2, STRING, ""),
    f("type", 3, STRING, ""),
    f("level", 4, STRING, ""),
)

struct(
    CORE + "SeccompProfile",
    "The seccomp profile a container runs under.",
    f("type", 1, STRING, "", enum=("Unconfined", "RuntimeDefault", "Localhost"), required=True),
    f("localhostProfile", 2, STRING, "", pointer=True),
)

struct(
    CORE + "AppArmorProfile",
    "The AppArmor profile a container runs under.",
    f("type", 1, STRING, "", enum=("Unconfined", "RuntimeDefault", "Localhost"), required=True),
    f("localhostProfile", 2, STRING, "", pointer=True),
)

struct(
    CORE + "WindowsSecurityContextOptions",
    "Windows-specific security settings.",
    f("gmsaCredentialSpecName", 1, STRING, "", pointer=True),
    f("gmsaCredentialSpec", 2, STRING, "", pointer=True),
    f("runAsUserName", 3, STRING, "", pointer=True),
    f("hostProcess", 4, BOOL, "", pointer=True),
)

struct(
    CORE + "Sysctl",
    "A namespaced kernel parameter set for the pod.",
    f("name", 1, STRING, "", required=True),
    f("value", 2, STRING, "", required=True),
)

# -- volumes ---------------------------------------------------------------------------------------------

struct(
    CORE + "Volume",
    "A named volume that containers of the pod can mount.",
    f("name", 1, STRING, "Volume name, a DNS label unique within the pod.", required=True),
    f("", 2, CORE + "VolumeSource", "protobuf-only: the fields of VolumeSource are inlined in this object's JSON"),
    f("hostPath", 0, CORE + "HostPathVolumeSource", ""),
    f("emptyDir", 0, CORE + "EmptyDirVolumeSource", ""),
    f("gcePersistentDisk", 0, CORE + "GCEPersistentDiskVolumeSource", ""),
    f("awsElasticBlockStore", 0, CORE + "AWSElasticBlockStoreVolumeSource", ""),
    f("gitRepo", 0, CORE + "GitRepoVolumeSource", ""),
    f("secret", 0, CORE + "SecretVolumeSource", ""),
    f("nfs", 0, CORE + "NFSVolumeSource", ""),
    f("iscsi", 0, CORE + "ISCSIVolumeSource", ""),
    f("glusterfs", 0, CORE + "GlusterfsVolumeSource", ""),
    f("persistentVolumeClaim", 0, CORE + "PersistentVolumeClaimVolumeSource", ""),
    f("rbd", 0, CORE + "RBDVolumeSource", ""),
    f("flexVolume", 0, CORE + "FlexVolumeSource", ""),
    f("cinder", 0, CORE + "CinderVolumeSource", ""),
    f("cephfs", 0, CORE + "CephFSVolumeSource", ""),
    f("flocker", 0, CORE + "FlockerVolumeSource", ""),
    f("downwardAPI", 0, CORE + "DownwardAPIVolumeSource", ""),
    f("fc", 0, CORE + "FCVolumeSource", ""),
    f("azureFile", 0, CORE + "AzureFileVolumeSource", ""),
    f("configMap", 0, CORE + "ConfigMapVolumeSource", ""),
    f("vsphereVolume", 0, CORE + "VsphereVirtualDiskVolumeSource", ""),
    f("quobyte", 0, CORE + "QuobyteVolumeSource", ""),
    f("azureDisk", 0, CORE + "AzureDiskVolumeSource", ""),
    f("photonPersistentDisk", 0, CORE + "PhotonPersistentDiskVolumeSource", ""),
    f("projected", 0, CORE + "ProjectedVolumeSource", ""),
    f("portworxVolume", 0, CORE + "PortworxVolumeSource", ""),
    f("scaleIO", 0, CORE + "ScaleIOVolumeSource", ""),
    f("storageos", 0, CORE + "StorageOSVolumeSource", ""),
    f("csi", 0, CORE + "CSIVolumeSource", ""),
    f("ephemeral", 0, CORE + "EphemeralVolumeSource", ""),
    f("image", 0, CORE + "ImageVolumeSource", ""),
)

struct(
    CORE + "VolumeSource",
    "The storage behind a volume; exactly one source is set.",
    f("hostPath", 1, CORE + "HostPathVolumeSource", ""),
    f("emptyDir", 2, CORE + "EmptyDirVolumeSource", ""),
    f("gcePersistentDisk", 3, CORE + "GCEPersistentDiskVolumeSource", ""),
    f("awsElasticBlockStore", 4, CORE + "AWSElasticBlockStoreVolumeSource", ""),
    f("gitRepo", 5, CORE + "GitRepoVolumeSource", ""),
    f("secret", 6, CORE + "SecretVolumeSource", ""),
    f("nfs", 7, CORE + "NFSVolumeSource", ""),
    f("iscsi", 8, CORE + "ISCSIVolumeSource", ""),
    f("glusterfs", 9, CORE + "GlusterfsVolumeSource", ""),
    f("persistentVolumeClaim", 10, CORE + "PersistentVolumeClaimVolumeSource", ""),
    f("rbd", 11, CORE + "RBDVolumeSource", ""),
    f("flexVolume", 12, CORE + "FlexVolumeSource", ""),
    f("cinder", 13, CORE + "CinderVolumeSource", ""),
    f("cephfs", 14, CORE + "CephFSVolumeSource", ""),
    f("flocker", 15, CORE + "FlockerVolumeSource", ""),
    f("downwardAPI", 16, CORE + "DownwardAPIVolumeSource", ""),
    f("fc", 17, CORE + "FCVolumeSource", ""),
    f("azureFile", 18, CORE + "AzureFileVolumeSource", ""),
    f("configMap", 19, CORE + "ConfigMapVolumeSource", ""),
    f("vsphereVolume", 20, CORE + "VsphereVirtualDiskVolumeSource", ""),
    f("quobyte", 21, CORE + "QuobyteVolumeSource", ""),
    f("azureDisk", 22, CORE + "AzureDiskVolumeSource", ""),
    f("photonPersistentDisk", 23, CORE + "PhotonPersistentDiskVolumeSource", ""),
    f("projected", 26, CORE + "ProjectedVolumeSource", ""),
    f("portworxVolume", 24, CORE + "PortworxVolumeSource", ""),
    f("scaleIO", 25, CORE + "ScaleIOVolumeSource", ""),
    f("storageos", 27, CORE + "StorageOSVolumeSource", ""),
    f("csi", 28, CORE + "CSIVolumeSource", ""),
    f("ephemeral", 29, CORE + "EphemeralVolumeSource", ""),
    f("image", 30, CORE + "ImageVolumeSource", ""),
)

struct(
    CORE + "LocalObjectReference",
    "A reference to an object by name in the same namespace.",
    f("name", 1, STRING, ""),
)

struct(
    CORE + "KeyToPath",
    "Maps a key of a ConfigMap or Secret to a file path in a volume.",
    f("key", 1, STRING, "", required=True),
    f("path", 2, STRING, "", required=True),
    f("mode", 3, INT32, "", pointer=True),
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
    f("items", 2, list_of(CORE + "KeyToPath"), "", list_type="atomic"),
    f("defaultMode", 3, INT32, "File mode bits of the created files (decimal in JSON).", pointer=True, default=420),
    f("optional", 4, BOOL, "", pointer=True),
)

struct(
    CORE + "ConfigMapVolumeSource",
    "A ConfigMap's keys presented as files.",
    f(
        "",
        1,
        CORE + "LocalObjectReference",
        "protobuf-only: the fields of LocalObjectReference are inlined in this object's JSON",
    ),
    f("name", 0, STRING, ""),
    f("items", 2, list_of(CORE + "KeyToPath"), "", list_type="atomic"),
    f("defaultMode", 3, INT32, "File mode bits of the created files (decimal in JSON).", pointer=True, default=420),
    f("optional", 4, BOOL, "", pointer=True),
)

struct(
    CORE + "DownwardAPIVolumeSource",
    "Pod fields and resources presented as files.",
    f("items", 1, list_of(CORE + "DownwardAPIVolumeFile"), "", list_type="atomic"),
    f("defaultMode", 2, INT32, "", pointer=True, default=420),
)

struct(
    CORE + "DownwardAPIVolumeFile",
    "One file of a downward API volume.",
    f("path", 1, STRING, "", required=True),
    f("fieldRef", 2, CORE + "ObjectFieldSelector", ""),
    f("resourceFieldRef", 3, CORE + "ResourceFieldSelector", ""),
    f("mode", 4, INT32, "", pointer=True),
)

struct(
    CORE + "ProjectedVolumeSource",
    "Several sources projected into one directory.",
    f("sources", 1, list_of(CORE + "VolumeProjection"), "", list_type="atomic"),
    f("defaultMode", 2, INT32, "", pointer=True, default=420),
)

struct(
    CORE + "VolumeProjection",
    "One source of a projected volume.",
    f("secret", 1, CORE + "SecretProjection", ""),
    f("downwardAPI", 2, CORE + "DownwardAPIProjection", ""),
    f("configMap", 3, CORE + "ConfigMapProjection", ""),
    f("serviceAccountToken", 4, CORE + "ServiceAccountTokenProjection", ""),
    f("clusterTrustBundle", 5, CORE + "ClusterTrustBundleProjection", ""),
)

struct(
    CORE + "SecretProjection",
    "A Secret projected into a projected volume.",
    f(
        "",
        1,
        CORE + "LocalObjectReference",
        "protobuf-only: the fields of LocalObjectReference are inlined in this object's JSON",
    ),
    f("name", 0, STRING, ""),
    f("items", 2, list_of(CORE + "KeyToPath"), "", list_type="atomic"),
    f("optional", 4, BOOL, "", pointer=True),
)

struct(
    CORE + "ConfigMapProjection",
    "A ConfigMap projected into a projected volume.",
    f(
        "",
        1,
        CORE + "LocalObjectReference",
        "protobuf-only: the fields of LocalObjectReference are inlined in this object's JSON",
    ),
    f("name", 0, STRING, ""),
    f("items", 2, list_of(CORE + "KeyToPath"), "", list_type="atomic"),
    f("optional", 4, BOOL, "", pointer=True),
)

struct(
    CORE + "DownwardAPIProjection",
    "Downward API files projected into a projected volume.",
    f("items", 1, list_of(CORE + "DownwardAPIVolumeFile"), "", list_type="atomic"),
)

struct(
    CORE + "ServiceAccountTokenProjection",
    "A bound service account token written as a file.",
    f("audience", 1, STRING, ""),
    f("expirationSeconds", 2, INT64, "", pointer=True, default=3600),
    f("path", 3, STRING, "", required=True),
)

struct(
    CORE + "ClusterTrustBundleProjection",
    "Certificates of ClusterTrustBundle objects written as a file.",
    f("name", 1, STRING, "", pointer=True),
    f("signerName", 2, STRING, "", pointer=True),
    f("labelSelector", 3, META + "LabelSelector", ""),
    f("optional", 5, BOOL, "", pointer=True),
    f("path", 4, STRING, "", required=True),
)

struct(
    CORE + "PersistentVolumeClaimVolumeSource",
    "A PersistentVolumeClaim in the pod's namespace.",
    f("claimName", 1, STRING, "Name of the claim.", required=True),
    f("readOnly", 2, BOOL, ""),
)

struct(
    CORE + "NFSVolumeSource",
    "An NFS export.",
    f("server", 1, STRING, "", required=True),
    f("path", 2, STRING, "", required=True),
    f("readOnly", 3, BOOL, ""),
)

struct(
    CORE + "CSIVolumeSource",
    "An inline volume provided by a CSI driver.",
    f("driver", 1, STRING, "", required=True),
    f("readOnly", 2, BOOL, "", pointer=True),
    f("fsType", 3, STRING, "", pointer=True),
    f("volumeAttributes", 4, map_of(STRING), ""),
    f("nodePublishSecretRef", 5, CORE + "LocalObjectReference", ""),
)

struct(
    CORE + "EphemeralVolumeSource",
    "A claim created with the pod and deleted with it.",
    f("volumeClaimTemplate", 1, CORE + "PersistentVolumeClaimTemplate", ""),
)

struct(
    CORE + "PersistentVolumeClaimTemplate",
    "Template of the claim created for an ephemeral volume.",
    f("metadata", 1, META + "ObjectMeta", ""),
    f("spec", 2, CORE + "PersistentVolumeClaimSpec", "", required=True),
)

struct(
    CORE + "PersistentVolumeClaimSpec",
    "What storage a claim asks for.",
    f("accessModes", 1, list_of(STRING), "", list_type="atomic"),
    f("selector", 4, META + "LabelSelector", ""),
    f("resources", 2, CORE + "VolumeResourceRequirements", ""),
    f("volumeName", 3, STRING, ""),
    f("storageClassName", 5, STRING, "", pointer=True),
    f("volumeMode", 6, STRING, "", pointer=True, enum=("Block", "Filesystem"), default="Filesystem"),
    f("dataSource", 7, CORE + "TypedLocalObjectReference", ""),
    f("dataSourceRef", 8, CORE + "TypedObjectReference", ""),
    f("volumeAttributesClassName", 9, STRING, "", pointer=True),
)

struct(
    CORE + "VolumeResourceRequirements",
    "Storage a claim requests.",
    f("limits", 1, map_of(QUANTITY), ""),
    f("requests", 2, map_of(QUANTITY), ""),
)

struct(
    CORE + "TypedLocalObjectReference",
    "A reference to an object of a given kind in the same namespace.",
    f("apiGroup", 1, STRING, "", pointer=True),
    f("kind", 2, STRING, "", required=True),
    f("name", 3, STRING, "", required=True),
)

struct(
    CORE + "TypedObjectReference",
    "A reference to an object of a given kind, possibly in another namespace.",
    f("apiGroup", 1, STRING, "", pointer=True),
    f("kind", 2, STRING, "", required=True),
    f("name", 3, STRING, "", required=True),
    f("namespace", 4, STRING, "", pointer=True),
)

struct(
    CORE + "ImageVolumeSource",
    "An OCI image or artifact mounted read-only.",
    f("reference", 1, STRING, ""),
    f("pullPolicy", 2, STRING, "", enum=("Always", "Never", "IfNotPresent")),
)

struct(
    CORE + "GitRepoVolumeSource",
    "A directory cloned from a git repository (deprecated).",
    f("repository", 1, STRING, "", required=True),
    f("revision", 2, STRING, ""),
    f("directory", 3, STRING, ""),
)

struct(
    CORE + "ISCSIVolumeSource",
    "An iSCSI disk.",
    f("targetPortal", 1, STRING, "", required=True),
    f("iqn", 2, STRING, "", required=True),
    f("lun", 3, INT32, "", required=True),
    f("iscsiInterface", 4, STRING, ""),
    f("fsType", 5, STRING, ""),
    f("readOnly", 6, BOOL, ""),
    f("portals", 7, list_of(STRING), "", list_type="atomic"),
    f("chapAuthDiscovery", 8, BOOL, ""),
    f("chapAuthSession", 11, BOOL, ""),
    f("secretRef", 10, CORE + "LocalObjectReference", ""),
    f("initiatorName", 12, STRING, "", pointer=True),
)

struct(
    CORE + "GlusterfsVolumeSource",
    "A GlusterFS volume.",
    f("endpoints", 1, STRING, "", required=True),
    f("path", 2, STRING, "", required=True),
    f("readOnly", 3, BOOL, ""),
)

struct(
    CORE + "RBDVolumeSource",
    "A Ceph RBD block device.",
    f("monitors", 1, list_of(STRING), "", list_type="atomic", required=True),
    f("image", 2, STRING, "", required=True),
    f("fsType", 3, STRING, ""),
    f("pool", 4, STRING, ""),
    f("user", 5, STRING, ""),
    f("keyring", 6, STRING, ""),
    f("secretRef", 7, CORE + "LocalObjectReference", ""),
    f("readOnly", 8, BOOL, ""),
)

struct(
    CORE + "FlexVolumeSource",
    "A volume provided by a FlexVolume driver.",
    f("driver", 1, STRING, "", required=True),
    f("fsType", 2, STRING, ""),
    f("secretRef", 3, CORE + "LocalObjectReference", ""),
    f("readOnly", 4, BOOL, ""),
    f("options", 5, map_of(STRING), ""),
)

struct(
    CORE + "CinderVolumeSource",
    "An OpenStack Cinder volume.",
    f("volumeID", 1, STRING, "", required=True),
    f("fsType", 2, STRING, ""),
    f("readOnly", 3, BOOL, ""),
    f("secretRef", 4, CORE + "LocalObjectReference", ""),
)

struct(
    CORE + "CephFSVolumeSource",
    "A CephFS mount.",
    f("monitors", 1, list_of(STRING), "", list_type="atomic", required=True),
    f("path", 2, STRING, ""),
    f("user", 3, STRING, ""),
    f("secretFile", 4, STRING, ""),
    f("secretRef", 5, CORE + "LocalObjectReference", ""),
    f("readOnly", 6, BOOL, ""),
)

struct(
    CORE + "FlockerVolumeSource",
    "A Flocker dataset.",
    f("datasetName", 1, STRING, ""),
    f("datasetUUID", 2, STRING, ""),
)

struct(
    CORE + "FCVolumeSource",
    "A Fibre Channel disk.",
    f("targetWWNs", 1, list_of(STRING), "", list_type="atomic"),
    f("lun", 2, INT32, "", pointer=True),
    f("fsType", 3, STRING, ""),
    f("readOnly", 4, BOOL, ""),
    f("wwids", 5, list_of(STRING), "", list_type="atomic"),
)

struct(
    CORE + "AzureFileVolumeSource",
    "An Azure File share.",
    f("secretName", 1, STRING, "", required=True),
    f("shareName", 2, STRING, "", required=True),
    f("readOnly", 3, BOOL, ""),
)

struct(
    CORE + "AzureDiskVolumeSource",
    "An Azure data disk.",
    f("diskName", 1, STRING, "", required=True),
    f("diskURI", 2, STRING, "", required=True),
    f("cachingMode", 3, STRING, "", pointer=True, enum=("None", "ReadOnly", "ReadWrite")),
    f("fsType", 4, STRING, "", pointer=True),
    f("readOnly", 5, BOOL, "", pointer=True),
    f("kind", 6, STRING, "", pointer=True, enum=("Shared", "Dedicated", "Managed")),
)

struct(
    CORE + "VsphereVirtualDiskVolumeSource",
    "A vSphere virtual disk.",
    f("volumePath", 1, STRING, "", required=True),
    f("fsType", 2, STRING, ""),
    f("storagePolicyName", 3, STRING, ""),
    f("storagePolicyID", 4, STRING, ""),
)

struct(
    CORE + "QuobyteVolumeSource",
    "A Quobyte volume.",
    f("registry", 1, STRING, "", required=True),
    f("volume", 2, STRING, "", required=True),
    f("readOnly", 3, BOOL, ""),
    f("user", 4, STRING, ""),
    f("group", 5, STRING, ""),
    f("tenant", 6, STRING, ""),
)

struct(
    CORE + "PhotonPersistentDiskVolumeSource",
    "A Photon Controller persistent disk.",
    f("pdID", 1, STRING, "", required=True),
    f("fsType", 2, STRING, ""),
)

struct(
    CORE + "PortworxVolumeSource",
    "A Portworx volume.",
    f("volumeID", 1, STRING, "", required=True),
    f("fsType", 2, STRING, ""),
    f("readOnly", 3, BOOL, ""),
)

struct(
    CORE + "ScaleIOVolumeSource",
    "A ScaleIO volume.",
    f("gateway", 1, STRING, "", required=True),
    f("system", 2, STRING, "", required=True),
    f("secretRef", 3, CORE + "LocalObjectReference", "", required=True),
    f("sslEnabled", 4, BOOL, ""),
    f("protectionDomain", 5, STRING, ""),
    f("storagePool", 6, STRING, ""),
    f("storageMode", 7, STRING, ""),
    f("volumeName", 8, STRING, ""),
    f("fsType", 9, STRING, ""),
    f("readOnly", 10, BOOL, ""),
)

struct(
    CORE + "StorageOSVolumeSource",
    "A StorageOS volume.",
    f("volumeName", 1, STRING, ""),
    f("volumeNamespace", 2, STRING, ""),
    f("fsType", 3, STRING, ""),
    f("readOnly", 4, BOOL, ""),
    f("secretRef", 5, CORE + "LocalObjectReference", ""),
)

struct(
    CORE + "GCEPersistentDiskVolumeSource",
    "A Google Compute Engine persistent disk.",
    f("pdName", 1, STRING, "", required=True),
    f("fsType", 2, STRING, ""),
    f("partition", 3, INT32, ""),
    f("readOnly", 4, BOOL, ""),
)

struct(
    CORE + "AWSElasticBlockStoreVolumeSource",
    "An AWS EBS volume.",
    f("volumeID", 1, STRING, "", required=True),
    f("fsType", 2, STRING, ""),
    f("partition", 3, INT32, ""),
    f("readOnly", 4, BOOL, ""),
)

# -- scheduling ------------------------------------------------------------------------------------------

struct(
    CORE + "Affinity",
    "Node and pod affinity and anti-affinity rules.",
    f("nodeAffinity", 1, CORE + "NodeAffinity", ""),
    f("podAffinity", 2, CORE + "PodAffinity", ""),
    f("podAntiAffinity", 3, CORE + "PodAntiAffinity", ""),
)

struct(
    CORE + "NodeAffinity",
    "Rules on which nodes a pod may or prefers to run.",
    f("requiredDuringSchedulingIgnoredDuringExecution", 1, CORE + "NodeSelector", ""),
    f(
        "preferredDuringSchedulingIgnoredDuringExecution",
        2,
        list_of(CORE + "PreferredSchedulingTerm"),
        "",
        list_type="atomic",
    ),
)

struct(
    CORE + "NodeSelector",
    "Terms that a node must match; the terms are ORed.",
    f("nodeSelectorTerms", 1, list_of(CORE + "NodeSelectorTerm"), "", list_type="atomic", required=True),
)

struct(
    CORE + "NodeSelectorTerm",
    "Requirements on node labels and fields; they are ANDed.",
    f("matchExpressions", 1, list_of(CORE + "NodeSelectorRequirement"), "", list_type="atomic"),
    f("matchFields", 2, list_of(CORE + "NodeSelectorRequirement"), "", list_type="atomic"),
)

struct(
    CORE + "NodeSelectorRequirement",
    "One requirement on a node label or field.",
    f("key", 1, STRING, "", required=True),
    f(
        "operator",
        2,
        STRING,
        "In, NotIn, Exists, DoesNotExist, Gt or Lt.",
        enum=("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"),
        required=True,
    ),
    f("values", 3, list_of(STRING), "", list_type="atomic"),
)

struct(
    CORE + "PreferredSchedulingTerm",
    "A weighted node preference.",
    f("weight", 1, INT32, "", required=True),
    f("preference", 2, CORE + "NodeSelectorTerm", "", required=True),
)

struct(
    CORE + "PodAffinity",
    "Rules to place a pod near other pods.",
    f("requiredDuringSchedulingIgnoredDuringExecution", 1, list_of(CORE + "PodAffinityTerm"), "", list_type="atomic"),
    f(
        "preferredDuringSchedulingIgnoredDuringExecution",
        2,
        list_of(CORE + "WeightedPodAffinityTerm"),
        "",
        list_type="atomic",
    ),
)

struct(
    CORE + "PodAntiAffinity",
    "Rules to keep a pod away from other pods.",
    f("requiredDuringSchedulingIgnoredDuringExecution", 1, list_of(CORE + "PodAffinityTerm"), "", list_type="atomic"),
    f(
        "preferredDuringSchedulingIgnoredDuringExecution",
        2,
        list_of(CORE + "WeightedPodAffinityTerm"),
        "",
        list_type="atomic",
    ),
)

struct(
    CORE + "PodAffinityTerm",
    "A set of pods, and the topology domain they must (not) share with this pod.",
    f("labelSelector", 1, META + "LabelSelector", "Pods this term refers to."),
    f("namespaces", 2, list_of(STRING), "", list_type="atomic"),
    f("topologyKey", 3, STRING, "Node label defining co-location.", required=True),
    f("namespaceSelector", 4, META + "LabelSelector", ""),
    f("matchLabelKeys", 5, list_of(STRING), "", list_type="atomic"),
    f("mismatchLabelKeys", 6, list_of(STRING), "", list_type="atomic"),
)

struct(
    CORE + "WeightedPodAffinityTerm",
    "A weighted pod affinity term.",
    f("weight", 1, INT32, "", required=True),
    f("podAffinityTerm", 2, CORE + "PodAffinityTerm", "", required=True),
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
    f("labelSelector", 4, META + "LabelSelector", ""),
    f("minDomains", 5, INT32, "", pointer=True),
    f("nodeAffinityPolicy", 6, STRING, "", pointer=True, enum=("Ignore", "Honor")),
    f("nodeTaintsPolicy", 7, STRING, "", pointer=True, enum=("Ignore", "Honor")),
    f("matchLabelKeys", 8, list_of(STRING), "", list_type="atomic"),
)

struct(
    CORE + "PodSchedulingGate",
    "A gate that keeps a pod unscheduled while present.",
    f("name", 1, STRING, "", required=True),
)

struct(
    CORE + "PodResourceClaim",
    "A dynamic resource claim the pod uses.",
    f("name", 1, STRING, "", required=True),
    f("resourceClaimName", 3, STRING, "", pointer=True),
    f("resourceClaimTemplateName", 4, STRING, "", pointer=True),
)

struct(
    CORE + "PodOS",
    "The operating system a pod needs.",
    f("name", 1, STRING, "", required=True),
)

# -- networking and DNS ----------------------------------------------------------------------------------

struct(
    CORE + "HostAlias",
    "An extra /etc/hosts entry.",
    f("ip", 1, STRING, "", required=True),
    f("hostnames", 2, list_of(STRING), "", list_type="atomic"),
)

struct(
    CORE + "PodDNSConfig",
    "DNS settings merged into the pod's resolv.conf.",
    f("nameservers", 1, list_of(STRING), "", list_type="atomic"),
    f("searches", 2, list_of(STRING), "", list_type="atomic"),
    f("options", 3, list_of(CORE + "PodDNSConfigOption"), "", list_type="atomic"),
)

struct(
    CORE + "PodDNSConfigOption",
    "One resolver option.",
    f("name", 1, STRING, ""),
    f("value", 2, STRING, "", pointer=True),
)

struct(
    CORE + "PodReadinessGate",
    "A pod condition that must be true before the pod counts as ready.",
    f("conditionType", 1, STRING, "", required=True),
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
    f("message", 3, STRING, ""),
    f("reason", 4, STRING, ""),
    f("nominatedNodeName", 11, STRING, "Node on which the pod is expected to run after preemption."),
    f("hostIP", 5, STRING, "Primary IP of the pod's node."),
    f("hostIPs", 16, list_of(CORE + "HostIP"), "", strategy="merge", merge_key="ip", list_type="atomic"),
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
    f("ephemeralContainerStatuses", 13, list_of(CORE + "ContainerStatus"), "", list_type="atomic"),
    f("resize", 14, STRING, ""),
    f(
        "resourceClaimStatuses",
        15,
        list_of(CORE + "PodResourceClaimStatus"),
        "",
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
    f("lastProbeTime", 3, TIME, ""),
    f("lastTransitionTime", 4, TIME, ""),
    f("reason", 5, STRING, ""),
    f("message", 6, STRING, ""),
)

struct(
    CORE + "PodIP",
    "One IP address assigned to a pod.",
    f("ip", 1, STRING, "", required=True),
)

struct(
    CORE + "HostIP",
    "One IP address of the pod's node.",
    f("ip", 1, STRING, "", required=True),
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
    f("allocatedResources", 10, map_of(QUANTITY), ""),
    f("resources", 11, CORE + "ResourceRequirements", ""),
    f(
        "volumeMounts",
        12,
        list_of(CORE + "VolumeMountStatus"),
        "",
        strategy="merge",
        merge_key="mountPath",
        list_type="map",
        map_keys=("mountPath",),
    ),
    f("user", 13, CORE + "ContainerUser", ""),
    f(
        "allocatedResourcesStatus",
        14,
        list_of(CORE + "ResourceStatus"),
        "",
        strategy="merge",
        merge_key="name",
        list_type="map",
        map_keys=("name",),
    ),
)

struct(
    CORE + "ContainerState",
    "State of a container; exactly one member is set.",
    f("waiting", 1, CORE + "ContainerStateWaiting", ""),
    f("running", 2, CORE + "ContainerStateRunning", ""),
    f("terminated", 3, CORE + "ContainerStateTerminated", ""),
)

struct(
    CORE + "ContainerStateWaiting",
    "The container is not running yet.",
    f("reason", 1, STRING, ""),
    f("message", 2, STRING, ""),
)

struct(
    CORE + "ContainerStateRunning",
    "The container is running.",
    f("startedAt", 1, TIME, ""),
)

struct(
    CORE + "ContainerStateTerminated",
    "The container has exited.",
    f("exitCode", 1, INT32, "", required=True),
    f("signal", 2, INT32, ""),
    f("reason", 3, STRING, ""),
    f("message", 4, STRING, ""),
    f("startedAt", 5, TIME, ""),
    f("finishedAt", 6, TIME, ""),
    f("containerID", 7, STRING, ""),
)

struct(
    CORE + "VolumeMountStatus",
    "Observed state of a volume mount.",
    f("name", 1, STRING, "", required=True),
    f("mountPath", 2, STRING, "", required=True),
    f("readOnly", 3, BOOL, ""),
    f("recursiveReadOnly", 4, STRING, "", pointer=True),
)

struct(
    CORE + "ContainerUser",
    "Identity the container's first process runs as.",
    f("linux", 1, CORE + "LinuxContainerUser", ""),
)

struct(
    CORE + "LinuxContainerUser",
    "Linux user and groups of the container's first process.",
    f("uid", 1, INT64, "", required=True),
    f("gid", 2, INT64, "", required=True),
    f("supplementalGroups", 3, list_of(INT64), "", list_type="atomic"),
)

struct(
    CORE + "ResourceStatus",
    "Health of the devices allocated for one resource.",
    f("name", 1, STRING, "", required=True),
    f("resources", 2, list_of(CORE + "ResourceHealth"), "", list_type="map", map_keys=("resourceID",)),
)

struct(
    CORE + "ResourceHealth",
    "Health of one allocated device.",
    f("resourceID", 1, STRING, "", required=True),
    f("health", 2, STRING, ""),
)

struct(
    CORE + "PodResourceClaimStatus",
    "Name of the ResourceClaim generated for a pod claim.",
    f("name", 1, STRING, "", required=True),
    f("resourceClaimName", 2, STRING, "", pointer=True),
)
