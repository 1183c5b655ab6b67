"""People's accounts and the user ids their data are kept under.

An account is a Cognito user; its token's ``sub`` identifies it. By default a person's ratings, recommendations
and profile are kept under the user id ``sub`` itself (unknown to the trained model until a model is trained on
their ratings: their first lists are the cold start from their events). An operator may link an account to an
existing user of the training data (``python -m infra.accounts link``), so that a person who is user 19 of the data
set gets user 19's recommendations: then the id is that user's. One item per account in the events table
(``account#<sub>``, attribute ``linked_user``), mirrored by ``linked#<user>`` so that one data-set user belongs to
one account at most; both are written in one transaction. A personal call reads the account item once (one
strongly consistent GetItem).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from contract import canonical_id
from lambdas.service.aws import Services
from lambdas.service.errors import Conflict, NotFound
from lambdas.settings import (
    ACCOUNT_PARTITION,
    ACCOUNT_SORT_KEY,
    EVENTS_PARTITION_KEY,
    EVENTS_SORT_KEY,
    LINKED_PARTITION,
)

LINKED_USER = "linked_user"  # the account item's attribute naming its data-set user


@dataclass(frozen=True)
class Account:
    sub: str
    user_id: str  # canonical
    linked: bool


def _key(partition: str) -> dict[str, Any]:
    return {EVENTS_PARTITION_KEY: {"S": partition}, EVENTS_SORT_KEY: {"S": ACCOUNT_SORT_KEY}}


def account(services: Services, sub: str) -> Account:
    """The account's user id: the linked data-set user, else ``sub``."""
    item = services.dynamodb.get_item(
        TableName=services.settings.events_table_name, Key=_key(ACCOUNT_PARTITION + sub), ConsistentRead=True
    ).get("Item")
    if item and LINKED_USER in item:
        return Account(sub, item[LINKED_USER]["S"], True)
    return Account(sub, canonical_id(sub), False)


def account_of(services: Services, user_id: int | str) -> str | None:
    """The ``sub`` of the account data-set user ``user_id`` is linked to, or None."""
    item = services.dynamodb.get_item(
        TableName=services.settings.events_table_name,
        Key=_key(LINKED_PARTITION + canonical_id(user_id)),
        ConsistentRead=True,
    ).get("Item")
    return item["sub"]["S"] if item else None


def link(services: Services, sub: str, user_id: int | str) -> Account:
    """Link account ``sub`` to data-set user ``user_id``. Refused (409) when the account is linked already or the
    user belongs to another account; the person's ratings kept under ``sub`` so far stay there (say so to them)."""
    user = canonical_id(user_id)
    table = services.settings.events_table_name
    try:
        services.dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {**_key(ACCOUNT_PARTITION + sub), LINKED_USER: {"S": user}},
                        "ConditionExpression": "attribute_not_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": EVENTS_PARTITION_KEY},
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": {**_key(LINKED_PARTITION + user), "sub": {"S": sub}},
                        "ConditionExpression": "attribute_not_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": EVENTS_PARTITION_KEY},
                    }
                },
            ]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        current = account(services, sub)
        if current.linked:
            raise Conflict("already_linked", f"account {sub} is linked to user {current.user_id} already") from None
        raise Conflict("user_taken", f"user {user} is linked to another account") from None
    return Account(sub, user, True)


def unlink(services: Services, sub: str) -> Account:
    """Remove account ``sub``'s link (404 when it has none); the data-set user's data stay where they are."""
    current = account(services, sub)
    if not current.linked:
        raise NotFound("not_linked", f"account {sub} is not linked to a user")
    table = services.settings.events_table_name
    services.dynamodb.transact_write_items(
        TransactItems=[
            {"Delete": {"TableName": table, "Key": _key(ACCOUNT_PARTITION + sub)}},
            {"Delete": {"TableName": table, "Key": _key(LINKED_PARTITION + current.user_id)}},
        ]
    )
    return Account(sub, canonical_id(sub), False)
