"""The host runtime's per-container supervisor (like conmon / containerd-shim).

``python -m kubeha.kubelet.runtime.shim <container-dir> <attempt>`` reads ``<attempt>.json``
(command, env, working dir, log file), daemonizes, starts the command in its own process group,
writes ``<attempt>.state.json`` (pids, start ticks, start time), copies stdout/stderr into the log
file in the CRI format, and records the exit code and finish time when the command ends.

Why a separate process: the container must outlive the kubelet (a restarted kubelet re-adopts
it), yet its output needs timestamps and its exit code must be known to someone who is not its
parent. The first process exits once the state file exists, so the kubelet never keeps zombies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from kubeha.kubelet.logs import format_records, format_timestamp


def proc_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when the process started (tells a reused pid apart)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _pump(stream: IO[bytes], name: str, log: IO[bytes], lock: threading.Lock) -> None:
    for line in iter(stream.readline, b""):
        data = format_records(name, line, datetime.now(UTC))
        with lock:
            log.write(data)
            log.flush()


def _default_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def supervise(spec_path: Path, state_path: Path) -> int:
    spec = json.loads(spec_path.read_text())
    log_path = Path(spec["log"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"shimPid": os.getpid(), "shimStart": proc_start_ticks(os.getpid())}
    with open(log_path, "ab") as log:
        try:
            child = subprocess.Popen(
                spec["command"],
                env=spec.get("env") or {},
                cwd=spec.get("workingDir") or None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,  # stop_container signals the whole group (sh -c and its children)
                close_fds=True,
                preexec_fn=_default_signals,  # the shim ignores SIGTERM; its command must not
            )
        except OSError as e:
            now = format_timestamp(datetime.now(UTC))
            state.update(startedAt=now, finishedAt=now, exitCode=128, reason="StartError", message=str(e))
            write_json(state_path, state)
            return 0
        state.update(pid=child.pid, pidStart=proc_start_ticks(child.pid), startedAt=format_timestamp(datetime.now(UTC)))
        write_json(state_path, state)
        lock = threading.Lock()
        assert child.stdout is not None and child.stderr is not None
        threads = [
            threading.Thread(target=_pump, args=(child.stdout, "stdout", log, lock), daemon=True),
            threading.Thread(target=_pump, args=(child.stderr, "stderr", log, lock), daemon=True),
        ]
        for t in threads:
            t.start()
        code = child.wait()
        for t in threads:
            # grandchildren may hold the pipes open: do not wait for them forever
            t.join(timeout=2)
    state.update(
        exitCode=128 - code if code < 0 else code,  # killed by signal N: 128+N, as shells and runtimes report
        finishedAt=format_timestamp(datetime.now(UTC)),
        reason="Completed" if code == 0 else "Error",
    )
    write_json(state_path, state)
    return 0


def main(argv: list[str]) -> int:
    directory, attempt = Path(argv[0]), argv[1]
    spec_path, state_path = directory / f"{attempt}.json", directory / f"{attempt}.state.json"
    pid = os.fork()
    if pid:
        # the parent: report success once the supervisor wrote the state file (or died)
        while True:
            if state_path.exists():
                return 0
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return 0 if state_path.exists() else 1
            threading.Event().wait(0.01)
    os.setsid()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        supervise(spec_path, state_path)
    finally:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
