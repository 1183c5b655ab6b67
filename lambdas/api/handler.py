"""API Gateway (REST, proxy integration) handler: the resolver, its routes (``lambdas.api.routes``), error answers.

Routing, request validation and response validation are Powertools'; the work is in ``lambdas.service``. This
module imports neither numpy nor onnxruntime: the API only validates and enqueues.
"""

from __future__ import annotations

import threading

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.api import errors
from lambdas.api.routes import catalogue, events, me, recommendations, users
from lambdas.service.aws import get_services, is_transient
from lambdas.service.errors import ServiceError
from lambdas.service.logs import logger
from lambdas.settings import Settings

# Request headers a browser may send (Powertools adds Authorization, X-Amz-Date, X-Amz-Security-Token) and response
# headers its scripts may read; API Gateway answers the preflight (OPTIONS) itself, from the same origins.
CORS_ALLOW_HEADERS = ["Content-Type", "Idempotency-Key", "x-api-key"]
CORS_EXPOSE_HEADERS = ["Location", "Idempotent-Replayed", "Retry-After"]


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS headers for the configured origins (an allowed ``Origin`` is echoed back); ``None``: CORS off."""
    origins = settings.cors_origins
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
    )


CORS = cors_config(Settings.from_env())
app = APIGatewayRestResolver(enable_validation=True, cors=CORS)
app.include_router(recommendations.router)
app.include_router(events.router)
app.include_router(users.router)
app.include_router(me.router)
app.include_router(catalogue.router)
OPENAPI_PATH = catalogue.OPENAPI_PATH


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    if any(e["loc"][:1] == ("response",) for e in exc.errors()):
        # our own answer broke the contract: a bug, never the client's fault
        logger.error("response failed validation", extra={"errors": [str(e) for e in exc.errors()[:5]]})
        return errors.response(500, "internal_error", "internal error")
    status, code, message, details = errors.from_validation_errors(list(exc.errors()))
    logger.info("request refused", extra={"status": status, "code": code, "error": message})
    return errors.response(status, code, message, details)


@app.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response:
    logger.info("request refused", extra={"status": exc.status, "code": exc.code, "error": exc.message})
    return errors.response(exc.status, exc.code, exc.message, headers=exc.headers)


@app.not_found
def _no_route(exc: NotFoundError) -> Response:
    event = app.current_event
    return errors.response(404, "not_found", f"no route {event.http_method} {event.path}")


@app.exception_handler([BotoCoreError, ClientError])
def _aws_failure(exc: Exception) -> Response:
    """An AWS call that failed past the client's own retries: 503 with Retry-After when a retry may get past it,
    else 500 (both logged with the error)."""
    logger.exception("AWS call failed")
    if is_transient(exc):
        return errors.response(
            503, "service_unavailable", "a storage service is busy or unreachable; retry", headers={"Retry-After": "1"}
        )
    return errors.response(500, "internal_error", "internal error")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return errors.response(500, "internal_error", "internal error")


# Powertools' resolver keeps the current event in class-level state, so within one process requests are resolved
# one at a time. In Lambda a container runs one invocation at a time anyway (the lock is never contended); the local
# stack's gateway invokes this handler from a thread per connection, and the lock keeps them apart.
_ONE_AT_A_TIME = threading.Lock()


def lambda_handler(event: dict, context: LambdaContext) -> dict:
    """Long-poll first (outside the lock, so a waiting request holds up no other), then resolve."""
    recommendations.long_poll(event, context)
    with _ONE_AT_A_TIME:
        return _resolve(event, context)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def _resolve(event: dict, context: LambdaContext) -> dict:
    refused = errors.precheck(event, get_services().settings.max_body_bytes, cors=CORS)
    return refused or app.resolve(event, context)
