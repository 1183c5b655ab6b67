"""Dead letters: make sure a request whose message reached the DLQ reads FAILED.

The worker already marks a request FAILED on its last allowed receive. This covers what it cannot: a worker that
timed out or crashed on that last attempt (no partial response, so the record simply reappears and is moved).
Wire :func:`handle_dead_letter` to the DLQ (``lambdas.worker.handler.dlq_handler``) or run it over messages read
from the DLQ; it never raises for a message it cannot read (that would loop forever on the DLQ).
"""

from __future__ import annotations

from pydantic import ValidationError

from lambdas.service import worker
from lambdas.service.aws import Services
from lambdas.service.logs import logger


def handle_dead_letter(services: Services, body: str) -> str:
    """Mark the message's request FAILED (``retries_exhausted``) if still PENDING; returns what happened."""
    try:
        message = worker.WorkMessage.model_validate_json(body)
    except ValidationError as exc:
        logger.error("unreadable dead letter (no request to mark)", extra={"error": worker.describe(exc)})
        return "unreadable"
    with logger.append_context_keys(request_id=message.request_id):
        marked = worker.exhausted(services, message.request_id, "the message reached the dead-letter queue")
        return "marked" if marked else "already_finished"
