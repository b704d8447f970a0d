"""/healthz, /livez, /readyz with named sub-checks (``/readyz/etcd``, ``?verbose``, ``?exclude=``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.httpserver import Request, Response

Check = Callable[[], Awaitable[bool]]


class EtcdCheck:
    """etcd reachability, cached briefly so probes do not hammer etcd."""

    def __init__(self, ctx: ApiContext, ttl: float = 1.0) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self._at = 0.0
        self._ok = False

    async def __call__(self) -> bool:
        if time.monotonic() - self._at < self.ttl:
            return self._ok
        try:
            healthy = getattr(self.ctx.kv, "healthy", None)
            self._ok = bool(await asyncio.wait_for(healthy(), 3.0)) if healthy is not None else True
        except Exception:
            self._ok = False
        self._at = time.monotonic()
        return self._ok


def checks_for(ctx: ApiContext, endpoint: str) -> dict[str, Check]:
    etcd = ctx.__dict__.setdefault("_etcd_check", EtcdCheck(ctx))

    async def ping() -> bool:
        return True

    async def shutdown() -> bool:
        return not ctx.shutting_down.is_set()

    async def bootstrapped() -> bool:
        return ctx.bootstrapped

    checks: dict[str, Check] = {"ping": ping, "log": ping, "etcd": etcd}
    if endpoint == "readyz":
        checks["poststarthook/bootstrap-objects"] = bootstrapped
        checks["shutdown"] = shutdown
    return checks


async def handle(request: Request, ctx: ApiContext, endpoint: str, sub: str) -> Response:
    checks = checks_for(ctx, endpoint)
    if sub:
        check = checks.get(sub)
        if check is None:
            return Response(status=404, text="404 page not found\n")
        ok = await check()
        return Response(
            status=200 if ok else 500 if endpoint != "readyz" else 503,
            text="ok" if ok else f"internal server error: {sub} check failed",
        )
    exclude = set(request.query.getall("exclude", []))
    lines = []
    failed = False
    for name, check in checks.items():
        if name in exclude:
            lines.append(f"[+]{name} excluded: ok")
            continue
        ok = await check()
        failed = failed or not ok
        lines.append(f"[+]{name} ok" if ok else f"[-]{name} failed: reason withheld")
    verbose = "verbose" in request.query
    if failed:
        # upstream answers 500; readiness says 503 so load balancers and callers see "not yet"
        code = 503 if endpoint == "readyz" else 500
        return Response(status=code, text="\n".join(lines) + f"\n{endpoint} check failed\n")
    if verbose:
        return Response(text="\n".join(lines) + f"\n{endpoint} check passed\n")
    return Response(text="ok")
