"""The scheduling framework's contracts (kube-scheduler's framework, in Python).

One small Protocol per extension point. Plugins never raise to say "no": they return a
:class:`Status` (code, reasons, plugin name). Hot-path plugins return the shared :data:`SUCCESS`
so a passing check allocates nothing.

A scheduling cycle for one pod: PreFilter → Filter (per node) → PostFilter (only when no node
fits: preemption) → PreScore → Score (per node) → NormalizeScore → pick a node → Reserve →
Permit; then, concurrently with the next pod's cycle, the binding cycle: PreBind → Bind → PostBind.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kubeha.scheduler.nodeinfo import MAX_NODE_SCORE, NodeInfo, PodInfo

if TYPE_CHECKING:
    from kubeha.client.rest import ApiClient
    from kubeha.machinery.events import EventRecorder

__all__ = ["MAX_NODE_SCORE", "NodeInfo", "PodInfo"]

MIN_NODE_SCORE = 0


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2  # another pod leaving (preemption) may help
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3  # nothing but a change to the node or pod helps
    WAIT = 4  # Permit: hold the pod
    SKIP = 5  # PreFilter/PreScore: this plugin has nothing to do for the pod; Bind: not mine


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_skip(self) -> bool:
        return self.code == Code.SKIP

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)


SUCCESS = Status()
SKIP = Status(Code.SKIP)


def unschedulable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons, plugin)


def unresolvable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


def error(plugin: str, *reasons: str) -> Status:
    return Status(Code.ERROR, reasons, plugin)


class CycleState:
    """Per-pod, per-cycle scratch space plugins share between their extension points."""

    __slots__ = ("data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()  # plugins whose PreFilter said Skip
        self.skip_score: set[str] = set()

    def read(self, key: str) -> Any:
        return self.data.get(key)

    def write(self, key: str, value: Any) -> None:
        self.data[key] = value

    def clone(self) -> CycleState:
        c = CycleState()
        c.data = {k: (v.clone() if hasattr(v, "clone") else v) for k, v in self.data.items()}
        c.skip_filter = set(self.skip_filter)
        c.skip_score = set(self.skip_score)
        return c


# -- cluster events (queueing hints, lite) ------------------------------------------------------------


class Resource_(enum.Enum):
    POD = "Pod"
    ASSIGNED_POD = "AssignedPod"
    NODE = "Node"


class Action(enum.IntFlag):
    ADD = 1
    DELETE = 2
    UPDATE_NODE_ALLOCATABLE = 4
    UPDATE_NODE_LABEL = 8
    UPDATE_NODE_TAINT = 16  # taints or spec.unschedulable
    UPDATE_NODE_CONDITION = 32
    UPDATE_POD_LABEL = 64
    UPDATE_POD_SCALE_DOWN = 128  # requests went down (in-place resize)
    UPDATE = 4 | 8 | 16 | 32 | 64 | 128
    ALL = 255


@dataclass(frozen=True)
class ClusterEvent:
    resource: Resource_
    action: Action
    label: str = ""

    def covers(self, other: ClusterEvent) -> bool:
        """Whether a plugin registered for ``self`` cares about the event ``other``."""
        return self.resource == other.resource and bool(self.action & other.action)


NODE_ADD = ClusterEvent(Resource_.NODE, Action.ADD, "NodeAdd")
ASSIGNED_POD_DELETE = ClusterEvent(Resource_.ASSIGNED_POD, Action.DELETE, "AssignedPodDelete")
UNSCHEDULABLE_TIMEOUT = ClusterEvent(Resource_.POD, Action.ALL, "UnschedulableTimeout")


# -- what plugins can reach ---------------------------------------------------------------------------


class Snapshot:
    """The cluster as one scheduling cycle sees it.

    The cycle runs without awaiting between taking the snapshot and reserving the chosen node,
    so the snapshot can share the cache's NodeInfo objects instead of copying them: nothing else
    runs on the event loop meanwhile. The lists are rebuilt only when nodes come or go.
    """

    def __init__(self) -> None:
        self.node_infos: list[NodeInfo] = []
        self.node_map: dict[str, NodeInfo] = {}
        self.have_pods_with_affinity: list[NodeInfo] = []
        self.have_pods_with_required_anti_affinity: list[NodeInfo] = []
        self.namespace_labels: Mapping[str, Mapping[str, str]] = {}
        self.image_nodes: Mapping[str, int] = {}  # normalized image name -> nodes that have it
        self.label_keys: Mapping[str, int] = {}  # node label key -> nodes that have it
        self.generation = -1

    def get(self, name: str) -> NodeInfo | None:
        return self.node_map.get(name)

    def __len__(self) -> int:
        return len(self.node_infos)


class Handle(Protocol):
    """The framework as plugins see it (upstream's framework.Handle, the parts we need)."""

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def client(self) -> ApiClient | None: ...

    @property
    def recorder(self) -> EventRecorder | None: ...

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status: ...

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, to_add: PodInfo, node: NodeInfo) -> Status: ...

    def run_pre_filter_remove_pod(
        self, state: CycleState, pod: PodInfo, to_remove: PodInfo, node: NodeInfo
    ) -> Status: ...

    def owner_selectors(self, pod: PodInfo) -> list[Any]: ...


