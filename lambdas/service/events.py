"""Per-user data: the ratings since the served model was trained (``POST /events``) and pointers to the user's
requests, so that ``DELETE /users/{user_id}`` finds everything of a user in two Queries.

Table design (``events_table_name``): partition key ``user_id``, sort key ``item_key``:

* partition ``<user>`` (``contract.canonical_id``: ``19``, ``"19"`` and ``" 19"`` are one user, as in the
  engine), sort key ``e#<event_id>`` (the client's ``event_id``, or a generated one): one event;
* partition ``requests#<user>``, sort key ``r#<request_id>``: one request that names the user (``user_id``,
  ``profile_of``, each of ``user_ids``), written in one transaction with the request item, expiring with it.
  Pointers live in their own partition so that the request-time Query of a user's events reads events only,
  however many requests the user has made (DynamoDB reads only the matching range; moto, the local stack's
  DynamoDB, reads the whole partition). Every Query names its sort-key prefix, so a user id that itself starts
  with ``requests#`` never reads another user's pointers.

So:

* a user's newest events are one consistent ``Query`` of the local secondary index ``EVENTS_BY_TIME_INDEX`` (same
  partition key, sort key ``received_at``: the storage time in epoch ms), newest first, at most ``MAX_READ``
  (read-your-writes: a recommendation submitted after the events call returned sees them, however many older
  events the user has); the engine leaves out those the served model was trained on (stored up to its
  ``events_through``). Pointers have no ``received_at``, so the index holds events only;
* a client's retry with the same ``event_id`` rewrites the same item instead of adding one;
* a call's events are written in one transaction: all of them or none;
* events never expire: the table is their durable home, the retraining loop's training data (``lambdas.loop``;
  docs/retraining.md says why there and what it costs). The request-time Query reads only those stored after the
  served model's ``events_through`` (the index's sort key is the storage time), so a user's older events cost
  nothing per request once a model has them;
* ``DELETE /users/{id}`` leaves a tombstone (partition ``forgotten#<user>``) for the loop, which drops the user from
  the base data at its next run and then deletes the tombstone.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from contract import canonical_id
from lambdas.api.models import EventsRequest
from lambdas.service.aws import Services
from lambdas.service.errors import ServiceError, Unavailable
from lambdas.service.logs import logger
from lambdas.service.store import delete as delete_request
from lambdas.settings import (
    EVENTS_BY_TIME_INDEX,
    EVENTS_PARTITION_KEY,
    EVENTS_SORT_KEY,
    EVENTS_TIME_KEY,
    FORGOTTEN_PARTITION,
    TOMBSTONE_SORT_KEY,
    TTL_ATTRIBUTE,
)

KEY_PREFIX = "e#"
REQUEST_PREFIX = "r#"
LIST_PREFIX = "l#"  # a list shown to the user (lambdas.service.lists)
POINTER_PARTITION = "requests#"
BATCH_WRITE = 25  # DynamoDB's BatchWriteItem limit
# DELETE /users/{id}: deletes in flight at once, requests per chunk, and the most seconds one call spends (the API
# passes less when its invocation has less left: under API Gateway's 29 s, with FORGET_MARGIN_S to answer).
FORGET_THREADS = 16
FORGET_CHUNK = 16  # one round of the threads: the budget is checked after each (a request is up to 3 calls)
FORGET_BUDGET_S = 15.0
FORGET_MARGIN_S = 3.0
# The most events used per user at request time, the newest by storage time: one Query of the local index that
# reads at most this many (DynamoDB's Limit; about 2 read units per 100 events), however many the user has stored.
MAX_READ = 2000
_SERIALIZE, _DESERIALIZE = TypeSerializer(), TypeDeserializer()


class InvalidEvent(ServiceError):
    status = 422


def user_key(user_id: int | str) -> str:
    """The partition key of a user: their canonical id (the engine's identity of users)."""
    return canonical_id(user_id)


def items(request: EventsRequest, now: float | None = None) -> list[dict[str, Any]]:
    """The table items of one call (plain Python values; no ``ttl``: events are kept)."""
    now = time.time() if now is None else now
    out = []
    for e in request.events:
        event_id = e.event_id or uuid.uuid4().hex
        out.append(
            {
                EVENTS_PARTITION_KEY: user_key(request.user_id),
                EVENTS_SORT_KEY: KEY_PREFIX + event_id,
                "event_id": event_id,
                "movie_id": e.movie_id,
                "rating": Decimal(str(e.rating)),
                "timestamp": e.timestamp if e.timestamp is not None else int(now),
                EVENTS_TIME_KEY: int(now * 1000),
                **({"request_id": e.request_id} if e.request_id else {}),
            }
        )
    return out


def check(request: EventsRequest, rating_scale: tuple[float, float], known: set[str]) -> list[int | str]:
    """Refuse a rating outside the served model's scale; return the movie ids the model does not know (``known``:
    the catalogue's ids as strings)."""
    lo, hi = rating_scale
    for n, e in enumerate(request.events):
        if not lo <= e.rating <= hi:
            raise InvalidEvent(
                "invalid_rating", f"events[{n}].rating {e.rating:g} is outside the served model's scale {lo:g}-{hi:g}"
            )
    return list(dict.fromkeys(e.movie_id for e in request.events if canonical_id(e.movie_id) not in known))


def store(services: Services, request: EventsRequest, now: float | None = None) -> list[dict[str, Any]]:
    """Write a call's events in one transaction (all or none); returns the items written."""
    s = services.settings
    written = items(request, now)
    try:
        services.dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": s.events_table_name, "Item": {k: _SERIALIZE.serialize(v) for k, v in it.items()}}}
                for it in written
            ]
        )
    except (BotoCoreError, ClientError) as exc:
        logger.exception("events not stored")
        raise Unavailable(
            "events_unavailable", "the events could not be stored (none was); retry", headers={"Retry-After": "1"}
        ) from exc
    logger.info("events stored", extra={"events": len(written)})
    return written


