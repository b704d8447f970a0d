"""The ``host`` runtime: each container is a supervised process on the host (RuntimeClass ``host``).

For control-plane components and add-ons that are Python processes of this package (the idea of
Windows HostProcess containers). The sandbox is the host itself: host network only, pod IP = node
IP. Everything lives under ``<root-dir>/pods/<uid>/``::

    pod.json                       the pod's identity (name, namespace, uid)
    <container>/<attempt>.json     what to run (command, env, working dir, log path, image)
    <container>/<attempt>.state.json  written by the shim: pids, start ticks, times, exit code
    <container>/<attempt>.log      output in the CRI log format

A shim process (``runtime/shim.py``) supervises each container, so containers survive kubelet
restarts and their exit codes are recorded; the pid plus its /proc start ticks identify the
process, so a reused pid is never mistaken for ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import struct
import sys
import termios
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubeha.kubelet import logs as crilog
from kubeha.kubelet.runtime import (
    CREATED,
    EXITED,
    RUNNING,
    ContainerState,
    ExecProcess,
    Mount,
    Obj,
    RuntimePod,
    Sandbox,
)
from kubeha.kubelet.runtime.shim import proc_start_ticks

log = logging.getLogger(__name__)

HANDLER = "host"
VERSION = "host://1.0.0"
STOP_POLL = 0.05


def container_id(pod_uid: str, name: str, attempt: int) -> str:
    return f"{pod_uid}_{name}_{attempt}"


def parse_container_id(cid: str) -> tuple[str, str, int]:
    """(pod uid, container name, attempt); pod uids and container names hold no underscore."""
    uid, name, attempt = cid.split("_")
    return uid, name, int(attempt)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) else None


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return crilog.parse_timestamp(str(value))
    except ValueError:
        return None


def _alive(pid: Any, ticks: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    now = proc_start_ticks(pid)
    if now is None or (ticks is not None and now != ticks):
        return False
    # a zombie has exited already (its parent just has not reaped it yet)
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        if stat[stat.rfind(b")") + 2 :].startswith(b"Z"):
            return False
    return True


def _read_from(path: Path, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read()


class HostRuntime:
    """Runtime (see ``runtime/__init__.py``) whose containers are host processes."""

    name = HANDLER
    version = VERSION

    def __init__(self, root_dir: str | os.PathLike[str], node_ip: str, python: str = sys.executable) -> None:
        self.root = Path(root_dir) / "pods"
        self.node_ip = node_ip
        self.python = python
        # events: the queues of the open watch_events streams, and a pidfd per watched shim
        self._listeners: set[asyncio.Queue[str]] = set()
        self._shims: dict[int, tuple[int, str]] = {}  # shim pid -> (its pidfd, pod uid)

    # -- paths --------------------------------------------------------------------------------

    def _pod_dir(self, uid: str) -> Path:
        return self.root / uid

    def _paths(self, cid: str) -> tuple[Path, Path, Path]:
        uid, name, attempt = parse_container_id(cid)
        d = self._pod_dir(uid) / name
        return d / f"{attempt}.json", d / f"{attempt}.state.json", d / f"{attempt}.log"

    def log_path(self, cid: str) -> Path:
        return self._paths(cid)[2]

    # -- sandboxes ----------------------------------------------------------------------------

    async def list_pods(self) -> list[RuntimePod]:
        return await asyncio.to_thread(self._list_pods)

    def _list_pods(self) -> list[RuntimePod]:
        out: list[RuntimePod] = []
        if not self.root.is_dir():
            return out
        for d in sorted(self.root.iterdir()):
            meta = _read_json(d / "pod.json")
            if meta is None:
                continue
            pod = RuntimePod(
                uid=d.name,
                name=str(meta.get("name", "")),
                namespace=str(meta.get("namespace", "")),
                sandbox=Sandbox(d.name, self.node_ip, (self.node_ip,)),
            )
            for cdir in sorted(p for p in d.iterdir() if p.is_dir()):
                for spec in cdir.glob("*.json"):
                    if spec.name.endswith(".state.json") or not spec.stem.isdigit():
                        continue
                    st = self._status(container_id(d.name, cdir.name, int(spec.stem)))
                    if st is not None:
                        pod.containers.append(st)
            out.append(pod)
        return out

    async def run_sandbox(self, pod: Obj) -> Sandbox:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        d = self._pod_dir(uid)
        if not (d / "pod.json").exists():
            d.mkdir(parents=True, exist_ok=True)
            info = {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": uid}
            (d / "pod.json").write_text(json.dumps(info))
        return Sandbox(uid, self.node_ip, (self.node_ip,))

    async def stop_sandbox(self, pod_uid: str) -> None:
        # the host has nothing to tear down: stopping a pod is stopping its containers
        for pod in await self.list_pods():
            if pod.uid == pod_uid:
                await asyncio.gather(*(self.stop_container(c.id, 0) for c in pod.containers if c.state == RUNNING))

    async def remove_sandbox(self, pod_uid: str) -> None:
        await self.stop_sandbox(pod_uid)
        await asyncio.to_thread(shutil.rmtree, self._pod_dir(pod_uid), True)

    # -- containers ---------------------------------------------------------------------------

    async def create_container(
        self, pod: Obj, container: Obj, sandbox: Sandbox, env: Mapping[str, str], mounts: list[Mount], attempt: int
    ) -> str:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        name = str(container.get("name") or "")
        command = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        if not container.get("command"):
            # there is no image to supply an entrypoint
            raise ValueError(f"container {name!r}: the host runtime needs a command")
        cid = container_id(uid, name, attempt)
        spec_path, state_path, log_path = self._paths(cid)
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.unlink(missing_ok=True)
        log_path.unlink(missing_ok=True)
        spec = {
            "command": command,
            "env": dict(env),
            "workingDir": container.get("workingDir") or "",
            "log": str(log_path),
            "image": container.get("image") or "",
            "created": crilog.format_timestamp(datetime.now(UTC)),
        }
        spec_path.write_text(json.dumps(spec))
        return cid

    async def start_container(self, container_id: str) -> None:
        spec_path, state_path, _ = self._paths(container_id)
        _, _, attempt = parse_container_id(container_id)
        proc = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "kubeha.kubelet.runtime.shim",
            str(spec_path.parent),
            str(attempt),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0 or not state_path.exists():
            raise RuntimeError(f"starting {container_id} failed: {err.decode(errors='replace').strip()}")
        if self._listeners:
            state = _read_json(state_path) or {}
            self._watch_shim(state.get("shimPid"), state.get("shimStart"), parse_container_id(container_id)[0])

    # -- events -------------------------------------------------------------------------------
    # A container's shim records its exit and then exits itself (a container counts as running
    # while its shim lives), so a pidfd per shim (Linux 5.3+) says when a pod changed: host pods
    # need no relist every second.

    async def watch_events(self) -> AsyncIterator[str]:
        """The uid of a pod each time one of its containers' shims exits, from this call on
        (what changed before is the caller's listing to find). Never breaks: a pidfd cannot miss
        its process's exit."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            for pid, ticks, uid in await asyncio.to_thread(self._running_shims):
                self._watch_shim(pid, ticks, uid)
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)
            if not self._listeners:
                loop = asyncio.get_running_loop()
                for fd, _ in self._shims.values():
                    loop.remove_reader(fd)
                    os.close(fd)
                self._shims.clear()

    def _running_shims(self) -> list[tuple[Any, Any, str]]:
        """(shim pid, its start ticks, pod uid) of every container whose shim still runs."""
        out: list[tuple[Any, Any, str]] = []
        if not self.root.is_dir():
            return out
        for state in self.root.glob("*/*/*.state.json"):
            s = _read_json(state) or {}
            if "exitCode" not in s and _alive(s.get("shimPid"), s.get("shimStart")):
                out.append((s.get("shimPid"), s.get("shimStart"), state.parent.parent.name))
        return out

    def _watch_shim(self, pid: Any, ticks: Any, uid: str) -> None:
        if not isinstance(pid, int) or pid in self._shims:
            return
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._notify(uid)
            return
        if not _alive(pid, ticks):  # gone (and the pid perhaps reused) before the pidfd was open
            os.close(fd)
            self._notify(uid)
            return
        self._shims[pid] = (fd, uid)
        asyncio.get_running_loop().add_reader(fd, self._shim_exited, pid)

    def _shim_exited(self, pid: int) -> None:
        fd, uid = self._shims.pop(pid)
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        self._notify(uid)

    def _notify(self, uid: str) -> None:
        for queue in self._listeners:
            queue.put_nowait(uid)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        _, state_path, _ = self._paths(container_id)
        state = _read_json(state_path) or {}
        if "exitCode" in state or not _alive(state.get("pid"), state.get("pidStart")):
            return
        pid = int(state["pid"])
        loop = asyncio.get_running_loop()
        self._signal(pid, signal.SIGTERM)
        deadline = loop.time() + max(0.0, grace_seconds)
        # not our child (it may predate this kubelet): polling /proc is the only way to watch it
        while loop.time() < deadline and _alive(pid, state.get("pidStart")):  # noqa: ASYNC110
            await asyncio.sleep(STOP_POLL)
        # after the grace period, or once the leader is gone: no stragglers of its group either
        self._signal(pid, signal.SIGKILL)
        # wait (briefly) for the shim to record the exit, so the next status read is final
        end = loop.time() + 3.0
        while loop.time() < end:
            st = _read_json(state_path) or {}
            if "exitCode" in st or not _alive(st.get("shimPid"), st.get("shimStart")):
                return
            await asyncio.sleep(STOP_POLL)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        # the command leads its own process group: signal every process in it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    async def remove_container(self, container_id: str) -> None:
        for p in self._paths(container_id):
            p.unlink(missing_ok=True)

    async def container_status(self, container_id: str) -> ContainerState | None:
        return self._status(container_id)

    def _status(self, cid: str) -> ContainerState | None:
        spec_path, state_path, _ = self._paths(cid)
        spec = _read_json(spec_path)
        if spec is None:
            return None
        _, name, attempt = parse_container_id(cid)
        image = str(spec.get("image") or "")
        state = _read_json(state_path)
        base: dict[str, Any] = {"id": cid, "name": name, "attempt": attempt, "image": image, "image_id": image}
        if state is None:
            return ContainerState(state=CREATED, **base)
        started = _time(state.get("startedAt"))
        pid = int(state.get("pid") or 0)
        if "exitCode" in state:
            return ContainerState(
                state=EXITED,
                pid=pid,
                started_at=started,
                finished_at=_time(state.get("finishedAt")),
                exit_code=int(state["exitCode"]),
                reason=str(state.get("reason") or ""),
                message=str(state.get("message") or ""),
                **base,
            )
        if _alive(pid, state.get("pidStart")) or _alive(state.get("shimPid"), state.get("shimStart")):
            return ContainerState(state=RUNNING, pid=pid, started_at=started, **base)
        # both the process and its shim vanished without a word (a reboot, kill -9 of both)
        return ContainerState(
            state=EXITED,
            pid=pid,
            started_at=started,
            finished_at=started,
            exit_code=137,
            reason="ContainerStatusUnknown",
            message="The container could not be located when the pod was terminated",
            **base,
        )

    async def exec_sync(
        self,
        container_id: str,
        cmd: list[str],
        timeout: float,  # noqa: ASYNC109 - the runtime interface's per-call deadline
    ) -> tuple[int, bytes, bytes]:
        spec_path, _, _ = self._paths(container_id)
        spec = _read_json(spec_path) or {}
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            env=spec.get("env") or {},
            cwd=spec.get("workingDir") or None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        return proc.returncode or 0, out, err

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        if previous:
            uid, name, attempt = parse_container_id(container_id)
            if attempt == 0:
                return
            container_id = container_id_for(uid, name, attempt - 1)
        path = self.log_path(container_id)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            data = b""
        # complete records only: a partly written last line is read again when following
        cut = data.rfind(b"\n") + 1
        for chunk in crilog.render(crilog.read_records(data[:cut]), timestamps=timestamps, since=since, tail=tail):
            yield chunk
        if not follow:
            return
        offset = cut
        while True:
            st = self._status(container_id)
            running = st is not None and st.state == RUNNING
            try:
                more = await asyncio.to_thread(_read_from, path, offset)
            except FileNotFoundError:
                return
            cut = more.rfind(b"\n") + 1
            if cut:
                offset += cut
                for chunk in crilog.render(crilog.read_records(more[:cut]), timestamps=timestamps):
                    yield chunk
            elif not running:
                return
            await asyncio.sleep(0.2)

    # -- interactive exec and attach ------------------------------------------------------------------

    async def exec_stream(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecProcess:
        spec_path, _, _ = self._paths(container_id)
        spec = _read_json(spec_path) or {}
        env = dict(spec.get("env") or {})
        cwd = spec.get("workingDir") or None
        if not cmd:
            raise RuntimeError("no command given")
        if tty:
            env.setdefault("TERM", "xterm")
            return await PtyExec.start(cmd, env, cwd)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        return PipeExec(proc)

    async def attach(self, container_id: str) -> AsyncIterator[tuple[str, bytes]]:
        path = self.log_path(container_id)
        try:
            offset = path.stat().st_size
        except FileNotFoundError:
            return
        while True:
            st = self._status(container_id)
            running = st is not None and st.state == RUNNING
            try:
                more = await asyncio.to_thread(_read_from, path, offset)
            except FileNotFoundError:
                return
            cut = more.rfind(b"\n") + 1
            offset += cut
            for rec in crilog.read_records(more[:cut]):
                yield rec.stream, rec.text + (b"" if rec.partial else b"\n")
            if not cut and not running:
                return
            await asyncio.sleep(0.1)


def _exit_code(rc: int | None) -> int:
    if rc is None:
        return 0
    return 128 - rc if rc < 0 else rc


class PipeExec:
    """An exec without a terminal: stdin, stdout and stderr are pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def write_stdin(self, data: bytes) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def read_stdout(self) -> bytes:
        return await self.proc.stdout.read(65536) if self.proc.stdout is not None else b""

    async def read_stderr(self) -> bytes:
        return await self.proc.stderr.read(65536) if self.proc.stderr is not None else b""

    def resize(self, width: int, height: int) -> None:
        pass

    async def wait(self) -> int:
        return _exit_code(await self.proc.wait())

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class PtyExec:
    """An exec on a pseudo-terminal: the command's session leader owns the pty's slave side; we
    hold the master (reads give the screen output, writes are keystrokes, TIOCSWINSZ resizes)."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.master = master
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        os.set_blocking(master, False)
        self._loop.add_reader(master, self._readable)
        self._closed = False

    @classmethod
    async def start(cls, cmd: list[str], env: dict[str, str], cwd: str | None) -> PtyExec:
        master, slave = os.openpty()

        def become_tty_owner() -> None:  # runs in the child between fork and exec
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, preexec_fn=become_tty_owner
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(proc, master)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave fd is closed (the command and its children ended)
            data = b""
        if not data:
            self._close_master()
        self._out.put_nowait(data)

    def _close_master(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self.master)
            os.close(self.master)

    async def write_stdin(self, data: bytes) -> None:
        if self._closed:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            except OSError:
                return
            view = view[n:]

    async def close_stdin(self) -> None:
        await self.write_stdin(b"\x04")  # end-of-file for the terminal's reader

    async def read_stdout(self) -> bytes:
        if self._closed and self._out.empty():
            return b""
        return await self._out.get()

    async def read_stderr(self) -> bytes:
        return b""

    def resize(self, width: int, height: int) -> None:
        if not self._closed:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = _exit_code(await self.proc.wait())
        # a background child may hold the terminal open; the session's output ends with its leader
        await asyncio.sleep(0.05)
        if not self._closed:
            self._readable_drain()
        return code

    def _readable_drain(self) -> None:
        while not self._closed:
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if data:
                self._out.put_nowait(data)
            else:
                break
        self._close_master()
        self._out.put_nowait(b"")

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


container_id_for = container_id
