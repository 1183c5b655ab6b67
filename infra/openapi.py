"""Generate ``lambdas/api/openapi.json`` from the API handler's routes and pydantic models.

``python -m infra.openapi`` rewrites the file; ``python -m infra.openapi --check`` exits 1 if it is stale
(a test runs the same comparison). Powertools adds its own validation-error schemas, which this API never
returns (errors use ``ErrorResponse``), so unreferenced components are pruned.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

TITLE = "Movie recommender API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Asynchronous recommendations: POST a request, get a `request_id` at once (202), poll "
    "`GET /recommendations/{request_id}` until `status` is COMPLETED (with `result`) or FAILED (with `error`).\n\n"
    'Every error is `{"error": {"code", "message"}}` (validation errors add `details`): 400 for a body that '
    "is not JSON or a malformed request id, 404 for an unknown or expired request, 409 for a reused "
    "Idempotency-Key, 413 for a body over 64 KB, 415 for a body that is not JSON, 422 for JSON that breaks the "
    "contract (wrong types, unknown fields, values out of range, not exactly one request kind), 503 when the "
    "queue is unavailable.\n\n"
    "`GET /movies` (title search, popular lists) and `GET /model` (the model card) answer at once from small files "
    "published with the model.\n\n"
    "Failed requests carry an error code: `unknown_movie` (a `similar_to` movie the model does not know), "
    "`unknown_user` (a `profile_of` user the model does not know), "
    "`unknown_genre`, `invalid_rating` (outside the model's scale), `invalid_k`, `invalid_request`, "
    "`queue_unavailable`, `retries_exhausted` (processing failed on every attempt; the message is in the DLQ).\n\n"
    "Every call needs the API key in `x-api-key` (403 `forbidden` without it, answered before the API function "
    "runs), in AWS as in the local stack (`python -m infra.local` prints its key). The web page's calls go "
    "through `/api/`, where CloudFront (or the local gateway) adds the key, so the browser never holds it. An "
    "undeclared method on a declared path gets 405 with `Allow` from the local gateway (403 from API Gateway). "
    "Calls over the key's usage plan (the page's is shared by every visitor and lower than an operator's) or the "
    "stage's throttle get 429 `throttled`, in AWS as in the local stack.\n\n"
    "A person signed in (an Amazon Cognito user pool; locally, the local stack's) uses the `/me` routes with their "
    "ID token in `Authorization: Bearer <token>`: their user id comes from the token, never from the request (401 "
    "`unauthorized` without a valid token, answered before the API function runs). A request is read back only by "
    "an operator or by whoever submitted it (403 `forbidden` otherwise)."
)


def build() -> dict[str, Any]:
    """The OpenAPI 3.1 document as a dict."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

    from lambdas.api.handler import app

    raw = app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes={
            "apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header),
            "cognito": HTTPBearer(bearerFormat="JWT", description="A Cognito ID token of the user pool's web client"),
        },
        security=[{"apiKey": []}],
    )
    return _with_gateway_answers(_prune(json.loads(raw)))


FORBIDDEN = {
    "description": "No valid API key in `x-api-key` (`forbidden`): refused before the API function runs",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


THROTTLED = {
    "description": (
        "Over the caller's usage plan (the web page's shared one, or an operator key's) or the stage's throttle "
        "(`throttled`): refused before the API function runs; retry later"
    ),
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


PERSONAL = "/me"  # the signed-in person's routes: the API key and a token


def _with_gateway_answers(doc: dict) -> dict:
    """Answers the gateway gives before the handler runs, on every operation: 403 without a valid API key, 429 over a
    throttle; and the personal routes' token."""
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            operation["responses"].setdefault("403", FORBIDDEN)
            operation["responses"].setdefault("429", THROTTLED)
            if path == PERSONAL or path.startswith(PERSONAL + "/"):
                operation["security"] = [{"apiKey": [], "cognito": []}]
            operation["responses"] = dict(sorted(operation["responses"].items()))
    return doc


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _prune(doc: dict) -> dict:
    """Drop Powertools' default 422 answers (ours use ErrorResponse) and schemas nothing references."""
    for operations in doc["paths"].values():
        for operation in operations.values():
            answer = operation["responses"].get("422", {})
            if "HTTPValidationError" in json.dumps(answer):
                del operation["responses"]["422"]
    schemas = doc.get("components", {}).get("schemas", {})
    used: set[str] = set()
    todo = _refs(doc["paths"])
    while todo:
        name = todo.pop()
        if name not in used and name in schemas:
            used.add(name)
            todo |= _refs(schemas[name])
    doc["components"]["schemas"] = {k: v for k, v in schemas.items() if k in used}
    return doc


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    from lambdas.api.handler import OPENAPI_PATH

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if openapi.json differs from the generated one")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        if not OPENAPI_PATH.exists() or OPENAPI_PATH.read_text() != text:
            print(f"{OPENAPI_PATH} is stale: run python -m infra.openapi", file=sys.stderr)
            return 1
        return 0
    OPENAPI_PATH.write_text(text)
    print(f"wrote {OPENAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
