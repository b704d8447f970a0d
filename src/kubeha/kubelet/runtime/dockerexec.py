"""``kubectl exec`` into a Docker container: one exec instance on a hijacked connection.

The engine runs the command and relays its stdio over the connection that started it: our
writes are its stdin (a half-close ends stdin), its output comes back raw with a TTY or in
multiplexed frames without. Docker has no "kill exec" call, so :meth:`DockerExec.kill` signals
the process itself (the engine reports its host pid; the kubelet runs as root on that host).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from kubeha.kubelet.runtime.dockerapi import STDERR, DockerClient, DockerError, Hijacked, demux

log = logging.getLogger(__name__)

EXIT_POLL_FIRST = 0.01  # the engine records the exit code just after the stream ends
EXIT_POLL_MAX = 0.5
EXIT_UNKNOWN = 1  # the engine forgot the exec (it restarted): a failure, not a success


class DockerExec:
    """An ``ExecProcess`` (runtime/__init__.py) backed by a Docker exec instance."""

    def __init__(self, client: DockerClient, exec_id: str, conn: Hijacked, *, tty: bool) -> None:
        self.client = client
        self.exec_id = exec_id
        self.conn = conn
        self.tty = tty
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self._err: asyncio.Queue[bytes] = asyncio.Queue()
        self._stdin_closed = False
        self._size: tuple[int, int] | None = None
        self._resizer: asyncio.Task[None] | None = None
        self._reader = asyncio.create_task(self._read())
        self._code: int | None = None

    @classmethod
    async def start(
        cls, client: DockerClient, container_id: str, cmd: list[str], *, stdin: bool, tty: bool
    ) -> DockerExec:
        """Create and start the exec; a missing container raises FileNotFoundError, one that
        cannot run it (stopped, paused) RuntimeError. A missing *command* starts fine and ends
        with the engine's message on stdout and exit code 127 (126: not executable)."""
        if not cmd:
            raise RuntimeError("no command given")
        try:
            exec_id = await client.exec_create(container_id, cmd, stdin=stdin, tty=tty)
            conn = await client.exec_start(exec_id, tty=tty)
        except DockerError as e:
            if e.status == 404:
                raise FileNotFoundError(e.message) from e
            raise RuntimeError(e.message) from e
        return cls(client, exec_id, conn, tty=tty)

    async def _read(self) -> None:
        buf = bytearray()
        try:
            while chunk := await self.conn.reader.read(65536):
                if self.tty:
                    self._out.put_nowait(chunk)
                    continue
                buf.extend(chunk)
                for stream, data in demux(buf):
                    (self._err if stream == STDERR else self._out).put_nowait(data)
        except (ConnectionError, OSError) as e:
            log.debug("exec %s: stream broke: %s", self.exec_id[:12], e)
        finally:
            self._out.put_nowait(b"")
            self._err.put_nowait(b"")

    async def write_stdin(self, data: bytes) -> None:
        # a resize goes to Docker as its own request: keystrokes sent after it wait for it, so a
        # program reading them sees the size the client had when it typed (stty size after input)
        if self._resizer is not None and not self._resizer.done():
            await asyncio.shield(self._resizer)
        if not self._stdin_closed:
            await self.conn.write(data)

    async def close_stdin(self) -> None:
        if self._stdin_closed:
            return
        self._stdin_closed = True
        if self.tty:
            # a terminal's reader ends at ^D; closing the engine's side of the pty would not tell it
            await self.conn.write(b"\x04")
        else:
            self.conn.close_write()

    @staticmethod
    async def _next(q: asyncio.Queue[bytes]) -> bytes:
        data = await q.get()
        if not data:
            q.put_nowait(b"")  # the end stays the end for later readers
        return data

    async def read_stdout(self) -> bytes:
        return await self._next(self._out)

    async def read_stderr(self) -> bytes:
        return b"" if self.tty else await self._next(self._err)

    def resize(self, width: int, height: int) -> None:
        if not self.tty or width <= 0 or height <= 0:
            return
        self._size = (width, height)
        if self._resizer is None or self._resizer.done():
            self._resizer = asyncio.create_task(self._apply_sizes())

    async def _apply_sizes(self) -> None:
        # one request at a time, always the newest size: resizes arrive in bursts while dragging
        applied: tuple[int, int] | None = None
        failures = 0
        while self._size is not None and self._size != applied:
            applied = self._size
            try:
                await self.client.exec_resize(self.exec_id, *applied)
            except DockerError as e:
                # the client sends its size at once, often before Docker has the exec's process
                # running (then the engine refuses the resize): try again, briefly
                failures += 1
                log.debug("resizing exec %s (try %d): %s", self.exec_id[:12], failures, e)
                if failures < 6:
                    await asyncio.sleep(0.05 * 2**failures)
                    applied = None

    async def wait(self) -> int:
        """The exit code, asked once the output stream has ended (the process is gone then)."""
        if self._code is not None:
            return self._code
        await asyncio.shield(self._reader)
        self.conn.close()
        delay = EXIT_POLL_FIRST
        while True:
            try:
                info = await self.client.exec_inspect(self.exec_id)
            except DockerError as e:
                log.warning("exec %s: %s", self.exec_id[:12], e)
                self._code = EXIT_UNKNOWN
                return self._code
            if not info.get("Running"):
                self._code = int(info.get("ExitCode") or 0)
                return self._code
            await asyncio.sleep(delay)
            delay = min(EXIT_POLL_MAX, delay * 2)

    async def kill(self) -> None:
        """SIGKILL the exec'd process (its process group when it leads one, as runc makes a
        terminal's session leader), then drop the connection so the output ends too."""
        with contextlib.suppress(DockerError):
            info = await self.client.exec_inspect(self.exec_id)
            pid = int(info.get("Pid") or 0)
            if info.get("Running") and pid > 0:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if os.getpgid(pid) == pid:
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
        self.conn.close()

    async def close(self) -> None:
        """Release the connection and the background tasks (the process is not signalled)."""
        self.conn.close()
        for t in (self._reader, self._resizer):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
