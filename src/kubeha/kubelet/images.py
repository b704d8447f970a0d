"""``kubeha image``: offline images for a node's Docker engine.

``kubeha image build-demo`` makes ``kubeha/demo:latest`` from Debian's busybox-static: a root
filesystem with ``/bin/busybox`` and a link per applet (sh, httpd, nc, nslookup, wget, sleep,
...), a ``/www/index.html`` and a default command that serves it with httpd on port 80. It is
imported through the Engine API (``docker import``), so demos and tests need no registry; the
kubelet also uses it as its pod sandbox image.

``kubeha image load FILE.tar`` loads a ``docker save`` archive (like ``kind load image-archive``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from kubeha.kubelet.runtime.dockerapi import DEFAULT_ENDPOINT, DockerClient, split_image
from kubeha.kubelet.runtime.dockerspec import DEFAULT_SANDBOX_IMAGE

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEMO_CMD = '["httpd", "-f", "-v", "-p", "80", "-h", "/www"]'
DEMO_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INDEX_HTML = b"<html><body><h1>kubeha demo</h1></body></html>\n"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"


def find_busybox() -> str:
    """A statically linked busybox (a dynamic one would need the host's libc in the image)."""
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path) and _is_static(path):
            return path
    raise FileNotFoundError("no static busybox found: apt-get install busybox-static")


def _is_static(path: str) -> bool:
    # a dynamically linked ELF has a PT_INTERP segment naming its loader
    with open(path, "rb") as f:
        head = f.read(4096)
    return head[:4] == b"\x7fELF" and b"/lib64/ld-linux" not in head and b"/lib/ld-" not in head


def applets(busybox: str) -> list[str]:
    """Install paths of every applet (``usr/bin/wget``, ``bin/sh``, ...), from busybox itself."""
    out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(time.time())
    info.uid = info.gid = 0
    if link:
        info.type = tarfile.SYMTYPE
        info.linkname = link
        info.mode = 0o777
        tar.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE
        info.mode = mode
        tar.addfile(info)
    else:
        info.size = len(data)
        info.mode = mode
        tar.addfile(info, io.BytesIO(data))


def demo_rootfs(busybox_binary: bytes, applet_paths: list[str]) -> bytes:
    """The demo image's root filesystem as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "www", "proc", "sys", "dev", "var"}
        dirs |= {os.path.dirname(p) for p in applet_paths if os.path.dirname(p)}
        for d in sorted(dirs):
            _add(tar, d, mode=0o755)
        _add(tar, "tmp", mode=0o1777)
        _add(tar, "bin/busybox", data=busybox_binary, mode=0o755)
        for path in applet_paths:
            if path != "bin/busybox":
                _add(tar, path, link="/bin/busybox")
        _add(tar, "etc/passwd", data=PASSWD)
        _add(tar, "etc/group", data=GROUP)
        _add(tar, "etc/hosts", data=b"127.0.0.1\tlocalhost\n")
        _add(tar, "etc/resolv.conf", data=b"")
        _add(tar, "www/index.html", data=INDEX_HTML)
    return buf.getvalue()


async def build_demo(endpoint: str, image: str = DEFAULT_SANDBOX_IMAGE) -> str:
    busybox = find_busybox()
    binary = await asyncio.to_thread(Path(busybox).read_bytes)
    rootfs = demo_rootfs(binary, await asyncio.to_thread(applets, busybox))
    repo, tag = split_image(image)
    client = DockerClient(endpoint)
    try:
        await client.import_image(rootfs, repo, tag, [f"CMD {DEMO_CMD}", f"ENV PATH={DEMO_PATH}", "EXPOSE 80"])
    finally:
        await client.close()
    return image


async def _file_chunks(path: str) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:  # noqa: ASYNC230 - sequential reads of a local archive
        while chunk := f.read(1 << 20):
            yield chunk


async def load(endpoint: str, path: str) -> list[str]:
    client = DockerClient(endpoint)
    try:
        return await client.load_image(_file_chunks(path))
    finally:
        await client.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeha image", description="Offline images for the node's Docker engine.")
    p.add_argument(
        "--container-runtime-endpoint",
        default=os.environ.get("DOCKER_HOST", DEFAULT_ENDPOINT),
        help="the Docker socket (default: $DOCKER_HOST or unix:///var/run/docker.sock)",
    )
    sub = p.add_subparsers(dest="image_command", metavar="COMMAND")
    b = sub.add_parser("build-demo", help="build kubeha/demo:latest from the host's busybox-static")
    b.add_argument("--tag", default=DEFAULT_SANDBOX_IMAGE, help="image name")
    ld = sub.add_parser("load", help="load an image archive (docker save format)")
    ld.add_argument("file", help="the .tar archive")
    return p


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    endpoint = args.container_runtime_endpoint
    if args.image_command == "build-demo":
        if shutil.which("busybox") is None and not any(os.path.exists(p) for p in BUSYBOX_CANDIDATES):
            print("busybox-static is not installed (apt-get install busybox-static)", file=sys.stderr)
            return 1
        print(f"built {asyncio.run(build_demo(endpoint, args.tag))}")
        return 0
    if args.image_command == "load":
        for line in asyncio.run(load(endpoint, args.file)):
            print(line)
        return 0
    parser.print_help()
    return 2
