"""authentication.k8s.io/v1: TokenRequest, TokenReview, SelfSubjectReview and their parts.

Numbers follow k8s.io/api/authentication/v1/generated.proto. TokenRequest is served as the
``serviceaccounts/token`` subresource (registered with core/v1); TokenReview and SelfSubjectReview
are create-only, cluster-scoped and never stored: the server fills in ``status`` and answers.
"""

from __future__ import annotations

import kubeha.api.meta.v1  # noqa: F401  (registers ObjectMeta)
from kubeha.api.errors import Cause, invalid_value
from kubeha.api.registry import ResourceInfo, Strategy, register
from kubeha.api.schema import BOOL, INT64, META, STRING, TIME, Obj, f, list_of, map_of, struct, type_meta_fields

GROUP = "authentication.k8s.io"
VERSION = "v1"
P = "io.k8s.api.authentication.v1."

# Bounds upstream puts on a requested token lifetime.
MIN_TOKEN_EXPIRATION_SECONDS = 600
MAX_TOKEN_EXPIRATION_SECONDS = 1 << 32
DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600

struct(
    P + "UserInfo",
    "The identity of an authenticated user.",
    f("username", 1, STRING, "Name of the user."),
    f("uid", 2, STRING, "Identifier of the user that is unique over time."),
    f("groups", 3, list_of(STRING), "Groups the user belongs to.", list_type="atomic"),
    f("extra", 4, map_of(list_of(STRING)), "Further attributes from the authenticator."),
)
struct(
    P + "BoundObjectReference",
    "The object (Pod, Secret or Node) a token is bound to; the token dies with it.",
    f("kind", 1, STRING, "Kind of the object: Pod, Secret or Node."),
    f("apiVersion", 2, STRING, "API version of the object."),
    f("name", 3, STRING, "Name of the object."),
    f("uid", 4, STRING, "UID of the object."),
)
struct(
    P + "TokenRequestSpec",
    "What a token is requested for.",
    f("audiences", 1, list_of(STRING), "Intended audiences of the token.", required=True, list_type="atomic"),
    f("boundObjectRef", 3, P + "BoundObjectReference", "Object the token is bound to."),
    f("expirationSeconds", 4, INT64, "Requested lifetime in seconds.", pointer=True),
)
struct(
    P + "TokenRequestStatus",
    "The issued token.",
    f("token", 1, STRING, "The bearer token.", required=True),
    f("expirationTimestamp", 2, TIME, "When the token expires.", required=True),
)
struct(
    P + "TokenRequest",
    "Requests a token for a service account (POST serviceaccounts/<name>/token).",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, P + "TokenRequestSpec", "What the token is for.", required=True),
    f("status", 3, P + "TokenRequestStatus", "The issued token."),
    gvk=(GROUP, VERSION, "TokenRequest"),
)
struct(
    P + "TokenReviewSpec",
    "The token to authenticate.",
    f("token", 1, STRING, "The bearer token."),
    f("audiences", 2, list_of(STRING), "Audiences the token must be valid for.", list_type="atomic"),
)
struct(
    P + "TokenReviewStatus",
    "The result of authenticating a token.",
    f("authenticated", 1, BOOL, "Whether the token belongs to a known user."),
    f("user", 2, P + "UserInfo", "The user the token authenticates as."),
    f("error", 3, STRING, "Why the token could not be checked."),
    f("audiences", 4, list_of(STRING), "Audiences the token is valid for.", list_type="atomic"),
)
struct(
    P + "TokenReview",
    "Asks the server to authenticate a token.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, P + "TokenReviewSpec", "The token to authenticate.", required=True),
    f("status", 3, P + "TokenReviewStatus", "Filled in by the server."),
    gvk=(GROUP, VERSION, "TokenReview"),
)
struct(
    P + "SelfSubjectReviewStatus",
    "The requester's own identity.",
    f("userInfo", 1, P + "UserInfo", "The user making the request."),
)
struct(
    P + "SelfSubjectReview",
    "Returns the identity the server sees for the requester (kubectl auth whoami).",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("status", 2, P + "SelfSubjectReviewStatus", "Filled in by the server."),
    gvk=(GROUP, VERSION, "SelfSubjectReview"),
)


def validate_token_request(obj: Obj) -> list[Cause]:
    """Upstream ValidateTokenRequest: the requested lifetime is bounded."""
    spec = obj.get("spec") or {}
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        return []
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return [invalid_value("spec.expirationSeconds", seconds, "must be an integer")]
    if seconds < MIN_TOKEN_EXPIRATION_SECONDS:
        return [invalid_value("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")]
    if seconds > MAX_TOKEN_EXPIRATION_SECONDS:
        return [invalid_value("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds")]
    return []


def default_token_request(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("expirationSeconds") is None:
        spec["expirationSeconds"] = DEFAULT_TOKEN_EXPIRATION_SECONDS


class TokenRequestStrategy(Strategy):
    """For the serviceaccounts/token subresource handler (the REST wiring comes later)."""

    track_generation = False

    def default(self, obj: Obj) -> None:
        default_token_request(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_token_request(obj)


class ReviewStrategy(Strategy):
    """Create-only, never stored: nothing to default, and the server owns status."""

    track_generation = False


TOKEN_REQUEST_STRATEGY = TokenRequestStrategy()

TOKENREVIEWS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "tokenreviews",
        "TokenReview",
        False,
        P + "TokenReview",
        strategy=ReviewStrategy(),
        verbs=("create",),
    )
)
SELFSUBJECTREVIEWS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "selfsubjectreviews",
        "SelfSubjectReview",
        False,
        P + "SelfSubjectReview",
        strategy=ReviewStrategy(),
        verbs=("create",),
    )
)
