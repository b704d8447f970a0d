"""DefaultTolerationSeconds: pods tolerate an unready or unreachable node for 300 s before the
node lifecycle controller evicts them (upstream's plugin/pkg/admission/defaulttolerationseconds)."""

from __future__ import annotations

from typing import Any

from kubeha.apiserver.admission import CREATE, Attributes, MutatingPlugin, register_plugin

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


def _tolerates(tolerations: list[Any], key: str) -> bool:
    """Whether some toleration already covers ``key``'s NoExecute taint (upstream's check)."""
    for t in tolerations:
        if not isinstance(t, dict):
            continue
        key_ok = t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists")
        if key_ok and t.get("effect") in (None, "", "NoExecute"):
            return True
    return False


def add_default_tolerations(pod: Any, seconds: int = DEFAULT_SECONDS) -> None:
    spec = pod.setdefault("spec", {})
    tolerations = spec.get("tolerations") or []
    for key in (NOT_READY, UNREACHABLE):
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})
    spec["tolerations"] = tolerations


class DefaultTolerationSeconds(MutatingPlugin):
    def handles(self, attrs: Attributes) -> bool:
        return attrs.is_("", "pods") and attrs.operation == CREATE and attrs.obj is not None

    async def admit(self, attrs: Attributes) -> None:
        add_default_tolerations(attrs.obj)


register_plugin("DefaultTolerationSeconds", DefaultTolerationSeconds)
