"""Errors with an HTTP status and a machine-readable code; the API turns them into ``{"error": {...}}``."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the client should see as ``status`` with ``{"error": {"code", "message"}}``."""

    status = 500

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


class BadRequest(ServiceError):
    status = 400


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class PayloadTooLarge(ServiceError):
    status = 413


class Unavailable(ServiceError):
    status = 503


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403
