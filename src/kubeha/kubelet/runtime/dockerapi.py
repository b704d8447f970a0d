"""A small asyncio client for the parts of the Docker Engine API the kubelet uses.

Plain requests go through aiohttp over the engine's unix socket. Exec and attach need the
connection itself afterwards (Docker "hijacks" it into a raw bidirectional stream), which
aiohttp's client cannot hand over, so :meth:`DockerClient.hijack` speaks HTTP/1.1 directly over
``asyncio.open_unix_connection``. Without a TTY the engine multiplexes stdout and stderr on that
stream in frames with an 8-byte header (:func:`demux`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from kubeha.kubelet.runtime import Obj

API_VERSION = "v1.41"  # Docker 20.10
DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
STDOUT, STDERR = 1, 2  # stream numbers in a multiplexed frame header
MAX_HEAD = 64 * 1024


class DockerError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"docker: {message} (HTTP {status})")
        self.status = status
        self.message = message


def socket_path(endpoint: str) -> str:
    """``unix:///run/docker.sock`` or a bare path -> the socket path."""
    return endpoint[len("unix://") :] if endpoint.startswith("unix://") else endpoint


def demux(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete frames of Docker's multiplexed stream (8-byte header: stream, 0, 0, 0, size
    big-endian), consumed from ``buf``; 1 is stdout, 2 stderr."""
    out: list[tuple[int, bytes]] = []
    while len(buf) >= 8:
        stream, size = buf[0], struct.unpack(">I", bytes(buf[4:8]))[0]
        if len(buf) < 8 + size:
            break
        out.append((stream, bytes(buf[8 : 8 + size])))
        del buf[: 8 + size]
    return out


def error_message(status: int, raw: bytes) -> DockerError:
    """The engine's ``{"message": ...}`` error body as a DockerError."""
    msg = raw.decode(errors="replace")
    with contextlib.suppress(ValueError, AttributeError):
        msg = str(json.loads(raw).get("message") or msg)
    return DockerError(status, msg.strip())


