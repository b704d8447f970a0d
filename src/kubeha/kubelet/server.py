"""The kubelet's HTTPS server on ``--port`` (10250): logs, exec, attach, port-forward, pod lists.

Endpoints as upstream's kubelet: ``/healthz``, ``/pods``, ``/runningpods/``,
``/containerLogs/{ns}/{pod}/{container}``, ``/exec|attach/{ns}/{pod}/{container}`` and
``/portforward/{ns}/{pod}`` (WebSocket; protocols in ``streaming.py``).

Authentication: a client certificate signed by ``--client-ca-file``, or a bearer token checked by
a TokenReview. Authorization: the api-server's kubelet-client identity
(``kube-apiserver-kubelet-client``) always passes; anyone else needs ``<verb> nodes/proxy`` on this
node by a SubjectAccessReview (decisions cached briefly, as upstream's webhook authorizer).
Without ``--tls-cert-file`` a self-signed serving certificate is made under ``<root-dir>/pki``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from kubeha.api.errors import StatusError
from kubeha.kubelet import streaming
from kubeha.kubelet.runtime import RUNNING, ContainerState, Runtime, RuntimePod

log = logging.getLogger("kubeha.kubelet.server")

Obj = dict[str, Any]
APISERVER_CLIENT = "kube-apiserver-kubelet-client"
ALLOW_TTL = 300.0  # upstream's webhook cache: authorized 5 min, unauthorized 30 s
DENY_TTL = 30.0
TOKEN_TTL = 120.0
MAX_MESSAGE = 16 * 1024 * 1024


@dataclass
class ServerConfig:
    node_name: str
    root_dir: str
    node_ip: str = ""
    address: str = "0.0.0.0"
    port: int = 10250
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""


@dataclass(frozen=True)
class Caller:
    name: str
    groups: tuple[str, ...]


def status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def error_response(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(status_body(code, reason, message), status=code)


class WsAdapter:
    """``streaming.MessageSocket`` over aiohttp's WebSocketResponse."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def receive_message(self) -> bytes | None:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                return bytes(msg.data)
            if msg.type == WSMsgType.TEXT:
                continue  # the base64 text protocols are not served
            return None

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        await self.ws.close(code=code, message=message)


def serving_cert(cfg: ServerConfig) -> tuple[str, str]:
    """The configured pair, or ``<root-dir>/pki/kubelet.crt|key`` (self-signed, made once)."""
    if cfg.tls_cert_file and cfg.tls_private_key_file:
        return cfg.tls_cert_file, cfg.tls_private_key_file
    d = Path(cfg.root_dir) / "pki"
    crt, key = d / "kubelet.crt", d / "kubelet.key"
    if not (crt.exists() and key.exists()):
        d.mkdir(parents=True, exist_ok=True)
        c, k = self_signed(cfg.node_name, [cfg.node_name, cfg.node_ip, "localhost", "127.0.0.1"])
        crt.write_bytes(c)
        key.touch(mode=0o600)
        key.write_bytes(k)
    return str(crt), str(key)


def self_signed(cn: str, sans: list[str]) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for s in dict.fromkeys(x for x in sans if x):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            names.append(x509.DNSName(s))
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cn}@{int(now.timestamp())}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ssl_context(cfg: ServerConfig) -> ssl.SSLContext:
    cert, key = serving_cert(cfg)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if cfg.client_ca_file:
        ctx.load_verify_locations(cfg.client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # tokens are the other way in
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def caller_from_cert(peercert: Any) -> Caller | None:
    """CN -> user, each O -> group (only verified certificates reach here)."""
    if not peercert:
        return None
    cn, orgs = "", []
    for rdn in peercert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    return Caller(cn, tuple(orgs)) if cn else None


def request_verb(method: str) -> str:
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "get")


def flag(query: Any, *names: str, default: bool = False) -> bool:
    for n in names:
        if n in query:
            return str(query.get(n)).lower() in ("1", "true", "")
    return default


