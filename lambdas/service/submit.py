"""Submit a validated request: idempotency, a conditional PENDING put, then the SQS message.

Order matters: the item (with the pointers of the users it names, in one transaction) exists before the message, so
the worker always finds it; if the send fails the item
is marked FAILED (and the idempotency record released) before the client gets 503, so nothing stays PENDING
with no message behind it.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from contract.api import FAILED, PENDING
from lambdas.api.models import RecommendationRequest
from lambdas.service import events, store
from lambdas.service.aws import Services
from lambdas.service.errors import Conflict, Unavailable
from lambdas.service.logs import logger
from lambdas.settings import IDEMPOTENCY_PREFIX, PARTITION_KEY, TTL_ATTRIBUTE

ATTEMPTS = 3  # idempotent submits racing on one key: re-read and retry this many times


@dataclass(frozen=True)
class Accepted:
    """What the client gets back: the request id, its status and whether an Idempotency-Key replayed it."""

    request_id: str
    status: str
    replayed: bool = False


def canonical(request: RecommendationRequest) -> str:
    """The request with defaults filled in, as canonical JSON: what is stored, queued and hashed.

    Absent fields stay absent (the request kinds are never null in the contract)."""
    return store.dumps(request.model_dump(mode="json", exclude_none=True))


def new_request_id() -> str:
    return str(uuid.uuid4())


def submit(
    services: Services,
    request: RecommendationRequest,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    owner: str = store.OPERATOR_OWNER,
) -> Accepted:
    """Store the request PENDING and queue it; with an Idempotency-Key a repeat returns the first request.

    ``owner``: who submits it (see :func:`store.pending_item`); an Idempotency-Key is the owner's own (another
    caller's same key is another key)."""
    request_id = request_id or new_request_id()
    body = canonical(request)
    item = store.pending_item(request_id, request.kind, body, services.settings.ttl_seconds, owner=owner)
    if idempotency_key is not None and owner != store.OPERATOR_OWNER:
        idempotency_key = f"{owner}/{idempotency_key}"
    # the users it names point at it (DELETE /users/{id} finds it through them), in the item's own transaction
    pointers = events.pointer_puts(services, named_users(request), request_id, item[TTL_ATTRIBUTE])
    if idempotency_key is None:
        _put(services, item, pointers)
    else:
        sha = hashlib.sha256(body.encode()).hexdigest()
        replay = _put_idempotent(services, item, idempotency_key, sha, pointers)
        if replay is not None:
            return replay
    _enqueue(services, request_id, body, idempotency_key)
    logger.info("request accepted", extra={"kind": request.kind, "idempotency_key": idempotency_key})
    return Accepted(request_id, PENDING)


def named_users(request: RecommendationRequest) -> list:
    """The user ids a request names (none for a cold start or similar movies)."""
    if request.user_id is not None:
        return [request.user_id]
    if request.profile_of is not None:
        return [request.profile_of]
    return list(request.user_ids or [])


def _pk_name() -> dict:
    return {"ExpressionAttributeNames": {"#pk": PARTITION_KEY}}


def _new(table_name: str, item: dict) -> dict:
    """A transaction's Put of an item that must not exist yet."""
    return {
        "Put": {"TableName": table_name, "Item": item, "ConditionExpression": "attribute_not_exists(#pk)", **_pk_name()}
    }


def _put(services: Services, item: dict, pointers: list[dict]) -> None:
    """The request item (a uuid4 never collides in practice; the condition makes a collision an error instead of an
    overwrite), with its users' pointers in one transaction."""
    table = services.table
    if not pointers:
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(#pk)", **_pk_name())
        return
    table.meta.client.transact_write_items(TransactItems=[_new(table.name, item), *pointers])


def _key_taken(exc: ClientError) -> bool:
    """Whether a cancelled transaction failed because ``idem#<key>`` (its first item) already exists."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or [{}]
    return reasons[0].get("Code") == "ConditionalCheckFailed"


def _put_idempotent(
    services: Services, item: dict, key: str, body_sha256: str, pointers: list[dict]
) -> Accepted | None:
    """Write the request, ``idem#<key>`` and the users' pointers atomically; on a repeat return the first request
    instead."""
    idem = {
        PARTITION_KEY: IDEMPOTENCY_PREFIX + key,
        "target_request_id": item[PARTITION_KEY],
        "body_sha256": body_sha256,
        "created_at": item["created_at"],
        TTL_ATTRIBUTE: item[TTL_ATTRIBUTE],
    }
    table = services.table
    for _ in range(ATTEMPTS):
        try:
            table.meta.client.transact_write_items(
                TransactItems=[_new(table.name, idem), _new(table.name, item), *pointers]
            )
            return None
        except ClientError as exc:
            if not _key_taken(exc):
                raise  # a conflict with another transaction or throttling: the API's 503 (aws.is_transient)
        existing = store.get(services, idem[PARTITION_KEY])
        if existing is None:
            continue  # a concurrent first submit was rolled back, or the record just expired: try again
        if existing["body_sha256"] != body_sha256:
            raise Conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used with a different request body",
            )
        first = store.get(services, existing["target_request_id"])
        if first is None:
            # the record outlived its request (TTL deletes are not simultaneous): release it and start afresh
            _release(services, key, existing["target_request_id"])
            continue
        logger.append_keys(request_id=first[PARTITION_KEY])
        logger.info("idempotent replay", extra={"idempotency_key": key, "status": first["status"]})
        return Accepted(first[PARTITION_KEY], first["status"], replayed=True)
    raise Conflict("idempotency_conflict", "concurrent requests with this Idempotency-Key; retry")


def _enqueue(services: Services, request_id: str, body: str, idempotency_key: str | None) -> None:
    message = store.dumps({"request_id": request_id, "request": json.loads(body), "submitted_at": time.time()})
    try:
        services.sqs.send_message(QueueUrl=services.settings.queue_url, MessageBody=message)
    except (BotoCoreError, ClientError) as exc:
        logger.exception("queueing failed; request marked FAILED")
        try:
            store.finish(
                services,
                request_id,
                FAILED,
                error={
                    "code": "queue_unavailable",
                    "message": f"the request could not be queued ({type(exc).__name__})",
                },
            )
            if idempotency_key is not None:
                _release(services, idempotency_key, request_id)
        except (BotoCoreError, ClientError):
            logger.exception("could not mark the request FAILED after the queueing failure")
        raise Unavailable(
            "queue_unavailable",
            "the request could not be queued; retry later (a retry with the same Idempotency-Key is safe)",
            headers={"Retry-After": "1"},
        ) from exc


def _release(services: Services, key: str, request_id: str) -> None:
    """Delete ``idem#<key>`` if it still points at ``request_id``, so a retry with the key starts afresh."""
    try:
        services.table.delete_item(
            Key={PARTITION_KEY: IDEMPOTENCY_PREFIX + key},
            ConditionExpression="target_request_id = :rid",
            ExpressionAttributeValues={":rid": request_id},
        )
    except ClientError as exc:
        if not store.is_condition_failure(exc):
            raise
