"""The events table as the loop reads it: every stored event, and the users forgotten since (their tombstones).

One paginated, strongly consistent Scan of the whole table per run (events stay in the table: it is their durable
home, see docs/retraining.md). A tombstone (partition ``forgotten#<user>``, written by ``DELETE /users/{id}``)
names a user whose ratings must leave the base data; their events were deleted by the call itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from contract.events_file import Row
from lambdas.settings import EVENTS_PARTITION_KEY, EVENTS_TIME_KEY, FORGOTTEN_PARTITION

EVENT_FIELDS = frozenset({EVENTS_PARTITION_KEY, "movie_id", "rating", "timestamp", EVENTS_TIME_KEY})


def scan(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every item of ``table`` (consistent: an item stored before the scan began is never missed for lag)."""
    des = TypeDeserializer()
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        for raw in page.get("Items", []):
            yield {k: des.deserialize(v) for k, v in raw.items()}
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _plain(value: Any) -> str:
    text = str(value)
    return text[:-2] if text.endswith(".0") and text[:-2].lstrip("-").isdigit() else text


@dataclass
class Contents:
    """What the table holds for the loop: the events as rows (sorted by user, time, storage time, movie) and the
    forgotten users with when they were forgotten (epoch ms)."""

    events: list[Row]
    forgotten: dict[str, int]


def read(items: Iterator[dict[str, Any]], through_ms: int | None = None) -> Contents:
    """Sort a scan's items into events (those stored up to ``through_ms``) and tombstones."""
    events: list[Row] = []
    forgotten: dict[str, int] = {}
    for it in items:
        key = str(it.get(EVENTS_PARTITION_KEY, ""))
        if key.startswith(FORGOTTEN_PARTITION):
            forgotten[key[len(FORGOTTEN_PARTITION) :]] = int(it.get("forgotten_at", 0))
        elif it.keys() >= EVENT_FIELDS and (through_ms is None or int(it[EVENTS_TIME_KEY]) <= through_ms):
            events.append(
                (key, _plain(it["movie_id"]), float(it["rating"]), int(it["timestamp"]), int(it[EVENTS_TIME_KEY]))
            )
    events.sort(key=lambda r: (r[0], r[3], r[4], r[1]))
    return Contents(events, forgotten)


def delete_tombstones(dynamodb: Any, table: str, users: dict[str, int]) -> None:
    """Delete the tombstones of ``users`` once the base data is rewritten without them; a tombstone written again
    since (the user forgotten a second time, later) stays."""
    from botocore.exceptions import ClientError

    from lambdas.settings import EVENTS_SORT_KEY, TOMBSTONE_SORT_KEY

    for user, at in users.items():
        key = {EVENTS_PARTITION_KEY: {"S": FORGOTTEN_PARTITION + user}, EVENTS_SORT_KEY: {"S": TOMBSTONE_SORT_KEY}}
        try:
            dynamodb.delete_item(
                TableName=table,
                Key=key,
                ConditionExpression="forgotten_at <= :at",
                ExpressionAttributeValues={":at": {"N": str(at)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
