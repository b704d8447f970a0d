"""EtcdKV and Store against a real etcd."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from kubeha.storage.etcd import EtcdKV, prefix_end
from kubeha.storage.interface import (
    Compacted,
    Compare,
    Conflict,
    Delete,
    KeyExists,
    KeyNotFound,
    Put,
    RevisionTooLarge,
    Unavailable,
)
from kubeha.storage.store import Obj, ObjEvent, Store
from tests.support.etcd import EtcdServer, etcd_server  # noqa: F401


@pytest.fixture
async def kv(etcd_server: EtcdServer) -> AsyncIterator[EtcdKV]:  # noqa: F811
    client = EtcdKV([etcd_server.endpoint])
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
def store(kv: EtcdKV) -> Store:
    return Store(kv)


@pytest.fixture
def prefix() -> str:
    return f"/registry/t{uuid.uuid4().hex[:8]}/"


def cm(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def test_prefix_end() -> None:
    assert prefix_end(b"/a/") == b"/a0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"") == b"\0"


async def test_crud(store: Store, prefix: str) -> None:
    key = prefix + "default/a"
    created = await store.create(key, {**cm("a", x="1"), "metadata": {"name": "a", "resourceVersion": "999"}})
    rv = int(created["metadata"]["resourceVersion"])
    assert rv > 0
    # the stored JSON does not carry resourceVersion
    raw = await store.kv.get(key)
    assert raw is not None and b"resourceVersion" not in raw.value and raw.mod_revision == rv
    got = await store.get(key)
    assert got["metadata"] == {"name": "a", "resourceVersion": str(rv)}

    updated = await store.update(key, {**got, "data": {"x": "2"}}, expected_mod_revision=rv)
    rv2 = int(updated["metadata"]["resourceVersion"])
    assert rv2 > rv
    assert (await store.get(key))["data"] == {"x": "2"}

    deleted = await store.delete(key)
    assert deleted["data"] == {"x": "2"} and deleted["metadata"]["resourceVersion"] == str(rv2)
    with pytest.raises(KeyNotFound):
        await store.get(key)
    with pytest.raises(KeyNotFound):
        await store.delete(key)


async def test_create_exists_and_guards(store: Store, prefix: str) -> None:
    key = prefix + "default/a"
    await store.create(key, cm("a"))
    with pytest.raises(KeyExists):
        await store.create(key, cm("a"))
    # a failing guard on another key is a Conflict, and nothing is written
    claim = prefix + "claims/10.96.0.5"
    await store.kv.txn([], [Put(claim, b"taken")])
    with pytest.raises(Conflict):
        await store.create(prefix + "default/b", cm("b"), guards=[Compare(claim, 0)], also=[Put(claim, b"b")])
    with pytest.raises(KeyNotFound):
        await store.get(prefix + "default/b")
    # `also` ops are applied in the same transaction
    claim2 = prefix + "claims/10.96.0.6"
    await store.create(prefix + "default/c", cm("c"), guards=[Compare(claim2, 0)], also=[Put(claim2, b"c")])
    got = await store.kv.get(claim2)
    assert got is not None and got.value == b"c"


async def test_cas_conflict(store: Store, prefix: str) -> None:
    key = prefix + "default/a"
    obj = await store.create(key, cm("a"))
    rv = int(obj["metadata"]["resourceVersion"])
    await store.update(key, cm("a", x="1"), expected_mod_revision=rv)
    with pytest.raises(Conflict):
        await store.update(key, cm("a", x="stale"), expected_mod_revision=rv)
    with pytest.raises(Conflict):
        await store.delete(key, expected_mod_revision=rv)
    await store.delete(key)
    with pytest.raises(KeyNotFound):
        await store.update(key, cm("a"), expected_mod_revision=rv)


async def test_guaranteed_update(store: Store, prefix: str) -> None:
    key = prefix + "default/counter"
    await store.create(key, {"metadata": {"name": "counter"}, "n": 0})

    async def incr(o: Obj) -> Obj:
        o["n"] += 1
        await asyncio.sleep(0)  # let the others race
        return o

    await asyncio.gather(*(store.guaranteed_update(key, incr) for _ in range(10)))
    cur = await store.get(key)
    assert cur["n"] == 10

    # no-op: no write, same resourceVersion
    async def same(o: Obj) -> Obj:
        return o

    async def nothing(o: Obj) -> None:
        return None

    assert (await store.guaranteed_update(key, same))["metadata"]["resourceVersion"] == cur["metadata"][
        "resourceVersion"
    ]
    assert (await store.guaranteed_update(key, nothing)) == cur
    assert (await store.get(key))["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"]

    # precondition on resourceVersion
    with pytest.raises(Conflict):
        await store.guaranteed_update(key, incr, precondition_rv="1")
    out = await store.guaranteed_update(key, incr, precondition_rv=cur["metadata"]["resourceVersion"])
    assert out["n"] == 11

    # missing key
    with pytest.raises(KeyNotFound):
        await store.guaranteed_update(prefix + "default/none", incr)

    async def make(o: Obj) -> Obj:
        assert o == {}
        return {"metadata": {"name": "new"}}

    made = await store.guaranteed_update(prefix + "default/new", make, ignore_not_found=True)
    assert made["metadata"]["name"] == "new" and (await store.get(prefix + "default/new"))["metadata"]["name"] == "new"


async def test_list_paging_and_old_revision(store: Store, prefix: str) -> None:
    for i in range(7):
        await store.create(f"{prefix}default/o{i}", cm(f"o{i}"))
    full = await store.list(prefix)
    assert [o["metadata"]["name"] for o in full.items] == [f"o{i}" for i in range(7)]
    assert full.more is False and full.remaining == 0 and full.last_key == f"{prefix}default/o6"
    assert full.keys == [f"{prefix}default/o{i}" for i in range(7)]

    # an old revision still shows the old state
    await store.delete(f"{prefix}default/o0")
    await store.guaranteed_update(f"{prefix}default/o1", _set_x)
    old = await store.list(prefix, revision=full.revision)
    assert len(old.items) == 7 and old.revision == full.revision and old.items[1]["data"] == {}
    now = await store.list(prefix)
    assert len(now.items) == 6 and now.items[0]["data"] == {"x": "y"}

    # pages at one revision
    page1 = await store.list(prefix, revision=full.revision, limit=3)
    assert len(page1.items) == 3 and page1.more and page1.remaining == 4
    assert page1.last_key is not None
    page2 = await store.list(prefix, revision=full.revision, limit=3, start=page1.last_key + "\0")
    page3 = await store.list(prefix, revision=full.revision, limit=3, start=page2.last_key + "\0")  # type: ignore[operator]
    names = [o["metadata"]["name"] for p in (page1, page2, page3) for o in p.items]
    assert names == [f"o{i}" for i in range(7)]
    assert page2.remaining == 1 and not page3.more and page3.remaining == 0

    with pytest.raises(RevisionTooLarge):
        await store.list(prefix, revision=now.revision + 1000)
    assert await store.count(prefix) == 6


async def _set_x(o: Obj) -> Obj:
    o["data"] = {"x": "y"}
    return o


async def _collect(it: AsyncIterator[ObjEvent], n: int, wait: float = 5.0) -> list[ObjEvent]:
    out: list[ObjEvent] = []

    async def run() -> None:
        async for ev in it:
            out.append(ev)
            if len(out) >= n:
                return

    await asyncio.wait_for(run(), wait)
    return out


async def test_watch_from_revision(store: Store, prefix: str) -> None:
    a = await store.create(prefix + "ns/a", cm("a"))
    start = int(a["metadata"]["resourceVersion"])
    b = await store.update(prefix + "ns/a", cm("a", k="v"), expected_mod_revision=start)
    await store.delete(prefix + "ns/a")
    await store.create(prefix + "ns/b", cm("b"))
    await store.kv.txn([], [Put("/elsewhere/" + prefix, b"{}")])  # not under the prefix

    it = store.watch(prefix, start)
    evs = await _collect(it, 4)
    assert [(e.type, e.key) for e in evs] == [
        ("ADDED", prefix + "ns/a"),
        ("MODIFIED", prefix + "ns/a"),
        ("DELETED", prefix + "ns/a"),
        ("ADDED", prefix + "ns/b"),
    ]
    assert evs[0].obj["metadata"]["resourceVersion"] == str(start)
    assert evs[1].prev is not None and evs[1].prev["metadata"]["resourceVersion"] == str(start)
    assert evs[1].obj["data"] == {"k": "v"}
    # DELETED carries the last state with the delete's revision
    assert evs[2].obj["data"] == {"k": "v"} and evs[2].obj["metadata"]["resourceVersion"] == str(evs[2].revision)
    assert evs[2].prev is not None and evs[2].prev["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
    assert [e.revision for e in evs] == sorted(e.revision for e in evs)

    # live events keep coming
    await store.create(prefix + "ns/c", cm("c"))
    (ev,) = await _collect(it, 1)
    assert ev.type == "ADDED" and ev.key == prefix + "ns/c"
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_progress(store: Store, prefix: str) -> None:
    it = store.watch(prefix, 0, progress=True)
    task = asyncio.ensure_future(_collect(it, 1))
    await asyncio.sleep(0.2)  # let the watch be created
    await store.kv.txn([], [Put("/elsewhere/" + prefix, b"{}")])
    rev = await store.kv.current_revision()
    await store.kv.request_progress(prefix)
    (ev,) = await task
    assert ev.type == "BOOKMARK" and ev.revision >= rev


async def test_compaction() -> None:
    # compaction would disturb other tests' old revisions: use an etcd of our own
    with EtcdServer() as srv:
        kv = EtcdKV([srv.endpoint])
        await kv.connect()
        store = Store(kv)
        first = await store.create("/registry/x/a", cm("a"))
        rev = int(first["metadata"]["resourceVersion"])
        for i in range(3):
            await store.guaranteed_update("/registry/x/a", _with_n(i))
        cur = await kv.current_revision()
        await kv.compact(cur)
        with pytest.raises(Compacted):
            await store.list("/registry/x/", revision=rev)
        with pytest.raises(Compacted) as info:
            await _collect(store.watch("/registry/x/", rev), 1)
        assert info.value.compact_revision == cur
        # the compaction point itself is still readable and watchable
        assert len((await store.list("/registry/x/", revision=cur)).items) == 1
        await kv.close()


def _with_n(n: int):  # type: ignore[no-untyped-def]
    async def fn(o: Obj) -> Obj:
        o["n"] = n
        return o

    return fn


async def test_unavailable_and_failover() -> None:
    with EtcdServer() as srv:
        # a dead endpoint first: calls fail over to the live one
        kv = EtcdKV(["http://127.0.0.1:1", srv.endpoint], timeout=2.0)
        await kv.connect()
        assert await kv.healthy()
        await kv.txn([], [Put("/k", b"v")])
        got = await kv.get("/k")
        assert got is not None and got.value == b"v"
        srv.stop()
        assert not await kv.healthy()
        with pytest.raises(Unavailable):
            await kv.get("/k")
        srv.start()
        for _ in range(50):
            if await kv.healthy():
                break
            await asyncio.sleep(0.1)
        assert (await kv.get("/k")) is not None
        await kv.close()


async def test_watch_breaks_with_unavailable() -> None:
    with EtcdServer() as srv:
        kv = EtcdKV([srv.endpoint])
        await kv.connect()
        store = Store(kv)
        it = store.watch("/registry/y/", 0)
        task = asyncio.ensure_future(_collect(it, 2, wait=10))
        await asyncio.sleep(0.2)
        await store.create("/registry/y/a", cm("a"))
        await asyncio.sleep(0.2)
        srv.kill()
        with pytest.raises(Unavailable):
            await task
        await kv.close()


async def test_txn_delete_op(store: Store, prefix: str) -> None:
    await store.kv.txn([], [Put(prefix + "a", b"1"), Put(prefix + "b", b"2")])
    res = await store.kv.txn([Compare(prefix + "a", 0)], [Delete(prefix + "b")])
    assert not res.succeeded and res.current[prefix + "a"] is not None
    res = await store.kv.txn([Compare(prefix + "zz", 0)], [Delete(prefix + "b")])
    assert res.succeeded and await store.kv.get(prefix + "b") is None


def _make_pki(d: str) -> tuple[str, str, str]:
    """A CA and one certificate for 127.0.0.1 usable as both server and client certificate."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-etcd-client")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (f"{d}/ca.crt", f"{d}/etcd.crt", f"{d}/etcd.key")
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths


async def test_tls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca, cert, key = _make_pki(str(tmp_path))
    with EtcdServer(tls=(ca, cert, key)) as srv:
        assert srv.endpoint.startswith("https://")
        kv = EtcdKV([srv.endpoint], ca_file=ca, cert_file=cert, key_file=key)
        await kv.connect()
        store = Store(kv)
        await store.create("/registry/tls/a", cm("a"))
        assert (await store.get("/registry/tls/a"))["metadata"]["name"] == "a"
        await kv.close()
        # without a client certificate etcd refuses us
        bare = EtcdKV([srv.endpoint], ca_file=ca, timeout=2.0)
        await bare.connect()
        assert not await bare.healthy()
        await bare.close()
