"""How the routes document their error answers in the OpenAPI document (the bodies are ``lambdas.api.errors``')."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from lambdas.api.models import ErrorResponse

INTERNAL = "An unexpected error (`internal_error`): never caused by the request's content; details are only logged"


def error(description: str, retry_after: bool = False) -> OpenAPIResponse:
    """An error answer of a route's ``responses``: the JSON error body, and ``Retry-After`` where it is sent."""
    answer: OpenAPIResponse = {
        "description": description,
        "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}},
    }
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    return answer
