"""ServiceAccount: every pod runs as a service account that exists (``default`` unless named), and
gets the projected API-access volume (token, cluster CA, namespace) mounted where client libraries
look for it, unless automounting is switched off (upstream's plugin/pkg/admission/serviceaccount)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from kubeha.api.schema import Obj
from kubeha.apiserver.admission import CREATE, Attributes, MutatingPlugin, ValidatingPlugin, forbidden, register_plugin
from kubeha.apiserver.admission import lookup as lk

DEFAULT_SA = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION_SECONDS = 3607  # upstream: one hour plus the 7 s a kubelet may lag refreshing
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# k8s.io/apimachinery/pkg/util/rand's alphabet: no vowels (no words), no confusable characters
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
# the default service account is created by a controller: wait for it a little, as upstream
DEFAULT_SA_ATTEMPTS = 10


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_ALPHANUMS) for _ in range(n))


def token_volume(name: str) -> Obj:
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


def _is_mirror(pod: Obj) -> bool:
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def should_automount(pod: Obj, sa: Obj | None) -> bool:
    """The pod's setting wins; then the service account's; the default is to mount."""
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if sa is not None and sa.get("automountServiceAccountToken") is not None:
        return bool(sa["automountServiceAccountToken"])
    return True


def mount_token(pod: Obj) -> None:
    """Add the API-access volume and mount it into every container and init container."""
    spec = pod.setdefault("spec", {})
    volumes: list[Obj] = spec.setdefault("volumes", [])
    names = {v.get("name") for v in volumes}
    name = next((v["name"] for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), "")
    if not name:
        name = VOLUME_PREFIX + random_suffix()
        while name in names:
            name = VOLUME_PREFIX + random_suffix()
        volumes.append(token_volume(name))
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            mounts: list[Obj] = c.setdefault("volumeMounts", [])
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue  # the container provides its own
            mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})


class ServiceAccount(MutatingPlugin, ValidatingPlugin):
    def handles(self, attrs: Attributes) -> bool:
        return attrs.is_("", "pods") and attrs.operation == CREATE and attrs.obj is not None

    async def _service_account(self, namespace: str, name: str) -> Obj | None:
        info = lk.resource("", "v1", "serviceaccounts")
        sa = await lk.cached_get(self.ctx, info, namespace, name)
        if sa is not None:
            return sa
        attempts = DEFAULT_SA_ATTEMPTS if name == DEFAULT_SA else 1
        pause = random.uniform(0.1, 0.2)
        for i in range(attempts):
            if i:
                await asyncio.sleep(pause)
            sa = await lk.live_get(self.ctx, info, namespace, name)
            if sa is not None:
                return sa
        return None

    async def admit(self, attrs: Attributes) -> None:
        pod: Any = attrs.obj
        spec = pod.setdefault("spec", {})
        if _is_mirror(pod):
            return  # validated below: mirror pods may not use service accounts
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT_SA
        spec["serviceAccount"] = spec["serviceAccountName"]
        sa_name = spec["serviceAccountName"]
        sa = await self._service_account(attrs.namespace, sa_name)
        if sa is None:
            raise forbidden(
                attrs,
                f'error looking up service account {attrs.namespace}/{sa_name}: serviceaccount "{sa_name}" not found',
            )
        if should_automount(pod, sa):
            mount_token(pod)

    async def validate(self, attrs: Attributes) -> None:
        pod: Any = attrs.obj
        spec = pod.get("spec") or {}
        if _is_mirror(pod):
            if spec.get("serviceAccountName") or spec.get("serviceAccount"):
                raise forbidden(attrs, "a mirror pod may not reference service accounts")
            for v in spec.get("volumes") or []:
                if v.get("secret") or v.get("configMap") or v.get("projected"):
                    what = "secret" if v.get("secret") else "configmap" if v.get("configMap") else "projected"
                    raise forbidden(attrs, f"a mirror pod may not reference {what} volumes")
            return
        if not spec.get("serviceAccountName"):
            raise forbidden(attrs, "no service account specified for pod " + f"{attrs.namespace}/{attrs.object_name()}")


register_plugin("ServiceAccount", ServiceAccount)
