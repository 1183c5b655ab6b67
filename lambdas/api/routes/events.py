"""``POST /events``: a user's new ratings, stored for their next recommendations."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

import contract
from lambdas.api import callers
from lambdas.api.answers import INTERNAL, error
from lambdas.api.models import EventsRequest, EventsResponse
from lambdas.service import events as events_service
from lambdas.service import model_files
from lambdas.service.aws import get_services

router = Router()


@router.post(
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
        400: error("The body is not valid JSON"),
        403: error(
            "No valid API key in `x-api-key` (`forbidden`, before the API function runs), or the web page's key: "
            "a signed-in person posts their own with `POST /me/events` (`forbidden`)"
        ),
        413: error("The body is larger than 64 KB (`body_too_large`)"),
        415: error("The body is not application/json (`unsupported_media_type`)"),
        422: error("The JSON breaks the contract (`validation_error`) or a rating is off scale (`invalid_rating`)"),
        503: error("No model is published, or the events could not be stored (none was)", retry_after=True),
        500: error(INTERNAL),
    },
)
def post_events(request: Annotated[EventsRequest, Body()]) -> Response[EventsResponse]:
    caller = callers.of(router.current_event.raw_event, get_services().settings)
    callers.operator_only(caller, "storing a user's events")
    return store(request)


def store(request: EventsRequest) -> Response[EventsResponse]:
    """Check the events against the served model, store them all, answer what was stored."""
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
