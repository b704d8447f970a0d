"""The in-tree plugins: name -> factory(args, handle), and upstream's default plugin set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeha.scheduler.plugins.basic import (
    ImageLocality,
    NodeName,
    NodePorts,
    NodeUnschedulable,
    PrioritySort,
    SchedulingGates,
    TaintToleration,
)
from kubeha.scheduler.plugins.interpodaffinity import InterPodAffinity
from kubeha.scheduler.plugins.nodeaffinity import NodeAffinity
from kubeha.scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from kubeha.scheduler.plugins.podtopologyspread import PodTopologySpread
from kubeha.scheduler.plugins.preemption import DefaultBinder, DefaultPreemption

Factory = Callable[[dict[str, Any], Any], Any]

REGISTRY: dict[str, Factory] = {
    "PrioritySort": lambda args, h: PrioritySort(),
    "SchedulingGates": lambda args, h: SchedulingGates(),
    "NodeUnschedulable": lambda args, h: NodeUnschedulable(),
    "NodeName": lambda args, h: NodeName(),
    "TaintToleration": lambda args, h: TaintToleration(),
    "NodeAffinity": lambda args, h: NodeAffinity(),
    "NodePorts": lambda args, h: NodePorts(),
    "NodeResourcesFit": lambda args, h: NodeResourcesFit(args),
    "PodTopologySpread": lambda args, h: PodTopologySpread(h, args),
    "InterPodAffinity": lambda args, h: InterPodAffinity(h, args),
    "DefaultPreemption": lambda args, h: DefaultPreemption(h, args),
    "NodeResourcesBalancedAllocation": lambda args, h: NodeResourcesBalancedAllocation(),
    "ImageLocality": lambda args, h: ImageLocality(h),
    "DefaultBinder": lambda args, h: DefaultBinder(h),
}

# Upstream's default multiPoint set, in its order, with its score weights (0: no score).
DEFAULT_PLUGINS: list[tuple[str, int]] = [
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
]

__all__ = ["DEFAULT_PLUGINS", "REGISTRY"]
