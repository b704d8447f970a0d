"""Priority: a pod's priorityClassName resolves to its integer priority (and preemption policy)
from PriorityClass objects, the global default applying when none is named; at most one class may
be the global default (upstream's plugin/pkg/admission/priority)."""

from __future__ import annotations

from typing import Any

from kubeha.api.schema import Obj
from kubeha.apiserver.admission import (
    CREATE,
    UPDATE,
    Attributes,
    MutatingPlugin,
    ValidatingPlugin,
    forbidden,
    register_plugin,
)
from kubeha.apiserver.admission import lookup as lk

GROUP = "scheduling.k8s.io"


def _builtin(name: str) -> Obj | None:
    from kubeha.api.scheduling.v1 import system_priority_classes

    for pc in system_priority_classes():
        if pc["metadata"]["name"] == name:
            return pc
    return None


class Priority(MutatingPlugin, ValidatingPlugin):
    def handles(self, attrs: Attributes) -> bool:
        if attrs.subresource:
            return False
        if attrs.group == "" and attrs.resource == "pods":
            return attrs.operation == CREATE and attrs.obj is not None
        return attrs.group == GROUP and attrs.resource == "priorityclasses" and attrs.operation in (CREATE, UPDATE)

    def _info(self) -> Any:
        return lk.resource(GROUP, "v1", "priorityclasses")

    async def _classes(self) -> list[Obj]:
        return await lk.cached_list(self.ctx, self._info())

    async def _class(self, name: str) -> Obj | None:
        pc = await lk.get(self.ctx, self._info(), "", name)
        return pc if pc is not None else _builtin(name)

    async def admit(self, attrs: Attributes) -> None:
        if attrs.resource != "pods":
            return
        spec: Any = attrs.obj.setdefault("spec", {}) if attrs.obj is not None else {}
        name = spec.get("priorityClassName") or ""
        pc: Obj | None
        if name:
            pc = await self._class(name)
            if pc is None:
                raise forbidden(attrs, f"no PriorityClass with name {name} was found")
        else:
            defaults = sorted(
                (c for c in await self._classes() if c.get("globalDefault")), key=lambda c: -int(c.get("value") or 0)
            )
            pc = defaults[0] if defaults else None
            if pc is not None:
                spec["priorityClassName"] = pc["metadata"]["name"]
        value = int(pc.get("value") or 0) if pc is not None else 0
        if spec.get("priority") is not None and spec["priority"] != value:
            raise forbidden(
                attrs,
                f"the integer value of priority ({spec['priority']}) must not be provided in pod spec; priority "
                f"admission controller computed {value} from the given PriorityClass name",
            )
        spec["priority"] = value
        if pc is not None and pc.get("preemptionPolicy"):
            policy = pc["preemptionPolicy"]
            if spec.get("preemptionPolicy") not in (None, policy):
                raise forbidden(
                    attrs,
                    f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must not be provided in pod "
                    f"spec; priority admission controller computed {policy} from the given PriorityClass name",
                )
            spec["preemptionPolicy"] = policy

    async def validate(self, attrs: Attributes) -> None:
        if attrs.resource != "priorityclasses" or attrs.obj is None or not attrs.obj.get("globalDefault"):
            return
        me = attrs.object_name()
        for pc in await self._classes():
            other = pc["metadata"]["name"]
            if pc.get("globalDefault") and other != me:
                raise forbidden(
                    attrs, f"PriorityClass {other} is already marked as default. Only one default can exist"
                )


register_plugin("Priority", Priority)
