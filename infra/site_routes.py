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
NOT_ALLOWED_CODE = "method_not_allowed"
REFUSAL = " is not available through the web page; call the API with an API key"


def allowed(method: str, path: str) -> bool:
    """Whether the page's ``/api`` may pass ``method path`` (the path without the ``/api`` prefix) to the API."""
    return any(m == method and re.fullmatch(p, path) for m, p in PAGE_ROUTES)


def methods_for(path: str) -> tuple[str, ...]:
    """The methods the page may use on ``path`` (in ``PAGE_ROUTES``' order; empty: not a path of the page's)."""
    found: list[str] = []
    for m, p in PAGE_ROUTES:
        if re.fullmatch(p, path) and m not in found:
            found.append(m)
    return tuple(found)


def refusal_message(method: str, path: str) -> str:
    return f"{method} {path}{REFUSAL}"


def not_allowed_message(method: str, allow: tuple[str, ...]) -> str:
    return f"{method} is not allowed here; use {', '.join(allow)}"


def refusal(method: str, path: str) -> tuple[int, dict[str, str], str]:
    """What CloudFront answers to a call the page may not make: 405 with ``Allow`` for another method on one of the
    page's paths (as the API answers an undeclared method), else 403; the API's JSON error shape either way."""
    allow = methods_for(path)
    if allow:
        body = {"error": {"code": NOT_ALLOWED_CODE, "message": not_allowed_message(method, allow)}}
        return 405, {"Allow": ", ".join(allow)}, json.dumps(body)
    return 403, {}, json.dumps({"error": {"code": FORBIDDEN_CODE, "message": refusal_message(method, path)}})


def site_config(client_id: str | None) -> dict:
    """The page's ``site.json``: the user pool's app client the page signs people in with (through ``auth/`` on
    its own origin), or none (no accounts: the page offers no sign-in)."""
    return {"auth": {"client_id": client_id} if client_id else None}


def cloudfront_function() -> str:
    """The viewer-request CloudFront Function (cloudfront-js-2.0): refuse what the page may not call (:func:`refusal`),
    else strip the ``/api`` prefix (API Gateway's routes start at ``/recommendations``)."""
    table = json.dumps([[m, f"^{p}$"] for m, p in PAGE_ROUTES])
    return f"""var ROUTES = {table};
function handler(event) {{
  var request = event.request;
  var path = request.uri.substring(4);
  var method = request.method;
  var allow = [];
  for (var i = 0; i < ROUTES.length; i++) {{
    if (new RegExp(ROUTES[i][1]).test(path)) {{
      if (ROUTES[i][0] === method) {{
        request.uri = path;
        return request;
      }}
      if (allow.indexOf(ROUTES[i][0]) < 0) allow.push(ROUTES[i][0]);
    }}
  }}
  var headers = {{"content-type": {{value: "application/json"}}, "cache-control": {{value: "no-store"}}}};
  if (allow.length > 0) {{
    headers["allow"] = {{value: allow.join(", ")}};
    var refused = method + " is not allowed here; use " + allow.join(", ");
    return {{
      statusCode: 405,
      statusDescription: "Method Not Allowed",
      headers: headers,
      body: {{encoding: "text", data: JSON.stringify({{error: {{code: "{NOT_ALLOWED_CODE}", message: refused}}}})}}
    }};
  }}
  var message = method + " " + path + {json.dumps(REFUSAL)};
  return {{
    statusCode: 403,
    statusDescription: "Forbidden",
    headers: headers,
    body: {{encoding: "text", data: JSON.stringify({{error: {{code: "{FORBIDDEN_CODE}", message: message}}}})}}
  }};
}}
"""