class Hijacked:
    """A connection the engine turned into a raw stream (exec start, attach): ``reader`` gives
    the output (multiplexed unless there is a TTY), ``writer`` takes the input."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def write(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def close_write(self) -> None:
        """Half-close: the engine closes the process's stdin and keeps sending its output."""
        if not self.writer.is_closing() and self.writer.can_write_eof():
            with contextlib.suppress(OSError):
                self.writer.write_eof()

    def close(self) -> None:
        self.writer.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        raise ConnectionError("docker closed the connection before answering") from e
    except asyncio.LimitOverrunError as e:
        raise ConnectionError("docker sent an oversized response head") from e
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ConnectionError(f"docker sent a malformed status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    """The body of a plain (error) response: by Content-Length, chunked, or up to EOF."""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
            out += await reader.readexactly(size)
            await reader.readline()
        return bytes(out)
    return await reader.read(MAX_HEAD)


class DockerClient:
    """A small asyncio client for the parts of the Engine API the kubelet uses."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT) -> None:
        self.path = socket_path(endpoint)
        self._session: aiohttp.ClientSession | None = None

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.path, limit=64),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def url(path: str) -> str:
        return f"http://docker/{API_VERSION}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        body: Any = None,
        data: bytes | AsyncIterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """JSON (or None) for 2xx and for the statuses in ``ok``; DockerError otherwise."""
        items = params.items() if isinstance(params, Mapping) else (params or [])
        kwargs: dict[str, Any] = {"params": [(k, str(v)) for k, v in items]}
        if body is not None:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
        if headers:
            kwargs["headers"] = dict(headers)
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with self._s().request(method, self.url(path), **kwargs) as resp:
            raw = await resp.read()
            if resp.status >= 300 and resp.status not in ok:
                raise error_message(resp.status, raw)
            if not raw or resp.status in ok:
                return None
            if "json" in resp.headers.get("Content-Type", ""):
                # /images/create, /images/load and /build stream one JSON object per line
                try:
                    return json.loads(raw)
                except ValueError:
                    return [json.loads(line) for line in raw.splitlines() if line.strip()]
            return raw

    async def stream(
        self, path: str, params: Mapping[str, Any], method: str = "GET", body: Any = None
    ) -> AsyncIterator[bytes]:
        kwargs: dict[str, Any] = {"params": {k: str(v) for k, v in params.items()}}
        if body is not None:
            kwargs["json"] = body
        async with self._s().request(method, self.url(path), **kwargs) as resp:
            if resp.status >= 300:
                raise error_message(resp.status, await resp.read())
            async for chunk in resp.content.iter_any():
                yield chunk

    async def hijack(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Hijacked:
        """Send one request asking the engine to upgrade the connection (``Upgrade: tcp``, which
        also lets us half-close it) and return the raw stream that follows its 101 (or 200)
        answer; any other status raises DockerError."""
        reader, writer = await asyncio.open_unix_connection(self.path, limit=MAX_HEAD)
        try:
            payload = json.dumps(body).encode() if body is not None else b""
            query = f"?{urlencode({k: str(v) for k, v in params.items()})}" if params else ""
            head = (
                f"{method} /{API_VERSION}{path}{query} HTTP/1.1\r\n"
                "Host: docker\r\n"
                "User-Agent: kubeha-kubelet\r\n"
                "Connection: Upgrade\r\n"
                "Upgrade: tcp\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            )
            writer.write(head.encode() + payload)
            await writer.drain()
            status, headers = await _read_head(reader)
            if status not in (101, 200):
                raise error_message(status, await _read_body(reader, headers))
        except BaseException:
            writer.close()
            raise
        return Hijacked(reader, writer)

    async def events(self, filters: Mapping[str, list[str]], since: float | None = None) -> AsyncIterator[Obj]:
        """``GET /events``: first an empty message once the engine has answered (from then on
        nothing is missed), then one message per event until the stream breaks; ``since`` (unix
        time) replays what the engine still buffers from then on."""
        params: dict[str, Any] = {"filters": json.dumps(dict(filters))}
        if since is not None:
            params["since"] = f"{since:.9f}"
        async with self._s().get(self.url("/events"), params=params) as resp:
            if resp.status >= 300:
                raise error_message(resp.status, await resp.read())
            yield {}
            buf = b""
            async for chunk in resp.content.iter_any():
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        with contextlib.suppress(ValueError):
                            yield dict(json.loads(line))

    async def version(self) -> Obj:
        return dict(await self.request("GET", "/version"))

    async def inspect_container(self, cid: str) -> Obj | None:
        try:
            return dict(await self.request("GET", f"/containers/{quote(cid)}/json"))
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def inspect_image(self, image: str) -> Obj | None:
        try:
            return dict(await self.request("GET", f"/images/{quote(image, safe='/:@')}/json"))
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def list_containers(self, labels: list[str]) -> list[Obj]:
        filters = json.dumps({"label": labels})
        return list(await self.request("GET", "/containers/json", params={"all": 1, "filters": filters}) or [])

    async def create_container(self, name: str, config: Obj) -> str:
        out = await self.request("POST", "/containers/create", params={"name": name}, body=config)
        return str(out["Id"])

    async def start(self, cid: str) -> None:
        await self.request("POST", f"/containers/{quote(cid)}/start", ok=(304,))

    async def stop(self, cid: str, seconds: int) -> None:
        await self.request("POST", f"/containers/{quote(cid)}/stop", params={"t": seconds}, ok=(304, 404))

    async def kill(self, cid: str) -> None:
        await self.request("POST", f"/containers/{quote(cid)}/kill", ok=(404, 409))

    async def remove(self, cid: str) -> None:
        await self.request("DELETE", f"/containers/{quote(cid)}", params={"force": 1, "v": 1}, ok=(404,))

    async def pull(self, image: str, timeout: float) -> None:  # noqa: ASYNC109
        name, tag = split_image(image)
        out = await self.request("POST", "/images/create", params={"fromImage": name, "tag": tag}, timeout=timeout)
        _raise_stream_error(out)

    async def import_image(self, rootfs_tar: bytes, repo: str, tag: str, changes: list[str]) -> None:
        """``docker import``: a root filesystem tarball as a one-layer image."""
        params = [("fromSrc", "-"), ("repo", repo), ("tag", tag), *(("changes", c) for c in changes)]
        out = await self.request(
            "POST", "/images/create", params=params, data=rootfs_tar, headers={"Content-Type": "application/x-tar"}
        )
        _raise_stream_error(out)

    async def load_image(self, data: bytes | AsyncIterator[bytes]) -> list[str]:
        """``docker load``: an image archive (``docker save`` format); the loaded image names."""
        out = await self.request(
            "POST", "/images/load", params={"quiet": 1}, data=data, headers={"Content-Type": "application/x-tar"}
        )
        _raise_stream_error(out)
        msgs = out if isinstance(out, list) else [out]
        return [str(m.get("stream", "")).strip() for m in msgs if isinstance(m, dict) and m.get("stream")]

    async def exec_create(self, cid: str, cmd: list[str], *, stdin: bool, tty: bool) -> str:
        """``POST /containers/{id}/exec``: the exec's id; a missing container raises DockerError 404."""
        body = {"Cmd": cmd, "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True, "Tty": tty}
        created = await self.request("POST", f"/containers/{quote(cid)}/exec", body=body)
        return str(created["Id"])

    async def exec_start(self, exec_id: str, *, tty: bool) -> Hijacked:
        return await self.hijack("POST", f"/exec/{quote(exec_id)}/start", body={"Detach": False, "Tty": tty})

    async def exec_inspect(self, exec_id: str) -> Obj:
        return dict(await self.request("GET", f"/exec/{quote(exec_id)}/json"))

    async def exec_resize(self, exec_id: str, width: int, height: int) -> None:
        await self.request("POST", f"/exec/{quote(exec_id)}/resize", params={"h": height, "w": width})

    async def attach(self, cid: str) -> Hijacked:
        """The container's output from now on (no logs, no stdin) on a hijacked connection."""
        params = {"stream": 1, "stdout": 1, "stderr": 1}
        return await self.hijack("POST", f"/containers/{quote(cid)}/attach", params=params)


def _raise_stream_error(out: Any) -> None:
    """Streamed image operations report failures in-band, with HTTP 200."""
    for msg in out if isinstance(out, list) else [out]:
        if isinstance(msg, dict) and msg.get("error"):
            raise DockerError(500, str(msg["error"]))


def split_image(image: str) -> tuple[str, str]:
    """``repo[:tag][@digest]`` -> (repo, tag or digest), tag ``latest`` when none."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"
