"""Users' ratings since the served model was trained: stored by ``POST /events``, read by the worker.

Table design (``events_table_name``): partition key ``user_id`` (the id as a string: ``19`` and ``"19"`` are one user,
as everywhere in the API), sort key ``event_key`` (``e#`` + the client's ``event_id``, or a generated one). So:

* a user's events are one consistent ``Query`` (read-your-writes: a recommendation submitted after the events call
  returned sees them), newest model cutoff applied by the engine;
* a client's retry with the same ``event_id`` rewrites the same item instead of adding one;
* a call's events are written in one transaction: all of them or none;
* items expire through ``ttl`` ``events_ttl_days`` after they were stored, which must be longer than the retraining
  cadence (the next model takes them in through ``python -m training.events``).
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.api.models import EventsRequest
from lambdas.service.aws import Services
from lambdas.service.errors import ServiceError, Unavailable
from lambdas.service.logs import logger
from lambdas.settings import EVENTS_PARTITION_KEY, EVENTS_SORT_KEY, TTL_ATTRIBUTE

KEY_PREFIX = "e#"
# The most events read per user at request time (newest kept): about 2 read units per 100 events.
MAX_READ = 2000
_SERIALIZE, _DESERIALIZE = TypeSerializer(), TypeDeserializer()


class InvalidEvent(ServiceError):
    status = 422


def user_key(user_id: int | str) -> str:
    """The partition key of a user: their id as a string."""
    return str(user_id)


def items(request: EventsRequest, now: float | None = None, ttl_days: int = 30) -> list[dict[str, Any]]:
    """The table items of one call (plain Python values)."""
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
                "received_at": int(now * 1000),
                TTL_ATTRIBUTE: int(now) + ttl_days * 86_400,
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
    return list(dict.fromkeys(e.movie_id for e in request.events if str(e.movie_id) not in known))


def store(services: Services, request: EventsRequest, now: float | None = None) -> list[dict[str, Any]]:
    """Write a call's events in one transaction (all or none); returns the items written."""
    s = services.settings
    written = items(request, now, s.events_ttl_days)
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


def for_user(services: Services, user_id: int | str) -> list[dict[str, Any]]:
    """A user's stored events, oldest first (``movie_id``, ``rating``, ``timestamp``): one consistent Query (more
    pages only past 1 MB), at most ``MAX_READ`` of the newest."""
    s = services.settings
    if not s.events_table_name:
        return []
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": s.events_table_name,
        "KeyConditionExpression": "#u = :u",
        "ExpressionAttributeNames": {"#u": EVENTS_PARTITION_KEY},
        "ExpressionAttributeValues": {":u": {"S": user_key(user_id)}},
        "ConsistentRead": True,
    }
    while True:
        page = services.dynamodb.query(**kwargs)
        for raw in page.get("Items", []):
            item = {k: _DESERIALIZE.deserialize(v) for k, v in raw.items()}
            found.append(
                {
                    "movie_id": _plain(item["movie_id"]),
                    "rating": float(item["rating"]),
                    "timestamp": int(item["timestamp"]),
                    "received_at": int(item["received_at"]),
                }
            )
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    found.sort(key=lambda e: (e["timestamp"], e["received_at"]))
    return found[-MAX_READ:]


def _plain(value: Any) -> int | str:
    return int(value) if isinstance(value, Decimal) else value
