"""The API Gateway proxy event for a local HTTP request, and the API's routes as the CDK stack declares them."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from infra.local.context import LOCAL_ACCOUNT


@dataclass(frozen=True)
class Route:
    """One API resource: its path pattern, the resource template API Gateway reports, its methods."""

    pattern: re.Pattern[str]
    resource: str
    methods: tuple[str, ...]
    param: str | None = None
    personal: bool = False  # needs a signed-in person's token


# The API's resources, as the CDK stack declares them (infra/constructs/api.py).
ROUTES = (
    Route(re.compile(r"^/recommendations/?$"), "/recommendations", ("POST",)),
    Route(
        re.compile(r"^/recommendations/(?P<request_id>[^/]+)$"), "/recommendations/{request_id}", ("GET",), "request_id"
    ),
    Route(re.compile(r"^/events/?$"), "/events", ("POST",)),
    Route(re.compile(r"^/users/(?P<user_id>[^/]+)$"), "/users/{user_id}", ("DELETE",), "user_id"),
    Route(re.compile(r"^/movies/?$"), "/movies", ("GET",)),
    Route(re.compile(r"^/model/?$"), "/model", ("GET",)),
    Route(re.compile(r"^/openapi\.json$"), "/openapi.json", ("GET",)),
    # A signed-in person's own routes: API Gateway's Cognito authoriser guards them (the gateway, locally).
    Route(re.compile(r"^/me/?$"), "/me", ("GET", "DELETE"), personal=True),
    Route(re.compile(r"^/me/recommendations/?$"), "/me/recommendations", ("POST",), personal=True),
    Route(re.compile(r"^/me/profile/?$"), "/me/profile", ("POST",), personal=True),
    Route(
        re.compile(r"^/me/requests/(?P<request_id>[^/]+)$"),
        "/me/requests/{request_id}",
        ("GET",),
        "request_id",
        personal=True,
    ),
    Route(re.compile(r"^/me/events/?$"), "/me/events", ("POST",), personal=True),
)


def route_of(path: str) -> Route | None:
    return next((r for r in ROUTES if r.pattern.match(path)), None)


def api_event(
    method: str,
    path: str,
    query: dict[str, list[str]],
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    full_path: str | None = None,
    api_key_id: str | None = None,
    claims: dict | None = None,
) -> dict:
    """An API Gateway REST proxy event (stage ``local``) for one HTTP request to ``path`` (an API route): with the
    id of the API key it came with and, on a personal route, the verified token's claims, where API Gateway puts
    them (``requestContext.identity.apiKeyId``, ``requestContext.authorizer.claims``)."""
    route = route_of(path)
    resource, path_params = "/{proxy+}", {"proxy": path.lstrip("/")}
    if route is not None:
        match = route.pattern.match(path)
        resource = route.resource
        path_params = {route.param: match.group(route.param)} if route.param else None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_params,
        "stageVariables": None,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "path": full_path or path,
            "protocol": "HTTP/1.1",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent"), "apiKeyId": api_key_id},
            "domainName": single.get("Host", "127.0.0.1"),
            **({"authorizer": {"claims": claims}} if claims is not None else {}),
        },
        "body": text if body else None,
        "isBase64Encoded": is_b64,
    }
