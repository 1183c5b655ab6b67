"""Copy an events table's items into another: the upgrade to the events table with its index by storage time.

``python -m infra.events_copy --from-table OLD (--stack NAME | --table NEW [--endpoint-url URL]) [--region R]``

A DynamoDB local secondary index exists only from a table's creation, so deploying the stack version that adds
``by_received_at`` to a stack deployed before it replaces the events table: the new one starts empty, without the
users' events or the request pointers that ``DELETE /users/{id}`` follows. Deployed with ``-c retain_data=true``,
CloudFormation keeps the old table (note its name, the stack output ``EventsTableName``, before deploying); this
copies every item of it into the new one. An item the new table already holds (written since the deploy) is left
as it is. Run it again if it stops: what it copied stays copied. Then delete the old table by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tqdm import tqdm

from lambdas.settings import EVENTS_PARTITION_KEY

THREADS = 8


def copy_items(client: Any, source: str, target: str, progress: bool = True) -> dict[str, int]:
    """Put every item of ``source`` into ``target`` unless ``target`` has it; returns ``{"copied", "kept"}``."""
    from botocore.exceptions import ClientError

    counts = {"copied": 0, "kept": 0}

    def put(item: dict) -> str:
        try:
            client.put_item(
                TableName=target,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": EVENTS_PARTITION_KEY},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return "kept"
        return "copied"

    total = client.describe_table(TableName=source)["Table"].get("ItemCount")  # updated every few hours: a guide
    bar = tqdm(total=total or None, desc="copying", unit="item", disable=not progress, file=sys.stderr)
    kwargs: dict[str, Any] = {"TableName": source, "ConsistentRead": True}
    with ThreadPoolExecutor(THREADS) as pool, bar:
        while True:
            page = client.scan(**kwargs)
            for outcome in pool.map(put, page.get("Items", [])):
                counts[outcome] += 1
                bar.update()
            if "LastEvaluatedKey" not in page:
                return counts
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.events_export import EventsExportError, source

    p = argparse.ArgumentParser(prog="python -m infra.events_copy", description=__doc__.split("\n")[0])
    p.add_argument("--from-table", required=True, help="the old events table (kept by the deploy)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack whose events table receives the items")
    where.add_argument("--table", help="the events table that receives the items")
    p.add_argument("--endpoint-url", help="with --table: a DynamoDB endpoint other than AWS's")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        client, target = source(a)
    except EventsExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if target == a.from_table:
        print(f"error: {target} is both the old and the new table", file=sys.stderr)
        return 2
    try:
        counts = copy_items(client, a.from_table, target, progress=not a.quiet)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: copying {a.from_table} -> {target} stopped: {exc}; run it again to carry on", file=sys.stderr)
        return 2
    print(f"copied {counts['copied']:,} items from {a.from_table} to {target}; {counts['kept']:,} were there already")
    return 0


if __name__ == "__main__":
    sys.exit(main())
