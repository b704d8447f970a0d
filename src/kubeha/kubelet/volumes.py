"""Pod volumes on the node, under ``<root-dir>/pods/<uid>/volumes/<plugin>/<name>``.

emptyDir (a directory; ``medium: Memory`` mounts a tmpfs sized by ``sizeLimit``), hostPath (with
its ``type`` checks and the *OrCreate types), and the file-projecting kinds: configMap, secret,
downwardAPI and projected (those three plus serviceAccountToken through the TokenRequest API).

Projected files are written as upstream's atomic writer does, so a running container never sees
half an update: the payload goes into a fresh hidden ``..<timestamp>`` directory, the ``..data``
symlink is swapped to it with one rename, and each visible file is a symlink ``<key> ->
..data/<key>``. ``refresh`` on every pod sync rewrites only what changed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubeha.api.core.pod import parse_quantity
from kubeha.kubelet import env as envmod
from kubeha.kubelet.runtime import Mount

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Awaitable[Obj | None]]  # (configmaps|secrets, ns, name)
TokenRequester = Callable[[str, str, Obj], Awaitable[str]]  # (ns, serviceaccount, TokenRequest spec)
DATA = "..data"
DEFAULT_MODE = 0o644
TOKEN_REFRESH = 0.8  # rotate a token once 80% of its lifetime has passed, as upstream


class VolumeError(ValueError):
    """A volume cannot be set up (missing configMap/secret, bad hostPath type)."""


# -- the atomic writer -----------------------------------------------------------------------------


def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make ``target`` hold exactly ``files`` (relative path -> (content, mode)); returns whether
    anything changed. Readers always see either the old or the new set."""
    target.mkdir(parents=True, exist_ok=True)
    data = target / DATA
    current = _read_current(data)
    if current == files:
        return False
    new_dir = Path(tempfile.mkdtemp(prefix=f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.", dir=target))
    new_dir.chmod(0o755)
    for rel, (content, mode) in files.items():
        path = new_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    tmp_link = target / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(new_dir.name)
    old = os.readlink(data) if data.is_symlink() else None
    os.replace(tmp_link, data)  # the swap: one rename
    # visible names: a link per top-level entry into ..data; stale ones go
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{top}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old and old != new_dir.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _read_current(data: Path) -> dict[str, tuple[bytes, int]] | None:
    if not data.is_dir():
        return None
    out: dict[str, tuple[bytes, int]] = {}
    for root, _, names in os.walk(data, followlinks=True):
        for n in names:
            p = Path(root) / n
            out[str(p.relative_to(data))] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


# -- payloads --------------------------------------------------------------------------------------


def _mode(item: Obj, default: int) -> int:
    m = item.get("mode")
    return int(m) if isinstance(m, int) else default


def key_files(
    data: dict[str, bytes], items: list[Obj] | None, default_mode: int, what: str, optional: bool = False
) -> dict[str, tuple[bytes, int]]:
    """The files of a configMap/secret: every key, or only ``items`` (key -> path, mode). An
    ``optional`` source skips item keys it lacks (upstream's makePayload); else that fails."""
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"configuration error: key {key!r} not found in {what}")
        out[str(item.get("path") or key)] = (data[key], _mode(item, default_mode))
    return out


def configmap_data(cm: Obj) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return out


def secret_data(secret: Obj) -> dict[str, bytes]:
    out = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return out


def downward_files(
    pod: Obj, items: list[Obj], default_mode: int, allocatable: dict[str, str]
) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    containers = {str(c.get("name")): c for c in (pod.get("spec") or {}).get("containers") or ()}
    for item in items:
        path = str(item.get("path"))
        try:
            if item.get("fieldRef"):
                value = envmod.field_value(pod, str(item["fieldRef"].get("fieldPath")))
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                c: Obj = containers.get(str(ref.get("containerName"))) or next(iter(containers.values()), {})
                value = envmod.resource_value(c, ref, allocatable)
            else:
                continue
        except envmod.EnvError as e:
            raise VolumeError(str(e)) from e
        out[path] = (value.encode(), _mode(item, default_mode))
    return out


def hostpath_check(path: str, kind: str) -> None:
    """Apply hostPath ``type`` (create for *OrCreate, else check)."""
    p = Path(path)
    if kind == "DirectoryOrCreate":
        p.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch(0o644)
    checks = {
        "Directory": p.is_dir,
        "File": p.is_file,
        "Socket": lambda: p.is_socket(),
        "CharDevice": lambda: p.is_char_device(),
        "BlockDevice": lambda: p.is_block_device(),
    }
    check = checks.get(kind)
    if check is not None and not check():
        raise VolumeError(f"hostPath type check failed: {path} is not a {kind}")


def empty_dir(d: Path, memory: bool, size: int) -> None:
    d.mkdir(mode=0o777, parents=True, exist_ok=True)
    d.chmod(0o777)
    if memory and not os.path.ismount(d):
        opts = "mode=0777" + (f",size={size}" if size else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], check=True, capture_output=True)


