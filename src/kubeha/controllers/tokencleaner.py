"""tokencleaner: deletes bootstrap token Secrets once their ``expiration`` has passed.

It watches Secrets of type ``bootstrap.kubernetes.io/token`` in ``kube-system``. A token not yet
expired is looked at again at its expiry time (a delayed queue add, no polling). Deletion carries
a UID precondition, so a Secret recreated under the same name is not hit by mistake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import SECRETS
from kubeha.controllers.bootstrapsigner import TOKEN_NAMESPACE, TOKEN_SECRET_SELECTOR, TOKEN_SECRET_TYPE, expiration
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, Requeue, object_of
from kubeha.machinery.indexer import split_meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class TokenCleaner:
    def __init__(self, ctx: ControllerContext, *, wall: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.wall = wall
        self.secrets = ctx.informers.informer_for(
            SECRETS, namespace=TOKEN_NAMESPACE, field_selector=TOKEN_SECRET_SELECTOR
        )
        self.queue = RateLimitingQueue(name="tokencleaner")

        def changed(obj: Any) -> None:
            secret = object_of(obj)
            md = (secret or {}).get("metadata") or {}
            if secret is not None and secret.get("type") == TOKEN_SECRET_TYPE:
                self.queue.add(f"{md.get('namespace')}/{md.get('name')}")

        self.secrets.add_event_handler(on_add=changed, on_update=lambda o, n: changed(n))
        self.controller = Controller("tokencleaner", self.reconcile, self.queue)

    async def run(self) -> None:
        await self.controller.run([self.secrets])

    async def reconcile(self, key: str) -> Requeue | None:
        secret = self.secrets.indexer.get(key)
        if secret is None or secret.get("type") != TOKEN_SECRET_TYPE:
            return None
        md = secret.get("metadata") or {}
        if md.get("deletionTimestamp"):
            return None
        left, expired = expiration(secret, self.wall())
        if not expired:
            return Requeue(after=left) if left is not None else None
        ns, name = split_meta_namespace_key(key)
        try:
            await self.client.delete(SECRETS, name, ns, preconditions={"uid": md.get("uid")})
        except StatusError as e:
            if e.code in (404, 409):
                return None  # gone already, or a different Secret now has the name
            raise
        log.info("tokencleaner: deleted expired bootstrap token %s", key)
        return None


# off by default, as upstream (see bootstrapsigner)
@register("tokencleaner", enabled_by_default=False)
async def start(ctx: ControllerContext) -> None:
    ctl = TokenCleaner(ctx)
    await ctx.informers.start()
    await ctl.run()
