"""The requests table: one item per request, written PENDING once and finished once (conditional writes)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from contract.api import PENDING
from lambdas.service.aws import Services
from lambdas.settings import PARTITION_KEY, TTL_ATTRIBUTE


def iso(epoch: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. ``2026-01-31T12:00:00.123Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


OPERATOR_OWNER = "operator"  # the owner of requests an operator submits, and of those stored before owners were


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON: the canonical form of requests and results."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pending_item(
    request_id: str,
    kind: str,
    request_json: str,
    ttl_seconds: int,
    now: float | None = None,
    owner: str = OPERATOR_OWNER,
) -> dict:
    """A new request's item; ``ttl`` is epoch seconds (DynamoDB's TTL format). ``owner``: who submitted it
    (``operator``, ``visitor`` or ``person:<sub>``); only an operator or the owner may read it."""
    now = time.time() if now is None else now
    stamp = iso(now)
    return {
        PARTITION_KEY: request_id,
        "status": PENDING,
        "kind": kind,
        "owner": owner,
        "request": request_json,
        "created_at": stamp,
        "updated_at": stamp,
        TTL_ATTRIBUTE: int(now) + ttl_seconds,
    }


def get(services: Services, request_id: str) -> dict | None:
    """The item, read consistently (a poll right after a write must see it)."""
    return services.table.get_item(Key={PARTITION_KEY: request_id}, ConsistentRead=True).get("Item")


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def finish(
    services: Services,
    request_id: str,
    status: str,
    *,
    result_json: str | None = None,
    result_s3_key: str | None = None,
    error: dict | None = None,
    model_version: str | None = None,
) -> bool:
    """Move a PENDING request to COMPLETED or FAILED; False if it was already finished (nothing is overwritten)."""
    values: dict[str, Any] = {":status": status, ":pending": PENDING, ":now": iso(time.time())}
    sets = ["updated_at = :now"]
    for name, value in (
        ("result", result_json),
        ("result_s3_key", result_s3_key),
        ("error", error),
        ("model_version", model_version),
    ):
        if value is not None:
            sets.append(f"#{name} = :{name}")
            values[f":{name}"] = value
    names = {"#status": "status", "#pk": PARTITION_KEY}
    names.update({f"#{n}": n for n in ("result", "result_s3_key", "error", "model_version") if f":{n}" in values})
    try:
        services.table.update_item(
            Key={PARTITION_KEY: request_id},
            # status last: DynamoDB applies an update atomically, but moto (the local stack) applies the actions one
            # by one while other threads read, so a reader could see COMPLETED before the result is there
            UpdateExpression="SET " + ", ".join([*sets, "#status = :status"]),
            # attribute_exists: never create an item for an unknown (or expired) request
            ConditionExpression="attribute_exists(#pk) AND #status = :pending",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


def delete(services: Services, request_id: str) -> bool:
    """Delete a request's item and its result object in S3, if any; False if there was no such item.

    The item goes first and reports what it held (``ALL_OLD``); then the result object goes, under the key the item
    named and under the one key a worker writes it to, so a worker finishing the request meanwhile leaves nothing:
    either it wrote its object before this delete (removed here) or its finish finds no item and removes its own.
    Uses the table resource's client, which (unlike the resource) may be shared by threads.
    """
    s = services.settings
    old = services.table.meta.client.delete_item(
        TableName=services.table.name, Key={PARTITION_KEY: request_id}, ReturnValues="ALL_OLD"
    ).get("Attributes")
    if old is None:
        return False
    keys = {f"{s.results_prefix}{request_id}.json", old.get("result_s3_key")} - {None}
    for key in sorted(keys) if s.bucket_name else ():
        services.s3.delete_object(Bucket=s.bucket_name, Key=key)
    return True
