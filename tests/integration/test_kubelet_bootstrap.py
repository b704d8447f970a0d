"""Kubelet TLS bootstrap (``--bootstrap-kubeconfig``) against real etcd, a real api-server with
bootstrap-token authentication (Node,RBAC and NodeRestriction as by default) and a real
``kubeha controller-manager`` running csrapproving/csrsigning with the test CA.

The cluster is set up as kubeadm sets it up for joining nodes: a bootstrap token Secret whose
extra group is ``system:bootstrappers:kubeadm:default-node-token``, and kubeadm's three
ClusterRoleBindings (create CSRs, auto-approve node client CSRs, auto-approve renewals).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import functools
import os
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeha.api.errors import StatusError
from kubeha.cli.dev import apiserver_args
from kubeha.cli.procs import free_port, stop_process, wait_http_ok
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.kubeconfig import ClientConfig
from kubeha.client.resources import CERTIFICATESIGNINGREQUESTS, LEASES, NODES, SECRETS
from kubeha.kubelet import bootstrap
from tests.support import waiting
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.kubectl import Kubectl, kubectl_path
from tests.support.pki import PKI

Obj = dict[str, Any]

RBAC = "rbac.authorization.k8s.io/v1"
CRB_PATH = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
# kubeadm's bindings (phases/bootstraptoken/node): name, cluster role, group
KUBEADM_BINDINGS = (
    ("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", NODE_TOKEN_GROUP),
    (
        "kubeadm:node-autoapprove-bootstrap",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        NODE_TOKEN_GROUP,
    ),
    (
        "kubeadm:node-autoapprove-certificate-rotation",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:nodes",
    ),
)

OUTAGE = 15.0  # seconds the node's only api-server is away in the outage test

# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=30.0, every=0.2, retry_on=(AssertionError, StatusError))


def _rand(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def binding(name: str, role: str, kind: str, subject: str) -> Obj:
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
    }


def bootstrap_kubeconfig(path: Path, server: str, ca: bytes, user: dict[str, str]) -> Path:
    """A kubeconfig as ``kubeadm join`` writes bootstrap-kubelet.conf (token inline, CA embedded)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca).decode()},
            }
        ],
        "users": [{"name": "tls-bootstrap-token-user", "user": user}],
        "contexts": [
            {
                "name": "tls-bootstrap-token-user@kubernetes",
                "context": {"cluster": "kubernetes", "user": "tls-bootstrap-token-user"},
            }
        ],
        "current-context": "tls-bootstrap-token-user@kubernetes",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


