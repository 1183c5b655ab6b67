"""Long-poll slots: at most ``long_poll_slots`` waiting ``GET ...?wait=S`` calls per pool of callers, across every
container of the API function.

Each waiting call holds an invocation of the API function (and its concurrency) for up to 20 s, so without a cap a
caller could keep hundreds of containers busy doing nothing. A slot is an item ``waiting#<pool>#<k>`` of the
requests table (``k`` below the cap) holding ``until``, the epoch second its holder stops waiting; a call takes a
free or expired one with a conditional put and gives it back with a conditional delete. A holder that dies (a
timeout, a crash) leaves its slot only until ``until``. When the call finds no slot in ``TRIES`` random picks,
``wait`` is answered at once, as ``wait=0`` (the client asks again later): so never more than the cap wait at once,
and from about half full some waits are refused early (4 distinct picks of 30 slots: 1 in 20 at half full, 1 in 4
at three quarters).

Pools: ``operator`` (operators' keys, IAM) and ``page`` (everything through the web page: visitors and people), so
that a flood through the public page never takes the operators' slots. Cost: 2 write units per waiting call (the
put and the delete; a refused pick costs 1 more); a call with ``wait=0`` takes no slot.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.service.aws import Services
from lambdas.service.logs import logger
from lambdas.settings import PARTITION_KEY, TTL_ATTRIBUTE

SLOT_PREFIX = "waiting#"
TRIES = 4
# Kept beyond the wait so that a holder still finishing its last read keeps its slot.
MARGIN_S = 5
POOLS = ("operator", "page")


def slot_key(pool: str, k: int) -> str:
    return f"{SLOT_PREFIX}{pool}#{k}"


@contextmanager
def slot(
    services: Services,
    pool: str,
    wait_s: float,
    now: Callable[[], float] = time.time,
    pick: Callable[[int, int], list[int]] = lambda n, k: random.sample(range(n), k),
) -> Iterator[bool]:
    """Hold a slot of ``pool`` for a wait of ``wait_s`` seconds: yields True when one was taken (and gives it back
    on leaving), False when the pool is full (or the table cannot be reached: the caller then waits not at all)."""
    cap = services.settings.long_poll_slots
    if cap <= 0:
        yield True  # no cap configured
        return
    held = _take(services, pool, wait_s, now(), pick(cap, min(TRIES, cap)))
    try:
        yield held is not None
    finally:
        if held is not None:
            _give_back(services, *held)


def _take(services: Services, pool: str, wait_s: float, at: float, picks: list[int]) -> tuple[str, int] | None:
    until = int(at + wait_s + MARGIN_S)
    for k in picks:
        key = slot_key(pool, k)
        try:
            services.dynamodb.put_item(
                TableName=services.settings.table_name,
                Item={
                    PARTITION_KEY: {"S": key},
                    "until": {"N": str(until)},
                    TTL_ATTRIBUTE: {"N": str(until + 3600)},
                },
                ConditionExpression="attribute_not_exists(#k) OR #u < :now",
                ExpressionAttributeNames={"#k": PARTITION_KEY, "#u": "until"},
                ExpressionAttributeValues={":now": {"N": str(int(at))}},
            )
            return key, until
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                logger.warning("long-poll slot unavailable", extra={"error": str(exc)})
                return None
        except BotoCoreError as exc:
            logger.warning("long-poll slot unavailable", extra={"error": str(exc)})
            return None
    logger.info("long-poll slots full", extra={"pool": pool})
    return None


def _give_back(services: Services, key: str, until: int) -> None:
    # taken over after it expired, or unreachable: then it frees itself at `until` anyway
    with suppress(BotoCoreError, ClientError):
        services.dynamodb.delete_item(
            TableName=services.settings.table_name,
            Key={PARTITION_KEY: {"S": key}},
            ConditionExpression="#u = :mine",
            ExpressionAttributeNames={"#u": "until"},
            ExpressionAttributeValues={":mine": {"N": str(until)}},
        )
