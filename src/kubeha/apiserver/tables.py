"""Server-side printing: meta.k8s.io/v1 Table for ``kubectl get`` (pure functions).

Columns and cell formats follow upstream's internal printers (pkg/printers/internalversion), with
all wide (priority 1) cells always present as upstream's server does; kubectl hides priority-1
columns unless ``-o wide``. Ages use upstream's ``duration.HumanDuration`` rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubeha.api.autoscaling.v1 import selector_string
from kubeha.api.events.v1 import to_core_v1
from kubeha.api.registry import ResourceInfo
from kubeha.api.schema import Obj

Cell = Any
Printer = Callable[[Obj, datetime], list[Cell]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# Tests replace this to freeze time; table_for(now=...) overrides it per call.
now: Callable[[], datetime] = _utcnow


# -- formatting helpers ---------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """Upstream's duration.HumanDuration: "45s", "5m2s", "15m", "3h4m", "12h", "3d4h", "30d", "2y3d"."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (seconds or microseconds, ``Z`` or offset) to an aware datetime; None if absent/bad."""
    if not value or not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def since(value: Any, at: datetime) -> str:
    """Age of a timestamp, "<unknown>" when it is absent (upstream's translateTimestampSince)."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration((at - t).total_seconds())


def _age(obj: Obj, at: datetime) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"), at)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def format_labels(labels: dict[str, str] | None) -> str:
    """``k=v,k2=v2`` sorted by key, ``<none>`` when empty (upstream labels.FormatLabels)."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_label_selector(selector: Obj | None) -> str:
    """Upstream metav1.FormatLabelSelector: the selector string, ``<none>`` when empty."""
    return selector_string(selector) or "<none>"


def _containers(template: Obj | None) -> tuple[str, str]:
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _more(items: list[str], total: int, limit: int = 3) -> str:
    ret = ",".join(items)
    if total > limit:
        return f"{ret} + {total - limit} more..."
    return ret or "<unset>"


# -- column definitions ---------------------------------------------------------------------------------


def col(name: str, type_: str = "string", description: str = "", *, fmt: str = "", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME = col("Name", fmt="name", description="Name of the object, unique within its namespace.")
AGE = col("Age", description="Time since the object was created.")
CONTAINERS = col("Containers", description="Names of each container in the template.", priority=1)
IMAGES = col("Images", description="Images referenced by each container in the template.", priority=1)


def _selector_col(priority: int = 1) -> dict[str, Any]:
    return col("Selector", description="Label query over the pods this object manages.", priority=priority)


# -- pods -----------------------------------------------------------------------------------------------


def _is_restartable_init(container: Obj | None) -> bool:
    return bool(container) and (container or {}).get("restartPolicy") == "Always"


def _condition_true(conditions: list[Obj], typ: str) -> bool:
    return any(c.get("type") == typ and c.get("status") == "True" for c in conditions)


def _later(a: datetime | None, b: Any) -> datetime | None:
    t = parse_time(b)
    if t is None:
        return a
    return t if a is None or t > a else a


def _terminated_reason(term: Obj, prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def pod_status_cells(pod: Obj, at: datetime) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS cells for a pod, following upstream's printPod."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    conditions = status.get("conditions") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        last_term = (cs.get("lastState") or {}).get("terminated")
        restarts += int(cs.get("restartCount") or 0)
        if last_term:
            last_restart = _later(last_restart, last_term.get("finishedAt"))
        sidecar = _is_restartable_init(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            if last_term:
                last_sidecar_restart = _later(last_sidecar_restart, last_term.get("finishedAt"))
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term:
            reason = _terminated_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            restarts += int(cs.get("restartCount") or 0)
            last_term = (cs.get("lastState") or {}).get("terminated")
            if last_term:
                last_restart = _later(last_restart, last_term.get("finishedAt"))
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((at - last_restart).total_seconds())} ago)"
    return f"{ready}/{total}", reason, restarts_cell


def _print_pod(pod: Obj, at: datetime) -> list[Cell]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready, reason, restarts = pod_status_cells(pod, at)
    pod_ips = status.get("podIPs") or []
    ip = (pod_ips[0].get("ip") if pod_ips else status.get("podIP")) or "<none>"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        true_count = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_cell = f"{true_count}/{len(gates)}"
    return [
        _name(pod),
        ready,
        reason,
        restarts,
        _age(pod, at),
        ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_cell,
    ]


def _pod_row_conditions(pod: Obj) -> list[Obj] | None:
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


POD_COLUMNS = [
    NAME,
    col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    col("Status", description="The aggregate status of the containers in this pod."),
    col("Restarts", description="Container restarts in this pod, and when the last one happened."),
    AGE,
    col("IP", description="IP address allocated to the pod.", priority=1),
    col("Node", description="Node the pod is scheduled onto.", priority=1),
    col("Nominated Node", description="Node the scheduler nominated after preemption.", priority=1),
    col("Readiness Gates", description="Extra conditions evaluated for pod readiness.", priority=1),
]

# -- nodes ----------------------------------------------------------------------------------------------


def _node_roles(labels: dict[str, str]) -> str:
    roles: set[str] = set()
    for k, v in labels.items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Obj, typ: str) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == typ:
            return str(a.get("address", ""))
    return "<none>"


