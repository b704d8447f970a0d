"""The Docker runtime driven directly (no kubelet, no CNI) against a private dockerd: interactive
exec with and without a terminal, exec_sync, attach, logs, the event stream (also through a
connection we break on purpose, and merged by MultiRuntime) and the relist cache.

Pods use ``hostNetwork: true`` so their sandboxes need no CNI. Every pod is removed by its uid,
the proxy socket and the runtime's root directory by path, the daemon by its pid."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeha.kubelet.images import build_demo
from kubeha.kubelet.runtime import EXITED, RUNNING, ExecProcess
from kubeha.kubelet.runtime.docker import DockerRuntime
from kubeha.kubelet.runtime.host import HostRuntime
from kubeha.kubelet.runtime.multi import MultiRuntime
from tests.support import waiting
from tests.support.docker import PrivateDocker, docker_available

Obj = dict[str, Any]
IMAGE = "kubeha/demo:latest"

pytestmark = pytest.mark.skipif(not docker_available(), reason="needs root and dockerd (make e2e)")

eventually = functools.partial(waiting.eventually, within=30.0, every=0.2)


@pytest.fixture(scope="module")
def docker() -> Iterator[PrivateDocker]:
    d = PrivateDocker()
    d.start()
    try:
        asyncio.run(build_demo(d.endpoint, IMAGE))
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kdrt-") as d:
        yield Path(d)


class Pods:
    """Starts pods (a hostNetwork sandbox plus containers) on one runtime; removes them by uid."""

    def __init__(self, rt: DockerRuntime) -> None:
        self.rt = rt
        self.uids: list[str] = []

    def spec(self, name: str, *containers: Obj) -> Obj:
        uid = str(uuid.uuid4())
        self.uids.append(uid)
        return {
            "metadata": {"name": name, "namespace": "rt", "uid": uid},
            "spec": {"hostNetwork": True, "containers": [{"image": IMAGE, **c} for c in containers]},
        }

    async def start(self, name: str, command: list[str], **container: Any) -> tuple[Obj, str]:
        pod = self.spec(name, {"name": "c", "command": command, **container})
        cid = await self.create(pod, 0)
        await self.rt.start_container(cid)
        return pod, cid

    async def create(self, pod: Obj, index: int, attempt: int = 0) -> str:
        sandbox = await self.rt.run_sandbox(pod)
        return await self.rt.create_container(pod, pod["spec"]["containers"][index], sandbox, {}, [], attempt)

    async def remove_all(self) -> None:
        for uid in self.uids:
            await self.rt.remove_sandbox(uid)


@pytest.fixture
async def rt(docker: PrivateDocker, root: Path) -> AsyncIterator[DockerRuntime]:
    node = f"rt-{uuid.uuid4().hex[:6]}"
    runtime = DockerRuntime(docker.endpoint, node, str(root / node), node_ip="127.0.0.1")
    await runtime.connect()
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def pods(rt: DockerRuntime) -> AsyncIterator[Pods]:
    p = Pods(rt)
    try:
        yield p
    finally:
        await p.remove_all()
        assert await rt.list_pods() == []


async def read_all(read: Callable[[], Awaitable[bytes]], within: float = 20.0) -> bytes:
    out = b""
    async with asyncio.timeout(within):
        while chunk := await read():
            out += chunk
    return out


async def read_until(proc: ExecProcess, needle: bytes, seen: bytearray, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while needle not in seen:
            chunk = await proc.read_stdout()
            assert chunk, f"the output ended before {needle!r}: {bytes(seen)!r}"
            seen.extend(chunk)


SLEEPER = ["sleep", "3600"]


# -- exec -------------------------------------------------------------------------------------------


async def test_exec_without_tty_separates_streams_echoes_stdin_and_exits_3(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("plain", SLEEPER)
    proc = await rt.exec_stream(cid, ["sh", "-c", "echo out; echo err >&2; cat; exit 3"], stdin=True, tty=False)
    await proc.write_stdin(b"hello\n")
    await proc.write_stdin(b"world\n")
    await proc.close_stdin()  # cat ends only when stdin is half-closed
    out, err = await asyncio.gather(read_all(proc.read_stdout), read_all(proc.read_stderr))
    assert out == b"out\nhello\nworld\n"
    assert err == b"err\n"
    assert await asyncio.wait_for(proc.wait(), 10) == 3


async def test_exec_binary_output_survives_framing(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("bin", SLEEPER)
    # 200 KiB: many frames, split across reads at arbitrary points
    proc = await rt.exec_stream(cid, ["sh", "-c", "head -c 204800 /dev/zero | tr '\\0' x"], stdin=False, tty=False)
    out = await read_all(proc.read_stdout)
    assert out == b"x" * 204800
    assert await proc.wait() == 0


async def until_size(proc: ExecProcess, size: bytes, seen: bytearray) -> None:
    """Ask ``stty size`` until it reports ``size`` (the resize is applied in the background)."""
    async with asyncio.timeout(20):
        while size not in seen:
            await proc.write_stdin(b"stty size\n")
            with contextlib.suppress(TimeoutError):
                await read_until(proc, size, seen, within=0.5)


async def test_exec_tty_resize_reaches_stty(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("tty", SLEEPER)
    proc = await rt.exec_stream(cid, ["sh"], stdin=True, tty=True)
    seen = bytearray()
    proc.resize(100, 40)
    await proc.write_stdin(b"tty; echo term=$TERM\n")
    await read_until(proc, b"term=xterm", seen)
    assert b"/dev/pts/" in seen
    await until_size(proc, b"40 100", seen)
    assert await proc.read_stderr() == b""  # a terminal merges both streams
    proc.resize(132, 50)
    await until_size(proc, b"50 132", seen)
    await proc.write_stdin(b"exit 7\n")
    await read_all(proc.read_stdout)
    assert await asyncio.wait_for(proc.wait(), 10) == 7


async def test_exec_tty_close_stdin_ends_a_reader(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("tty-eof", SLEEPER)
    proc = await rt.exec_stream(cid, ["cat"], stdin=True, tty=True)
    await proc.write_stdin(b"abc\n")
    seen = bytearray()
    await read_until(proc, b"abc", seen)
    await proc.close_stdin()  # ^D on the terminal
    await read_all(proc.read_stdout)
    assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_exec_missing_command_and_missing_container(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("missing", SLEEPER)
    proc = await rt.exec_stream(cid, ["no-such-command"], stdin=False, tty=False)
    out = await read_all(proc.read_stdout)
    assert b"executable file not found" in out, out
    assert await proc.wait() in (126, 127)
    with pytest.raises(FileNotFoundError):
        await rt.exec_stream(cid + "-gone", ["true"], stdin=False, tty=False)


async def test_exec_kill_stops_the_process(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("kill", SLEEPER)
    proc = await rt.exec_stream(cid, ["sleep", "300"], stdin=False, tty=False)

    async def sleeping() -> bool:
        code, out, _ = await rt.exec_sync(cid, ["ps"], 10)
        return code == 0 and b"sleep 300" in out

    await eventually(sleeping)
    t0 = time.monotonic()
    await proc.kill()
    assert await asyncio.wait_for(proc.wait(), 10) == 137
    assert time.monotonic() - t0 < 5
    assert not await sleeping()


async def test_exec_sync_outputs_exit_code_and_timeout(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("sync", SLEEPER)
    assert await rt.exec_sync(cid, ["sh", "-c", "echo a; echo b >&2; exit 4"], 10) == (4, b"a\n", b"b\n")
    code, out, _ = await rt.exec_sync(cid, ["no-such-command"], 10)
    assert code in (126, 127) and b"executable file not found" in out
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        await rt.exec_sync(cid, ["sleep", "31"], 1.0)
    assert time.monotonic() - t0 < 5
    # the overrunning command was killed, not left behind
    _, out, _ = await rt.exec_sync(cid, ["ps"], 10)
    assert b"sleep 31" not in out, out
    code, _, err = await rt.exec_sync(cid + "-gone", ["true"], 10)
    assert code == 126 and err


# -- attach and logs --------------------------------------------------------------------------------


TICKER = ["sh", "-c", "i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo tick $i; echo tock $i >&2; sleep 0.25; done"]


async def test_attach_sees_output_from_now_on_until_exit(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("attach", TICKER)

    async def ticked_twice() -> bool:
        return b"tick 2\n" in b"".join([c async for c in rt.logs(cid)])

    await eventually(ticked_twice, every=0.05)
    got: dict[str, bytes] = {"stdout": b"", "stderr": b""}
    async with asyncio.timeout(20):
        async for stream, data in rt.attach(cid):
            got[stream] += data
    assert b"tick 12\n" in got["stdout"] and b"tock 12\n" in got["stderr"], got
    assert b"tick 1\n" not in got["stdout"], got  # written before we attached
    assert b"tock" not in got["stdout"] and b"tick" not in got["stderr"]
    st = await rt.container_status(cid)
    assert st is not None and st.state == EXITED and st.exit_code == 0
    # attaching to an exited or unknown container yields nothing
    assert [x async for x in rt.attach(cid)] == []
    assert [x async for x in rt.attach(cid + "-gone")] == []


async def test_logs_follow_until_exit(rt: DockerRuntime, pods: Pods) -> None:
    _, cid = await pods.start("logs", TICKER)
    out = b""
    async with asyncio.timeout(20):
        async for chunk in rt.logs(cid, follow=True):
            out += chunk
    lines = out.decode().splitlines()
    assert [line for line in lines if line.startswith("tick")] == [f"tick {i}" for i in range(1, 13)]
    assert len(lines) == 24
    tail = b"".join([c async for c in rt.logs(cid, tail=2)])
    # stdout and stderr reach the log through separate pipes: their relative order is not kept
    assert sorted(tail.decode().splitlines()) == ["tick 12", "tock 12"]


# -- events -----------------------------------------------------------------------------------------


class Collector:
    """Consumes an event stream in the background."""

    def __init__(self, events: AsyncIterator[str]) -> None:
        self.seen: list[str] = []
        self.events = events
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for uid in self.events:
            self.seen.append(uid)

    async def wait_for(self, uid: str, count: int = 1) -> None:
        async def enough() -> bool:
            return self.seen.count(uid) >= count

        await eventually(enough)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.events.aclose()  # type: ignore[attr-defined]


async def test_watch_events_yields_the_pod_uid_on_start_and_die(
    docker: PrivateDocker, rt: DockerRuntime, pods: Pods, root: Path
) -> None:
    events = Collector(rt.watch_events())
    # another node's containers on the same engine: filtered out by the kubeha.node label
    other = DockerRuntime(docker.endpoint, rt.node + "-other", str(root / (rt.node + "-other")), node_ip="127.0.0.1")
    others = Pods(other)
    try:
        pod, cid = await pods.start("ev", ["sleep", "3600"])
        uid = pod["metadata"]["uid"]
        await events.wait_for(uid, 3)  # sandbox create+start, container create (+start)
        await asyncio.sleep(0.5)  # the start's events are in
        before, n = len(events.seen), events.seen.count(uid)
        await rt.stop_container(cid, 1)
        await events.wait_for(uid, n + 1)  # die
        assert set(events.seen[before:]) == {uid}
        ev_other, _ = await others.start("ev-other", ["true"])
        pod2, _ = await pods.start("ev2", ["true"])  # starts and dies at once
        await events.wait_for(pod2["metadata"]["uid"], 4)
        assert ev_other["metadata"]["uid"] not in events.seen
        assert "" not in events.seen  # the stream never broke
    finally:
        await events.close()
        await others.remove_all()
        await other.close()


class BreakableProxy:
    """A unix socket forwarding to the engine's, whose connections the test can cut; ``sent``
    keeps what the clients sent, so a test can count the Engine API requests."""

    def __init__(self, target: str, path: str) -> None:
        self.target, self.path = target, path
        self.writers: list[asyncio.StreamWriter] = []
        self.sent = bytearray()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, self.path)

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tr, tw = await asyncio.open_unix_connection(self.target)
        self.writers += [w, tw]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if record:
                        self.sent.extend(data)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(r, tw, True), pipe(tr, w, False))

    def requests(self, method: str, pattern: str) -> int:
        """How many ``method`` requests for a path matching ``pattern`` (after the API version) were sent."""
        return len(re.findall(rf"{method} /v[0-9.]+{pattern} HTTP/1\.1".encode(), bytes(self.sent)))

    def cut(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        await asyncio.to_thread(Path(self.path).unlink, missing_ok=True)


async def test_watch_events_reconnects_and_asks_for_a_relist(
    docker: PrivateDocker, rt: DockerRuntime, pods: Pods, root: Path
) -> None:
    proxy = BreakableProxy(docker.socket, str(root / f"{rt.node}.sock"))
    await proxy.start()
    watcher = DockerRuntime(f"unix://{proxy.path}", rt.node, str(root / rt.node), node_ip="127.0.0.1")
    events = Collector(watcher.watch_events())
    try:
        pod, _ = await pods.start("re1", ["sleep", "3600"])
        await events.wait_for(pod["metadata"]["uid"])
        assert "" not in events.seen
        proxy.cut()
        await events.wait_for("")  # reconnected: relist everything
        pod2, _ = await pods.start("re2", ["sleep", "3600"])
        await events.wait_for(pod2["metadata"]["uid"])
    finally:
        await events.close()
        await watcher.close()
        await proxy.stop()


async def test_multi_runtime_merges_events(docker: PrivateDocker, rt: DockerRuntime, pods: Pods, root: Path) -> None:
    host = HostRuntime(str(root / f"{rt.node}-host"), "127.0.0.1")
    multi = MultiRuntime({"docker": rt, "host": host}, default="docker")
    events = Collector(multi.watch_events())
    host_uid = ""
    try:
        pod, cid = await pods.start("multi", ["sleep", "3600"])
        await events.wait_for(pod["metadata"]["uid"])
        # container calls route by id to the Docker runtime
        proc = await multi.exec_stream(cid, ["echo", "routed"], stdin=False, tty=False)
        assert await read_all(proc.read_stdout) == b"routed\n"
        assert await proc.wait() == 0
        # the host runtime's events (its shims' exits) come through the same stream
        host_pod = {"metadata": {"name": "multi-host", "namespace": "default", "uid": str(uuid.uuid4())}}
        host_uid = host_pod["metadata"]["uid"]
        box = await host.run_sandbox(host_pod)
        hcid = await host.create_container(
            host_pod, {"name": "c", "command": ["sh", "-c", "sleep 0.3"]}, box, {}, [], 0
        )
        await host.start_container(hcid)
        await events.wait_for(host_uid)
    finally:
        await events.close()
        if host_uid:
            await host.remove_sandbox(host_uid)
    # no runtime with events: the merged stream ends at once
    plain = MultiRuntime({"plain": object()}, default="plain")
    assert [x async for x in plain.watch_events()] == []


# -- relist -----------------------------------------------------------------------------------------


async def test_list_pods_follows_state_changes_through_its_cache(rt: DockerRuntime, pods: Pods) -> None:
    pod, cid = await pods.start("relist", ["sh", "-c", "sleep 3600"])
    uid = pod["metadata"]["uid"]

    async def state() -> tuple[str, int | None]:
        listed = {p.uid: p for p in await rt.list_pods()}
        c = listed[uid].latest("c")
        assert c is not None and listed[uid].sandbox is not None
        assert listed[uid].sandbox.ip == "127.0.0.1"
        return c.state, c.exit_code

    assert await state() == (RUNNING, None)
    assert await state() == (RUNNING, None)  # from the cache
    await rt.stop_container(cid, 0)
    assert await state() == (EXITED, 137)
    # a second attempt of the same container shows up next to the first
    cid1 = await pods.create(pod, 0, attempt=1)
    await rt.start_container(cid1)
    listed = {p.uid: p for p in await rt.list_pods()}
    attempts = sorted((c.attempt, c.state) for c in listed[uid].containers)
    assert attempts == [(0, EXITED), (1, RUNNING)]
    await rt.remove_container(cid)
    listed = {p.uid: p for p in await rt.list_pods()}
    assert [c.attempt for c in listed[uid].containers] == [1]


# -- fewer Engine API calls on the startup path ------------------------------------------------------


@pytest.fixture
async def counted(
    docker: PrivateDocker, rt: DockerRuntime, root: Path
) -> AsyncIterator[tuple[DockerRuntime, BreakableProxy]]:
    """A runtime of ``rt``'s node talking through a counting proxy (its pods are removed by ``pods``)."""
    proxy = BreakableProxy(docker.socket, str(root / f"{rt.node}-count.sock"))
    await proxy.start()
    runtime = DockerRuntime(f"unix://{proxy.path}", rt.node, str(root / rt.node), node_ip="127.0.0.1")
    try:
        yield runtime, proxy
    finally:
        await runtime.close()
        await proxy.stop()