class KubeletServer:
    """Serves one kubelet's pods. ``pods()`` lists the pods the kubelet runs (API and static);
    ``client`` (an ApiClient) makes the TokenReviews and SubjectAccessReviews."""

    def __init__(self, cfg: ServerConfig, runtime: Runtime, pods: Callable[[], list[Obj]], client: Any) -> None:
        self.cfg = cfg
        self.runtime = runtime
        self.pods = pods
        self.client = client
        self._decisions: dict[tuple[str, tuple[str, ...], str], tuple[bool, float]] = {}
        self._tokens: dict[str, tuple[Caller | None, float]] = {}
        self._runner: web.AppRunner | None = None
        self.app = self.build_app()

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=1024 * 1024)
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/pods", self.list_pods)
        r.add_get("/runningpods/", self.running_pods)
        r.add_get("/containerLogs/{ns}/{pod}/{container}", self.container_logs)
        for verb in ("exec", "attach"):
            r.add_route("*", f"/{verb}/{{ns}}/{{pod}}/{{container}}", self.exec_or_attach)
            r.add_route("*", f"/{verb}/{{ns}}/{{pod}}/{{uid}}/{{container}}", self.exec_or_attach)
        r.add_route("*", "/portforward/{ns}/{pod}", self.portforward)
        r.add_route("*", "/portforward/{ns}/{pod}/{uid}", self.portforward)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.address, self.cfg.port, ssl_context=ssl_context(self.cfg))
        await site.start()
        log.info("serving on https://%s:%d", self.cfg.address, self.cfg.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- authn / authz ------------------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        caller = caller_from_cert(request.transport.get_extra_info("peercert") if request.transport else None)
        auth = request.headers.get("Authorization", "")
        if caller is None and auth.lower().startswith("bearer "):
            caller = await self._token_caller(auth[7:].strip())
        if caller is None:
            return error_response(401, "Unauthorized", "Unauthorized")
        verb = request_verb(request.method)
        if not await self._allowed(caller, verb):
            msg = f"Forbidden (user={caller.name}, verb={verb}, resource=nodes, subresource=proxy)"
            return error_response(403, "Forbidden", msg)
        resp: web.StreamResponse = await handler(request)
        return resp

    async def _token_caller(self, token: str) -> Caller | None:
        hit = self._tokens.get(token)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        caller: Caller | None = None
        with contextlib.suppress(StatusError, OSError, ValueError):
            review = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            }
            res = await self.client.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=review)
            st = (res or {}).get("status") or {}
            if st.get("authenticated"):
                user = st.get("user") or {}
                caller = Caller(str(user.get("username") or ""), tuple(user.get("groups") or ()))
        self._tokens[token] = (caller, time.monotonic() + TOKEN_TTL)
        return caller

    async def _allowed(self, caller: Caller, verb: str) -> bool:
        if caller.name == APISERVER_CLIENT:
            return True
        key = (caller.name, caller.groups, verb)
        hit = self._decisions.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        allowed = False
        try:
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": caller.name,
                    "groups": list(caller.groups),
                    "resourceAttributes": {
                        "verb": verb,
                        "resource": "nodes",
                        "subresource": "proxy",
                        "name": self.cfg.node_name,
                    },
                },
            }
            res = await self.client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
            allowed = bool(((res or {}).get("status") or {}).get("allowed"))
        except (StatusError, OSError, ValueError) as e:
            log.warning("SubjectAccessReview for %s failed: %s", caller.name, e)
            return False  # not cached: the api-server may answer next time
        self._decisions[key] = (allowed, time.monotonic() + (ALLOW_TTL if allowed else DENY_TTL))
        return allowed

    # -- lookups ---------------------------------------------------------------------------------------------

    def _find_pod(self, ns: str, name: str) -> Obj | None:
        for p in self.pods():
            md = p.get("metadata") or {}
            if md.get("namespace") == ns and md.get("name") == name:
                return p
        return None

    async def _runtime_pod(self, uid: str) -> RuntimePod | None:
        return next((p for p in await self.runtime.list_pods() if p.uid == uid), None)

    async def _container(self, request: web.Request) -> tuple[Obj, RuntimePod | None, ContainerState | None, str]:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        pod = self._find_pod(ns, name)
        if pod is None:
            raise StatusError(404, "NotFound", f'pod "{name}" not found', {})
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        want_uid = request.match_info.get("uid")
        if want_uid and want_uid != uid:
            raise StatusError(404, "NotFound", f'pod "{name}" with uid {want_uid} not found', {})
        cname = request.match_info.get("container", "")
        spec = pod.get("spec") or {}
        names = [str(c.get("name")) for k in ("initContainers", "containers") for c in spec.get(k) or ()]
        if cname and cname not in names:
            raise StatusError(400, "BadRequest", f"container {cname} is not valid for pod {name}", {})
        rpod = await self._runtime_pod(uid)
        st = rpod.latest(cname) if rpod is not None and cname else None
        return pod, rpod, st, cname

    # -- handlers -------------------------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def list_pods(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.pods()})

    async def running_pods(self, request: web.Request) -> web.StreamResponse:
        items = []
        for rp in await self.runtime.list_pods():
            running = [c for c in rp.containers if c.state == RUNNING]
            items.append(
                {
                    "metadata": {"name": rp.name, "namespace": rp.namespace, "uid": rp.uid},
                    "spec": {"containers": [{"name": c.name, "image": c.image} for c in running]},
                    "status": {},
                }
            )
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        try:
            pod, rpod, st, cname = await self._container(request)
            q = request.query
            previous = flag(q, "previous")
            name = (pod.get("metadata") or {}).get("name")
            if st is None or rpod is None:
                raise StatusError(
                    400,
                    "BadRequest",
                    f'container "{cname}" in pod "{name}" is waiting to start: ContainerCreating',
                    {},
                )
            if previous and not any(c.name == cname and c.attempt == st.attempt - 1 for c in rpod.containers):
                raise StatusError(
                    400, "BadRequest", f'previous terminated container "{cname}" in pod "{name}" not found', {}
                )
            since = None
            if q.get("sinceSeconds"):
                since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=int(q["sinceSeconds"]))
            elif q.get("sinceTime"):
                from kubeha.kubelet.logs import parse_timestamp

                since = parse_timestamp(q["sinceTime"])
            tail = int(q["tailLines"]) if q.get("tailLines") else None
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        except StatusError as e:
            return web.json_response(e.to_status(), status=e.code)
        except ValueError as e:
            return error_response(400, "BadRequest", f"invalid log options: {e}")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        stream = self.runtime.logs(
            st.id, follow=flag(q, "follow"), tail=tail, since=since, timestamps=flag(q, "timestamps"), previous=previous
        )
        try:
            async for chunk in stream:
                if limit is not None:
                    chunk = chunk[: max(0, limit - sent)]
                if chunk:
                    await resp.write(chunk)
                    sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
        except (ConnectionError, RuntimeError):
            return resp  # the client went away
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp

    def _upgrade_check(self, request: web.Request, supported: tuple[str, ...]) -> str:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise StatusError(400, "BadRequest", "Upgrade request required", {})
        offered = streaming.offered_protocols(request.headers.get("Sec-WebSocket-Protocol", ""))
        if not offered:
            return streaming.V1 if streaming.V1 in supported else supported[-1]
        chosen = streaming.negotiate(offered, supported)
        if chosen is None:
            raise StatusError(
                400, "BadRequest", f"unable to upgrade: no supported protocol among {', '.join(offered)}", {}
            )
        return chosen

    async def _upgrade(self, request: web.Request, protocol: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(protocol,), max_msg_size=MAX_MESSAGE, autoping=True)
        await ws.prepare(request)
        return ws

    async def exec_or_attach(self, request: web.Request) -> web.StreamResponse:
        attach = request.path.startswith("/attach/")
        q = request.query
        opts = streaming.ExecOptions(
            stdin=flag(q, "input", "stdin"),
            stdout=flag(q, "output", "stdout", default=True),
            stderr=flag(q, "error", "stderr", default=True),
            tty=flag(q, "tty"),
        )
        try:
            # the target first: the api-server re-asks without upgrading to learn why an upgrade failed
            pod, _, st, cname = await self._container(request)
            if st is None or st.state != RUNNING:
                raise StatusError(
                    400, "BadRequest", f"container {cname} is not running in pod {pod['metadata']['name']}", {}
                )
            if attach and opts.stdin:
                raise StatusError(400, "BadRequest", "attaching to stdin is not supported by this runtime", {})
            cmd = q.getall("command", [])
            if not attach and not cmd:
                raise StatusError(400, "BadRequest", "you must specify at least 1 command", {})
            protocol = self._upgrade_check(request, streaming.EXEC_PROTOCOLS)
        except StatusError as e:
            return web.json_response(e.to_status(), status=e.code)
        ws = await self._upgrade(request, protocol)
        sock = WsAdapter(ws)
        if attach:
            await self._serve_attach(sock, protocol, st.id, opts)
            return ws
        try:
            proc = await self.runtime.exec_stream(st.id, list(cmd), stdin=opts.stdin, tty=opts.tty)
        except FileNotFoundError:
            msg = f'exec: "{cmd[0]}": executable file not found in $PATH'
            await streaming.serve_error(sock, protocol, msg)
            return ws
        except (OSError, RuntimeError) as e:
            await streaming.serve_error(sock, protocol, f"exec failed: {e}")
            return ws
        await streaming.serve_exec(sock, protocol, proc, opts)
        return ws

    async def _serve_attach(self, sock: WsAdapter, protocol: str, cid: str, opts: streaming.ExecOptions) -> None:
        async def relay() -> None:
            async for stream, data in self.runtime.attach(cid):
                channel = streaming.STDOUT if stream == "stdout" or opts.tty else streaming.STDERR
                if (channel == streaming.STDOUT and opts.stdout) or (channel == streaming.STDERR and opts.stderr):
                    await sock.send_bytes(streaming.frame(channel, data))

        async def drain_client() -> None:
            while await sock.receive_message() is not None:
                pass

        out = asyncio.create_task(relay())
        inp = asyncio.create_task(drain_client())
        try:
            await asyncio.wait({out, inp}, return_when=asyncio.FIRST_COMPLETED)
            if out.done() and not inp.done():
                st = await self.runtime.container_status(cid)
                final = streaming.status_frame(protocol, streaming.exit_status(st.exit_code if st else 0))
                with contextlib.suppress(ConnectionError, RuntimeError):
                    if final is not None:
                        await sock.send_bytes(final)
        finally:
            for t in (out, inp):
                t.cancel()
            await asyncio.gather(out, inp, return_exceptions=True)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sock.close()

    async def portforward(self, request: web.Request) -> web.StreamResponse:
        try:
            ns, name = request.match_info["ns"], request.match_info["pod"]
            pod = self._find_pod(ns, name)
            if pod is None:
                raise StatusError(404, "NotFound", f'pod "{name}" not found', {})
            uid = str((pod.get("metadata") or {}).get("uid") or "")
            protocol = self._upgrade_check(request, streaming.PORTFORWARD_PROTOCOLS)
            ports: list[int] = []
            if protocol != streaming.SPDY_PORTFORWARD:
                for p in ",".join(request.query.getall("ports", [])).split(","):
                    if p.strip():
                        if not p.strip().isdigit() or not 0 < int(p) < 65536:
                            raise StatusError(400, "BadRequest", f"invalid port {p!r}", {})
                        ports.append(int(p))
                if not ports:
                    raise StatusError(400, "BadRequest", "query parameter 'ports' is required", {})
            rpod = await self._runtime_pod(uid)
        except StatusError as e:
            return web.json_response(e.to_status(), status=e.code)
        host = "127.0.0.1"
        if not (pod.get("spec") or {}).get("hostNetwork") and rpod is not None and rpod.sandbox is not None:
            host = rpod.sandbox.ip or host

        async def dial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.wait_for(asyncio.open_connection(host, port), 10)

        ws = await self._upgrade(request, protocol)
        sock = WsAdapter(ws)
        if protocol == streaming.SPDY_PORTFORWARD:
            await streaming.SpdyPortForward(sock, dial).run()
        else:
            await streaming.serve_portforward_ws(sock, ports, dial)
        return ws