def for_user(services: Services, user_id: int | str, after_ms: int | None = None) -> list[dict[str, Any]]:
    """A user's stored events, oldest first (``movie_id``, ``rating``, ``timestamp``, ``received_at``): those stored
    after ``after_ms`` (the served model's ``events_through``: older ones are in it), at most the newest
    ``MAX_READ`` by storage time, one consistent Query of the table's local index ``EVENTS_BY_TIME_INDEX`` read
    newest first (a local index reads consistently, as the table does). A user with more is logged: their oldest
    events wait for the next model (it takes every event)."""
    s = services.settings
    if not s.events_table_name:
        return []
    condition, values = "#u = :u", {":u": {"S": user_key(user_id)}}
    names = {"#u": EVENTS_PARTITION_KEY}
    if after_ms is not None:
        condition += " AND #t > :t"
        names["#t"], values[":t"] = EVENTS_TIME_KEY, {"N": str(int(after_ms))}
    page = services.dynamodb.query(
        TableName=s.events_table_name,
        IndexName=EVENTS_BY_TIME_INDEX,
        KeyConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
        Limit=MAX_READ + 1,  # one more tells a user with more than MAX_READ from one with exactly that many
        ConsistentRead=True,
    )
    read = page.get("Items", [])  # MAX_READ items of about 100 B: one page (DynamoDB pages at 1 MB)
    if len(read) > MAX_READ:
        logger.warning("events read capped", extra={"used": MAX_READ})
        read = read[:MAX_READ]
    found = []
    for raw in read:
        item = {k: _DESERIALIZE.deserialize(v) for k, v in raw.items()}
        found.append(
            {
                "movie_id": _plain(item["movie_id"]),
                "rating": float(item["rating"]),
                "timestamp": int(item["timestamp"]),
                "received_at": int(item[EVENTS_TIME_KEY]),
            }
        )
    found.sort(key=lambda e: (e["timestamp"], e["received_at"]))
    return found


def _plain(value: Any) -> int | str:
    return int(value) if isinstance(value, Decimal) else value


def pointer_puts(services: Services, user_ids: list[int | str], request_id: str, expires: int) -> list[dict]:
    """``TransactWriteItems`` Puts of ``r#<request_id>`` under each user a request names (plain Python values, for
    the requests table resource's client): written in the request item's own transaction, so a request never
    exists without its pointers and ``forget`` never misses one submitted before it ran."""
    s = services.settings
    if not s.events_table_name or not user_ids:
        return []
    return [
        {
            "Put": {
                "TableName": s.events_table_name,
                "Item": {
                    EVENTS_PARTITION_KEY: POINTER_PARTITION + key,
                    EVENTS_SORT_KEY: REQUEST_PREFIX + request_id,
                    TTL_ATTRIBUTE: expires,
                },
            }
        }
        for key in dict.fromkeys(user_key(u) for u in user_ids)
    ]