async def test_run_sandbox_answers_from_its_cache_while_events_flow(
    counted: tuple[DockerRuntime, BreakableProxy], rt: DockerRuntime, pods: Pods
) -> None:
    watcher, proxy = counted
    pod = pods.spec("cached", {"name": "c", "command": SLEEPER})
    uid = pod["metadata"]["uid"]
    inspects = "/containers/k8s_POD_[^ /]+/json"
    # no event stream yet: every call inspects (a death would go unnoticed otherwise)
    first = await watcher.run_sandbox(pod)
    n = proxy.requests("GET", inspects)
    assert await watcher.run_sandbox(pod) == first
    assert proxy.requests("GET", inspects) == n + 1
    events = Collector(watcher.watch_events())
    try:
        probe = pods.spec("probe", {"name": "c", "command": SLEEPER})
        await rt.run_sandbox(probe)
        await events.wait_for(probe["metadata"]["uid"])  # the stream is connected
        await watcher.run_sandbox(pod)  # (re)fills the cache
        n = proxy.requests("GET", inspects)
        for _ in range(3):
            assert await watcher.run_sandbox(pod) == first
        assert proxy.requests("GET", inspects) == n
        # the sandbox dies: its event drops the cache entry and the next call starts attempt 1
        await rt.client.kill(first.id)

        async def replaced() -> bool:
            return (await watcher.run_sandbox(pod)).id.endswith("_1")

        await eventually(replaced)
        assert uid in events.seen
    finally:
        await events.close()


