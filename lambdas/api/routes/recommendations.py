"""``POST /recommendations`` (submit) and ``GET /recommendations/{request_id}`` (status, with long-polling)."""

from __future__ import annotations

import re
import threading
from typing import Annotated, cast

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from contract.api import MAX_WAIT_S
from lambdas.api import callers
from lambdas.api.answers import INTERNAL, error
from lambdas.api.models import UUID_PATTERN, RecommendationRequest, StatusResponse, SubmitResponse
from lambdas.service import status as status_service
from lambdas.service import submit as submit_service
from lambdas.service import waiting
from lambdas.service.aws import get_services
from lambdas.service.logs import logger
from lambdas.settings import PARTITION_KEY

router = Router()
# The status routes a long-poll waits on (API Gateway's resource templates).
STATUS_RESOURCES = ("/recommendations/{request_id}", "/me/requests/{request_id}")
_UUID = re.compile(UUID_PATTERN)
# The finished item a long-poll read, for get_request to answer from (per thread: one invocation per thread).
_waited = threading.local()


@router.post(
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
        400: error("The body is not valid JSON"),
        403: error(
            "No valid API key in `x-api-key` (`forbidden`, before the API function runs), or, from the web page (an "
            "anonymous visitor), a request for a user's data (`user_id`, `profile_of`: sign in and use `/me`) or a "
            "batch (`user_ids`: operators only) (`forbidden`)"
        ),
        409: error("The Idempotency-Key was used before with a different body (`idempotency_conflict`)"),
        413: error("The body is larger than 64 KB (`body_too_large`)"),
        415: error("The body is not application/json (`unsupported_media_type`)"),
        422: error("The JSON breaks the contract (`validation_error`, with `details`)"),
        503: error(
            "The request could not be queued (`queue_unavailable`); it is marked FAILED and the Idempotency-Key "
            "released: retry after `Retry-After` seconds. Or it could not be stored (`service_unavailable`: "
            "nothing of it was)",
            retry_after=True,
        ),
        500: error(INTERNAL),
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
    services = get_services()
    caller = callers.of(router.current_event.raw_event, services.settings)
    callers.check_request(caller, request.kind)
    return accept(router, request, idempotency_key, caller, "/recommendations")


def accept(
    router: Router, request: RecommendationRequest, idempotency_key: str | None, caller: callers.Caller, status: str
) -> Response[SubmitResponse]:
    """Submit ``request`` for ``caller`` and answer 202 with the status URL (``status``: the status route's path
    before the request id)."""
    request_id = submit_service.new_request_id()
    logger.append_keys(request_id=request_id, caller=caller.kind)
    accepted = submit_service.submit(get_services(), request, idempotency_key, request_id, owner=caller.owner)
    url = status_url(cast(APIGatewayProxyEvent, router.current_event), accepted.request_id, status)
    headers = {"Location": url} | ({"Idempotent-Replayed": "true"} if accepted.replayed else {})
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=SubmitResponse(request_id=accepted.request_id, status=accepted.status, status_url=url),
        headers=headers,
    )


@router.get(
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
        400: error("The request id is not a UUID (`invalid_request_id`)"),
        403: error(
            "No valid API key in `x-api-key` (`forbidden`, before the API function runs), or a request the caller "
            "did not submit: the web page reads only what the page submitted (`forbidden`)"
        ),
        404: error("No such request, or it expired (`not_found`)"),
        422: error("`wait` is not an integer from 0 to 20 (`validation_error`, with `details`)"),
        503: error("A stored result cannot be read now (`result_unavailable`)", retry_after=True),
        500: error(INTERNAL),
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
    services = get_services()
    return answer_status(request_id, wait, callers.of(router.current_event.raw_event, services.settings))


def answer_status(request_id: str, wait: int, caller: callers.Caller) -> Response[StatusResponse]:
    """The status of ``request_id`` for ``caller`` (403 unless an operator or the request's owner)."""
    # The waiting itself happened before the resolver ran (lambda_handler, _long_poll): here the item is read once.
    logger.append_keys(request_id=request_id, wait=wait, caller=caller.kind)
    document = status_service.read_status(get_services(), request_id, _take_waited(request_id), caller.reader)
    # a dict in the model's shape: Powertools validates it against StatusResponse on the way out
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=cast(StatusResponse, document))


def status_url(event: APIGatewayProxyEvent, request_id: str, route: str = "/recommendations") -> str:
    """Absolute URL of the status route ``route/{request_id}`` as the client called us (stage and base path, e.g.
    the page's ``/api``, included)."""
    host = event.headers.get("Host")
    called, path = (event.request_context.path or ""), (event.path or "")
    base = called[: -len(path)] if path and called.endswith(path) else ""
    if not host:
        return f"{route}/{request_id}"
    scheme = event.headers.get("X-Forwarded-Proto") or "https"
    return f"{scheme}://{host}{base}{route}/{request_id}"


def _take_waited(request_id: str) -> dict | None:
    found = getattr(_waited, "item", None)
    _waited.item = None
    return found if found is not None and found.get(PARTITION_KEY) == request_id else None


def long_poll(event: dict, context: LambdaContext) -> None:
    """Before the resolver runs (outside its lock, so a waiting request holds up no other): wait for a well-formed
    ``GET /recommendations/{id}?wait=S`` and keep the finished item for :func:`get_request` to answer from."""
    _waited.item = _long_poll(event, context)


def _long_poll(event: dict, context: LambdaContext) -> dict | None:
    """For ``GET /recommendations/{id}?wait=S``: wait until the request is finished or S seconds have passed.

    Only well-formed calls wait; anything else goes straight to the resolver, which validates it and answers the
    error. A read that fails here is left to the resolver's own read, which answers and logs it.
    """
    if event.get("httpMethod") != "GET" or event.get("resource") not in STATUS_RESOURCES:
        return None
    request_id = (event.get("pathParameters") or {}).get("request_id") or ""
    raw = (event.get("queryStringParameters") or {}).get("wait") or ""
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_WAIT_S):
        return None
    if not _UUID.match(request_id):
        return None
    services = get_services()
    try:
        # one read first: a finished request is answered from it, and only a PENDING one takes a slot to wait in
        found, pending = status_service.peek(services, request_id)
        if not pending:
            return found
        pool = "operator" if callers.of(event, services.settings).kind == callers.OPERATOR else "page"
        with waiting.slot(services, pool, int(raw)) as held:
            if not held:
                logger.info("long-poll refused: the pool's slots are taken", extra={"pool": pool})
                return None  # answered at once, as wait=0
            item, _ = status_service.wait_until_finished(
                services,
                request_id,
                int(raw),
                lambda: context.get_remaining_time_in_millis() / 1000,
                read_first=False,
            )
    except (BotoCoreError, ClientError):
        return None
    return item
