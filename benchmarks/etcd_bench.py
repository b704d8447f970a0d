"""Storage throughput against a throwaway local etcd.

    .venv/bin/python benchmarks/etcd_bench.py [--n 2000]

Compares our own HTTP/2 etcd client (``EtcdKV``, what kubeha.storage uses) with raw ``grpc.aio``
stubs and aetcd's Client on the same etcd, then measures the layers above: Store writes/lists
and the watch cache's fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable

import aetcd
import grpc.aio
import orjson
from aetcd import rpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.support.etcd import EtcdServer

from kubeha.storage.cacher import Cacher
from kubeha.storage.etcd import EtcdKV
from kubeha.storage.interface import Put
from kubeha.storage.store import Store


def report(name: str, n: int, seconds: float) -> None:
    print(f"{name:<52} {n / seconds:>10,.0f} ops/s  ({n} in {seconds:.2f}s)")


async def timed(name: str, n: int, fn: Callable[[int], Awaitable[object]], *, concurrency: int = 1) -> None:
    t0 = time.perf_counter()
    if concurrency == 1:
        for i in range(n):
            await fn(i)
    else:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await fn(i)

        await asyncio.gather(*(one(i) for i in range(n)))
    report(name, n, time.perf_counter() - t0)


def pod(i: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p{i}", "namespace": "default", "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Pending"},
    }


async def main(n: int) -> None:
    with EtcdServer() as srv:
        kv = EtcdKV([srv.endpoint])
        await kv.connect()
        channel = grpc.aio.insecure_channel(srv.endpoint.removeprefix("http://"))
        stub = rpc.KVStub(channel)
        value = orjson.dumps(pod(0))
        host, port = srv.endpoint.removeprefix("http://").split(":")
        client = aetcd.Client(host=host, port=int(port))
        await client.connect()

        print(f"# etcd {(await kv.status())['version']}, value {len(value)} bytes\n")
        await timed("raw stub Put, sequential", n, lambda i: stub.Put(rpc.PutRequest(key=b"/r/%d" % i, value=value)))
        await timed("aetcd.Client put, sequential", n, lambda i: client.put(b"/a/%d" % i, value))
        await timed("raw stub Range (get), sequential", n, lambda i: stub.Range(rpc.RangeRequest(key=b"/r/%d" % i)))
        await timed("aetcd.Client get, sequential", n, lambda i: client.get(b"/a/%d" % i))
        await timed(
            "raw stub Put, 100 concurrent",
            n,
            lambda i: stub.Put(rpc.PutRequest(key=b"/r/%d" % i, value=value)),
            concurrency=100,
        )
        await timed("aetcd.Client put, 100 concurrent", n, lambda i: client.put(b"/a/%d" % i, value), concurrency=100)
        await client.close()
        await channel.close()

        await timed("EtcdKV.txn (one Put), sequential", n, lambda i: kv.txn([], [Put(f"/k/{i}", value)]))
        await timed(
            "EtcdKV.txn (one Put), 100 concurrent",
            n,
            lambda i: kv.txn([], [Put(f"/k/{i}", value)]),
            concurrency=100,
        )
        await timed("EtcdKV.get, sequential", n, lambda i: kv.get(f"/k/{i}"))

        store = Store(kv)
        prefix = "/registry/pods/"
        await timed("Store.create, sequential", n, lambda i: store.create(f"{prefix}default/p{i}", pod(i)))
        await timed(
            "Store.create, 100 concurrent",
            n,
            lambda i: store.create(f"{prefix}other/p{i}", pod(i)),
            concurrency=100,
        )

        async def bump(o: dict[str, object]) -> dict[str, object]:
            o["status"] = {"phase": "Running"}
            return o

        await timed(
            "Store.guaranteed_update, sequential", n, lambda i: store.guaranteed_update(f"{prefix}default/p{i}", bump)
        )
        t0 = time.perf_counter()
        lst = await store.list(prefix)
        dt = time.perf_counter() - t0
        print(f"{'Store.list of ' + str(len(lst.items)) + ' pods':<52} {dt * 1000:>10.1f} ms")

        cacher = Cacher(store, prefix)
        t0 = time.perf_counter()
        await cacher.start()
        print(f"{'Cacher.start (initial list)':<52} {(time.perf_counter() - t0) * 1000:>10.1f} ms")
        t0 = time.perf_counter()
        reps = 100
        for _ in range(reps):
            await cacher.list(namespace_prefix="default")
        print(f"{'Cacher.list of one namespace':<52} {(time.perf_counter() - t0) * 1000 / reps:>10.2f} ms")

        for watchers in (1, 100):
            ws = [cacher.watch(cacher.revision) for _ in range(watchers)]
            events = n

            async def consume(w: object, events: int = events) -> None:
                got = 0
                async for _ in w:  # type: ignore[attr-defined]
                    got += 1
                    if got == events:
                        return

            consumers = [asyncio.ensure_future(consume(w)) for w in ws]
            t0 = time.perf_counter()
            sem = asyncio.Semaphore(100)

            async def write(i: int, sem: asyncio.Semaphore = sem) -> None:
                async with sem:
                    await store.guaranteed_update(f"{prefix}default/p{i}", lambda o, i=i: _label(o, i))

            await asyncio.gather(*(write(i) for i in range(events)))
            await asyncio.gather(*consumers)
            dt = time.perf_counter() - t0
            print(
                f"{f'watch cache: {events} writes fanned out to {watchers} watchers':<52} "
                f"{events * watchers / dt:>10,.0f} deliveries/s ({events / dt:,.0f} writes/s, {dt:.2f}s)"
            )
            for w in ws:
                w.close()
        await cacher.stop()

        # one gRPC stream per etcd watch (our design): cost of many streams on one channel
        for streams in (1, 50):
            events = n // 4
            got = [0] * streams

            async def follow(k: int, events: int = events, got: list[int] = got) -> None:
                async for batch in kv.watch("/w/", 0):
                    got[k] += len(batch)
                    if got[k] >= events:
                        return

            tasks = [asyncio.ensure_future(follow(k)) for k in range(streams)]
            await asyncio.sleep(0.5)  # let the streams be created
            t0 = time.perf_counter()
            sem = asyncio.Semaphore(100)

            async def put_w(i: int, sem: asyncio.Semaphore = sem) -> None:
                async with sem:
                    await kv.txn([], [Put(f"/w/{i}", value)])

            await asyncio.gather(*(put_w(i) for i in range(events)))
            await asyncio.gather(*tasks)
            dt = time.perf_counter() - t0
            print(
                f"{f'etcd watch: {events} puts to {streams} gRPC streams':<52} "
                f"{events * streams / dt:>10,.0f} deliveries/s ({dt:.2f}s)"
            )
        await kv.close()


async def _label(o: dict[str, object], i: int) -> dict[str, object]:
    o["metadata"]["labels"]["rev"] = str(time.perf_counter_ns())  # type: ignore[index]
    return o


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.n))
