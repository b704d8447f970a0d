"""The api-server's side of ``pods/log``, ``pods/exec``, ``pods/attach`` and ``pods/portforward``:
find the pod's node and its kubelet, then relay to the kubelet's HTTPS server.

Logs are a chunked text stream copied through. Exec, attach and port-forward are WebSocket
upgrades: the kubelet is dialled first with the client's offered subprotocols, and the client's
connection is upgraded with the one the kubelet chose, so every channel protocol (v5/v4/v1 exec,
WebSocket and SPDY-tunnelled port-forward) passes through unchanged. A request that is no
WebSocket upgrade (kubectl 1.27-1.29 speak SPDY) gets 400 "Upgrade request required".

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
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, lookup
from kubeha.apiserver.authn import CURRENT_USER
from kubeha.apiserver.authz import CURRENT_AUTHZ, Attributes
from kubeha.apiserver.config import ServerConfig
from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.rest import Rest

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[web.Request, ApiContext, ResourceInfo, str, str], Awaitable[web.StreamResponse]]
LOG_PARAMS = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes")
MAX_MESSAGE = 16 * 1024 * 1024
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


def _query(request: web.Request, keep: Callable[[str], bool]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query.items() if keep(k)]


async def _authorize_create(request: web.Request, info: ResourceInfo, namespace: str, name: str, sub: str) -> None:
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


async def pod_log(
    request: web.Request, ctx: ApiContext, info: ResourceInfo, namespace: str, name: str
) -> web.StreamResponse:
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
                return web.Response(status=upstream.status, body=body, headers={"Content-Type": ctype})
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
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


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _relay(request: web.Request, ctx: ApiContext, url: str, params: list[tuple[str, str]]) -> web.StreamResponse:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    sslctx = kubelet_ssl(ctx.config)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    try:
        try:
            backend = await session.ws_connect(
                url, params=params, protocols=offered, ssl=sslctx, max_msg_size=MAX_MESSAGE, autoping=True
            )
        except aiohttp.WSServerHandshakeError as e:
            # the kubelet refused before upgrading: fetch its error (it checks the target first)
            async with session.get(url, params=params, ssl=sslctx) as r:
                body = await r.read()
                ctype = r.headers.get("Content-Type", "application/json")
            return web.Response(
                status=e.status if r.status < 400 else r.status, body=body, headers={"Content-Type": ctype}
            )
        except (aiohttp.ClientError, OSError) as e:
            raise _dial_error(e) from e
        client = web.WebSocketResponse(
            protocols=(backend.protocol,) if backend.protocol else (), max_msg_size=MAX_MESSAGE, autoping=True
        )
        await client.prepare(request)

        async def down() -> None:  # kubelet -> client
            async for msg in backend:
                if msg.type == WSMsgType.BINARY:
                    await client.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await client.send_str(msg.data)
                else:
                    break

        async def up() -> None:  # client -> kubelet
            async for msg in client:
                if msg.type == WSMsgType.BINARY:
                    await backend.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await backend.send_str(msg.data)
                else:
                    break

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[0] in done:
                code = backend.close_code or 1000
                # 1005/1006/1015 describe a lost connection and must never be sent
                valid = code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code < 5000
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await client.close(code=code if valid else 1000)
            else:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await backend.close()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await backend.close()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.close()
        return client
    finally:
        await session.close()


def _streaming_handler(sub: str) -> Handler:
    async def handle(
        request: web.Request, ctx: ApiContext, info: ResourceInfo, namespace: str, name: str
    ) -> web.StreamResponse:
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
