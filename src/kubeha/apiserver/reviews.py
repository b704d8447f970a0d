"""The review APIs and the TokenRequest subresource: create-only, never stored, answered with status.

- authorization.k8s.io/v1: SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview
  (asked of the server's authorizer chain), SelfSubjectRulesReview (the chain's rules).
- authentication.k8s.io/v1: TokenReview (the token authenticators, with audiences),
  SelfSubjectReview (the caller's identity), and ``POST serviceaccounts/<name>/token``.

Each answer is the request object with ``status`` filled in, 201 Created, as upstream.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, lookup
from kubeha.api.schema import Obj
from kubeha.apiserver import admission
from kubeha.apiserver import negotiation as neg
from kubeha.apiserver import serviceaccounts as sat
from kubeha.apiserver.authn import AUTHENTICATED, CURRENT_USER, InvalidToken, UserInfo
from kubeha.apiserver.authz import CURRENT_AUTHZ, Attributes, AuthorizationChain
from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.httpserver import AppKey, Request, Response, StreamResponse
from kubeha.apiserver.rest import check_type_meta, field_checks, write_options

AUTHN_GROUP = "authentication.k8s.io"
AUTHZ_GROUP = "authorization.k8s.io"

# set by app.py: how to find the app's chains from a request
AuthnGetter = Callable[[Request], Any]
_AUTHN: list[AuthnGetter] = []
# the TokenRequest issuer of the app (None: no --service-account-signing-key-file)
ISSUER_KEY = AppKey("sa_issuer", object)


def _user() -> UserInfo:
    user = CURRENT_USER.get()
    if user is None:
        raise errors.internal("no user on the request")
    return user


def _authz() -> AuthorizationChain:
    chain = CURRENT_AUTHZ.get()
    if chain is None:
        raise errors.internal("no authorizer on the request")
    return chain


async def _decode(request: Request, ctx: ApiContext, info: ResourceInfo, kind: str | None = None) -> Obj:
    body = await neg.read_body(request, ctx.config.max_body_bytes)
    obj = neg.decode_object(request.headers.get("Content-Type"), body)
    schema = None
    if kind is not None:
        schema = f"io.k8s.api.authentication.v1.{kind}"
        check_type_meta(info, obj, kind=kind, gv=f"{AUTHN_GROUP}/v1")
    else:
        check_type_meta(info, obj)
    field_checks(info, obj, body, write_options(request, "create"), schema)
    return obj


def _validate(info: ResourceInfo, obj: Obj) -> None:
    # the kind's own checks only: reviews have no name, so object-meta validation does not apply
    causes = info.strategy.validate(obj)
    if causes:
        raise errors.invalid(info.group, info.kind, "", causes)


def _attributes(user: UserInfo, spec: Obj) -> Attributes:
    res = spec.get("resourceAttributes")
    if isinstance(res, dict):
        sub = res.get("subresource") or ""
        return Attributes(
            user,
            res.get("verb") or "",
            True,
            "",
            res.get("group") or "",
            res.get("version") or "",
            res.get("resource") or "",
            sub,
            res.get("namespace") or "",
            res.get("name") or "",
        )
    non = spec.get("nonResourceAttributes") or {}
    return Attributes(user, non.get("verb") or "", False, non.get("path") or "")


def _decide(chain: AuthorizationChain, a: Attributes) -> Obj:
    allowed, reason = chain.authorize_sync(a)
    status: Obj = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status


def _respond(obj: Obj, status: Obj) -> Response:
    md = obj.get("metadata") or {}
    obj["metadata"] = {k: v for k, v in md.items() if k == "namespace" and v} | {"creationTimestamp": None}
    obj["status"] = status
    return neg.json_response(obj, 201)


async def self_subject_access_review(request: Request, ctx: ApiContext, info: ResourceInfo, ns: str) -> StreamResponse:
    obj = await _decode(request, ctx, info)
    _validate(info, obj)
    return _respond(obj, _decide(_authz(), _attributes(_user(), obj.get("spec") or {})))


def _subject(spec: Obj) -> UserInfo:
    extra = {k: list(v) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(spec.get("user") or "", tuple(spec.get("groups") or ()), spec.get("uid") or "", extra)


async def subject_access_review(request: Request, ctx: ApiContext, info: ResourceInfo, ns: str) -> StreamResponse:
    obj = await _decode(request, ctx, info)
    _validate(info, obj)
    spec = obj.get("spec") or {}
    return _respond(obj, _decide(_authz(), _attributes(_subject(spec), spec)))


async def local_subject_access_review(request: Request, ctx: ApiContext, info: ResourceInfo, ns: str) -> StreamResponse:
    obj = await _decode(request, ctx, info)
    md = obj.setdefault("metadata", {})
    if md.get("namespace") and md["namespace"] != ns:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    md["namespace"] = ns
    res = (obj.get("spec") or {}).get("resourceAttributes")
    if isinstance(res, dict) and (res.get("namespace") or "") != ns:
        raise errors.bad_request(
            f'spec.resourceAttributes.namespace must match namespace: {ns}: spec.resourceAttributes.namespace="{res.get("namespace") or ""}"'
        )
    _validate(info, obj)
    spec = obj.get("spec") or {}
    return _respond(obj, _decide(_authz(), _attributes(_subject(spec), spec)))


async def self_subject_rules_review(request: Request, ctx: ApiContext, info: ResourceInfo, ns: str) -> StreamResponse:
    obj = await _decode(request, ctx, info)
    _validate(info, obj)
    namespace = (obj.get("spec") or {}).get("namespace") or ""
    resource, non_resource, incomplete, err = _authz().rules_for(_user(), namespace)
    status: Obj = {"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": incomplete}
    if err:
        status["evaluationError"] = err
    return _respond(obj, status)


async def self_subject_review(request: Request, ctx: ApiContext, info: ResourceInfo, ns: str) -> StreamResponse:
    obj = await _decode(request, ctx, info)
    return _respond(obj, {"userInfo": _user().to_api()})


async def token_review(request: Request, ctx: ApiContext, info: ResourceInfo, ns: str) -> StreamResponse:
    obj = await _decode(request, ctx, info)
    spec = obj.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise errors.invalid(AUTHN_GROUP, "TokenReview", "", [errors.required("spec.token")])
    chain = _AUTHN[0](request) if _AUTHN else None
    status: Obj = {"user": {}}
    if chain is not None:
        try:
            found = await chain.authenticate_token(token, list(spec.get("audiences") or []))
        except InvalidToken as e:
            found = None
            status["error"] = f"[invalid bearer token, {e}]"
        if found is not None:
            user, auds = found
            status = {"authenticated": True, "user": user.to_api(), "audiences": list(auds)}
    return _respond(obj, status)


# -- TokenRequest ---------------------------------------------------------------------------------


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(int(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def token_request(
    request: Request, ctx: ApiContext, info: ResourceInfo, namespace: str, name: str
) -> StreamResponse:
    from kubeha.api.authentication import v1 as authn_v1
    from kubeha.apiserver.rest import Rest

    if request.method != "POST":
        raise errors.method_not_allowed(request.method, "TokenRequest")
    issuer: sat.TokenIssuer | None = request.app.get(ISSUER_KEY)  # type: ignore[assignment]
    if issuer is None:
        raise errors.not_found(info.group, "serviceaccounts/token", name)
    obj = await _decode(request, ctx, info, kind="TokenRequest")
    authn_v1.default_token_request(obj)
    spec = obj.setdefault("spec", {})
    audiences = list(spec.get("audiences") or [])
    if not audiences:
        audiences = list(_api_audiences(request) or [issuer.issuer])
        spec["audiences"] = audiences
    causes = authn_v1.validate_token_request(obj)
    if causes:
        raise errors.invalid(AUTHN_GROUP, "TokenRequest", name, causes)
    rest = Rest(ctx)
    sa = await rest.get_object(info, namespace, name)
    # admission sees the request too (NodeRestriction: a kubelet only for pods bound to it)
    await admission.admit_connect(ctx, info, namespace, name, "token", obj)
    bound: tuple[str, Obj] | None = None
    ref = spec.get("boundObjectRef")
    if isinstance(ref, dict) and ref:
        kind = ref.get("kind") or ""
        resources = {"Pod": ("pods", namespace), "Secret": ("secrets", namespace), "Node": ("nodes", "")}
        if kind not in resources:
            raise errors.bad_request(
                f'cannot bind token for object of kind "{kind}"; only Pod, Secret, Node are supported'
            )
        res, bns = resources[kind]
        binfo = lookup("", "v1", res)
        if binfo is None:
            raise errors.internal(f"{res} are not served")
        target = await rest.maybe_get(binfo, bns, ref.get("name") or "")
        if target is None:
            raise errors.not_found("", res, ref.get("name") or "")
        tuid = (target.get("metadata") or {}).get("uid")
        if ref.get("uid") and ref["uid"] != tuid:
            raise errors.conflict(
                "",
                res,
                ref.get("name") or "",
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. The object might have been deleted and then recreated",
            )
        if kind == "Pod":
            sa_name = (target.get("spec") or {}).get("serviceAccountName") or "default"
            if sa_name != name:
                raise errors.bad_request(
                    f'cannot issue token for service account "{namespace}/{name}" bound to pod '
                    f'"{namespace}/{ref.get("name")}": pod is running as service account "{sa_name}"'
                )
        bound = (kind, target)
    seconds = int(spec.get("expirationSeconds") or authn_v1.DEFAULT_TOKEN_EXPIRATION_SECONDS)
    claims = issuer.claims(sa, audiences, seconds, bound)
    spec["boundObjectRef"] = (
        {
            "kind": bound[0],
            "apiVersion": "v1",
            "name": bound[1]["metadata"]["name"],
            "uid": bound[1]["metadata"].get("uid", ""),
        }
        if bound
        else None
    )
    if spec["boundObjectRef"] is None:
        spec.pop("boundObjectRef")
    md = obj.setdefault("metadata", {})
    md["name"] = name
    md["namespace"] = namespace
    md["creationTimestamp"] = None
    obj["status"] = {"token": issuer.issue(claims), "expirationTimestamp": _rfc3339(claims["exp"])}
    return neg.json_response(obj, 201)


def _api_audiences(request: Request) -> tuple[str, ...]:
    chain = _AUTHN[0](request) if _AUTHN else None
    return tuple(getattr(chain, "api_audiences", ()) or ())


# -- CertificateSigningRequest: requester and approval --------------------------------------------


async def set_csr_requester(ctx: Any, new: Obj, old: Obj | None, plan: Any) -> None:
    """Write hook: a new CSR records who asked for it (clients cannot claim an identity)."""
    user = CURRENT_USER.get()
    if old is None and user is not None:
        from kubeha.api.certificates.v1 import set_requester

        set_requester(new, user.name, user.uid, list(user.groups), user.extra)


async def write_csr_approval(rest: Any, info: ResourceInfo, name: str, obj: Obj, opts: Any) -> Obj:
    """PUT certificatesigningrequests/<name>/approval: only the Approved/Denied conditions change."""
    from kubeha.api.certificates.v1 import prepare_for_approval_update, validate_approval_update

    check_type_meta(info, obj)
    want_rv = (obj.get("metadata") or {}).get("resourceVersion")

    async def mutate(current: Obj) -> Obj:
        new = {k: v for k, v in obj.items()}
        prepare_for_approval_update(new, current)
        if want_rv:
            new["metadata"] = {**new["metadata"], "resourceVersion": want_rv}
        causes = validate_approval_update(new, current)
        if causes:
            raise errors.invalid(info.group, info.kind, name, causes)
        return new

    stored, _ = await rest.write_update(info, "", name, mutate, opts, validate=False)
    result: Obj = stored
    return result


# -- wiring ---------------------------------------------------------------------------------------

CreateHandler = Callable[[Request, ApiContext, ResourceInfo, str], Awaitable[StreamResponse]]

CREATE_HANDLERS: dict[tuple[str, str], CreateHandler] = {
    (AUTHZ_GROUP, "selfsubjectaccessreviews"): self_subject_access_review,
    (AUTHZ_GROUP, "subjectaccessreviews"): subject_access_review,
    (AUTHZ_GROUP, "localsubjectaccessreviews"): local_subject_access_review,
    (AUTHZ_GROUP, "selfsubjectrulesreviews"): self_subject_rules_review,
    (AUTHN_GROUP, "selfsubjectreviews"): self_subject_review,
    (AUTHN_GROUP, "tokenreviews"): token_review,
}


def install(authn_getter: AuthnGetter) -> None:
    from kubeha.apiserver import handlers

    _AUTHN[:] = [authn_getter]
    handlers.CREATE_HANDLERS.update(CREATE_HANDLERS)
    handlers.SUBRESOURCE_HANDLERS[("", "serviceaccounts", "token")] = token_request
    from kubeha.apiserver.rest import WRITE_HOOKS

    WRITE_HOOKS["certificates.k8s.io/certificatesigningrequests"] = set_csr_requester


__all__ = ["AUTHENTICATED", "CREATE_HANDLERS", "install"]
