"""The list log: every completed list shown to a user, kept to count what the user did next (lambdas.loop.experiment).

One item per list in the events table, under the user's own partition (so ``DELETE /users/{id}`` removes theirs
with their events): sort key ``l#<request_id>``, the model version and variant that made it, the experiment then
running, the movie ids in rank order and when it was made; it expires ``list_log_days`` after (DynamoDB's TTL,
default 30 days: an experiment's window plus the days its lists' ratings are counted over). A batch logs one item
per user. Lists without a user (ratings sent inline, similar movies) are not logged: no one to follow.

Written by the worker before the request is marked COMPLETED, with idempotent puts (the same key for the same
request), so a failure retries both and a duplicate delivery rewrites the same items. Cost: one write unit per list
(items under 1 KB: 10 movie ids and a few names), about 0.6 USD per million lists.
"""

from __future__ import annotations

import time
from typing import Any

from contract.ids import canonical_id
from lambdas.service.aws import Services
from lambdas.service.events import LIST_PREFIX, batch_write, delete_items
from lambdas.settings import EVENTS_PARTITION_KEY, EVENTS_SORT_KEY, TTL_ATTRIBUTE

USER_STRATEGIES = frozenset({"personalized", "popular", "cold_start"})


def items(request_id: str, result: dict[str, Any], ttl_days: int, now: float | None = None) -> list[dict[str, Any]]:
    """The log items of one result (plain values): one per user list in it."""
    now = time.time() if now is None else now
    lists = result.get("results", []) if result.get("strategy") == "batch" else [result]
    out = []
    for one in lists:
        if one.get("strategy") not in USER_STRATEGIES or one.get("user_id") is None:
            continue
        out.append(
            {
                EVENTS_PARTITION_KEY: canonical_id(one["user_id"]),
                EVENTS_SORT_KEY: LIST_PREFIX + request_id,
                "request_id": request_id,
                "model_version": one["model_version"],
                "variant": one.get("variant", "served"),
                **({"experiment": one["experiment"]} if one.get("experiment") else {}),
                "movies": [canonical_id(m["movie_id"]) for m in one.get("items", [])],
                "listed_at": int(now * 1000),
                TTL_ATTRIBUTE: int(now) + ttl_days * 86_400,
            }
        )
    return out


def log(services: Services, request_id: str, result: dict[str, Any], now: float | None = None) -> int:
    """Write the log items of ``result``; returns how many (0 without an events table)."""
    s = services.settings
    if not s.events_table_name or s.list_log_days <= 0:
        return 0
    found = items(request_id, result, s.list_log_days, now)
    batch_write(services, found)
    return len(found)


def forget(services: Services, request_id: str, result: dict[str, Any]) -> None:
    """Delete the log items of ``result`` (its request was deleted while it was being made: DELETE /users/{id})."""
    if services.settings.events_table_name:
        keys = [(it[EVENTS_PARTITION_KEY], it[EVENTS_SORT_KEY]) for it in items(request_id, result, 0)]
        delete_items(services, keys)
