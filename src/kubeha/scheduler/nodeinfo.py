"""What the scheduler knows about pods and nodes, pre-digested once per object.

Filtering and scoring run for every (pod, node) pair, so nothing on that path may parse a
quantity or walk a pod spec. A :class:`PodInfo` is built once when a pod is seen (requests,
host ports, compiled affinity terms); a :class:`NodeInfo` keeps running sums of the pods placed
on a node. Both are plain slotted classes over the API dicts (which are never modified).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kubeha.api.core.pod import parse_quantity

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
# Scoring counts a container without requests as this much (upstream's non-zero defaults), so
# best-effort pods still spread instead of piling onto one node.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"


@functools.lru_cache(maxsize=8192)
def _quantity(text: str) -> Decimal:
    return parse_quantity(text)


def quantity(value: Any) -> Decimal:
    """A resource quantity's exact value (malformed ones count as zero: validation's job)."""
    try:
        return _quantity(value if isinstance(value, str) else str(value))
    except ValueError:
        return Decimal(0)


def milli_value(value: Any) -> int:
    return math.ceil(quantity(value) * 1000)


def int_value(value: Any) -> int:
    return math.ceil(quantity(value))


class Resource:
    """Amounts of compute resources: cpu in millicores, the rest in base units."""

    __slots__ = ("allowed_pods", "ephemeral_storage", "memory", "milli_cpu", "scalar")

    def __init__(self, milli_cpu: int = 0, memory: int = 0, ephemeral_storage: int = 0, allowed_pods: int = 0) -> None:
        self.milli_cpu = milli_cpu
        self.memory = memory
        self.ephemeral_storage = ephemeral_storage
        self.allowed_pods = allowed_pods
        self.scalar: dict[str, int] = {}

    @classmethod
    def from_list(cls, rl: Mapping[str, Any] | None) -> Resource:
        r = cls()
        for name, q in (rl or {}).items():
            r.set(name, q)
        return r

    def set(self, name: str, q: Any) -> None:
        if name == CPU:
            self.milli_cpu = milli_value(q)
        elif name == MEMORY:
            self.memory = int_value(q)
        elif name == EPHEMERAL_STORAGE:
            self.ephemeral_storage = int_value(q)
        elif name == PODS:
            self.allowed_pods = int_value(q)
        else:
            self.scalar[name] = int_value(q)

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pods
        return self.scalar.get(name, 0)

    def add(self, other: Resource, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + sign * v

    def set_max(self, other: Resource) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for k, v in other.scalar.items():
            self.scalar[k] = max(self.scalar.get(k, 0), v)

    def clone(self) -> Resource:
        r = Resource(self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pods)
        r.scalar = dict(self.scalar)
        return r

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage or any(self.scalar.values()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resource):
            return NotImplemented
        return (self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pods, self.scalar) == (
            other.milli_cpu,
            other.memory,
            other.ephemeral_storage,
            other.allowed_pods,
            other.scalar,
        )

    def __repr__(self) -> str:
        return f"Resource(cpu={self.milli_cpu}m, memory={self.memory}, pods={self.allowed_pods}, scalar={self.scalar})"


# -- label selectors -------------------------------------------------------------------------------


class Selector:
    """A compiled metav1.LabelSelector. ``nothing``: a nil selector in a context where that
    selects no object (affinity terms, spread constraints)."""

    __slots__ = ("exprs", "match_labels", "nothing")

    def __init__(
        self,
        match_labels: tuple[tuple[str, str], ...] = (),
        exprs: tuple[tuple[str, str, frozenset[str]], ...] = (),
        nothing: bool = False,
    ) -> None:
        self.match_labels = match_labels
        self.exprs = exprs
        self.nothing = nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        for k, v in self.match_labels:
            if labels.get(k) != v:
                return False
        for key, op, values in self.exprs:
            if op == "In":
                if labels.get(key) not in values:
                    return False
            elif op == "NotIn":
                if key in labels and labels[key] in values:
                    return False
            elif op == "Exists":
                if key not in labels:
                    return False
            elif op == "DoesNotExist":
                if key in labels:
                    return False
            else:  # an unknown operator selects nothing, as upstream's conversion error does
                return False
        return True

    def empty(self) -> bool:
        return not self.nothing and not self.match_labels and not self.exprs

    def __repr__(self) -> str:
        return f"Selector({self.match_labels}, {self.exprs}, nothing={self.nothing})"


NOTHING = Selector(nothing=True)
EVERYTHING = Selector()


def compile_selector(sel: Mapping[str, Any] | None, nil_matches: bool = False) -> Selector:
    if sel is None:
        return EVERYTHING if nil_matches else NOTHING
    labels = tuple(sorted((str(k), str(v)) for k, v in (sel.get("matchLabels") or {}).items()))
    exprs = tuple(
        (str(e.get("key", "")), str(e.get("operator", "")), frozenset(str(v) for v in e.get("values") or ()))
        for e in sel.get("matchExpressions") or ()
    )
    return Selector(labels, exprs)


def merge_selectors(selectors: Iterable[Selector]) -> Selector:
    """All requirements of every selector (an AND), as upstream builds default spread selectors."""
    labels: list[tuple[str, str]] = []
    exprs: list[tuple[str, str, frozenset[str]]] = []
    for s in selectors:
        if s.nothing:
            return NOTHING
        labels.extend(s.match_labels)
        exprs.extend(s.exprs)
    return Selector(tuple(labels), tuple(exprs))


# -- pod affinity terms ------------------------------------------------------------------------------


class AffinityTerm:
    """A compiled PodAffinityTerm; ``namespaces`` None with ``ns_selector`` None never happens
    (an empty list means the pod's own namespace)."""

    __slots__ = ("namespaces", "ns_selector", "selector", "topology_key", "weight")

    def __init__(self, term: Obj, pod_namespace: str, weight: int = 0) -> None:
        names = frozenset(term.get("namespaces") or ())
        ns_sel = term.get("namespaceSelector")
        self.ns_selector: Selector | None = None if ns_sel is None else compile_selector(ns_sel)
        if not names and ns_sel is None:
            names = frozenset((pod_namespace,))
        self.namespaces = names
        self.selector = compile_selector(term.get("labelSelector"))
        # matchLabelKeys / mismatchLabelKeys: the incoming pod's values become requirements
        self.topology_key = str(term.get("topologyKey") or "")
        self.weight = weight

    def add_label_keys(self, term: Obj, labels: Mapping[str, str]) -> None:
        extra: list[tuple[str, str, frozenset[str]]] = []
        for key in term.get("matchLabelKeys") or ():
            if key in labels:
                extra.append((key, "In", frozenset((labels[key],))))
        for key in term.get("mismatchLabelKeys") or ():
            if key in labels:
                extra.append((key, "NotIn", frozenset((labels[key],))))
        if extra and not self.selector.nothing:
            self.selector = Selector(self.selector.match_labels, self.selector.exprs + tuple(extra))

    def matches(self, pod: PodInfo, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
        if pod.namespace not in self.namespaces:
            if self.ns_selector is None:
                return False
            if not self.ns_selector.empty() and not self.ns_selector.matches(ns_labels.get(pod.namespace) or {}):
                return False
        return self.selector.matches(pod.labels)


def _terms(pod_ns: str, labels: Mapping[str, str], terms: Iterable[Obj]) -> list[AffinityTerm]:
    out = []
    for t in terms:
        at = AffinityTerm(t, pod_ns)
        at.add_label_keys(t, labels)
        out.append(at)
    return out


def _weighted(pod_ns: str, labels: Mapping[str, str], terms: Iterable[Obj]) -> list[AffinityTerm]:
    out = []
    for wt in terms:
        t = wt.get("podAffinityTerm") or {}
        at = AffinityTerm(t, pod_ns, int(wt.get("weight") or 0))
        at.add_label_keys(t, labels)
        out.append(at)
    return out


# -- pods --------------------------------------------------------------------------------------------


def pod_key(pod: Obj) -> str:
    md = pod.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name', '')}"


def pod_requests(spec: Obj) -> tuple[Resource, int, int]:
    """(effective requests, non-zero cpu, non-zero memory) of a pod spec, as upstream computes them:
    the sum over containers (plus restartable init containers, which keep running), at least the
    largest plain init container (which runs alone, beside the sidecars started before it),
    plus the pod overhead. The non-zero variant counts request-less containers at the defaults."""
    total = Resource()
    nz_cpu = nz_mem = 0
    for c in spec.get("containers") or ():
        req = (c.get("resources") or {}).get("requests") or {}
        r = Resource.from_list(req)
        total.add(r)
        nz_cpu += r.milli_cpu if CPU in req else DEFAULT_MILLI_CPU_REQUEST
        nz_mem += r.memory if MEMORY in req else DEFAULT_MEMORY_REQUEST
    inits = spec.get("initContainers") or ()
    if inits:
        sidecars = Resource()
        init_max = Resource()
        for c in inits:
            r = Resource.from_list((c.get("resources") or {}).get("requests"))
            if c.get("restartPolicy") == "Always":
                sidecars.add(r)
                total.add(r)
                peak = sidecars
            else:
                peak = sidecars.clone()
                peak.add(r)
            init_max.set_max(peak)
        total.set_max(init_max)
    overhead = spec.get("overhead")
    if overhead:
        o = Resource.from_list(overhead)
        total.add(o)
        nz_cpu += o.milli_cpu
        nz_mem += o.memory
    return total, nz_cpu, nz_mem


ANY_IP = "0.0.0.0"


def host_ports(spec: Obj) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) the pod's containers claim on their node."""
    out = []
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or ():
            hp = int(p.get("hostPort") or 0)
            if hp > 0:
                out.append((str(p.get("hostIP") or ANY_IP), str(p.get("protocol") or "TCP"), hp))
    return out


class PodInfo:
    __slots__ = (
        "host_ports",
        "key",
        "labels",
        "name",
        "namespace",
        "node_name",
        "non_zero_cpu",
        "non_zero_mem",
        "pod",
        "preferred_affinity",
        "preferred_anti_affinity",
        "priority",
        "requests",
        "required_affinity",
        "required_anti_affinity",
        "spec",
        "start_time",
        "terminating",
        "uid",
    )

    def __init__(self, pod: Obj) -> None:
        self.pod = pod
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.spec: Obj = spec
        self.namespace: str = md.get("namespace") or ""
        self.name: str = md.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = md.get("uid") or ""
        self.labels: dict[str, str] = md.get("labels") or {}
        self.priority: int = int(spec.get("priority") or 0)
        self.node_name: str = spec.get("nodeName") or ""
        self.requests, self.non_zero_cpu, self.non_zero_mem = pod_requests(spec)
        self.host_ports = host_ports(spec)
        self.terminating = bool(md.get("deletionTimestamp"))
        self.start_time: str = (pod.get("status") or {}).get("startTime") or md.get("creationTimestamp") or ""
        aff = spec.get("affinity") or {}
        pa = aff.get("podAffinity") or {}
        paa = aff.get("podAntiAffinity") or {}
        ns, labels = self.namespace, self.labels
        self.required_affinity = _terms(ns, labels, pa.get("requiredDuringSchedulingIgnoredDuringExecution") or ())
        self.required_anti_affinity = _terms(
            ns, labels, paa.get("requiredDuringSchedulingIgnoredDuringExecution") or ()
        )
        self.preferred_affinity = _weighted(ns, labels, pa.get("preferredDuringSchedulingIgnoredDuringExecution") or ())
        self.preferred_anti_affinity = _weighted(
            ns, labels, paa.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        )

    @staticmethod
    def key_of(pod: Obj) -> str:
        md = pod.get("metadata") or {}
        return f"{md.get('namespace') or ''}/{md.get('name') or ''}"

    def on_node(self, node_name: str) -> PodInfo:
        """A copy placed on ``node_name`` (an assumed pod: the API object still has no nodeName)."""
        c = object.__new__(PodInfo)
        for slot in PodInfo.__slots__:
            object.__setattr__(c, slot, getattr(self, slot))
        c.node_name = node_name
        return c

    def has_affinity(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )

    def __repr__(self) -> str:
        return f"PodInfo({self.key})"


# -- nodes -------------------------------------------------------------------------------------------


def normalized_image_name(name: str) -> str:
    """Images without a tag or digest mean ``:latest`` (upstream's normalization for ImageLocality)."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


class NodeInfo:
    """A node and the pods placed on it (bound and assumed), with running sums."""

    __slots__ = (
        "allocatable",
        "generation",
        "images",
        "labels",
        "name",
        "node",
        "non_zero_cpu",
        "non_zero_mem",
        "pods",
        "pods_with_affinity",
        "pods_with_required_anti_affinity",
        "requested",
        "taints",
        "unschedulable",
        "used_ports",
    )

    def __init__(self, node: Obj | None = None) -> None:
        self.node: Obj | None = None
        self.name = ""
        self.labels: dict[str, str] = {}
        self.taints: list[Obj] = []
        self.unschedulable = False
        self.allocatable = Resource()
        self.requested = Resource()
        self.non_zero_cpu = 0
        self.non_zero_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        # (protocol, port) -> host IPs in use (one entry per claiming pod)
        self.used_ports: dict[tuple[str, int], list[str]] = {}
        self.images: dict[str, int] = {}  # normalized image name -> size in bytes
        self.generation = 0
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Obj) -> None:
        self.node = node
        md = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.name = md.get("name") or ""
        self.labels = md.get("labels") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = Resource.from_list(status.get("allocatable") or status.get("capacity") or {})
        images: dict[str, int] = {}
        for img in status.get("images") or ():
            size = int(img.get("sizeBytes") or 0)
            for n in img.get("names") or ():
                images[normalized_image_name(n)] = size
        self.images = images
        self.generation += 1

    def add_pod(self, pi: PodInfo) -> None:
        self.pods[pi.key] = pi
        self.requested.add(pi.requests)
        self.non_zero_cpu += pi.non_zero_cpu
        self.non_zero_mem += pi.non_zero_mem
        if pi.has_affinity():
            self.pods_with_affinity[pi.key] = pi
        if pi.required_anti_affinity:
            self.pods_with_required_anti_affinity[pi.key] = pi
        for ip, proto, port in pi.host_ports:
            self.used_ports.setdefault((proto, port), []).append(ip)
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        pi = self.pods.pop(key, None)
        if pi is None:
            return None
        self.requested.add(pi.requests, -1)
        self.non_zero_cpu -= pi.non_zero_cpu
        self.non_zero_mem -= pi.non_zero_mem
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        for ip, proto, port in pi.host_ports:
            ips = self.used_ports.get((proto, port))
            if ips is not None:
                if ip in ips:
                    ips.remove(ip)
                if not ips:
                    del self.used_ports[(proto, port)]
        self.generation += 1
        return pi

    def port_conflict(self, ports: list[tuple[str, str, int]]) -> bool:
        for ip, proto, port in ports:
            used = self.used_ports.get((proto, port))
            if not used:
                continue
            if ip == ANY_IP or ANY_IP in used or ip in used:
                return True
        return False

    def clone(self) -> NodeInfo:
        c = NodeInfo()
        c.node, c.name, c.labels, c.taints = self.node, self.name, self.labels, self.taints
        c.unschedulable, c.allocatable = self.unschedulable, self.allocatable
        c.requested = self.requested.clone()
        c.non_zero_cpu, c.non_zero_mem = self.non_zero_cpu, self.non_zero_mem
        c.pods = dict(self.pods)
        c.pods_with_affinity = dict(self.pods_with_affinity)
        c.pods_with_required_anti_affinity = dict(self.pods_with_required_anti_affinity)
        c.used_ports = {k: list(v) for k, v in self.used_ports.items()}
        c.images = self.images
        c.generation = self.generation
        return c

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)}, requested={self.requested})"
