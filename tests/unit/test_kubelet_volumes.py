"""kubelet volumes (src/kubeha/kubelet/volumes.py): the file sets of configMap, secret,
downwardAPI and projected volumes (items, modes, optional sources), the ``..data`` atomic writer
on real temporary directories, hostPath types, emptyDir, subPath mounts and token refresh.

The API objects come from in-memory lookups: the volume code takes them as plain dicts."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from kubeha.kubelet import volumes as vol
from kubeha.kubelet.runtime import Mount

Obj = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def mode_of(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def visible(d: Path) -> dict[str, str]:
    """What a container sees: every non-hidden entry, followed through the links."""
    out: dict[str, str] = {}
    for root, _, names in os.walk(d, followlinks=True):
        rel_root = Path(root).relative_to(d)
        if rel_root.parts and rel_root.parts[0].startswith(".."):
            continue
        for n in names:
            rel = rel_root / n
            if rel.parts[0].startswith(".."):
                continue
            out[str(rel)] = (Path(root) / n).read_text()
    return out


# -- payloads ---------------------------------------------------------------------------------------


def test_key_files_all_keys_with_the_default_mode() -> None:
    files = vol.key_files({"a": b"1", "b": b"2"}, None, 0o640, 'configmap "cm"')
    assert files == {"a": (b"1", 0o640), "b": (b"2", 0o640)}


def test_key_files_items_choose_keys_paths_and_modes() -> None:
    data = {"a": b"1", "b": b"2", "c": b"3"}
    items = [{"key": "a", "path": "dir/x.conf", "mode": 0o400}, {"key": "b", "path": "y"}]
    files = vol.key_files(data, items, 0o644, 'configmap "cm"')
    assert files == {"dir/x.conf": (b"1", 0o400), "y": (b"2", 0o644)}  # c is not projected


def test_key_files_missing_item_key_fails_unless_the_source_is_optional() -> None:
    with pytest.raises(vol.VolumeError, match="'nope'"):
        vol.key_files({"a": b"1"}, [{"key": "nope", "path": "n"}], 0o644, 'configmap "cm"')
    # upstream: an optional source skips the keys it lacks (KeyToPath itself has no "optional")
    files = vol.key_files(
        {"a": b"1"}, [{"key": "nope", "path": "n"}, {"key": "a", "path": "a"}], 0o644, "x", optional=True
    )
    assert files == {"a": (b"1", 0o644)}


def test_configmap_data_joins_data_and_binary_data() -> None:
    cm = {"data": {"text": "hello"}, "binaryData": {"blob": b64(b"\x00\xff")}}
    assert vol.configmap_data(cm) == {"text": b"hello", "blob": b"\x00\xff"}
    assert vol.configmap_data({}) == {}


def test_secret_data_is_decoded() -> None:
    assert vol.secret_data({"data": {"pw": b64(b"s3cret\n")}}) == {"pw": b"s3cret\n"}


def test_downward_files_field_and_resource_refs() -> None:
    pod = {
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "uid": "u-1",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": 'say "hi"'},
        },
        "spec": {
            "containers": [
                {"name": "main", "resources": {"limits": {"cpu": "250m", "memory": "128Mi"}}},
                {"name": "side", "resources": {"requests": {"memory": "32Mi"}}},
            ]
        },
    }
    items = [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}, "mode": 0o600},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "cpu_m", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "side", "resource": "requests.memory", "divisor": "1Mi"}},
        # no limit on "side": the node's allocatable stands in, as upstream
        {"path": "side_mem", "resourceFieldRef": {"containerName": "side", "resource": "limits.memory"}},
    ]
    files = vol.downward_files(pod, items, 0o644, {"memory": "2Gi", "cpu": "4"})
    assert files["name"] == (b"web", 0o644)
    assert files["labels"] == (b'app="web"\ntier="front"', 0o600)  # sorted key="value" lines
    assert files["app"] == (b"web", 0o644)
    assert files["cpu_m"][0] == b"250"
    assert files["cpu"][0] == b"1"  # rounded up
    assert files["mem"][0] == b"32"
    assert files["side_mem"][0] == str(2 * 1024**3).encode()


def test_downward_annotations_are_quoted_as_upstream() -> None:
    # upstream formats each value with Go's %q: quotes and newlines are escaped
    pod = {"metadata": {"annotations": {"a": 'say "hi"', "b": "two\nlines"}}}
    files = vol.downward_files(pod, [{"path": "ann", "fieldRef": {"fieldPath": "metadata.annotations"}}], 0o644, {})
    assert files["ann"][0] == b'a="say \\"hi\\""\nb="two\\nlines"'


def test_downward_unsupported_field_is_a_volume_error() -> None:
    with pytest.raises(vol.VolumeError, match="unsupported fieldRef"):
        vol.downward_files({}, [{"path": "x", "fieldRef": {"fieldPath": "spec.nope"}}], 0o644, {})


# -- the atomic writer --------------------------------------------------------------------------------


def test_atomic_write_layout_contents_and_modes(tmp_path: Path) -> None:
    d = tmp_path / "vol"
    files = {"a": (b"A", 0o644), "sub/b": (b"B", 0o400)}
    assert vol.atomic_write(d, files) is True
    data = d / vol.DATA
    assert data.is_symlink()
    ts_dir = os.readlink(data)
    assert ts_dir.startswith("..") and "/" not in ts_dir  # relative, inside the volume
    # visible names are links into ..data, one per top-level entry
    assert os.readlink(d / "a") == "..data/a"
    assert os.readlink(d / "sub") == "..data/sub"
    assert visible(d) == {"a": "A", "sub/b": "B"}
    assert mode_of(d / "a") == 0o644 and mode_of(d / "sub" / "b") == 0o400
    assert mode_of(d / ts_dir) == 0o755


def test_atomic_write_unchanged_payload_touches_nothing(tmp_path: Path) -> None:
    d = tmp_path / "vol"
    files = {"a": (b"A", 0o644)}
    vol.atomic_write(d, files)
    before = os.readlink(d / vol.DATA)
    assert vol.atomic_write(d, dict(files)) is False
    assert os.readlink(d / vol.DATA) == before
    # a mode change alone is a change
    assert vol.atomic_write(d, {"a": (b"A", 0o600)}) is True
    assert mode_of(d / "a") == 0o600


def test_atomic_write_update_swaps_data_and_removes_stale_entries(tmp_path: Path) -> None:
    d = tmp_path / "vol"
    vol.atomic_write(d, {"keep": (b"1", 0o644), "gone": (b"2", 0o644), "dir/x": (b"3", 0o644)})
    old = os.readlink(d / vol.DATA)
    assert vol.atomic_write(d, {"keep": (b"1-new", 0o644), "new": (b"4", 0o644)}) is True
    new = os.readlink(d / vol.DATA)
    assert new != old
    assert not (d / old).exists()  # the previous payload directory is removed
    assert visible(d) == {"keep": "1-new", "new": "4"}
    assert not os.path.lexists(d / "gone") and not os.path.lexists(d / "dir")
    # only ..data, the one payload directory and the visible links remain
    assert sorted(p.name for p in d.iterdir()) == sorted([vol.DATA, new, "keep", "new"])


def test_atomic_write_empty_payload(tmp_path: Path) -> None:
    d = tmp_path / "vol"
    vol.atomic_write(d, {"a": (b"A", 0o644)})
    assert vol.atomic_write(d, {}) is True
    assert visible(d) == {}
    assert (d / vol.DATA).is_dir()


def test_atomic_write_readers_never_see_a_mix(tmp_path: Path) -> None:
    # a reader opening both files through the visible links while the writer swaps versions
    # always sees one version for both: the pair moves with the single ..data rename
    d = tmp_path / "vol"
    vol.atomic_write(d, {"x": (b"0", 0o644), "y": (b"0", 0o644)})
    mixed: list[tuple[str, str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = os.path.realpath(d / vol.DATA)  # what a reader resolving ..data once sees
            try:
                x, y = Path(data, "x").read_text(), Path(data, "y").read_text()
            except FileNotFoundError:
                continue  # that version was retired between the two reads: re-resolve
            if x != y:
                mixed.append((x, y))

    t = threading.Thread(target=read)
    t.start()
    try:
        for i in range(1, 200):
            v = str(i).encode()
            vol.atomic_write(d, {"x": (v, 0o644), "y": (v, 0o644)})
    finally:
        stop.set()
        t.join()
    assert mixed == []
    assert visible(d) == {"x": "199", "y": "199"}


# -- hostPath and emptyDir -------------------------------------------------------------------------------


def test_hostpath_types(tmp_path: Path) -> None:
    d = tmp_path / "made" / "dir"
    vol.hostpath_check(str(d), "DirectoryOrCreate")
    assert d.is_dir() and mode_of(d) == 0o755
    f = tmp_path / "other" / "file"
    vol.hostpath_check(str(f), "FileOrCreate")
    assert f.is_file() and f.read_bytes() == b""
    vol.hostpath_check(str(d), "Directory")
    vol.hostpath_check(str(f), "File")
    vol.hostpath_check(str(tmp_path / "anything"), "")  # no type: no check
    with pytest.raises(vol.VolumeError, match="is not a Directory"):
        vol.hostpath_check(str(f), "Directory")
    with pytest.raises(vol.VolumeError, match="is not a File"):
        vol.hostpath_check(str(tmp_path / "missing"), "File")
    with pytest.raises(vol.VolumeError, match="is not a Socket"):
        vol.hostpath_check(str(f), "Socket")


def test_empty_dir_on_disk_is_world_writable(tmp_path: Path) -> None:
    d = tmp_path / "pods" / "u" / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    vol.empty_dir(d, memory=False, size=0)
    assert d.is_dir() and mode_of(d) == 0o777


# -- the manager ---------------------------------------------------------------------------------------


class Store:
    """configmaps/secrets by (kind, namespace, name); tokens handed out in order."""

    def __init__(self, objs: dict[tuple[str, str, str], Obj]) -> None:
        self.objs = objs
        self.token_requests: list[tuple[str, str, Obj]] = []

    async def lookup(self, kind: str, ns: str, name: str) -> Obj | None:
        return self.objs.get((kind, ns, name))

    async def request_token(self, ns: str, sa: str, spec: Obj) -> str:
        self.token_requests.append((ns, sa, spec))
        return f"token-{len(self.token_requests)}"


def pod(volumes: list[Obj], uid: str = "uid-1", **spec: Any) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": uid, "labels": {"app": "a"}},
        "spec": {"volumes": volumes, "containers": [{"name": "c"}], **spec},
    }


@pytest.fixture
def store() -> Store:
    return Store(
        {
            ("configmaps", "ns", "cm"): {"data": {"app.conf": "x=1", "other": "o"}},
            ("secrets", "ns", "sec"): {"data": {"tls.key": b64(b"KEY"), "tls.crt": b64(b"CRT")}},
        }
    )


async def test_manager_configmap_and_secret_volumes(tmp_path: Path, store: Store) -> None:
    m = vol.VolumeManager(str(tmp_path), store.lookup)
    p = pod(
        [
            {"name": "conf", "configMap": {"name": "cm", "items": [{"key": "app.conf", "path": "etc/app.conf"}]}},
            {"name": "tls", "secret": {"secretName": "sec", "defaultMode": 0o400}},
        ]
    )
    paths = await m.setup(p)
    conf, tls = Path(paths["conf"]), Path(paths["tls"])
    assert conf == tmp_path / "pods" / "uid-1" / "volumes" / "kubernetes.io~configmap" / "conf"
    assert tls == tmp_path / "pods" / "uid-1" / "volumes" / "kubernetes.io~secret" / "tls"
    assert visible(conf) == {"etc/app.conf": "x=1"}
    assert visible(tls) == {"tls.key": "KEY", "tls.crt": "CRT"}
    assert mode_of(tls / "tls.key") == 0o400
    assert mode_of(conf / "etc" / "app.conf") == vol.DEFAULT_MODE

    # an update of the configMap reaches the volume on the next refresh
    store.objs[("configmaps", "ns", "cm")] = {"data": {"app.conf": "x=2"}}
    await m.refresh(p)
    assert visible(conf) == {"etc/app.conf": "x=2"}


async def test_manager_missing_sources(tmp_path: Path, store: Store) -> None:
    m = vol.VolumeManager(str(tmp_path), store.lookup)
    with pytest.raises(vol.VolumeError, match='configmap "absent" not found'):
        await m.setup(pod([{"name": "v", "configMap": {"name": "absent"}}]))
    with pytest.raises(vol.VolumeError, match='secret "absent" not found'):
        await m.setup(pod([{"name": "v", "secret": {"secretName": "absent"}}]))
    # optional: an empty volume
    paths = await m.setup(pod([{"name": "v", "configMap": {"name": "absent", "optional": True}}]))
    assert visible(Path(paths["v"])) == {}
    # optional source, existing object, missing item key: skipped, as upstream
    paths = await m.setup(
        pod([{"name": "w", "configMap": {"name": "cm", "optional": True, "items": [{"key": "nope", "path": "n"}]}}])
    )
    assert visible(Path(paths["w"])) == {}
    # refresh logs instead of raising
    await m.refresh(pod([{"name": "v", "configMap": {"name": "absent"}}]))
    with pytest.raises(vol.VolumeError, match="unsupported volume type"):
        await m.setup(pod([{"name": "v", "nfs": {"server": "x", "path": "/"}}]))


async def test_manager_downward_api_volume(tmp_path: Path, store: Store) -> None:
    m = vol.VolumeManager(str(tmp_path), store.lookup)
    p = pod(
        [
            {
                "name": "info",
                "downwardAPI": {
                    "defaultMode": 0o440,
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o444},
                    ],
                },
            }
        ]
    )
    d = Path((await m.setup(p))["info"])
    assert d.parent.name == "kubernetes.io~downward-api"
    assert visible(d) == {"labels": 'app="a"', "ns": "ns"}
    assert mode_of(d / "labels") == 0o440 and mode_of(d / "ns") == 0o444
    # a label change is written on refresh
    p["metadata"]["labels"]["app"] = "b"
    await m.refresh(p)
    assert visible(d)["labels"] == 'app="b"'


async def test_manager_projected_volume_and_token_refresh(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(vol.time, "time", lambda: now[0])
    m = vol.VolumeManager(str(tmp_path), store.lookup, store.request_token)
    p = pod(
        [
            {
                "name": "api",
                "projected": {
                    "defaultMode": 0o420,
                    "sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600, "audience": "vault"}},
                        {"configMap": {"name": "cm", "items": [{"key": "app.conf", "path": "app.conf"}]}},
                        {"secret": {"name": "sec", "items": [{"key": "tls.crt", "path": "ca.crt", "mode": 0o444}]}},
                        {
                            "downwardAPI": {
                                "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                            }
                        },
                    ],
                },
            }
        ],
        serviceAccountName="builder",
    )
    d = Path((await m.setup(p))["api"])
    assert d.parent.name == "kubernetes.io~projected"
    assert visible(d) == {"token": "token-1", "app.conf": "x=1", "ca.crt": "CRT", "namespace": "ns"}
    assert mode_of(d / "token") == 0o420 and mode_of(d / "ca.crt") == 0o444
    [(ns, sa, spec)] = store.token_requests
    assert (ns, sa) == ("ns", "builder")
    assert spec["expirationSeconds"] == 3600 and spec["audiences"] == ["vault"]
    assert spec["boundObjectRef"] == {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "uid-1"}

    # before 80 % of the lifetime: the cached token; after: a new one, written in place
    now[0] += 3600 * 0.79
    await m.refresh(p)
    assert len(store.token_requests) == 1
    now[0] += 3600 * 0.02
    await m.refresh(p)
    assert len(store.token_requests) == 2
    assert visible(d)["token"] == "token-2"

    # teardown forgets the pod's tokens
    await m.teardown("uid-1")
    await m.refresh(p)
    assert len(store.token_requests) == 3


async def test_manager_token_needs_a_requester(tmp_path: Path, store: Store) -> None:
    m = vol.VolumeManager(str(tmp_path), store.lookup)
    with pytest.raises(vol.VolumeError, match="service account tokens are not available"):
        await m.setup(pod([{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]))


async def test_manager_mounts_with_sub_path(tmp_path: Path, store: Store) -> None:
    m = vol.VolumeManager(str(tmp_path), store.lookup)
    host = tmp_path / "host-data"
    p = pod(
        [
            {"name": "scratch", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}},
            {"name": "conf", "configMap": {"name": "cm"}},
        ]
    )
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "host", "mountPath": "/data", "subPath": "app/logs"},
            {"name": "conf", "mountPath": "/etc/app", "readOnly": True},
        ],
    }
    mounts = await m.mounts(p, container)
    scratch = tmp_path / "pods" / "uid-1" / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    conf = tmp_path / "pods" / "uid-1" / "volumes" / "kubernetes.io~configmap" / "conf"
    assert mounts == [
        Mount(str(scratch), "/scratch", False),
        Mount(str(host / "app" / "logs"), "/data", False),
        Mount(str(conf), "/etc/app", True),
    ]
    assert (host / "app" / "logs").is_dir() and scratch.is_dir()
    assert await m.mounts(p, {"name": "c"}) == []

    for bad in ("../escape", "/abs", "a/../../b"):
        bad_container = {"name": "c", "volumeMounts": [{"name": "host", "mountPath": "/x", "subPath": bad}]}
        with pytest.raises(vol.VolumeError, match="invalid subPath"):
            await m.mounts(p, bad_container)
    with pytest.raises(vol.VolumeError, match="no such volume"):
        await m.mounts(p, {"name": "c", "volumeMounts": [{"name": "nope", "mountPath": "/n"}]})
