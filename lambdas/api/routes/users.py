"""``DELETE /users/{user_id}``: forget a user (their events, and the requests that name them with their results)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam

from lambdas.api import callers
from lambdas.api.answers import INTERNAL, error
from lambdas.api.models import MAX_ID_LENGTH, NOT_BLANK, ForgetResponse
from lambdas.service import events as events_service
from lambdas.service.aws import get_services

router = Router()


@router.delete(
    "/users/<user_id>",
    summary="Forget a user: their events and the requests that name them, with their results",
    description=(
        "Deletes the user's stored events and every request naming them (`user_id`, `profile_of`, or one of "
        "`user_ids`) with its result, in the table and the bucket; answers what was deleted (0 and 0 for a user "
        "with nothing stored). The trained model is not changed: a user of the training data stays in the served "
        "model until a model is trained without their ratings (the documentation's API page says what remains "
        "where, and for how long)."
    ),
    operation_id="forgetUser",
    tags=["events"],
    responses={
        200: {"description": "Deleted", "content": {content_types.APPLICATION_JSON: {"model": ForgetResponse}}},
        403: error(
            "No valid API key in `x-api-key` (`forbidden`, before the API function runs), or the web page's key: "
            "a signed-in person deletes their own data with `DELETE /me` (`forbidden`)"
        ),
        404: error("The path holds characters no route takes, such as control characters (`not_found`)"),
        422: error("The user id is blank or too long (`validation_error`)"),
        503: error("The deletion could not finish now; repeating it is safe", retry_after=True),
        500: error(INTERNAL),
    },
)
def forget_user(
    user_id: Annotated[
        str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK, description="The user's id")
    ],
) -> Response[ForgetResponse]:
    callers.operator_only(callers.of(router.current_event.raw_event, get_services().settings), "forgetting a user")
    return forget(router, user_id)


def forget(router: Router, user_id: int | str) -> Response[ForgetResponse]:
    """Forget ``user_id`` within what the invocation has left; answer the counts."""
    left_s = router.lambda_context.get_remaining_time_in_millis() / 1000 - events_service.FORGET_MARGIN_S
    counts = events_service.forget(get_services(), user_id, min(events_service.FORGET_BUDGET_S, max(0.0, left_s)))
    body = ForgetResponse(user_id=events_service.user_key(user_id), **counts)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)
