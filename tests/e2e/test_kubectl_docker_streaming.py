"""kubectl 1.32 exec and attach into Docker pods of the two-node e2e cluster (api-server ->
kubelet streaming server -> Docker exec/attach on hijacked connections): stdin through a pipe,
exit codes, a missing command, ``-it`` on a real pty (tty, TERM, resize from the terminal's
size), and attach to a container's output. Pods live in the test's namespace (deleted after)."""

from __future__ import annotations

import asyncio
from typing import Any

from kubeha.client import ApiClient
from kubeha.client.resources import PODS
from tests.support import waiting
from tests.support.cluster import DEMO_IMAGE, Cluster
from tests.support.kubectl import Kubectl, run_on_pty

Obj = dict[str, Any]


def pod(name: str, command: list[str], **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": DEMO_IMAGE, "imagePullPolicy": "IfNotPresent", "command": command}],
            **spec,
        },
    }


async def running(client: ApiClient, ns: str, name: str, cluster: Cluster) -> None:
    async def check() -> bool:
        st = (await client.get(PODS, name, ns)).get("status") or {}
        return st.get("phase") == "Running"

    try:
        await waiting.eventually(check, within=60, every=0.3)
    except AssertionError:
        st = (await client.get(PODS, name, ns)).get("status")
        raise AssertionError(f"{name} not running: {st}\n{cluster.logs()}") from None


async def test_kubectl_exec_stdin_exit_code_and_missing_command(
    cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl
) -> None:
    await client.create(PODS, pod("sleeper", ["sleep", "3600"]), ns)
    await running(client, ns, "sleeper", cluster)
    res = await asyncio.to_thread(
        kubectl.run,
        "exec",
        "-i",
        "sleeper",
        "-n",
        ns,
        "--",
        "sh",
        "-c",
        "cat; echo to-stderr >&2; exit 3",
        input="hello\nworld\n",
    )
    assert res.stdout == "hello\nworld\n", res
    assert "to-stderr" in res.stderr and "command terminated with exit code 3" in res.stderr, res
    assert res.rc == 3, res
    # without -i the command's stdin is closed: cat ends at once
    assert await asyncio.to_thread(kubectl.ok, "exec", "sleeper", "-n", ns, "--", "cat") == ""
    missing = await asyncio.to_thread(kubectl.run, "exec", "sleeper", "-n", ns, "--", "no-such-command")
    assert missing.rc in (126, 127), missing
    assert "executable file not found" in missing.stdout + missing.stderr, missing


async def test_kubectl_exec_tty_on_a_pty(cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl) -> None:
    await client.create(PODS, pod("tty", ["sleep", "3600"]), ns)
    await running(client, ns, "tty", cluster)
    script = "tty; echo term=$TERM; read x; echo got-$x; stty size; exit 5"
    argv = kubectl.argv(("-n", ns, "exec", "-it", "tty", "--", "sh", "-c", script))
    text, code = await asyncio.to_thread(run_on_pty, argv, kubectl.env(), b"abc\r", size=(33, 121))
    assert "/dev/pts/" in text and "term=xterm" in text and "got-abc" in text, text
    assert "33 121" in text, text  # kubectl sent the terminal's size; the exec's pty got it
    assert code == 5, text


async def test_kubectl_attach_sees_the_output(cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl) -> None:
    ticker = "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo tick $i; echo tock $i >&2; sleep 0.25; done"
    await client.create(PODS, pod("ticker", ["sh", "-c", ticker], restartPolicy="Never"), ns)
    await running(client, ns, "ticker", cluster)
    res = await asyncio.to_thread(kubectl.run, "attach", "ticker", "-n", ns, timeout=60)
    assert "tick 60" in res.stdout and "tock 60" in res.stderr, res
    assert "tock" not in res.stdout, res
