"""Who is calling: an operator (an API key of their own, or IAM), a person signed in (a verified token), or an
anonymous visitor (the web page's key, which CloudFront adds to every call of the page).

API Gateway has checked the key and, on the personal routes (``/me...``), the token before the function runs: its
Cognito authoriser puts the token's claims in ``requestContext.authorizer.claims`` and the key's id in
``requestContext.identity.apiKeyId`` (the local gateway does the same). Nothing here reads a header the caller wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lambdas.service.errors import Forbidden, Unauthorized
from lambdas.settings import Settings

Kind = Literal["operator", "person", "visitor"]
OPERATOR: Kind = "operator"
PERSON: Kind = "person"
VISITOR: Kind = "visitor"


@dataclass(frozen=True)
class Caller:
    kind: Kind
    sub: str | None = None  # a person's account (the token's subject)
    email: str | None = None

    @property
    def owner(self) -> str:
        """What a request this caller submits is stored as owned by (``GET`` of it checks it)."""
        return f"person:{self.sub}" if self.kind == PERSON else self.kind

    @property
    def reader(self) -> str | None:
        """Whose requests this caller may read: None for an operator (anyone's), else its own (``owner``)."""
        return None if self.kind == OPERATOR else self.owner


def of(event: dict[str, Any], settings: Settings) -> Caller:
    """The caller of an API Gateway proxy event."""
    context = event.get("requestContext") or {}
    claims = (context.get("authorizer") or {}).get("claims") or {}
    if claims.get("sub"):
        return Caller(PERSON, str(claims["sub"]), claims.get("email"))
    key_id = (context.get("identity") or {}).get("apiKeyId")
    if settings.page_api_key_id and key_id == settings.page_api_key_id:
        return Caller(VISITOR)
    return Caller(OPERATOR)


# What an anonymous visitor may ask POST /recommendations for: nothing that reads a user's data.
VISITOR_KINDS = frozenset({"cold_start", "similar"})


def check_request(caller: Caller, kind: str) -> None:
    """403 unless ``caller`` may submit a request of ``kind``: an operator anything; anyone else (a visitor; a
    person uses ``/me``) recommendations from ratings they send, and similar movies."""
    if caller.kind == OPERATOR or kind in VISITOR_KINDS:
        return
    if kind == "batch":
        raise Forbidden("forbidden", "a batch (user_ids) needs an operator's API key")
    raise Forbidden(
        "forbidden",
        "a user's recommendations and profile are theirs: sign in and ask POST /me/recommendations or /me/profile",
    )


def operator_only(caller: Caller, what: str) -> None:
    """403 unless ``caller`` is an operator."""
    if caller.kind != OPERATOR:
        raise Forbidden("forbidden", f"{what} needs an operator's API key (a person signed in: use /me)")


def person(event: dict[str, Any], settings: Settings) -> Caller:
    """The signed-in person of a personal route; 401 when the event carries no verified token (a route deployed
    without the authoriser must never fall back to another caller's rights)."""
    caller = of(event, settings)
    if caller.kind != PERSON:
        raise Unauthorized("unauthorized", "sign in: this route needs a valid token in the Authorization header")
    return caller