def _print_node(node: Obj, at: datetime) -> list[Cell]:
    status = node.get("status") or {}
    state: list[str] = []
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            state = ["Ready" if c.get("status") == "True" else "NotReady"]
            break
    if not state:
        state = ["Unknown"]
    if (node.get("spec") or {}).get("unschedulable"):
        state.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [
        _name(node),
        ",".join(state),
        _node_roles((node.get("metadata") or {}).get("labels") or {}),
        _age(node, at),
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


NODE_COLUMNS = [
    NAME,
    col("Status", description="The status of the node"),
    col("Roles", description="The roles of the node"),
    AGE,
    col("Version", description="Kubelet version reported by the node."),
    col("Internal-IP", description="First InternalIP address of the node.", priority=1),
    col("External-IP", description="First ExternalIP address of the node.", priority=1),
    col("OS-Image", description="OS image reported by the node.", priority=1),
    col("Kernel-Version", description="Kernel version reported by the node.", priority=1),
    col("Container-Runtime", description="Container runtime version reported by the node.", priority=1),
]

# -- workloads ------------------------------------------------------------------------------------------


def _print_deployment(d: Obj, at: datetime) -> list[Cell]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    names, images = _containers(spec.get("template"))
    return [
        _name(d),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(d, at),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


DEPLOYMENT_COLUMNS = [
    NAME,
    col("Ready", description="Number of the pod with ready state"),
    col("Up-to-date", description="Pods running the desired template."),
    col("Available", description="Pods available to serve."),
    AGE,
    CONTAINERS,
    IMAGES,
    _selector_col(),
]


def _print_replicaset(rs: Obj, at: datetime) -> list[Cell]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    names, images = _containers(spec.get("template"))
    return [
        _name(rs),
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(rs, at),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


REPLICASET_COLUMNS = [
    NAME,
    col("Desired", "integer", "Desired number of pods."),
    col("Current", "integer", "Most recently observed number of pods."),
    col("Ready", "integer", "Pods with a Ready condition."),
    AGE,
    CONTAINERS,
    IMAGES,
    _selector_col(),
]


def _print_daemonset(ds: Obj, at: datetime) -> list[Cell]:
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    names, images = _containers(spec.get("template"))
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [
        _name(ds),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        format_labels(node_selector),
        _age(ds, at),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


DAEMONSET_COLUMNS = [
    NAME,
    col("Desired", "integer", "Nodes that should run the daemon pod."),
    col("Current", "integer", "Nodes running the daemon pod."),
    col("Ready", "integer", "Nodes whose daemon pod is ready."),
    col("Up-to-date", "integer", "Nodes running the updated daemon pod."),
    col("Available", "integer", "Nodes whose daemon pod is available."),
    col("Node Selector", description="Node selector of the pod template."),
    AGE,
    CONTAINERS,
    IMAGES,
    _selector_col(),
]


def _print_statefulset(sts: Obj, at: datetime) -> list[Cell]:
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    names, images = _containers(spec.get("template"))
    return [_name(sts), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", _age(sts, at), names, images]


STATEFULSET_COLUMNS = [NAME, col("Ready", description="Number of the pod with ready state"), AGE, CONTAINERS, IMAGES]


def _print_controllerrevision(cr: Obj, at: datetime) -> list[Cell]:
    controller = "<none>"
    for ref in (cr.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            api_version = ref.get("apiVersion", "")
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = ref.get("kind", "")
            gk = f"{kind}.{group}" if group else kind
            controller = f"{gk.lower()}/{ref.get('name', '')}" if kind else ref.get("name", "")
            break
    return [_name(cr), controller, cr.get("revision", 0), _age(cr, at)]


CONTROLLERREVISION_COLUMNS = [
    NAME,
    col("Controller", description="Controller of the object"),
    col("Revision", description="Revision number of the stored state."),
    AGE,
]


def _print_pdb(pdb: Obj, at: datetime) -> list[Cell]:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    min_a, max_u = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(pdb),
        "N/A" if min_a is None else str(min_a),
        "N/A" if max_u is None else str(max_u),
        status.get("disruptionsAllowed", 0),
        _age(pdb, at),
    ]


PDB_COLUMNS = [
    NAME,
    col("Min Available", description="The minimum number of pods that must be available."),
    col("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE,
]

# -- services and endpoints -----------------------------------------------------------------------------


def _service_external_ip(svc: Obj) -> str:
    spec, status = svc.get("spec") or {}, svc.get("status") or {}
    typ = spec.get("type", "ClusterIP")
    external = spec.get("externalIPs") or []
    if typ in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if typ == "LoadBalancer":
        lb = sorted(
            {i.get("ip") or i.get("hostname") for i in (status.get("loadBalancer") or {}).get("ingress") or []}
            - {None, ""}
        )
        lb_ips = ",".join(str(x) for x in lb)
        if external:
            return ",".join([*lb, *external])
        return lb_ips or "<pending>"
    if typ == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_ports(ports: list[Obj]) -> str:
    pieces = []
    for p in ports:
        proto = p.get("protocol", "TCP")
        if p.get("nodePort"):
            pieces.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{p.get('port')}/{proto}")
    return ",".join(pieces) or "<none>"


def _print_service(svc: Obj, at: datetime) -> list[Cell]:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(svc),
        spec.get("type", "ClusterIP"),
        ips[0] if ips else "<none>",
        _service_external_ip(svc),
        _service_ports(spec.get("ports") or []),
        _age(svc, at),
        format_labels(spec.get("selector")),
    ]


SERVICE_COLUMNS = [
    NAME,
    col("Type", description="How the service is exposed."),
    col("Cluster-IP", description="Virtual IP of the service."),
    col("External-IP", description="External addresses of the service."),
    col("Port(s)", description="Ports the service exposes."),
    AGE,
    col("Selector", description="Pods the service routes traffic to.", priority=1),
]


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(endpoints: Obj) -> str:
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    items: list[str] = []
    limit, count, more = 3, 0, False
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            count += len(addrs)
            for a in addrs:
                if len(items) == limit:
                    more = True
                    break
                items.append(a.get("ip", ""))
            continue
        for port in ports:
            count += len(addrs)
            for a in addrs:
                if len(items) == limit:
                    more = True
                    break
                items.append(_join_host_port(a.get("ip", ""), port.get("port")))
    ret = ",".join(items)
    return f"{ret} + {count - limit} more..." if more else ret


def _print_endpoints(ep: Obj, at: datetime) -> list[Cell]:
    return [_name(ep), format_endpoints(ep), _age(ep, at)]


ENDPOINTS_COLUMNS = [NAME, col("Endpoints", description="Addresses and ports of the service's backends."), AGE]


def _print_endpointslice(es: Obj, at: datetime) -> list[Cell]:
    ports = es.get("ports") or []
    port_items = []
    for p in ports[:3]:
        if p.get("port") is not None:
            port_items.append(str(p["port"]))
        elif p.get("name") is not None:
            port_items.append(str(p["name"]))
        else:
            port_items.append("*")
    addrs = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [
        _name(es),
        es.get("addressType", ""),
        _more(port_items, len(ports)),
        _more([str(a) for a in addrs[:3]], len(addrs)),
        _age(es, at),
    ]


ENDPOINTSLICE_COLUMNS = [
    NAME,
    col("AddressType", description="Type of addresses in the slice."),
    col("Ports", description="Ports exposed by the endpoints."),
    col("Endpoints", description="Addresses of the endpoints."),
    AGE,
]

# -- small core kinds -----------------------------------------------------------------------------------


def _print_namespace(ns: Obj, at: datetime) -> list[Cell]:
    return [_name(ns), (ns.get("status") or {}).get("phase", ""), _age(ns, at)]


def _print_configmap(cm: Obj, at: datetime) -> list[Cell]:
    return [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _age(cm, at)]


def _print_secret(s: Obj, at: datetime) -> list[Cell]:
    return [_name(s), s.get("type", "Opaque"), len(s.get("data") or {}), _age(s, at)]


def _print_serviceaccount(sa: Obj, at: datetime) -> list[Cell]:
    return [_name(sa), len(sa.get("secrets") or []), _age(sa, at)]


def _print_lease(lease: Obj, at: datetime) -> list[Cell]:
    return [_name(lease), (lease.get("spec") or {}).get("holderIdentity") or "", _age(lease, at)]


def _print_event(ev: Obj, at: datetime) -> list[Cell]:
    first = since(ev.get("firstTimestamp"), at)
    if not ev.get("firstTimestamp"):
        first = since(ev.get("eventTime"), at)
    last = since(ev.get("lastTimestamp"), at) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    series = ev.get("series")
    if series:
        last = since(series.get("lastObservedTime"), at)
        count = series.get("count", 0)
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = ev.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return [
        last,
        ev.get("type", ""),
        ev.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        str(ev.get("message", "")).strip(),
        first,
        count,
        _name(ev),
    ]


EVENT_COLUMNS = [
    col("Last Seen", description="Time the event was last seen."),
    col("Type", description="Normal or Warning."),
    col("Reason", description="Short machine-readable reason."),
    col("Object", description="Object the event is about."),
    col("Subobject", description="Part of the object the event is about.", priority=1),
    col("Source", description="Component that reported the event.", priority=1),
    col("Message", description="Human-readable description."),
    col("First Seen", description="Time the event was first seen.", priority=1),
    col("Count", description="Number of occurrences.", priority=1),
    col("Name", fmt="name", description="Name of the event.", priority=1),
]


# -- batch ----------------------------------------------------------------------------------------------


def _condition_is_true(conditions: list[Obj], typ: str) -> bool:
    """Upstream's hasJobCondition: the first condition of that type decides."""
    for c in conditions:
        if c.get("type") == typ:
            return c.get("status") == "True"
    return False


def _job_status(job: Obj) -> str:
    conditions = (job.get("status") or {}).get("conditions") or []
    if _condition_is_true(conditions, "Complete"):
        return "Complete"
    if _condition_is_true(conditions, "Failed"):
        return "Failed"
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if _condition_is_true(conditions, "Suspended"):
        return "Suspended"
    if _condition_is_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_completions(job: Obj) -> str:
    spec = job.get("spec") or {}
    succeeded = int((job.get("status") or {}).get("succeeded") or 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    # no completion count: the job is done when any pod succeeds; show its parallelism when > 1
    parallelism = int(spec.get("parallelism") or 0)
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def _job_duration(job: Obj, at: datetime) -> str:
    status = job.get("status") or {}
    start = parse_time(status.get("startTime"))
    if start is None:
        return ""
    end = parse_time(status.get("completionTime")) or at
    return human_duration((end - start).total_seconds())


def _print_job(job: Obj, at: datetime) -> list[Cell]:
    spec = job.get("spec") or {}
    names, images = _containers(spec.get("template"))
    return [
        _name(job),
        _job_status(job),
        _job_completions(job),
        _job_duration(job, at),
        _age(job, at),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


JOB_COLUMNS = [
    NAME,
    col("Status", description="Status of the job."),
    col("Completions", description="Succeeded pods out of the completions wanted."),
    col("Duration", description="Time the job ran, or has been running so far."),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", description="Label query over the pods of the job.", priority=1),
]


def _bool_ptr(value: Any) -> str:
    """Upstream's printBoolPtr: True / False, ``<unset>`` when absent."""
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def _print_cronjob(cj: Obj, at: datetime) -> list[Cell]:
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _containers(job_spec.get("template"))
    last = status.get("lastScheduleTime")
    return [
        _name(cj),
        spec.get("schedule", ""),
        spec.get("timeZone") if spec.get("timeZone") is not None else "<none>",
        _bool_ptr(spec.get("suspend")),
        len(status.get("active") or []),
        since(last, at) if last else "<none>",
        _age(cj, at),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]


CRONJOB_COLUMNS = [
    NAME,
    col("Schedule", description="Cron schedule the jobs are created on."),
    col("Timezone", description="Time zone the schedule is read in."),
    col("Suspend", "boolean", "Whether new runs are held back."),
    col("Active", "integer", "Number of jobs currently running."),
    col("Last Schedule", description="Time since a job was last scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", description="Label query over the pods of the created jobs.", priority=1),
]

# -- objects upstream prints with the generic table convertor (name and creation time) -------------------

CREATED_AT = col("Created At", "date", "Time the object was created (UTC).")


def _created_at(obj: Obj) -> str:
    """RFC 3339 creation time in UTC, as upstream's default table convertor prints it."""
    t = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    if t is None:
        return "0001-01-01T00:00:00Z"  # Go's zero time, what an unset timestamp formats as
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_created_at(obj: Obj, at: datetime) -> list[Cell]:
    return [_name(obj), _created_at(obj)]


CREATED_AT_COLUMNS = [NAME, CREATED_AT]

# -- rbac -----------------------------------------------------------------------------------------------


def subjects_strings(subjects: list[Obj] | None) -> tuple[list[str], list[str], list[str]]:
    """Users, groups and service accounts (``namespace/name``) named by binding subjects."""
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for s in subjects or []:
        kind, name = s.get("kind"), str(s.get("name", ""))
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return users, groups, sas


def _print_binding(b: Obj, at: datetime) -> list[Cell]:
    ref = b.get("roleRef") or {}
    users, groups, sas = subjects_strings(b.get("subjects"))
    return [
        _name(b),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(b, at),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(sas),
    ]


def _binding_columns(what: str) -> list[dict[str, Any]]:
    return [
        NAME,
        col("Role", description="Kind and name of the role the binding grants."),
        AGE,
        col("Users", description=f"Users in the {what}.", priority=1),
        col("Groups", description=f"Groups in the {what}.", priority=1),
        col("ServiceAccounts", description=f"Service accounts in the {what}.", priority=1),
    ]


# -- certificates, scheduling, node, quota --------------------------------------------------------------


def csr_condition(csr: Obj) -> str:
    """Upstream's CSR status summary: Denied, Approved or Pending, then ,Failed and ,Issued."""
    types = {c.get("type") for c in (csr.get("status") or {}).get("conditions") or []}
    if "Denied" in types:
        out = "Denied"
    elif "Approved" in types:
        out = "Approved"
    else:
        out = "Pending"
    if "Failed" in types:
        out += ",Failed"
    if (csr.get("status") or {}).get("certificate"):
        out += ",Issued"
    return out


def _print_csr(csr: Obj, at: datetime) -> list[Cell]:
    spec = csr.get("spec") or {}
    seconds = spec.get("expirationSeconds")
    return [
        _name(csr),
        _age(csr, at),
        spec.get("signerName") or "<none>",
        spec.get("username", ""),
        human_duration(int(seconds)) if seconds is not None else "<none>",
        csr_condition(csr),
    ]


CSR_COLUMNS = [
    NAME,
    AGE,
    col("SignerName", description="Signer asked to sign the request."),
    col("Requestor", description="User that created the request."),
    col("RequestedDuration", description="Validity period requested for the certificate."),
    col("Condition", description="Approval state of the request, and whether it is issued."),
]


def _print_priorityclass(pc: Obj, at: datetime) -> list[Cell]:
    return [
        _name(pc),
        int(pc.get("value") or 0),
        bool(pc.get("globalDefault")),
        _age(pc, at),
        pc.get("preemptionPolicy") or "",
    ]


PRIORITYCLASS_COLUMNS = [
    NAME,
    col("Value", "integer", "Priority given to pods of this class."),
    col("Global-Default", "boolean", "Whether pods without a class get this one."),
    AGE,
    col("PreemptionPolicy", description="Whether pods of this class may preempt lower-priority pods."),
]


def _print_runtimeclass(rc: Obj, at: datetime) -> list[Cell]:
    return [_name(rc), rc.get("handler", ""), _age(rc, at)]


RUNTIMECLASS_COLUMNS = [NAME, col("Handler", description="Runtime handler that runs the pods."), AGE]


def _quota_cells(rq: Obj) -> tuple[str, str]:
    """REQUEST and LIMIT cells: ``name: used/hard`` per resource, sorted; limits.* go to LIMIT."""
    status = rq.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        target = limits if name.startswith("limits.") else requests
        target.append(f"{name}: {used.get(name, '0')}/{hard[name]}")
    return ", ".join(requests), ", ".join(limits)


def _print_resourcequota(rq: Obj, at: datetime) -> list[Cell]:
    requests, limits = _quota_cells(rq)
    return [_name(rq), requests, limits, _age(rq, at)]


RESOURCEQUOTA_COLUMNS = [
    NAME,
    col("Request", description="Usage against the hard limit of each non-limit resource."),
    col("Limit", description="Usage against the hard limit of each limits.* resource."),
    AGE,
]


def _print_default(obj: Obj, at: datetime) -> list[Cell]:
    return [_name(obj), _age(obj, at)]


# (group, resource) -> (columns, printer)
PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Printer]] = {
    ("", "pods"): (POD_COLUMNS, _print_pod),
    ("", "nodes"): (NODE_COLUMNS, _print_node),
    ("", "services"): (SERVICE_COLUMNS, _print_service),
    ("", "endpoints"): (ENDPOINTS_COLUMNS, _print_endpoints),
    ("", "namespaces"): ([NAME, col("Status", description="The status of the namespace"), AGE], _print_namespace),
    ("", "configmaps"): ([NAME, col("Data", description="Number of data entries."), AGE], _print_configmap),
    (
        "",
        "secrets",
    ): (
        [NAME, col("Type", description="Type of the secret."), col("Data", description="Number of data entries."), AGE],
        _print_secret,
    ),
    ("", "serviceaccounts"): ([NAME, col("Secrets", description="Number of secrets."), AGE], _print_serviceaccount),
    ("", "events"): (EVENT_COLUMNS, _print_event),
    ("events.k8s.io", "events"): (EVENT_COLUMNS, lambda ev, at: _print_event(to_core_v1(ev), at)),
    ("apps", "deployments"): (DEPLOYMENT_COLUMNS, _print_deployment),
    ("apps", "replicasets"): (REPLICASET_COLUMNS, _print_replicaset),
    ("apps", "daemonsets"): (DAEMONSET_COLUMNS, _print_daemonset),
    ("apps", "statefulsets"): (STATEFULSET_COLUMNS, _print_statefulset),
    ("apps", "controllerrevisions"): (CONTROLLERREVISION_COLUMNS, _print_controllerrevision),
    ("policy", "poddisruptionbudgets"): (PDB_COLUMNS, _print_pdb),
    ("coordination.k8s.io", "leases"): (
        [NAME, col("Holder", description="Identity of the current holder."), AGE],
        _print_lease,
    ),
    ("discovery.k8s.io", "endpointslices"): (ENDPOINTSLICE_COLUMNS, _print_endpointslice),
    ("batch", "jobs"): (JOB_COLUMNS, _print_job),
    ("batch", "cronjobs"): (CRONJOB_COLUMNS, _print_cronjob),
    ("rbac.authorization.k8s.io", "roles"): (CREATED_AT_COLUMNS, _print_created_at),
    ("rbac.authorization.k8s.io", "clusterroles"): (CREATED_AT_COLUMNS, _print_created_at),
    ("rbac.authorization.k8s.io", "rolebindings"): (_binding_columns("role binding"), _print_binding),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (_binding_columns("cluster role binding"), _print_binding),
    ("certificates.k8s.io", "certificatesigningrequests"): (CSR_COLUMNS, _print_csr),
    ("scheduling.k8s.io", "priorityclasses"): (PRIORITYCLASS_COLUMNS, _print_priorityclass),
    ("node.k8s.io", "runtimeclasses"): (RUNTIMECLASS_COLUMNS, _print_runtimeclass),
    ("", "limitranges"): (CREATED_AT_COLUMNS, _print_created_at),
    ("", "resourcequotas"): (RESOURCEQUOTA_COLUMNS, _print_resourcequota),
}
DEFAULT_COLUMNS = [NAME, AGE]


def columns_for(info: ResourceInfo) -> list[dict[str, Any]]:
    return PRINTERS.get((info.group, info.resource), (DEFAULT_COLUMNS, _print_default))[0]


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table_for(
    info: ResourceInfo,
    objs: list[Obj],
    *,
    include_object: str = "Metadata",
    with_columns: bool = True,
    list_meta: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of ``objs`` (already filtered) for resource ``info``.

    ``include_object`` is the request's includeObject (None, Metadata, Object); ``with_columns``
    is False for watch events after the first; ``at`` overrides the clock (else :data:`now`).
    """
    columns, printer = PRINTERS.get((info.group, info.resource), (DEFAULT_COLUMNS, _print_default))
    when = at or now()
    rows: list[dict[str, Any]] = []
    for obj in objs:
        row: dict[str, Any] = {"cells": printer(obj, when)}
        if info.group == "" and info.resource == "pods":
            conditions = _pod_row_conditions(obj)
            if conditions:
                row["conditions"] = conditions
        ro = _row_object(obj, include_object)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    table: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": dict(list_meta or {})}
    if with_columns:
        table["columnDefinitions"] = [dict(c) for c in columns]
    else:
        table["columnDefinitions"] = None
    table["rows"] = rows
    return table