# -- extension points ------------------------------------------------------------------------------


@dataclass(order=True)
class QueuedPodInfo:
    """A pod waiting in the scheduling queue, with its scheduling history."""

    pod_info: PodInfo = field(compare=False)
    timestamp: float = field(compare=False, default=0.0)  # when it (re-)entered the queue
    initial_attempt_timestamp: float = field(compare=False, default=0.0)
    attempts: int = field(compare=False, default=0)
    unschedulable_plugins: set[str] = field(compare=False, default_factory=set)
    pending_plugins: set[str] = field(compare=False, default_factory=set)
    scheduling_cycle: int = field(compare=False, default=0)
    gated: bool = field(compare=False, default=False)

    @property
    def key(self) -> str:
        return self.pod_info.key

    @property
    def priority(self) -> int:
        return self.pod_info.priority


@dataclass
class PreFilterResult:
    """PreFilter may narrow the nodes to try (NodeAffinity with metadata.name terms, NodeName)."""

    node_names: set[str] | None = None  # None: all nodes

    def merge(self, other: PreFilterResult | None) -> PreFilterResult:
        if other is None or other.node_names is None:
            return self
        if self.node_names is None:
            return PreFilterResult(set(other.node_names))
        return PreFilterResult(self.node_names & other.node_names)


@dataclass
class PostFilterResult:
    nominated_node_name: str = ""


class Plugin(Protocol):
    name: str


@runtime_checkable
class QueueSortPlugin(Protocol):
    name: str

    def less(self, a: QueuedPodInfo, b: QueuedPodInfo) -> bool: ...


@runtime_checkable
class PreEnqueuePlugin(Protocol):
    """Decides whether a pod may enter the active queue at all (SchedulingGates)."""

    name: str

    def pre_enqueue(self, pod: PodInfo) -> Status: ...


@runtime_checkable
class PreFilterPlugin(Protocol):
    name: str

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]: ...


@runtime_checkable
class PreFilterExtensions(Protocol):
    """Lets preemption ask "would the pod fit if this pod were (not) there" without a new PreFilter."""

    name: str

    def add_pod(self, state: CycleState, pod: PodInfo, to_add: PodInfo, node: NodeInfo) -> Status: ...

    def remove_pod(self, state: CycleState, pod: PodInfo, to_remove: PodInfo, node: NodeInfo) -> Status: ...


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status: ...


@runtime_checkable
class PostFilterPlugin(Protocol):
    name: str

    async def post_filter(
        self, state: CycleState, pod: PodInfo, statuses: dict[str, Status]
    ) -> tuple[PostFilterResult | None, Status]: ...


@runtime_checkable
class PreScorePlugin(Protocol):
    name: str

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    """A Score plugin whose raw scores need scaling to 0..100 over all nodes of the cycle."""

    name: str

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> Status: ...


@runtime_checkable
class ReservePlugin(Protocol):
    name: str

    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None: ...


@runtime_checkable
class PermitPlugin(Protocol):
    name: str

    def permit(self, state: CycleState, pod: PodInfo, node_name: str) -> tuple[Status, float]: ...


@runtime_checkable
class PreBindPlugin(Protocol):
    name: str

    async def pre_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...


@runtime_checkable
class BindPlugin(Protocol):
    name: str

    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...


@runtime_checkable
class PostBindPlugin(Protocol):
    name: str

    def post_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> None: ...


@runtime_checkable
class EnqueueExtensions(Protocol):
    """Which cluster events may make a pod this plugin rejected schedulable (queueing hints, lite)."""

    name: str

    def events_to_register(self) -> list[ClusterEvent]: ...


EXTENSION_POINTS: dict[str, type] = {
    "preEnqueue": PreEnqueuePlugin,
    "queueSort": QueueSortPlugin,
    "preFilter": PreFilterPlugin,
    "filter": FilterPlugin,
    "postFilter": PostFilterPlugin,
    "preScore": PreScorePlugin,
    "score": ScorePlugin,
    "reserve": ReservePlugin,
    "permit": PermitPlugin,
    "preBind": PreBindPlugin,
    "bind": BindPlugin,
    "postBind": PostBindPlugin,
}
