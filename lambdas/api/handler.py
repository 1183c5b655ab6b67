"""API Gateway (REST, proxy integration) handler: submit a request, read its status, serve the OpenAPI document.

Routing, request validation and response validation are Powertools'; the work is in ``lambdas.service``. This
module imports neither numpy nor onnxruntime: the API only validates and enqueues.
"""

from __future__ import annotations

import json
import re
import threading
from functools import cache
from pathlib import Path
from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

import contract
from contract.api import MAX_WAIT_S
from lambdas.api import errors
from lambdas.api.models import (
    MAX_GENRES,
    MAX_ID_LENGTH,
    NOT_BLANK,
    UUID_PATTERN,
    ErrorResponse,
    EventsRequest,
    EventsResponse,
    ForgetResponse,
    ModelCard,
    MovieList,
    RecommendationRequest,
    StatusResponse,
    SubmitResponse,
)
from lambdas.service import events as events_service
from lambdas.service import model_files
from lambdas.service import status as status_service
from lambdas.service import submit as submit_service
from lambdas.service.aws import get_services, is_transient
from lambdas.service.errors import ServiceError
from lambdas.service.logs import logger
from lambdas.service.movie_index import MAX_LIMIT, MAX_QUERY
from lambdas.settings import PARTITION_KEY, Settings

OPENAPI_PATH = Path(__file__).with_name("openapi.json")

INTERNAL = "An unexpected error (`internal_error`): never caused by the request's content; details are only logged"

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


def _error(description: str, retry_after: bool = False) -> dict:
    answer = {"description": description, "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}}}
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    return answer


@app.post(
    "/recommendations",
    summary="Submit a recommendation request",
    description=(
        "Validates the request, stores it PENDING and queues it; poll `status_url` for the result. Exactly one of "
        "`user_id`, `ratings`, `similar_to`, `user_ids`. Unknown movie ids in `ratings` are accepted and reported in "
        "the result's `unknown_movies` (none known: the popularity ranking, strategy `popular`); an unknown "
        "`similar_to` movie is accepted and the request ends FAILED with error code `unknown_movie`, because only "
        "the worker knows the model's catalogue. With an `Idempotency-Key`, a repeat with the same body returns the "
        "first request (header `Idempotent-Replayed: true`) and queues nothing; the same key with another body "
        "gets 409."
    ),
    operation_id="submitRecommendationRequest",
    tags=["recommendations"],
    responses={
        202: {
            "description": "Accepted: the request is queued (or, for a replayed Idempotency-Key, was before)",
            "headers": {
                "Location": {"description": "The status URL", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when an Idempotency-Key returned an earlier request",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
            "content": {content_types.APPLICATION_JSON: {"model": SubmitResponse}},
        },
        400: _error("The body is not valid JSON"),
        409: _error("The Idempotency-Key was used before with a different body (`idempotency_conflict`)"),
        413: _error("The body is larger than 64 KB (`body_too_large`)"),
        415: _error("The body is not application/json (`unsupported_media_type`)"),
        422: _error("The JSON breaks the contract (`validation_error`, with `details`)"),
        503: _error(
            "The request could not be queued (`queue_unavailable`); it is marked FAILED and the Idempotency-Key "
            "released: retry after `Retry-After` seconds. Or it could not be stored (`service_unavailable`: "
            "nothing of it was)",
            retry_after=True,
        ),
        500: _error(INTERNAL),
    },
)
def submit_request(
    request: Annotated[RecommendationRequest, Body()],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Any client-chosen key (printable ASCII, no spaces); repeats within the TTL are deduplicated",
        ),
    ] = None,
) -> Response[SubmitResponse]:
    request_id = submit_service.new_request_id()
    logger.append_keys(request_id=request_id)
    accepted = submit_service.submit(get_services(), request, idempotency_key, request_id)
    url = status_url(app.current_event, accepted.request_id)
    headers = {"Location": url} | ({"Idempotent-Replayed": "true"} if accepted.replayed else {})
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=SubmitResponse(request_id=accepted.request_id, status=accepted.status, status_url=url),
        headers=headers,
    )