@dataclass
class Kubelet:
    """One ``kubeha kubelet`` process (host runtime only, no HTTPS server)."""

    name: str
    root: Path
    kubeconfig: Path
    bootstrap_kubeconfig: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def cert_dir(self) -> Path:
        return self.root / "pki"

    def start(self, *extra: str) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kubeha",
                    "kubelet",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--bootstrap-kubeconfig={self.bootstrap_kubeconfig}",
                    f"--hostname-override={self.name}",
                    "--node-ip=127.0.0.1",
                    f"--root-dir={self.root}",
                    "--port=0",
                    "--node-lease-duration-seconds=4",
                    "--node-status-update-frequency=1s",
                    *extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = stop_process(self.proc, 10)
        self.proc = None
        return code

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture(scope="module")
def server(pki: PKI, etcd_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    factory = ApiServerFactory(pki, tmp_path_factory.mktemp("kubelet-bootstrap-apiserver"))
    try:
        yield factory(str(getattr(etcd_server, "endpoint", etcd_server)), ["--enable-bootstrap-token-auth"], "kb-a")
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def controller_manager(server: ApiServer, pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The CSR controllers in a real ``kubeha controller-manager`` signing with the test CA."""
    log_path = tmp_path_factory.mktemp("kubelet-bootstrap-kcm") / "kcm.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubeha",
                "controller-manager",
                f"--kubeconfig={server.kubeconfig}",
                "--controllers=csrapproving,csrsigning",
                "--leader-elect=false",
                f"--cluster-signing-cert-file={pki.ca_crt}",
                f"--cluster-signing-key-file={pki.ca_key}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log_path
    finally:
        stop_process(proc, 10)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]


@pytest.fixture(scope="module")
async def admin(server: ApiServer, controller_manager: Path) -> AsyncIterator[ApiClient]:
    """An admin client; kubeadm's bindings exist while the module runs (removed after, when
    this module made them)."""
    made: list[str] = []
    async with ApiClient(load_kubeconfig(str(server.kubeconfig)), timeout=10) as c:
        for name, role, group in KUBEADM_BINDINGS:
            try:
                await c.request("POST", CRB_PATH, body=binding(name, role, "Group", group))
                made.append(name)
            except StatusError as e:
                if e.code != 409:
                    raise
        try:
            yield c
        finally:
            for name in made:
                with contextlib.suppress(StatusError):
                    await c.request("DELETE", f"{CRB_PATH}/{name}")


@pytest.fixture
async def token(admin: ApiClient, server: ApiServer, pki: PKI) -> AsyncIterator[tuple[str, str]]:
    """A kubeadm-style bootstrap token (id, secret), usable once the api-server has seen it."""
    token_id, token_secret = _rand(6), _rand(16)
    name = f"bootstrap-token-{token_id}"
    await admin.create(
        SECRETS,
        {
            "metadata": {"name": name, "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token",
            "stringData": {
                "token-id": token_id,
                "token-secret": token_secret,
                "usage-bootstrap-authentication": "true",
                "usage-bootstrap-signing": "true",
                "auth-extra-groups": NODE_TOKEN_GROUP,
            },
        },
        "kube-system",
    )
    cfg = ClientConfig(server=server.url, ca_data=pki.ca_crt.read_bytes(), token=f"{token_id}.{token_secret}")
    async with ApiClient(cfg, timeout=10) as c:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        who = await eventually(
            lambda: c.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
        )
    assert NODE_TOKEN_GROUP in who["status"]["userInfo"]["groups"]
    try:
        yield token_id, token_secret
    finally:
        with contextlib.suppress(StatusError):
            await admin.delete(SECRETS, name, "kube-system")


@pytest.fixture
def workdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="kubelet-bootstrap-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def kubelets(admin: ApiClient, workdir: Path) -> AsyncIterator[list[Kubelet]]:
    """Kubelets a test starts: stopped, their Nodes, Leases and CSRs deleted afterwards."""
    started: list[Kubelet] = []
    yield started
    for k in started:
        k.stop()
    for k in started:
        with contextlib.suppress(StatusError):
            await admin.delete(NODES, k.name)
        with contextlib.suppress(StatusError):
            await admin.delete(LEASES, k.name, "kube-node-lease")
        for csr in await csrs_for(admin, k.name):
            with contextlib.suppress(StatusError):
                await admin.delete(CERTIFICATESIGNINGREQUESTS, csr["metadata"]["name"])
    for k in started:
        # shown by pytest only when the test failed: what the kubelet was doing
        print(f"--- {k.name} log (tail) ---\n{k.log()[-6000:]}")
        assert "Traceback" not in k.log(), k.log()[-4000:]


def new_kubelet(workdir: Path, bootstrap_path: Path) -> Kubelet:
    name = f"kb-{_rand(8)}"
    return Kubelet(name, workdir / name, workdir / name / "kubelet.conf", bootstrap_path, workdir / f"{name}.log")


async def csrs_for(c: ApiClient, node: str) -> list[Obj]:
    """The CSRs whose request names ``system:node:<node>``."""
    out = []
    for csr in (await c.list(CERTIFICATESIGNINGREQUESTS)).get("items") or []:
        req = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
        cns = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns and cns[0].value == f"system:node:{node}":
            out.append(csr)
    return out


def conditions(csr: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in (csr.get("status") or {}).get("conditions") or []}


def subject(cert: x509.Certificate) -> tuple[str, list[str]]:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cn), [str(o) for o in orgs]


async def whoami(cfg: ClientConfig) -> Obj:
    async with ApiClient(cfg, timeout=10) as c:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        answer: Obj = await c.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
        return answer["status"]["userInfo"]


async def node_ready(c: ApiClient, name: str) -> Obj | None:
    node = await c.get(NODES, name)
    conds = {x["type"]: x["status"] for x in node.get("status", {}).get("conditions") or []}
    return node if conds.get("Ready") == "True" else None


async def test_bootstrap_registers_node_with_issued_certificate_and_restart_reuses_it(
    admin: ApiClient, server: ApiServer, pki: PKI, token: tuple[str, str], workdir: Path, kubelets: list[Kubelet]
) -> None:
    token_id, token_secret = token
    boot = bootstrap_kubeconfig(
        workdir / "bootstrap-kubelet.conf", server.url, pki.ca_crt.read_bytes(), {"token": f"{token_id}.{token_secret}"}
    )
    k = new_kubelet(workdir, boot)
    kubelets.append(k)
    assert not k.kubeconfig.exists()
    started = time.monotonic()
    k.start()

    # the Node registers (as system:node:<name>: NodeRestriction lets a node create only itself)
    node = await eventually(lambda: node_ready(admin, k.name))
    print(f"kubelet start -> CSR issued -> Node Ready: {time.monotonic() - started:.2f}s (run with -s)")
    assert node["metadata"]["name"] == k.name

    # exactly one CSR, filed by the bootstrap token, auto-approved and issued
    [csr] = await csrs_for(admin, k.name)
    assert csr["metadata"]["name"].startswith("node-csr-")
    assert csr["spec"]["username"] == f"system:bootstrap:{token_id}"
    assert NODE_TOKEN_GROUP in csr["spec"]["groups"]
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert sorted(csr["spec"]["usages"]) == ["client auth", "digital signature"]
    conds = conditions(csr)
    assert conds["Approved"]["reason"] == "AutoApproved"
    assert "Denied" not in conds and "Failed" not in conds
    issued = base64.b64decode(csr["status"]["certificate"])

    # the kubeconfig points at kubelet-client-current.pem, a symlink to the timestamped pair
    doc = yaml.safe_load(k.kubeconfig.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == server.url
    assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) == pki.ca_crt.read_bytes()
    user = doc["users"][0]["user"]
    current = k.cert_dir / "kubelet-client-current.pem"
    assert user["client-certificate"] == user["client-key"] == str(current)
    assert current.is_symlink()
    assert current.resolve().name.startswith("kubelet-client-2")
    assert oct(current.resolve().stat().st_mode & 0o777) == "0o600"
    assert not (k.cert_dir / "kubelet-client.key.tmp").exists()  # removed once the certificate came
    cfg = load_kubeconfig(str(k.kubeconfig))
    assert cfg.cert_data is not None
    cert = x509.load_pem_x509_certificate(cfg.cert_data)
    assert cert == x509.load_pem_x509_certificate(issued)
    assert subject(cert) == (f"system:node:{k.name}", ["system:nodes"])
    who = await whoami(cfg)
    assert who["username"] == f"system:node:{k.name}"
    assert "system:nodes" in who["groups"]
    binary = kubectl_path("1.32")
    if binary is not None:
        # what an admin sees, and client-go reading the kubeconfig the kubelet wrote (one PEM
        # file as both client-certificate and client-key)
        out = Kubectl(binary, server.kubeconfig, workdir / "home", "1.32").ok("get", "csr", csr["metadata"]["name"])
        assert "Approved,Issued" in out and f"system:bootstrap:{token_id}" in out
        as_node = Kubectl(binary, k.kubeconfig, workdir / "home-node", "1.32")
        assert as_node.ok("get", "node", k.name, "-o", "name") == f"node/{k.name}\n"
        assert "yes" in as_node.ok("auth", "can-i", "get", "nodes")

    # a restart finds the kubeconfig valid: no second CSR, same certificate, node keeps renewing
    pair_before = current.resolve()
    kubeconfig_before = k.kubeconfig.read_bytes()
    assert k.stop() == 0
    lease = await admin.get(LEASES, k.name, "kube-node-lease")
    k.start()

    async def renewed() -> bool:
        now = await admin.get(LEASES, k.name, "kube-node-lease")
        return bool(now["spec"]["renewTime"] != lease["spec"]["renewTime"])

    await eventually(renewed)
    assert "skipping bootstrap" in k.log()
    assert len(await csrs_for(admin, k.name)) == 1
    assert current.resolve() == pair_before
    assert k.kubeconfig.read_bytes() == kubeconfig_before


async def test_bootstrap_after_lost_kubeconfig_reuses_the_stored_pair(
    admin: ApiClient, server: ApiServer, pki: PKI, token: tuple[str, str], workdir: Path
) -> None:
    # in-process: the kubeconfig is lost but kubelet-client-current.pem is valid: no new request
    token_id, token_secret = token
    boot = bootstrap_kubeconfig(
        workdir / "bootstrap.conf", server.url, pki.ca_crt.read_bytes(), {"token": f"{token_id}.{token_secret}"}
    )
    name = f"kb-{_rand(8)}"
    kubeconfig, cert_dir = workdir / "kubelet.conf", workdir / "pki"
    try:
        assert await bootstrap.load_client_cert(str(kubeconfig), str(boot), cert_dir, name, wait=30)
        [csr] = await csrs_for(admin, name)
        first = (cert_dir / bootstrap.CURRENT_PEM).resolve()
        kubeconfig.unlink()
        assert await bootstrap.load_client_cert(str(kubeconfig), str(boot), cert_dir, name, wait=30)
        assert [c["metadata"]["uid"] for c in await csrs_for(admin, name)] == [csr["metadata"]["uid"]]
        assert (cert_dir / bootstrap.CURRENT_PEM).resolve() == first
        assert (await whoami(load_kubeconfig(str(kubeconfig))))["username"] == f"system:node:{name}"
        # valid kubeconfig: nothing to do
        assert not await bootstrap.load_client_cert(str(kubeconfig), str(boot), cert_dir, name, wait=30)
    finally:
        for csr in await csrs_for(admin, name):
            with contextlib.suppress(StatusError):
                await admin.delete(CERTIFICATESIGNINGREQUESTS, csr["metadata"]["name"])


async def test_rotation_renews_through_selfnodeclient_and_switches_the_client(
    admin: ApiClient, server: ApiServer, pki: PKI, token: tuple[str, str], workdir: Path
) -> None:
    token_id, token_secret = token
    boot = bootstrap_kubeconfig(
        workdir / "bootstrap.conf", server.url, pki.ca_crt.read_bytes(), {"token": f"{token_id}.{token_secret}"}
    )
    name = f"kb-{_rand(8)}"
    kubeconfig, cert_dir = workdir / "kubelet.conf", workdir / "pki"
    try:
        await bootstrap.load_client_cert(str(kubeconfig), str(boot), cert_dir, name, wait=30)
        first = (cert_dir / bootstrap.CURRENT_PEM).resolve()
        async with ApiClient(load_kubeconfig(str(kubeconfig)), timeout=10) as c:
            old_cert = c.config.cert_data
            assert old_cert is not None
            rotator = bootstrap.ClientCertRotator(c, cert_dir, name, wall=lambda: 2e9, wait=30)  # a later second
            await rotator.rotate()
            assert rotator.rotations == 1
            new_cert = c.config.cert_data
            assert new_cert is not None and new_cert != old_cert
            # the running client now presents the new certificate
            review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            who = await c.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
            assert who["status"]["userInfo"]["username"] == f"system:node:{name}"
        renewal = [c for c in await csrs_for(admin, name) if c["spec"]["username"] == f"system:node:{name}"]
        assert len(renewal) == 1
        assert renewal[0]["metadata"]["name"].startswith("csr-")
        assert conditions(renewal[0])["Approved"]["message"] == (
            "Auto approving self kubelet client certificate after SubjectAccessReview."
        )
        second = (cert_dir / bootstrap.CURRENT_PEM).resolve()
        assert second != first and first.exists()
        assert x509.load_pem_x509_certificate(second.read_bytes()) == x509.load_pem_x509_certificate(new_cert)
        # the kubeconfig follows the symlink: a restarted kubelet uses the renewed pair
        assert load_kubeconfig(str(kubeconfig)).cert_data == second.read_bytes()
    finally:
        for csr in await csrs_for(admin, name):
            with contextlib.suppress(StatusError):
                await admin.delete(CERTIFICATESIGNINGREQUESTS, csr["metadata"]["name"])


async def test_rotation_past_expiry_falls_back_to_the_bootstrap_credentials(
    admin: ApiClient, server: ApiServer, pki: PKI, token: tuple[str, str], workdir: Path
) -> None:
    """A renewal that could not happen before the certificate ended (an outage, a slow signer)
    asks with the bootstrap token instead, as upstream's certificate manager does."""
    token_id, token_secret = token
    name = f"kb-{_rand(8)}"
    cert, key = short_lived_node_cert(pki, name, age=600, left=-5)  # already expired
    cert_dir = workdir / "pki"
    link = bootstrap.write_pair(cert_dir, cert, key)
    boot = ClientConfig(server=server.url, ca_data=pki.ca_crt.read_bytes(), token=f"{token_id}.{token_secret}")
    cfg = ClientConfig(server=server.url, ca_data=pki.ca_crt.read_bytes(), cert_data=cert, key_data=key)
    try:
        async with ApiClient(cfg, timeout=10) as c:
            rotator = bootstrap.ClientCertRotator(c, cert_dir, name, wait=30, bootstrap=boot)
            await rotator.rotate()
            assert rotator.rotations == 1
            assert c.config.cert_data is not None and c.config.cert_data != cert
            assert bootstrap.certs_valid(c.config.cert_data)
            review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            who = await c.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
            assert who["status"]["userInfo"]["username"] == f"system:node:{name}"
        [renewal] = await csrs_for(admin, name)
        assert renewal["spec"]["username"] == f"system:bootstrap:{token_id}"
        assert conditions(renewal)["Approved"]["reason"] == "AutoApproved"
        assert link.resolve().read_bytes().startswith(c.config.cert_data)
    finally:
        for csr in await csrs_for(admin, name):
            with contextlib.suppress(StatusError):
                await admin.delete(CERTIFICATESIGNINGREQUESTS, csr["metadata"]["name"])


async def test_denied_request_exits_with_a_clear_error_and_a_restart_does_not_ask_again(
    admin: ApiClient, server: ApiServer, pki: PKI, workdir: Path, kubelets: list[Kubelet]
) -> None:
    # a requester that may create CSRs but gets nothing auto-approved (a client-certificate user,
    # so no system:bootstrappers binding from elsewhere applies); the test plays the admin who denies
    async with joiner(admin, pki, workdir, kubelets, server.url, "bootstrap-deny.conf") as (user, k, csr):
        assert csr["spec"]["username"] == user
        assert not conditions(csr)
        assert (k.cert_dir / "kubelet-client.key.tmp").exists()
        csr["status"] = {
            "conditions": [{"type": "Denied", "status": "True", "reason": "NotOnTheList", "message": "unknown machine"}]
        }
        await admin.update(CERTIFICATESIGNINGREQUESTS, csr, subresource="approval")

        assert k.proc is not None
        code = await eventually(lambda: _exited(k), within=20)
        assert code == (1,)
        text = k.log()
        assert f"certificate signing request {csr['metadata']['name']} is denied" in text
        assert "reason: NotOnTheList, message: unknown machine" in text
        assert not k.kubeconfig.exists()
        with pytest.raises(StatusError):
            await admin.get(NODES, k.name)

        # as upstream's kubelet: the restarted process reuses its key, finds its (denied) request
        # under the same name and fails the same way, without filing another
        k.proc = None
        k.start()
        code = await eventually(lambda: _exited(k), within=20)
        assert code == (1,)
        assert k.log().count("is denied") == 2
        assert "already exists, reusing it" in k.log()
        assert len(await csrs_for(admin, k.name)) == 1


@contextlib.asynccontextmanager
async def joiner(
    admin: ApiClient, pki: PKI, workdir: Path, kubelets: list[Kubelet], server_url: str, conf: str
) -> AsyncIterator[tuple[str, Kubelet, Obj]]:
    """A kubelet bootstrapping as a client-certificate user who may file CSRs but gets nothing
    auto-approved: yields (user, kubelet, its pending CSR); the user's binding is removed after."""
    user = f"joiner-{_rand(6)}"
    crb = f"kubeha-test:{user}"
    await admin.request("POST", CRB_PATH, body=binding(crb, "system:node-bootstrapper", "User", user))
    try:
        cert_path, key_path = pki.issue_client(user)
        boot = bootstrap_kubeconfig(
            workdir / conf,
            server_url,
            pki.ca_crt.read_bytes(),
            {
                "client-certificate-data": base64.b64encode(cert_path.read_bytes()).decode(),
                "client-key-data": base64.b64encode(key_path.read_bytes()).decode(),
            },
        )
        k = new_kubelet(workdir, boot)
        kubelets.append(k)
        k.start()

        async def pending() -> Obj | None:
            found = await csrs_for(admin, k.name)
            return found[0] if found else None

        yield user, k, await eventually(pending)
    finally:
        with contextlib.suppress(StatusError):
            await admin.request("DELETE", f"{CRB_PATH}/{crb}")


async def _exited(k: Kubelet) -> tuple[int] | None:
    assert k.proc is not None
    code = k.proc.poll()
    return None if code is None else (code,)


def test_bootstrap_kubeconfig_needs_kubeconfig(workdir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kubeha", "kubelet", f"--bootstrap-kubeconfig={workdir / 'x'}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": ""},
    )
    assert out.returncode == 2
    assert "--bootstrap-kubeconfig needs --kubeconfig" in out.stderr


def short_lived_node_cert(pki: PKI, node: str, age: float, left: float) -> tuple[bytes, bytes]:
    """A node client certificate from the cluster CA issued ``age`` seconds ago that expires in
    ``left`` seconds: past its rotation point from the start."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key_pem = bootstrap.new_key_pem()
    key = bootstrap.parse_key(key_pem)
    assert key is not None
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(bootstrap.node_subject(node))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=age))
        .not_valid_after(now + datetime.timedelta(seconds=left))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


async def test_running_kubelet_rotates_and_keeps_working_after_the_old_certificate_expires(
    admin: ApiClient, server: ApiServer, pki: PKI, token: tuple[str, str], workdir: Path, kubelets: list[Kubelet]
) -> None:
    token_id, token_secret = token
    boot = bootstrap_kubeconfig(
        workdir / "bootstrap.conf", server.url, pki.ca_crt.read_bytes(), {"token": f"{token_id}.{token_secret}"}
    )
    k = new_kubelet(workdir, boot)
    kubelets.append(k)
    left = 25.0
    cert, key = short_lived_node_cert(pki, k.name, age=300, left=left)
    old_expiry = x509.load_pem_x509_certificate(cert).not_valid_after_utc
    link = bootstrap.write_pair(k.cert_dir, cert, key)
    bootstrap.write_kubeconfig(
        str(k.kubeconfig), ClientConfig(server=server.url, ca_data=pki.ca_crt.read_bytes()), link
    )
    k.start("--rotate-certificates")

    await eventually(lambda: node_ready(admin, k.name))

    async def renewed_pair() -> Path | None:
        # by content: pair files are named by the second, and a kubelet that starts and renews
        # within the second the test wrote the first pair reuses its name
        now = link.resolve()
        return now if not now.read_bytes().startswith(cert) else None

    second = await eventually(renewed_pair)
    new_cert = x509.load_pem_x509_certificate(second.read_bytes())
    assert subject(new_cert) == (f"system:node:{k.name}", ["system:nodes"])
    assert new_cert.not_valid_after_utc > old_expiry + datetime.timedelta(days=1)
    # renewed with the node's own identity, approved through selfnodeclient
    [renewal] = [c for c in await csrs_for(admin, k.name) if c["spec"]["username"] == f"system:node:{k.name}"]
    assert renewal["metadata"]["name"].startswith("csr-")
    assert conditions(renewal)["Approved"]["message"] == (
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    )
    assert "rotated the client certificate" in k.log()

    # past the old certificate's end the kubelet still heartbeats: its connections use the new one
    wait = (old_expiry - datetime.datetime.now(datetime.UTC)).total_seconds() + 2
    if wait > 0:
        await asyncio.sleep(wait)
    lease = await admin.get(LEASES, k.name, "kube-node-lease")

    async def renewed() -> bool:
        now = await admin.get(LEASES, k.name, "kube-node-lease")
        return bool(now["spec"]["renewTime"] != lease["spec"]["renewTime"])

    await eventually(renewed, within=15)
    assert k.proc is not None and k.proc.poll() is None


@dataclass
class OwnApiServer:
    """An api-server this test stops and starts again on the same port (the node's only one)."""

    cmd: list[str]
    url: str
    log_path: Path
    pki: PKI
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http_ok(f"{self.url}/readyz", self.pki.ssl_context(), timeout=60, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)
            self.proc = None


@pytest.fixture
def own_apiserver(pki: PKI, etcd_server: Any, workdir: Path) -> Iterator[OwnApiServer]:
    port = free_port()
    endpoint = str(getattr(etcd_server, "endpoint", etcd_server))
    cmd = [
        sys.executable,
        "-m",
        "kubeha",
        "apiserver",
        *apiserver_args(endpoint, port, pki.dir),
        "--enable-bootstrap-token-auth",
        "--disable-admission-plugins=ServiceAccount",
    ]
    s = OwnApiServer(cmd, f"https://127.0.0.1:{port}", workdir / "own-apiserver.log", pki)
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_the_wait_for_a_certificate_survives_an_api_server_outage(
    admin: ApiClient, pki: PKI, workdir: Path, kubelets: list[Kubelet], own_apiserver: OwnApiServer
) -> None:
    # the node knows one api-server; it goes away while the request is pending and comes back
    # after the request was approved elsewhere: the kubelet still gets its certificate
    async with joiner(admin, pki, workdir, kubelets, own_apiserver.url, "bootstrap-outage.conf") as (_user, k, csr):
        await eventually(lambda: _logged(k, "to be approved and issued"))
        own_apiserver.stop()
        down = time.monotonic()
        await asyncio.sleep(2)
        csr["status"] = {
            "conditions": [{"type": "Approved", "status": "True", "reason": "Test", "message": "approved by the test"}]
        }
        await admin.update(CERTIFICATESIGNINGREQUESTS, csr, subresource="approval")
        await eventually(lambda: _issued(admin, csr["metadata"]["name"]))
        # longer than the client's own retries of one request (5, backing off up to ~10 s)
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down)))
        assert k.proc is not None and k.proc.poll() is None, k.log()[-2000:]  # still waiting
        assert not k.kubeconfig.exists()
        own_apiserver.start()

        node = await eventually(lambda: node_ready(admin, k.name), within=60)
        assert node["metadata"]["name"] == k.name
        cfg = load_kubeconfig(str(k.kubeconfig))
        assert cfg.server == own_apiserver.url
        assert len(await csrs_for(admin, k.name)) == 1


async def _logged(k: Kubelet, text: str) -> bool:
    return text in k.log()


async def _issued(c: ApiClient, name: str) -> bool:
    csr = await c.get(CERTIFICATESIGNINGREQUESTS, name)
    return bool((csr.get("status") or {}).get("certificate"))
