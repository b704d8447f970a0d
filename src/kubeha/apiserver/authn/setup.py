"""Build the authentication chain of one api-server from its settings.

Token authenticators read the objects they check (bootstrap-token Secrets, ServiceAccounts, bound
Pods and Secrets) from the watch caches. Service-account checks fall back to one etcd read when
the cache misses, so a token issued a moment ago for a just-created account or pod works at once
(a revoked one still fails: the read finds nothing).
"""

from __future__ import annotations

from typing import Any

from kubeha.api.registry import lookup
from kubeha.api.schema import Obj
from kubeha.apiserver import serviceaccounts as sat
from kubeha.apiserver.authn import AuthenticationChain, TokenAuthenticator
from kubeha.apiserver.authn.bootstrap import BootstrapTokenAuthenticator
from kubeha.apiserver.authn.tokenfile import TokenFileAuthenticator
from kubeha.apiserver.config import ServerConfig
from kubeha.storage.interface import KeyNotFound


def cache_lookup(ctx: Any, live_fallback: bool) -> sat.ObjectLookup:
    async def get(resource: str, namespace: str, name: str) -> Obj | None:
        info = lookup("", "v1", resource)
        if info is None or not name:
            return None
        key = info.key(namespace if info.namespaced else None, name)
        cacher = ctx.ready_cacher(info) or await ctx.cacher(info)
        obj: Obj | None = cacher.get(key)
        if obj is None and live_fallback:
            try:
                obj = info.decode(dict(await ctx.store.get(key)))
            except KeyNotFound:
                return None
        return obj

    return get


def issuer_for(config: ServerConfig) -> sat.TokenIssuer | None:
    if not config.service_account_signing_key_file:
        return None
    key = sat.load_private_key(config.service_account_signing_key_file)
    return sat.TokenIssuer(
        key, config.service_account_issuers[0] if config.service_account_issuers else sat.DEFAULT_ISSUER
    )


def build_chain(config: ServerConfig, ctx: Any) -> AuthenticationChain:
    tokens: list[TokenAuthenticator] = []
    if config.token_auth_file:
        tokens.append(TokenFileAuthenticator.from_file(config.token_auth_file))
    if config.enable_bootstrap_token_auth:
        secrets = cache_lookup(ctx, live_fallback=False)

        async def secret(namespace: str, name: str) -> Obj | None:
            return await secrets("secrets", namespace, name)

        tokens.append(BootstrapTokenAuthenticator(secret))
    key_files = list(config.service_account_key_files)
    if not key_files and config.service_account_signing_key_file:
        key_files = [config.service_account_signing_key_file]  # as upstream: the signing key verifies too
    if key_files:
        keys = [k for path in key_files for k in sat.load_public_keys(path)]
        tokens.append(sat.ServiceAccountAuthenticator(keys, config.service_account_issuers, cache_lookup(ctx, True)))
    audiences = config.api_audiences or config.service_account_issuers
    return AuthenticationChain(anonymous=config.anonymous_auth, tokens=tokens, api_audiences=audiences)
