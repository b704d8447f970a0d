"""Acceptance: `kubectl get -w` on api-server A sees a write made through api-server B."""

from __future__ import annotations

import queue
import threading
import time
from typing import IO

from kubeha.cli.procs import stop_process
from tests.support.kubectl import Kubectl


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


def _wait_for(lines: queue.Queue[str], needle: str, timeout: float, seen: list[str]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        seen.append(line)
        if needle in line.split():
            return True
    return False


def test_watch_sees_writes_through_the_other_apiserver(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "before", "-n", ns, "--from-literal=a=1")
    proc = kubectl.popen("get", "configmaps", "-n", ns, "-w")
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
        seen: list[str] = []
        assert _wait_for(lines, "before", 15, seen), f"initial list not printed: {seen}"
        assert seen[0].split() == ["NAME", "DATA", "AGE"]

        kubectl_b.ok("create", "configmap", "from-b", "-n", ns, "--from-literal=x=1", "--from-literal=y=2")
        assert _wait_for(lines, "from-b", 5, seen), f"watch did not show from-b within 5s: {seen}"
        assert seen[-1].split()[:2] == ["from-b", "2"]

        kubectl_b.ok("label", "configmap", "before", "-n", ns, "seen=yes")
        assert _wait_for(lines, "before", 5, seen), f"watch did not show the update: {seen}"
        assert proc.poll() is None, "kubectl get -w exited early"
    finally:
        stop_process(proc)
        if proc.stderr is not None:
            proc.stderr.close()


def test_watch_output_events(kubectl: Kubectl, kubectl_b: Kubectl, ns: str) -> None:
    kubectl.ok("create", "configmap", "marker", "-n", ns)
    proc = kubectl.popen("get", "configmaps", "-n", ns, "-w", "--output-watch-events")
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
        seen: list[str] = []
        # The marker is printed once the initial list is done; the watch starts at that list's
        # resourceVersion, so every later write must show up.
        assert _wait_for(lines, "marker", 15, seen), seen
        assert seen[0].split() == ["EVENT", "NAME", "DATA", "AGE"]
        assert seen[-1].split()[:2] == ["ADDED", "marker"]
        kubectl_b.ok("create", "configmap", "ev", "-n", ns, "--from-literal=a=1")
        kubectl_b.ok("delete", "configmap", "ev", "-n", ns)
        assert _wait_for(lines, "ev", 5, seen), seen
        assert seen[-1].split()[:2] == ["ADDED", "ev"]
        assert _wait_for(lines, "ev", 5, seen), seen
        assert seen[-1].split()[:2] == ["DELETED", "ev"]
    finally:
        stop_process(proc)
        if proc.stderr is not None:
            proc.stderr.close()