@app.post(
    "/events",
    summary="Store a user's new ratings, used by their next recommendation",
    description=(
        "Stores 1-100 ratings of one user at once (all of them or none) and answers when they are stored: a "
        "recommendation request submitted after this call sees them. A known user's trained factors are updated by "
        "the ratings newer than the served model (one Newton step from the trained factors, whose training ratings "
        "weigh as a prior); an unknown user gets the cold start from their events. Unknown movie ids are stored and "
        "listed in `unknown_movies`; a rating outside the served model's scale is refused (422 `invalid_rating`). "
        "An `event_id` sent again for the same user replaces that event."
    ),
    operation_id="postEvents",
    tags=["events"],
    responses={
        200: {"description": "Stored", "content": {content_types.APPLICATION_JSON: {"model": EventsResponse}}},
        400: _error("The body is not valid JSON"),
        413: _error("The body is larger than 64 KB (`body_too_large`)"),
        415: _error("The body is not application/json (`unsupported_media_type`)"),
        422: _error("The JSON breaks the contract (`validation_error`) or a rating is off scale (`invalid_rating`)"),
        503: _error("No model is published, or the events could not be stored (none was)", retry_after=True),
        500: _error(INTERNAL),
    },
)
def post_events(request: Annotated[EventsRequest, Body()]) -> Response[EventsResponse]:
    services = get_services()
    version, idx = model_files.index(services)
    scale = contract.rating_scale(model_files.manifest(services))
    unknown = events_service.check(request, scale, idx.id_keys)
    written = events_service.store(services, request)
    body = EventsResponse(
        user_id=request.user_id,
        stored=len(written),
        event_ids=[it["event_id"] for it in written],
        unknown_movies=unknown,
        model_version=version,
    )
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@app.delete(
    "/users/<user_id>",
    summary="Forget a user: their events and the requests that name them, with their results",
    description=(
        "Deletes the user's stored events and every request naming them (`user_id`, `profile_of`, or one of "
        "`user_ids`) with its result, in the table and the bucket; answers what was deleted (0 and 0 for a user "
        "with nothing stored). The trained model is not changed: a user of the training data stays in the served "
        "model until a model is trained without their ratings (the README says what remains where, and how long)."
    ),
    operation_id="forgetUser",
    tags=["events"],
    responses={
        200: {"description": "Deleted", "content": {content_types.APPLICATION_JSON: {"model": ForgetResponse}}},
        404: _error("The path holds characters no route takes, such as control characters (`not_found`)"),
        422: _error("The user id is blank or too long (`validation_error`)"),
        503: _error("The deletion could not finish now; repeating it is safe", retry_after=True),
        500: _error(INTERNAL),
    },
)
def forget_user(
    user_id: Annotated[
        str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK, description="The user's id")
    ],
) -> Response[ForgetResponse]:
    left_s = app.lambda_context.get_remaining_time_in_millis() / 1000 - events_service.FORGET_MARGIN_S
    counts = events_service.forget(get_services(), user_id, min(events_service.FORGET_BUDGET_S, max(0.0, left_s)))
    body = ForgetResponse(user_id=events_service.user_key(user_id), **counts)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@app.get(
    "/recommendations/<request_id>",
    summary="Read a request's status and result",
    description=(
        "PENDING until the worker has scored it, then COMPLETED with `result` or FAILED with `error`. With "
        "`wait=S` (1-20 seconds) the answer comes as soon as the request is finished, or after S seconds with "
        "status PENDING (long-polling: one call instead of many polls). Requests and results are deleted after "
        "`expires_at` (7 days by default)."
    ),
    operation_id="getRecommendationRequest",
    tags=["recommendations"],
    responses={
        200: {"description": "The request", "content": {content_types.APPLICATION_JSON: {"model": StatusResponse}}},
        400: _error("The request id is not a UUID (`invalid_request_id`)"),
        404: _error("No such request, or it expired (`not_found`)"),
        422: _error("`wait` is not an integer from 0 to 20 (`validation_error`, with `details`)"),
        503: _error("A stored result cannot be read now (`result_unavailable`)", retry_after=True),
        500: _error(INTERNAL),
    },
)
def get_request(
    request_id: Annotated[str, PathParam(pattern=UUID_PATTERN, description="The id returned by the submit call")],
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Seconds to wait for the request to finish before answering (0: answer at once)",
        ),
    ] = 0,
) -> Response[StatusResponse]:
    # The waiting itself happened before the resolver ran (lambda_handler, _long_poll): here the item is read once.
    logger.append_keys(request_id=request_id, wait=wait)
    document = status_service.read_status(get_services(), request_id, _take_waited(request_id))
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)


