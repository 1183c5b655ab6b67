"""What the web page may call through ``/api/*``: one definition for the deployed CloudFront Function and the local
gateway.

CloudFront adds the page's API key to every ``/api/*`` request, so whatever passes here anyone on the internet can
do without a key. The page needs to read the catalogue and the model card, submit recommendation requests and read
their status (the API limits an anonymous visitor's requests to what needs no user's data), and a signed-in
person's own routes (``/me...``), which a valid token guards. ``POST /events``, ``DELETE /users/{id}`` and every
other route are refused here (403, the API's JSON error shape) and stay available to callers holding an API key of
their own.

Plain Python (no CDK import), so ``infra.local`` reads it without starting the CDK runtime.
"""

from __future__ import annotations

import json
import re

# (method, path pattern) after the "/api" prefix. Methods as the API defines them: API Gateway has no HEAD methods
# (its answer to one is its own non-JSON 403), so HEAD is refused here like any other method.
PAGE_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", r"/movies"),
    ("GET", r"/model"),
    ("GET", r"/openapi\.json"),
    ("POST", r"/recommendations"),
    ("GET", r"/recommendations/[^/]+"),
    # a signed-in person's own routes: the token, checked before the function runs, says whose
    ("GET", r"/me"),
    ("DELETE", r"/me"),
    ("POST", r"/me/recommendations"),
    ("POST", r"/me/profile"),
    ("GET", r"/me/requests/[^/]+"),
    ("POST", r"/me/events"),
)
# The header API Gateway reads the API key from; CloudFront (the local gateway) adds the page's key in it.
API_KEY_HEADER = "x-api-key"
# The page reads this file (served next to index.html) to know the user pool's app client it signs people in with.
SITE_CONFIG = "site.json"
FORBIDDEN_CODE = "forbidden"
REFUSAL = " is not available through the web page; call the API with an API key"


def allowed(method: str, path: str) -> bool:
    """Whether the page's ``/api`` may pass ``method path`` (the path without the ``/api`` prefix) to the API."""
    return any(m == method and re.fullmatch(p, path) for m, p in PAGE_ROUTES)


def refusal_message(method: str, path: str) -> str:
    return f"{method} {path}{REFUSAL}"


def refusal_body(method: str, path: str) -> str:
    return json.dumps({"error": {"code": FORBIDDEN_CODE, "message": refusal_message(method, path)}})


def site_config(client_id: str | None) -> dict:
    """The page's ``site.json``: the user pool's app client the page signs people in with (through ``auth/`` on
    its own origin), or none (no accounts: the page offers no sign-in)."""
    return {"auth": {"client_id": client_id} if client_id else None}


def cloudfront_function() -> str:
    """The viewer-request CloudFront Function (cloudfront-js-2.0): refuse what the page may not call, else strip the
    ``/api`` prefix (API Gateway's routes start at ``/recommendations``)."""
    table = json.dumps([[m, f"^{p}$"] for m, p in PAGE_ROUTES])
    return f"""var ROUTES = {table};
function handler(event) {{
  var request = event.request;
  var path = request.uri.substring(4);
  var method = request.method;
  for (var i = 0; i < ROUTES.length; i++) {{
    if (ROUTES[i][0] === method && new RegExp(ROUTES[i][1]).test(path)) {{
      request.uri = path;
      return request;
    }}
  }}
  var message = request.method + " " + path + {json.dumps(REFUSAL)};
  return {{
    statusCode: 403,
    statusDescription: "Forbidden",
    headers: {{"content-type": {{value: "application/json"}}, "cache-control": {{value: "no-store"}}}},
    body: {{encoding: "text", data: JSON.stringify({{error: {{code: "{FORBIDDEN_CODE}", message: message}}}})}}
  }};
}}
"""