def unmount_all(base: Path) -> None:
    if not base.is_dir():
        return
    for d in base.iterdir():
        if os.path.ismount(d):
            subprocess.run(["umount", str(d)], check=False, capture_output=True)


# -- the manager -----------------------------------------------------------------------------------


class VolumeManager:
    def __init__(
        self,
        root_dir: str,
        lookup: Lookup,
        request_token: TokenRequester | None = None,
        allocatable: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.root = Path(root_dir) / "pods"
        self.lookup = lookup
        self.request_token = request_token
        self.allocatable = allocatable
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}  # (uid, vol, path) -> (token, refresh at)

    def volume_dir(self, uid: str, plugin: str, name: str) -> Path:
        return self.root / uid / "volumes" / f"kubernetes.io~{plugin}" / name

    async def refresh(self, pod: Obj) -> None:
        """Set up every volume; contents that changed are swapped in. Errors are logged here
        (mounts() reports them for containers still to start)."""
        try:
            await self.setup(pod)
        except (VolumeError, OSError) as e:
            log.info("volumes of %s: %s", (pod.get("metadata") or {}).get("name"), e)

    async def setup(self, pod: Obj) -> dict[str, str]:
        """Materialise all volumes; returns volume name -> host path."""
        meta = pod.get("metadata") or {}
        uid, ns = str(meta.get("uid")), str(meta.get("namespace") or "default")
        out: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            out[str(vol.get("name"))] = await self._setup_one(pod, uid, ns, vol)
        return out

    async def _setup_one(self, pod: Obj, uid: str, ns: str, vol: Obj) -> str:
        name = str(vol.get("name"))
        if "hostPath" in vol:
            hp = vol["hostPath"] or {}
            await asyncio.to_thread(hostpath_check, str(hp.get("path")), str(hp.get("type") or ""))
            return str(hp.get("path"))
        if "emptyDir" in vol:
            ed = vol["emptyDir"] or {}
            d = self.volume_dir(uid, "empty-dir", name)
            size = int(parse_quantity(ed["sizeLimit"])) if ed.get("sizeLimit") else 0
            await asyncio.to_thread(empty_dir, d, ed.get("medium") == "Memory", size)
            return str(d)
        if "configMap" in vol:
            src = vol["configMap"] or {}
            files = await self._source_files(ns, "configmaps", src)
            return await self._write(uid, "configmap", name, files)
        if "secret" in vol:
            src = vol["secret"] or {}
            files = await self._source_files(ns, "secrets", {**src, "name": src.get("secretName")})
            return await self._write(uid, "secret", name, files)
        if "downwardAPI" in vol:
            src = vol["downwardAPI"] or {}
            mode = int(src.get("defaultMode", DEFAULT_MODE))
            files = downward_files(pod, src.get("items") or [], mode, self.allocatable())
            return await self._write(uid, "downward-api", name, files)
        if "projected" in vol:
            src = vol["projected"] or {}
            mode = int(src.get("defaultMode", DEFAULT_MODE))
            files = {}
            for s in src.get("sources") or ():
                if s.get("configMap"):
                    files.update(await self._source_files(ns, "configmaps", {"defaultMode": mode, **s["configMap"]}))
                elif s.get("secret"):
                    files.update(await self._source_files(ns, "secrets", {"defaultMode": mode, **s["secret"]}))
                elif s.get("downwardAPI"):
                    files.update(downward_files(pod, s["downwardAPI"].get("items") or [], mode, self.allocatable()))
                elif s.get("serviceAccountToken"):
                    tok = await self._token(pod, uid, ns, name, s["serviceAccountToken"])
                    files[str(s["serviceAccountToken"].get("path") or "token")] = (tok.encode(), mode)
            return await self._write(uid, "projected", name, files)
        raise VolumeError(f"volume {name!r}: unsupported volume type")

    async def _source_files(self, ns: str, kind: str, src: Obj) -> dict[str, tuple[bytes, int]]:
        obj_name = str(src.get("name") or "")
        obj = await self.lookup(kind, ns, obj_name)
        what = f'{kind[:-1]} "{obj_name}"'
        if obj is None:
            if src.get("optional"):
                return {}
            raise VolumeError(f"{what} not found")
        data = configmap_data(obj) if kind == "configmaps" else secret_data(obj)
        return key_files(
            data, src.get("items"), int(src.get("defaultMode", DEFAULT_MODE)), what, bool(src.get("optional"))
        )

    async def _token(self, pod: Obj, uid: str, ns: str, vol: str, src: Obj) -> str:
        key = (uid, vol, str(src.get("path") or "token"))
        have = self._tokens.get(key)
        if have is not None and time.time() < have[1]:
            return have[0]
        if self.request_token is None:
            raise VolumeError("service account tokens are not available (no api-server client)")
        expiry = int(src.get("expirationSeconds") or 3607)
        meta = pod.get("metadata") or {}
        spec: Obj = {
            "expirationSeconds": expiry,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta.get("name"), "uid": meta.get("uid")},
        }
        if src.get("audience"):
            spec["audiences"] = [src["audience"]]
        sa = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        token = await self.request_token(ns, sa, spec)
        self._tokens[key] = (token, time.time() + expiry * TOKEN_REFRESH)
        return token

    async def _write(self, uid: str, plugin: str, name: str, files: dict[str, tuple[bytes, int]]) -> str:
        d = self.volume_dir(uid, plugin, name)
        await asyncio.to_thread(atomic_write, d, files)
        return str(d)

    async def mounts(self, pod: Obj, container: Obj) -> list[Mount]:
        """The container's volumeMounts as bind mounts (subPath resolved inside the volume)."""
        mounts = container.get("volumeMounts") or []
        if not mounts:
            return []
        paths = await self.setup(pod)
        out: list[Mount] = []
        for m in mounts:
            vol = str(m.get("name"))
            if vol not in paths:
                raise VolumeError(f"volumeMount {vol!r}: no such volume")
            host = paths[vol]
            sub = str(m.get("subPath") or "")
            if sub:
                if sub.startswith("/") or ".." in sub.split("/"):
                    raise VolumeError(f"invalid subPath {sub!r}")
                host = os.path.join(host, sub)
                await asyncio.to_thread(os.makedirs, host, 0o755, True)
            out.append(Mount(host, str(m.get("mountPath")), bool(m.get("readOnly"))))
        return out

    async def teardown(self, uid: str) -> None:
        """Unmount tmpfs emptyDirs (the pod directory itself goes with the sandbox)."""
        base = self.root / uid / "volumes" / "kubernetes.io~empty-dir"
        await asyncio.to_thread(unmount_all, base)
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]