@app.get(
    "/movies",
    summary="Search the served catalogue by title, or list its most-rated movies",
    description=(
        "With `q`: movies whose title matches, best first (the whole title, then its start, then a word's start, "
        "then all words in any order, then anywhere; ties go to the more-rated movie). Case and diacritics do not "
        'matter, and MovieLens\'s trailing articles are found both ways ("the matrix" finds "Matrix, The"). '
        "Without `q`: the most-rated movies. `genres` keeps movies with at least one of them, `exclude_genres` drops "
        "movies with any of them. Answered from a small index published with the model: no model is loaded."
    ),
    operation_id="listMovies",
    tags=["catalogue"],
    responses={
        200: {"description": "One page of movies", "content": {content_types.APPLICATION_JSON: {"model": MovieList}}},
        422: _error("A parameter is out of range or names an unknown genre (`validation_error`, `unknown_genre`)"),
        503: _error("No model is published, or its index cannot be read now", retry_after=True),
        500: _error(INTERNAL),
    },
)
def list_movies(
    q: Annotated[str | None, Query(max_length=MAX_QUERY, description="Title words (any case, accents optional)")] = (
        None
    ),
    genres: Annotated[list[str] | None, Query(max_length=MAX_GENRES, description="Keep these genres")] = None,
    exclude_genres: Annotated[list[str] | None, Query(max_length=MAX_GENRES, description="Drop these")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Movies per page")] = 10,
    offset: Annotated[int, Query(ge=0, le=100_000, description="Movies to skip (paging)")] = 0,
) -> Response[MovieList]:
    document = model_files.movies(get_services(), q, genres, exclude_genres, limit, offset)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)


@app.get(
    "/model",
    summary="The served model: version, training data, held-out metrics, genres",
    description="From the served artifact's manifest; no model is loaded.",
    operation_id="getModel",
    tags=["catalogue"],
    responses={
        200: {"description": "The model card", "content": {content_types.APPLICATION_JSON: {"model": ModelCard}}},
        503: _error("No model is published, or its files cannot be read now", retry_after=True),
        500: _error(INTERNAL),
    },
)
def get_model() -> Response[ModelCard]:
    document = model_files.model_card(get_services())
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> dict:
    return _openapi()


@cache
def _openapi() -> dict:
    return json.loads(OPENAPI_PATH.read_text())


def status_url(event: APIGatewayProxyEvent, request_id: str) -> str:
    """Absolute URL of the status endpoint as the client called us (stage and base path included)."""
    host = event.headers.get("Host")
    path = (event.request_context.path or event.path or "/recommendations").rstrip("/")
    if not host:
        return f"/recommendations/{request_id}"
    scheme = event.headers.get("X-Forwarded-Proto") or "https"
    return f"{scheme}://{host}{path}/{request_id}"


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
_UUID = re.compile(UUID_PATTERN)
# The finished item a long-poll read, for get_request to answer from (per thread: one invocation per thread).
_waited = threading.local()


def _take_waited(request_id: str) -> dict | None:
    found = getattr(_waited, "item", None)
    _waited.item = None
    return found if found is not None and found.get(PARTITION_KEY) == request_id else None


def lambda_handler(event: dict, context: LambdaContext) -> dict:
    """Long-poll first (outside the lock, so a waiting request holds up no other), then resolve."""
    _waited.item = _long_poll(event, context)
    with _ONE_AT_A_TIME:
        return _resolve(event, context)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def _resolve(event: dict, context: LambdaContext) -> dict:
    refused = errors.precheck(event, get_services().settings.max_body_bytes, cors=CORS)
    return refused or app.resolve(event, context)


def _long_poll(event: dict, context: LambdaContext) -> dict | None:
    """For ``GET /recommendations/{id}?wait=S``: wait until the request is finished or S seconds have passed.

    Only well-formed calls wait; anything else goes straight to the resolver, which validates it and answers the
    error. A read that fails here is left to the resolver's own read, which answers and logs it.
    """
    if event.get("httpMethod") != "GET" or event.get("resource") != "/recommendations/{request_id}":
        return None
    request_id = (event.get("pathParameters") or {}).get("request_id") or ""
    raw = (event.get("queryStringParameters") or {}).get("wait") or ""
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_WAIT_S):
        return None
    if not _UUID.match(request_id):
        return None
    try:
        item, _ = status_service.wait_until_finished(
            get_services(), request_id, int(raw), lambda: context.get_remaining_time_in_millis() / 1000
        )
    except (BotoCoreError, ClientError):
        return None
    return item