async def test_container_create_removes_a_leftover_only_on_a_name_conflict(
    counted: tuple[DockerRuntime, BreakableProxy], pods: Pods
) -> None:
    watcher, proxy = counted
    pod = pods.spec("leftover", {"name": "c", "command": SLEEPER})
    sandbox = await watcher.run_sandbox(pod)
    cid = await watcher.create_container(pod, pod["spec"]["containers"][0], sandbox, {}, [], 0)
    assert proxy.requests("DELETE", "/containers/k8s_c_[^ ]+") == 0
    # the same attempt again (an interrupted sync): the 409 removes the leftover, then creates
    before = await watcher.client.inspect_container(cid)
    assert await watcher.create_container(pod, pod["spec"]["containers"][0], sandbox, {}, [], 0) == cid
    after = await watcher.client.inspect_container(cid)
    assert before is not None and after is not None and after["Id"] != before["Id"]
    assert proxy.requests("DELETE", "/containers/k8s_c_[^ ]+") == 1
    await watcher.start_container(cid)
    assert (await watcher.container_status(cid)).state == RUNNING  # type: ignore[union-attr]


async def test_present_images_are_inspected_once_and_a_missing_one_is_noticed(
    counted: tuple[DockerRuntime, BreakableProxy], pods: Pods
) -> None:
    watcher, proxy = counted
    alias = f"kubeha/alias-{uuid.uuid4().hex[:8]}:v1"
    name, tag = alias.rsplit(":", 1)
    await watcher.client.request("POST", f"/images/{IMAGE}/tag", params={"repo": name, "tag": tag})
    try:
        pod = pods.spec("images", {"name": "c", "command": SLEEPER, "image": alias})
        sandbox = await watcher.run_sandbox(pod)
        c = {**pod["spec"]["containers"][0], "imagePullPolicy": "IfNotPresent"}
        await watcher.create_container(pod, c, sandbox, {}, [], 0)
        await watcher.create_container(pod, c, sandbox, {}, [], 1)
        assert proxy.requests("GET", f"/images/{re.escape(alias)}/json") == 1
        # the image goes away behind the runtime's back: the create fails, and the next
        # attempt looks again (and, the image being gone for good, cannot pull it)
        await watcher.client.request("DELETE", f"/images/{alias}", params={"force": 1})
        with pytest.raises(RuntimeError):
            await watcher.create_container(pod, c, sandbox, {}, [], 2)
        with pytest.raises(RuntimeError, match="pull"):
            await watcher.create_container(pod, c, sandbox, {}, [], 2)
        assert proxy.requests("GET", f"/images/{re.escape(alias)}/json") == 2
    finally:
        await watcher.client.request("DELETE", f"/images/{alias}", params={"force": 1}, ok=(404,))


async def test_docker_brings_lo_up_in_a_network_none_container(docker: PrivateDocker, rt: DockerRuntime) -> None:
    """The runtime runs no CNI loopback plugin for its sandboxes (--network none): Docker must
    have brought their lo up with 127.0.0.1 already."""
    name = f"kdrt-lo-{uuid.uuid4().hex[:8]}"
    cfg = {"Image": IMAGE, "Cmd": ["ip", "-4", "addr", "show", "lo"], "HostConfig": {"NetworkMode": "none"}}
    await rt.client.create_container(name, cfg)
    try:
        await rt.client.start(name)

        async def exited() -> bool:
            info = await rt.client.inspect_container(name)
            return info is not None and (info.get("State") or {}).get("Status") == "exited"

        await eventually(exited)
        out = b"".join([c async for c in rt.logs(name)])
        assert b"inet 127.0.0.1/8" in out and b",UP" in out, out
    finally:
        await rt.client.remove(name)
