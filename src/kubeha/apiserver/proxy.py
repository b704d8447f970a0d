"""The api-server's side of ``pods/log``, ``pods/exec``, ``pods/attach`` and ``pods/portforward``:
find the pod's node and its kubelet, then relay to the kubelet's HTTPS server.

Logs are a chunked text stream copied through. Exec, attach and port-forward are connection
upgrades: the request goes on to the kubelet, and once the kubelet answers 101 the two
connections are spliced byte for byte, so every channel protocol (v5/v4/v1 exec, WebSocket and
SPDY-tunnelled port-forward) passes through unchanged; the kubelet decides which upgrades it
speaks. A request that is no upgrade gets 400 "Upgrade request required".

The api-server authenticates to kubelets with ``--kubelet-client-certificate/-key`` and checks
their serving certificate against ``--kubelet-certificate-authority`` (no check without it, as
upstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import httptools

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, lookup
from kubeha.apiserver.authn import CURRENT_USER
from kubeha.apiserver.authz import CURRENT_AUTHZ, Attributes
from kubeha.apiserver.config import ServerConfig
from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.httpserver import Request, Response, StreamResponse
from kubeha.apiserver.rest import Rest

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[Request, ApiContext, ResourceInfo, str, str], Awaitable[StreamResponse]]
LOG_PARAMS = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes")
DIAL_TIMEOUT = 10.0
SPLICE_LINGER = 5.0  # seconds the other direction may still flow once one has ended
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def kubelet_ssl(config: ServerConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if config.kubelet_certificate_authority:
        ctx.load_verify_locations(config.kubelet_certificate_authority)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.kubelet_client_certificate and config.kubelet_client_key:
        ctx.load_cert_chain(config.kubelet_client_certificate, config.kubelet_client_key)
    return ctx


def pick_container(pod: Obj, wanted: str) -> str:
    """The container a request means (upstream's defaulting and messages)."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    containers = [str(c.get("name")) for c in spec.get("containers") or ()]
    others = [str(c.get("name")) for k in ("initContainers", "ephemeralContainers") for c in spec.get(k) or ()]
    if not wanted:
        default = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
        if default and default in containers:
            return str(default)
        if len(containers) == 1:
            return containers[0]
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if others:
            msg += f" or one of the init containers: [{' '.join(others)}]"
        raise errors.bad_request(msg)
    if wanted not in containers and wanted not in others:
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def node_address(node: Obj, preferred: tuple[str, ...]) -> str:
    addrs = (node.get("status") or {}).get("addresses") or []
    for t in preferred:
        for a in addrs:
            if a.get("type") == t and a.get("address"):
                return str(a["address"])
    raise errors.StatusError(
        500, "InternalError", f"no preferred addresses found; known addresses: {[a.get('address') for a in addrs]}", {}
    )


async def kubelet_base(ctx: ApiContext, pod: Obj) -> str:
    name = (pod.get("metadata") or {}).get("name", "")
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    nodes = lookup("", "v1", "nodes")
    assert nodes is not None
    node = await Rest(ctx).get_object(nodes, "", str(node_name))
    host = node_address(node, ctx.config.kubelet_preferred_address_types)
    port = (((node.get("status") or {}).get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    port = int(port) if port else ctx.config.kubelet_port
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _query(request: Request, keep: Callable[[str], bool]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query.items() if keep(k)]


async def _authorize_create(request: Request, info: ResourceInfo, namespace: str, name: str, sub: str) -> None:
    """WebSocket upgrades come as GET (authorized as "get"); like upstream since 1.30 they also
    need "create" on the subresource."""
    user, chain = CURRENT_USER.get(), CURRENT_AUTHZ.get()
    if user is None or chain is None or request.method != "GET":
        return
    attrs = Attributes(user, "create", True, request.path, "", "v1", "pods", sub, namespace, name)
    ok, reason = await chain.authorize(attrs)
    if not ok:
        raise errors.forbidden(user.name, "create", "", f"pods/{sub}", name, namespace, reason)


def _dial_error(e: BaseException) -> errors.StatusError:
    return errors.StatusError(500, "InternalError", f"error dialing backend: {e}", {})


# -- logs ---------------------------------------------------------------------------------------------------


async def pod_log(request: Request, ctx: ApiContext, info: ResourceInfo, namespace: str, name: str) -> StreamResponse:
    if request.method != "GET":
        raise errors.method_not_allowed(request.method, "PodLogOptions")
    pod = await Rest(ctx).get_object(info, namespace, name)
    container = pick_container(pod, request.query.get("container", ""))
    base = await kubelet_base(ctx, pod)
    url = f"{base}/containerLogs/{quote(namespace)}/{quote(name)}/{quote(container)}"
    params = _query(request, lambda k: k in LOG_PARAMS)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    session = aiohttp.ClientSession(timeout=timeout)
    try:
        try:
            upstream = await session.get(url, params=params, ssl=kubelet_ssl(ctx.config))
        except (aiohttp.ClientError, OSError) as e:
            raise _dial_error(e) from e
        async with upstream:
            if upstream.status != 200:
                body = await upstream.read()
                ctype = upstream.headers.get("Content-Type", "application/json")
                return Response(status=upstream.status, body=body, headers={"Content-Type": ctype})
            resp = StreamResponse(headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await resp.write_eof()
            return resp
    finally:
        await session.close()


# -- exec, attach, port-forward ---------------------------------------------------------------------------------


def _is_upgrade(request: Request) -> bool:
    return request.upgrade and bool(request.headers.get("Upgrade"))


# the client's headers the kubelet needs to agree on the upgrade (never its credentials: the
# api-server authenticates to the kubelet with its own certificate)
_FORWARDED = (
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "X-Stream-Protocol-Version",
    "User-Agent",
)


class _Reply:
    """A kubelet's HTTP response head and body, as httptools reports them."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.head_done = False
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True

    def header(self, name: str) -> str:
        for k, v in self.headers:
            if k.decode("latin-1").lower() == name.lower():
                return v.decode("latin-1")
        return ""


async def _relay(request: Request, ctx: ApiContext, url: str, params: list[tuple[str, str]]) -> StreamResponse:
    """Send the client's upgrade request on to the kubelet; when it answers 101, pass its answer
    back and splice the two connections byte for byte (so every WebSocket subprotocol and SPDY
    pass through unchanged, as upstream's upgrade-aware proxy does); otherwise relay its error."""
    u = urlsplit(url)
    host, port = u.hostname or "", u.port or 443
    target = u.path + ("?" + urlencode(params) if params else "")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=kubelet_ssl(ctx.config), server_hostname=host), DIAL_TIMEOUT
        )
    except (OSError, ssl.SSLError, TimeoutError) as e:
        raise _dial_error(e) from e
    try:
        head = [f"{request.method} {target} HTTP/1.1", f"Host: {u.netloc}"]
        head += [f"{name}: {value}" for name in _FORWARDED for value in request.headers.getall(name, ())]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        reply = _Reply()
        parser = httptools.HttpResponseParser(reply)
        raw_head = b""
        leftover = b""
        try:
            while not reply.done:
                data = await asyncio.wait_for(reader.read(65536), DIAL_TIMEOUT)
                if not data:
                    break
                if not reply.head_done:
                    raw_head += data
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade as e:
                    offset = e.args[0] if e.args and isinstance(e.args[0], int) else len(data)
                    leftover = data[offset:]
                    raw_head = raw_head[: len(raw_head) - len(data) + offset]
                    break
        except (httptools.HttpParserError, OSError, TimeoutError) as e:
            raise _dial_error(e) from e
        code = parser.get_status_code() if reply.head_done else 0
        if code != 101:
            if not reply.head_done:
                raise _dial_error(ConnectionError("the kubelet closed the connection without answering"))
            ctype = reply.header("Content-Type") or "application/json"
            return Response(status=code, body=b"".join(reply.body), headers={"Content-Type": ctype})
        client = request.hijack()
        client.write(raw_head + leftover)

        async def down() -> None:  # kubelet -> client
            while data := await reader.read(65536):
                client.write(data)
                await client.drain()

        async def up() -> None:  # client -> kubelet
            while data := await client.read():
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            # one side is done; the other gets a moment to pass on what is in flight
            await asyncio.wait(tasks, timeout=SPLICE_LINGER)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            client.close()
        return Response(status=101)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _streaming_handler(sub: str) -> Handler:
    async def handle(
        request: Request, ctx: ApiContext, info: ResourceInfo, namespace: str, name: str
    ) -> StreamResponse:
        if request.method not in ("GET", "POST"):
            raise errors.method_not_allowed(request.method, info.kind)
        if not _is_upgrade(request):
            raise errors.bad_request("Upgrade request required")
        await _authorize_create(request, info, namespace, name, sub)
        pod = await Rest(ctx).get_object(info, namespace, name)
        base = await kubelet_base(ctx, pod)
        ns, pn = quote(namespace), quote(name)
        if sub == "portforward":
            return await _relay(request, ctx, f"{base}/portforward/{ns}/{pn}", _query(request, lambda k: k == "ports"))
        container = pick_container(pod, request.query.get("container", ""))
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise errors.bad_request(f"cannot {sub} into a container in a completed pod; current phase is {phase}")
        url = f"{base}/{sub}/{ns}/{pn}/{quote(container)}"
        return await _relay(request, ctx, url, _query(request, lambda k: k != "container"))

    return handle


def install(table: MutableMapping[tuple[str, str, str], Handler]) -> None:
    table[("", "pods", "log")] = pod_log
    for sub in ("exec", "attach", "portforward"):
        table[("", "pods", sub)] = _streaming_handler(sub)
