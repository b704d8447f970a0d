"""The container runtime interface the kubelet drives (CRI-like, sandbox-centric, async).

A runtime owns sandboxes (the pod's shared environment: network namespace, IP) and containers
inside them. It keeps enough state of its own (labels, files) that ``list_pods`` after a kubelet
restart reports everything it runs, so the kubelet re-adopts instead of restarting.

Container identity: ``create_container`` returns an opaque id; each (pod uid, container name,
attempt) is one container. ``attempt`` counts restarts of that container in its pod (0 first) and
is the pod's ``restartCount`` for it. Runtimes keep at least the last exited attempt, so logs of
the previous instance (``kubectl logs --previous``) stay readable.

Implementations: ``host`` (``runtime/host.py``: supervised host processes), ``docker``
(``runtime/docker.py``: Docker Engine + CNI), and ``MultiRuntime`` (``runtime/multi.py``: both,
routed by runtime class and container id).

Optional capability: a runtime that can tell when its containers change implements
``RuntimeEvents.watch_events`` (Docker does, the host runtime does not); the PLEG then reacts to
events and relists such runtimes only rarely. Test for it with ``hasattr(runtime, "watch_events")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

Obj = dict[str, Any]

RUNNING = "running"
EXITED = "exited"
CREATED = "created"


@dataclass(frozen=True)
class Sandbox:
    id: str
    ip: str  # the pod IP ("" until the network is set up)
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerState:
    """What a container is doing now (the runtime's view, from which the kubelet builds status)."""

    id: str
    name: str  # the container's name in the pod spec
    attempt: int
    state: str  # RUNNING | EXITED | CREATED
    image: str = ""
    image_id: str = ""
    pid: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""  # for EXITED: Completed, Error, OOMKilled, ContainerStatusUnknown
    message: str = ""


@dataclass(frozen=True)
class Mount:
    """A volume mount the runtime makes visible to the container (host runtime: ignored, the
    process sees the host filesystem)."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass
class RuntimePod:
    """One pod as the runtime knows it (recovered from its own state, never from the API)."""

    uid: str
    name: str
    namespace: str
    sandbox: Sandbox | None = None
    containers: list[ContainerState] = field(default_factory=list)

    def latest(self, name: str) -> ContainerState | None:
        """The newest attempt of container ``name``."""
        best: ContainerState | None = None
        for c in self.containers:
            if c.name == name and (best is None or c.attempt > best.attempt):
                best = c
        return best


class ExecProcess(Protocol):
    """An interactive command started by ``Runtime.exec_stream`` (exec) for the streaming server."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def read_stdout(self) -> bytes:
        """The next output chunk (with a tty: everything the terminal shows); ``b""`` at the end."""
        ...

    async def read_stderr(self) -> bytes:
        """The next error chunk; always ``b""`` with a tty (the terminal merges both)."""
        ...

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (tty only; ignored otherwise)."""
        ...

    async def wait(self) -> int:
        """The exit code (128+N when killed by signal N)."""
        ...

    async def kill(self) -> None: ...


class Runtime(Protocol):
    """What the kubelet needs from a container runtime. Every method is safe to call again
    (stopping a stopped container, removing a removed one: no error). Runtimes may also be
    ``RuntimeEvents`` (below)."""

    name: str  # the RuntimeClass handler it serves ("host", "docker")
    version: str  # reported as node.status.nodeInfo.containerRuntimeVersion ("host://1.0")

    async def list_pods(self) -> list[RuntimePod]: ...

    async def run_sandbox(self, pod: Obj) -> Sandbox: ...

    async def stop_sandbox(self, pod_uid: str) -> None: ...

    async def remove_sandbox(self, pod_uid: str) -> None:
        """Remove the sandbox and every container (and its logs) of the pod."""
        ...

    async def create_container(
        self, pod: Obj, container: Obj, sandbox: Sandbox, env: Mapping[str, str], mounts: list[Mount], attempt: int
    ) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, wait up to ``grace_seconds``, then SIGKILL; returns when it has exited."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerState | None: ...

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> tuple[int, bytes, bytes]: ...  # noqa: ASYNC109

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        """The container's output (stdout and stderr interleaved, as written); ``previous``: of
        the attempt before this one (``kubectl logs --previous``)."""
        ...

    async def exec_stream(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecProcess:
        """Start ``cmd`` in the container's environment for ``kubectl exec`` (a pty when ``tty``);
        raises ``FileNotFoundError``/``RuntimeError`` when it cannot start."""
        ...

    def attach(self, container_id: str) -> AsyncIterator[tuple[str, bytes]]:
        """The running container's output from now on, as (``stdout``|``stderr``, data), until it
        exits (``kubectl attach`` without stdin)."""
        ...


class RuntimeEvents(Protocol):
    """Optional: a runtime that reports container changes as they happen (for the PLEG)."""

    def watch_events(self) -> AsyncIterator[str]:
        """The pod uid each time one of the pod's containers (or its sandbox) of this node is
        created, started, dies, is OOM-killed or removed — events from the moment of the call
        on, possibly repeated. ``""`` means "something may have been missed" (the stream broke
        and was re-established): relist everything. The iterator never ends by itself, except
        in a runtime that merges others (``MultiRuntime``) when none of them has events."""
        ...