def forget(services: Services, user_id: int | str, budget_s: float | None = None) -> dict[str, int]:
    """Delete a user's events, their requests (items and results in S3) and the pointers; returns the counts.

    Two Queries find everything (the events, the request pointers). The events go first (the user's own ratings,
    ``FORGET_THREADS`` batches of 25 at a time), then the requests ``FORGET_THREADS`` at a time, each chunk's
    pointers right after it. Past ``budget_s`` seconds (by default ``FORGET_BUDGET_S``; the API passes what its
    invocation has left) a call stops after the chunk in hand and raises ``Unavailable`` (503): what it deleted
    stays deleted, and a repeat carries on from there.
    """
    budget_s = FORGET_BUDGET_S if budget_s is None else budget_s
    deadline = time.monotonic() + budget_s
    key = user_key(user_id)
    tombstone(services, key)
    events = _keys(services, key, KEY_PREFIX)
    shown = _keys(services, key, LIST_PREFIX)  # the lists they were shown (lambdas.service.lists), deleted alike
    pointers = _keys(services, POINTER_PARTITION + key, REQUEST_PREFIX)
    both = events + shown
    batches = [[(key, k) for k in both[i : i + BATCH_WRITE]] for i in range(0, len(both), BATCH_WRITE)]
    events_done, requests_done, deleted = 0, 0, 0

    def stop_if_late() -> None:
        if time.monotonic() <= deadline or (events_done == len(both) and requests_done == len(pointers)):
            return
        logger.info(
            "user partly forgotten",
            extra={
                "events_deleted": min(events_done, len(events)),
                "requests_deleted": deleted,
                "requests_left": len(pointers) - requests_done,
            },
        )
        raise Unavailable(
            "forget_incomplete",
            f"deleted {events_done:,} of the user's {len(both):,} events (and lists shown) and went through "
            f"{requests_done:,} of their {len(pointers):,} requests ({deleted:,} deleted, the rest already gone) in "
            f"{budget_s:g} s; "
            "repeat the call to carry on",
            headers={"Retry-After": "1"},
        )

    with ThreadPoolExecutor(FORGET_THREADS) as pool:
        for start in range(0, len(batches), FORGET_THREADS):
            chunk = batches[start : start + FORGET_THREADS]
            list(pool.map(lambda b: _delete_keys(services, b), chunk))
            events_done += sum(map(len, chunk))
            stop_if_late()
        for start in range(0, len(pointers), FORGET_CHUNK):
            keys = pointers[start : start + FORGET_CHUNK]
            deleted += sum(pool.map(lambda k: delete_request(services, k[len(REQUEST_PREFIX) :]), keys))
            _delete_keys(services, [(POINTER_PARTITION + key, k) for k in keys])
            requests_done += len(keys)
            stop_if_late()
    counts = {"events_deleted": len(events), "lists_deleted": len(shown), "requests_deleted": deleted}
    logger.info("user forgotten", extra=counts)
    return counts


def tombstone(services: Services, key: str, now: float | None = None) -> None:
    """Mark a user forgotten for the retraining loop (first, so that a call stopped half-way still leaves it): the
    next run drops the user's ratings from the base data, then deletes the mark. A repeat moves its time on."""
    at = int((time.time() if now is None else now) * 1000)
    services.dynamodb.put_item(
        TableName=services.settings.events_table_name,
        Item={
            EVENTS_PARTITION_KEY: {"S": FORGOTTEN_PARTITION + key},
            EVENTS_SORT_KEY: {"S": TOMBSTONE_SORT_KEY},
            "forgotten_at": {"N": str(at)},
        },
    )


def _delete_keys(services: Services, keys: list[tuple[str, str]]) -> None:
    """BatchWriteItem deletes of (partition, sort key) pairs of the events table, 25 at a time."""
    deletes = [
        {"DeleteRequest": {"Key": {EVENTS_PARTITION_KEY: {"S": pk}, EVENTS_SORT_KEY: {"S": k}}}} for pk, k in keys
    ]
    for start in range(0, len(deletes), BATCH_WRITE):
        _batch_write(services, {services.settings.events_table_name: deletes[start : start + BATCH_WRITE]})


def batch_write(services: Services, items: list[dict[str, Any]]) -> None:
    """Puts of plain-valued items into the events table, 25 a call (what DynamoDB leaves unprocessed sent again)."""
    name = services.settings.events_table_name
    puts = [{"PutRequest": {"Item": {k: _SERIALIZE.serialize(v) for k, v in it.items()}}} for it in items]
    for start in range(0, len(puts), BATCH_WRITE):
        _batch_write(services, {name: puts[start : start + BATCH_WRITE]})


def delete_items(services: Services, keys: list[tuple[str, str]]) -> None:
    """Delete items of the events table by (partition, sort key), 25 a call."""
    _delete_keys(services, keys)


def _keys(services: Services, partition: str, prefix: str) -> list[str]:
    """The sort keys under ``partition`` that start with ``prefix``."""
    return [raw[EVENTS_SORT_KEY]["S"] for raw in _query(services, partition, prefix, keys_only=True)]


def _query(services: Services, partition: str, prefix: str, keys_only: bool = False) -> list[dict[str, Any]]:
    """The raw items under ``partition`` whose sort key starts with ``prefix``: one consistent Query, more pages only
    past 1 MB."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": services.settings.events_table_name,
        "KeyConditionExpression": "#u = :u AND begins_with(#k, :p)",
        "ExpressionAttributeNames": {"#u": EVENTS_PARTITION_KEY, "#k": EVENTS_SORT_KEY},
        "ExpressionAttributeValues": {":u": {"S": partition}, ":p": {"S": prefix}},
        "ConsistentRead": True,
    }
    if keys_only:
        kwargs["ProjectionExpression"] = "#k"
    while True:
        page = services.dynamodb.query(**kwargs)
        found += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _batch_write(services: Services, request: dict[str, list], attempts: int = 8) -> None:
    """BatchWriteItem, re-sending what DynamoDB leaves unprocessed (with backoff) until all of it is written."""
    for attempt in range(attempts):
        left = services.dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not left:
            return
        request = left
        time.sleep(min(1.0, 0.05 * 2**attempt))
    raise Unavailable("users_unavailable", "DynamoDB did not take every write; retry", headers={"Retry-After": "1"})
