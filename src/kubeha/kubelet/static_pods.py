"""Static pods: pods from manifest files in ``--pod-manifest-path``, run by this kubelet alone
(even while the api-server is down) and mirrored in the API as mirror pods.

The directory is rescanned every few seconds; a file is parsed again only when its mtime or size
changed. As upstream: a static pod's name gets ``-<node name>`` appended, its uid is a hash of
the manifest (so an unchanged file keeps its pod across kubelet restarts and an edited one is a
new pod), and the annotations ``kubernetes.io/config.hash`` / ``config.source`` say where it came
from. Its mirror pod carries ``kubernetes.io/config.mirror: <hash>`` and is owned by the Node.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kubeha.api.core.pod import default_pod

log = logging.getLogger(__name__)

Obj = dict[str, Any]
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_MIRROR = "kubernetes.io/config.mirror"
CONFIG_SOURCE = "kubernetes.io/config.source"
SOURCE_FILE = "file"
SUFFIXES = (".yaml", ".yml", ".json")


def is_mirror(pod: Obj) -> bool:
    return CONFIG_MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})


def pod_hash(pod: Obj, node_name: str, source: str) -> str:
    """The static pod's uid: a hash of its manifest, the node and the file it came from."""
    h = hashlib.md5(usedforsecurity=False)
    h.update(json.dumps(pod, sort_keys=True, separators=(",", ":")).encode())
    h.update(node_name.encode())
    h.update(source.encode())
    return h.hexdigest()


def static_pod(manifest: Obj, node_name: str, source: str) -> Obj:
    """A manifest as the kubelet runs it (defaults, node binding, name suffix, uid, annotations)."""
    pod = copy.deepcopy(manifest)
    if pod.get("kind", "Pod") != "Pod":
        raise ValueError(f"{source}: kind {pod.get('kind')!r} is not Pod")
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    meta = pod.setdefault("metadata", {})
    if not meta.get("name"):
        raise ValueError(f"{source}: metadata.name is required")
    meta.setdefault("namespace", "default")
    spec = pod.setdefault("spec", {})
    spec["nodeName"] = node_name
    default_pod(pod)
    uid = pod_hash(pod, node_name, source)
    meta["name"] = f"{meta['name']}-{node_name}"
    meta["uid"] = uid
    meta.setdefault("annotations", {}).update({CONFIG_HASH: uid, CONFIG_SOURCE: SOURCE_FILE})
    pod.pop("status", None)
    return pod


def mirror_pod(pod: Obj, node_name: str, node_uid: str) -> Obj:
    """The API object that mirrors a static pod (no uid: the api-server gives it its own)."""
    mirror = copy.deepcopy(pod)
    meta = mirror["metadata"]
    meta.pop("uid", None)
    meta.pop("resourceVersion", None)
    meta["annotations"][CONFIG_MIRROR] = meta["annotations"][CONFIG_HASH]
    if node_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid, "controller": True}
        ]
    return mirror


def parse_file(path: Path) -> list[Obj]:
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        return [data] if isinstance(data, dict) else []
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


class StaticPodSource:
    """Scans the manifest directory; ``pods`` maps static pod uid → pod."""

    def __init__(self, path: str, node_name: str, period: float = 5.0) -> None:
        self.path = Path(path) if path else None
        self.node_name = node_name
        self.period = period
        self.pods: dict[str, Obj] = {}
        self._files: dict[str, tuple[float, int, list[Obj]]] = {}  # path -> (mtime, size, pods)
        self.scanned = False

    def scan(self) -> bool:
        """Rescan; True when the set of static pods changed."""
        self.scanned = True
        if self.path is None or not self.path.is_dir():
            changed = bool(self.pods)
            self.pods, self._files = {}, {}
            return changed
        seen: dict[str, tuple[float, int, list[Obj]]] = {}
        for entry in sorted(self.path.iterdir()):
            if entry.name.startswith(".") or entry.suffix not in SUFFIXES or not entry.is_file():
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            key = str(entry)
            old = self._files.get(key)
            if old is not None and old[0] == st.st_mtime and old[1] == st.st_size:
                seen[key] = old
                continue
            try:
                pods = [static_pod(m, self.node_name, key) for m in parse_file(entry)]
            except (OSError, ValueError, yaml.YAMLError) as e:
                log.warning("static pod manifest %s ignored: %s", entry, e)
                pods = []
            seen[key] = (st.st_mtime, st.st_size, pods)
        self._files = seen
        fresh = {p["metadata"]["uid"]: p for _, _, pods in seen.values() for p in pods}
        changed = fresh.keys() != self.pods.keys()
        self.pods = fresh
        return changed

    async def run(self, on_change: Callable[[], None]) -> None:
        while True:
            if await asyncio.to_thread(self.scan):
                on_change()
            await asyncio.sleep(self.period)
