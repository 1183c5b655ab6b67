"""Read a request's status and result (inline in the item, or in S3 for results too large for DynamoDB)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from contract.api import COMPLETED, MAX_WAIT_S, PENDING
from lambdas.service import store
from lambdas.service.aws import Services
from lambdas.service.errors import Forbidden, NotFound, Unavailable
from lambdas.service.logs import logger
from lambdas.settings import PARTITION_KEY, TTL_ATTRIBUTE


def read_status(services: Services, request_id: str, item: dict | None = None, reader: str | None = None) -> dict:
    """The status document of a request (``StatusResponse``'s fields); NotFound if unknown or expired.

    ``item``: the request's item as just read (by :func:`wait_until_finished`); else it is read here. ``reader``:
    the reading caller's owner name when it is not an operator: it reads only requests it owns (else 403).
    """
    item = item or store.get(services, request_id)
    if item is None or "kind" not in item:
        raise NotFound("not_found", f"no request {request_id} (unknown, or expired after its TTL)")
    if reader is not None and item.get("owner", store.OPERATOR_OWNER) != reader:
        raise Forbidden("forbidden", f"request {request_id} was not submitted by this caller")
    out = {
        "request_id": item[PARTITION_KEY],
        "status": item["status"],
        "kind": item["kind"],
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
        "expires_at": store.iso(int(item[TTL_ATTRIBUTE])),
        "model_version": item.get("model_version"),
        "error": item.get("error"),
    }
    if item["status"] == COMPLETED:
        out["result"] = json.loads(item["result"]) if "result" in item else _s3_result(services, item["result_s3_key"])
    return out


# Long-polling: the API function re-reads the item with backoff until it is finished or the wait is over. Each read
# is one consistent GetItem of a small PENDING item (1 read request unit): reads at 0, 50, 150, 300, 500, 800 and
# 1,200 ms, then every 500 ms, so a request that takes 100 ms costs 3 reads and at most 50 ms of added latency, and
# a long wait costs 2 reads a second (infra/costs/flow.py prices this schedule).
POLL_SCHEDULE_S = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
POLL_INTERVAL_S = 0.5
_DESERIALIZE = TypeDeserializer()
# What the function keeps in hand for the final read and its answer (API Gateway's limit is 29 s).
WAIT_MARGIN_S = 3.0


def peek(services: Services, request_id: str) -> tuple[dict | None, bool]:
    """One consistent read: (the finished item, or None; whether the request exists and is PENDING)."""
    raw = services.dynamodb.get_item(
        TableName=services.settings.table_name, Key={PARTITION_KEY: {"S": request_id}}, ConsistentRead=True
    ).get("Item")
    if raw is None:
        return None, False
    if raw.get("status", {}).get("S") == PENDING:
        return None, True
    return {name: _DESERIALIZE.deserialize(value) for name, value in raw.items()}, False


def wait_until_finished(
    services: Services,
    request_id: str,
    wait_s: float,
    remaining_s: Callable[[], float] = lambda: float("inf"),
    sleep: Callable[[float], None] = time.sleep,
    read_first: bool = True,
) -> tuple[dict | None, int]:
    """Re-read the item until it is not PENDING (or gone) or ``wait_s`` has passed.

    Returns (the finished item, or None if it is still PENDING or does not exist; reads made). The finished item
    is what :func:`read_status` then answers from, so a long-poll costs no read beyond the polls. Uses the low-level
    client (safe to share between threads, unlike boto3 resources). Stops early when the invocation has less than
    ``WAIT_MARGIN_S`` left. ``read_first=False``: the caller has just read the item PENDING, so the first read waits
    for the schedule's first pause.
    """
    deadline = time.monotonic() + min(wait_s, MAX_WAIT_S, max(0.0, remaining_s() - WAIT_MARGIN_S))
    reads = 0
    if not read_first:  # the caller has just read it PENDING (peek): the schedule's first pause before reading
        sleep(min(POLL_SCHEDULE_S[0], max(0.0, deadline - time.monotonic())))
    for step in itertools.count():
        answer = services.dynamodb.get_item(
            TableName=services.settings.table_name, Key={PARTITION_KEY: {"S": request_id}}, ConsistentRead=True
        )
        reads += 1
        raw = answer.get("Item")
        if raw is None:
            return None, reads
        if raw.get("status", {}).get("S") != PENDING:
            return {name: _DESERIALIZE.deserialize(value) for name, value in raw.items()}, reads
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sleep(min(POLL_SCHEDULE_S[step] if step < len(POLL_SCHEDULE_S) else POLL_INTERVAL_S, left))
    return None, reads


def _s3_result(services: Services, key: str) -> dict:
    try:
        body = services.s3.get_object(Bucket=services.settings.bucket_name, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        logger.exception("result object unreadable", extra={"key": key})
        raise Unavailable(
            "result_unavailable", "the result is stored but cannot be read now; retry", headers={"Retry-After": "1"}
        ) from exc
    return json.loads(body)
