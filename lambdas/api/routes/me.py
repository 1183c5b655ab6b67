"""The signed-in person's own routes: ``GET /me``, ``POST /me/recommendations``, ``POST /me/profile``,
``GET /me/requests/{request_id}``, ``POST /me/events``, ``DELETE /me``.

The user is the token's, never the request's: API Gateway's Cognito authoriser (locally, the gateway) has verified
the token, and :func:`lambdas.api.callers.person` reads its subject from the request context; the account's user
id (:mod:`lambdas.service.accounts`) is what the operator's routes take as ``user_id``. Without a verified token
every route here answers 401.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from contract.api import MAX_WAIT_S
from lambdas.api import callers
from lambdas.api.answers import INTERNAL, error
from lambdas.api.models import (
    UUID_PATTERN,
    Account,
    EventsResponse,
    ForgetResponse,
    ListOptions,
    MyEventsRequest,
    RecommendationRequest,
    StatusResponse,
    SubmitResponse,
)
from lambdas.api.routes import events, users
from lambdas.api.routes.recommendations import accept, answer_status
from lambdas.service import accounts
from lambdas.service.aws import get_services

router = Router()
STATUS_ROUTE = "/me/requests"
UNAUTHORIZED = error("No valid token in the `Authorization` header (`unauthorized`): nothing was read or written")
# What every route with a JSON body may answer before the body is read (lambdas.api.errors.precheck)
BODY_ERRORS = {
    400: error("The body is not valid JSON"),
    413: error("The body is larger than 64 KB (`body_too_large`)"),
    415: error("The body is not application/json (`unsupported_media_type`)"),
}


def _me() -> tuple[callers.Caller, accounts.Account]:
    services = get_services()
    caller = callers.person(router.current_event.raw_event, services.settings)
    return caller, accounts.account(services, str(caller.sub))


def _accepted(description: str) -> OpenAPIResponse:
    return {
        "description": description,
        "headers": {"Location": {"description": "The status URL", "schema": {"type": "string"}}},
        "content": {content_types.APPLICATION_JSON: {"model": SubmitResponse}},
    }


@router.get(
    "/me",
    summary="The signed-in account and the user id its data are kept under",
    operation_id="getMe",
    tags=["me"],
    responses={
        200: {"description": "The account", "content": {content_types.APPLICATION_JSON: {"model": Account}}},
        401: UNAUTHORIZED,
        500: error(INTERNAL),
    },
)
def get_me() -> Response[Account]:
    caller, account = _me()
    body = Account(sub=account.sub, user_id=account.user_id, linked=account.linked, email=caller.email)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@router.post(
    "/me/recommendations",
    summary="Submit a request for the signed-in person's own recommendations",
    description=(
        "As `POST /recommendations` with `user_id` set to the account's user id (the body holds only the list's "
        "options). Poll `status_url` (`GET /me/requests/{request_id}`) with the same token."
    ),
    operation_id="submitMyRecommendations",
    tags=["me"],
    responses={
        202: _accepted("Accepted: the request is queued"),
        **BODY_ERRORS,
        401: UNAUTHORIZED,
        422: error("The JSON breaks the contract (`validation_error`, with `details`)"),
        503: error("The request could not be queued or stored", retry_after=True),
        500: error(INTERNAL),
    },
)
def submit_mine(options: Annotated[ListOptions, Body()]) -> Response[SubmitResponse]:
    caller, account = _me()
    request = RecommendationRequest(user_id=account.user_id, **options.model_dump(exclude_none=True))
    return accept(router, request, None, caller, STATUS_ROUTE)


@router.post(
    "/me/profile",
    summary="Submit a request for the signed-in person's profile (their ratings and taste by genre)",
    description=(
        "As `POST /recommendations` with `profile_of` set to the account's user id; no body. A person the model "
        "does not know yet (no model trained on their ratings) gets FAILED with `unknown_user`."
    ),
    operation_id="submitMyProfile",
    tags=["me"],
    responses={
        202: _accepted("Accepted: the request is queued"),
        401: UNAUTHORIZED,
        503: error("The request could not be queued or stored", retry_after=True),
        500: error(INTERNAL),
    },
)
def submit_profile() -> Response[SubmitResponse]:
    caller, account = _me()
    return accept(router, RecommendationRequest(profile_of=account.user_id), None, caller, STATUS_ROUTE)


@router.get(
    "/me/requests/<request_id>",
    summary="Read one of the signed-in person's requests",
    description="As `GET /recommendations/{request_id}`, for a request submitted with this account's token only.",
    operation_id="getMyRequest",
    tags=["me"],
    responses={
        200: {"description": "The request", "content": {content_types.APPLICATION_JSON: {"model": StatusResponse}}},
        400: error("The request id is not a UUID (`invalid_request_id`)"),
        401: UNAUTHORIZED,
        403: error(
            "No valid API key in `x-api-key` (`forbidden`, before the API function runs), or the request was not "
            "submitted with this account's token (`forbidden`)"
        ),
        404: error("No such request, or it expired (`not_found`)"),
        422: error("`wait` is not an integer from 0 to 20, or the id is not a UUID (`validation_error`)"),
        503: error("A stored result cannot be read now (`result_unavailable`)", retry_after=True),
        500: error(INTERNAL),
    },
)
def get_mine(
    request_id: Annotated[str, PathParam(pattern=UUID_PATTERN, description="The id returned by the submit call")],
    wait: Annotated[
        int, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the request to finish (0: answer at once)")
    ] = 0,
) -> Response[StatusResponse]:
    caller = callers.person(router.current_event.raw_event, get_services().settings)
    return answer_status(request_id, wait, caller)


@router.post(
    "/me/events",
    summary="Store the signed-in person's new ratings",
    description="As `POST /events` with `user_id` set to the account's user id.",
    operation_id="postMyEvents",
    tags=["me"],
    responses={
        200: {"description": "Stored", "content": {content_types.APPLICATION_JSON: {"model": EventsResponse}}},
        **BODY_ERRORS,
        401: UNAUTHORIZED,
        422: error("The JSON breaks the contract (`validation_error`) or a rating is off scale (`invalid_rating`)"),
        503: error("No model is published, or the events could not be stored (none was)", retry_after=True),
        500: error(INTERNAL),
    },
)
def post_mine(request: Annotated[MyEventsRequest, Body()]) -> Response[EventsResponse]:
    _, account = _me()
    return events.store(request.for_user(account.user_id))


@router.delete(
    "/me",
    summary="Forget the signed-in person: their ratings, requests and results, and the account's link",
    description=(
        "As `DELETE /users/{user_id}` for the account's user id, then the account's link to a data-set user is "
        "removed. The account itself is deleted with Cognito (the page does both)."
    ),
    operation_id="forgetMe",
    tags=["me"],
    responses={
        200: {"description": "Deleted", "content": {content_types.APPLICATION_JSON: {"model": ForgetResponse}}},
        401: UNAUTHORIZED,
        503: error("The deletion could not finish now; repeating it is safe", retry_after=True),
        500: error(INTERNAL),
    },
)
def forget_me() -> Response[ForgetResponse]:
    _, account = _me()
    answer = users.forget(router, account.user_id)
    if account.linked:
        accounts.unlink(get_services(), account.sub)
    return answer
