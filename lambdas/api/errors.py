"""Every API error as ``{"error": {"code", "message"}}``: validation errors, service errors, checks before parsing.

Status codes: 400 for a body that is not JSON and a malformed request id, 413 for a body over ``max_body_bytes``,
415 for a body that is not ``application/json``, 422 for JSON that breaks the contract (wrong types, unknown
fields, out-of-range values, not exactly one request kind), 404 for an unknown request or route, 409 for an
Idempotency-Key reused with another body, 503 when the queue cannot take the request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import CORSConfig, Response, content_types

from lambdas.service.logs import logger

MAX_DETAILS = 20
FRIENDLY = {
    "extra_forbidden": "unknown field",
    "missing": "required",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}


def body(code: str, message: str, details: list[dict] | None = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"error": err}


def response(status: int, code: str, message: str, details: list[dict] | None = None, headers=None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body(code, message, details),
        headers=headers,
    )


def proxy_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> dict:
    """An API Gateway proxy response, for refusals made before the resolver parses anything."""
    logger.info("request refused", extra={"status": status, "code": code, "error": message})
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **(headers or {})},
        "body": json.dumps(body(code, message), separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _field(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts[:1] == ["header"] and len(parts) > 1:
        parts[1] = "-".join(w.capitalize() for w in parts[1].split("-"))
    return ".".join(parts)


def _message(error: Mapping[str, Any]) -> str:
    if tuple(error["loc"]) == ("body",) and error["type"] == "missing":
        return "a JSON body is required"
    msg = FRIENDLY.get(error["type"], error["msg"])
    return msg.removeprefix("Value error, ")


def from_validation_errors(errors: list[Mapping[str, Any]]) -> tuple[int, str, str, list[dict]]:
    """(status, code, message, details) for Powertools' request validation errors."""
    if any(e["type"] == "json_invalid" for e in errors):
        e = next(e for e in errors if e["type"] == "json_invalid")
        where = e["loc"][1] if len(e["loc"]) > 1 else "?"
        return 400, "invalid_json", f"the body is not valid JSON ({e.get('ctx', {}).get('error')} at {where})", []
    if any(tuple(e["loc"][:2]) == ("path", "request_id") for e in errors):
        return 400, "invalid_request_id", "the request id must be a UUID", []
    details = [{"field": _field(e["loc"]), "message": _message(e)} for e in errors[:MAX_DETAILS]]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    if len(errors) > 3:
        message += f" (and {len(errors) - 3} more)"
    return 422, "validation_error", message, details


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value or ""
    return ""


def cors_headers(event: Mapping[str, Any], cors: CORSConfig | None) -> dict[str, str]:
    """The CORS headers the resolver would add for this request's ``Origin`` (none if CORS is off or not allowed)."""
    if cors is None:
        return {}
    sent = _header(event.get("headers"), "origin")
    origin = cors.allowed_origin(sent) if sent else None
    return cors.to_dict(origin) if origin else {}


def precheck(event: Mapping[str, Any], max_body_bytes: int, cors: CORSConfig | None = None) -> dict | None:
    """Refuse what must not reach the JSON parser: oversized bodies (413) and non-JSON bodies (415).

    The refusals carry the same CORS headers as the resolver's answers, so that a browser can read them.
    """
    raw = event.get("body")
    if not raw:
        return None
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return proxy_response(400, "invalid_body", "the body is not valid base64", cors_headers(event, cors))
        size = len(data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"the body is not valid JSON (not UTF-8: byte {exc.start})"
            return proxy_response(400, "invalid_json", message, cors_headers(event, cors))
    else:
        size = len(raw.encode("utf-8", errors="surrogatepass"))
    if size > max_body_bytes:
        message = f"the body is {size} bytes; the limit is {max_body_bytes}"
        return proxy_response(413, "body_too_large", message, cors_headers(event, cors))
    content_type = _header(event.get("headers"), "content-type").split(";")[0].strip().lower()
    if content_type and content_type != content_types.APPLICATION_JSON:
        message = f"send application/json, not {content_type}"
        return proxy_response(415, "unsupported_media_type", message, cors_headers(event, cors))
    return None
