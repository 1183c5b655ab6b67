"""Export the stored events (``POST /events``) as a ratings file for the next training run.

``python -m infra.events_export --out artifacts/events.csv [--local | --stack NAME | --table NAME
[--endpoint-url URL]]``

Writes ``userId,movieId,rating,timestamp,receivedAt`` (MovieLens's CSV header, plus when the API stored the event,
epoch ms), one row per stored event, sorted by user and time. ``python -m training.train ... --events
artifacts/events.csv`` trains on the original data plus these ratings (an event replaces the user's earlier rating
of the movie) and records the newest ``receivedAt`` as the model's ``events_through``: once that model is
published, the engine no longer folds in a known user's events stored up to then (they are in the model); later
ones it still does. Their TTL deletes them later.

The export takes the events stored up to ``--settle-s`` seconds (60) before it started, with a strongly consistent
Scan: a Scan is no snapshot, and an event written while it runs may land in a part of the table it has passed.
Leaving the last minute out means every event either is in the file (and below the watermark) or is stored after it
(and folded in until the next export), as long as this machine's clock and the API's differ by less than that
minute (the watermark compares this machine's time with the API's storage times).

Sources: the running local stack (``--local``, from the connection file it writes), a deployed stack's output
``EventsTableName`` (``--stack``), or a table by name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contract.events_file import Row, write_rows
from infra.config import OUTPUT_EVENTS_TABLE
from lambdas.loop.table import read, scan

SETTLE_S = 60.0  # seconds; more than a write takes and than the clocks here and at the API differ


class EventsExportError(RuntimeError):
    """Something the user must fix: no running local stack, no such stack or table."""


def rows(items: Iterator[dict[str, Any]], through_ms: int | None = None) -> list[Row]:
    """(user, movie, rating, timestamp, receivedAt) rows of the events stored up to ``through_ms``, sorted by user
    then time (then storage time: the later of two events on one movie comes last and wins)."""
    return read(items, through_ms).events


def write(path: Path, found: list[Row]) -> None:
    """The CSV, written whole (a temporary file renamed) so a failed export leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        write_rows(f, found)
    tmp.replace(path)


def source(a: argparse.Namespace) -> tuple[Any, str]:
    """The DynamoDB client and events table that ``--local``, ``--stack`` or ``--table`` name."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if getattr(a, "local", False):
        from infra.client import local_connection_file

        path = local_connection_file()
        try:
            found = json.loads(path.read_text())
            table, endpoint = found["events_table"], found["dynamodb_endpoint"]
        except (OSError, ValueError, KeyError) as exc:
            raise EventsExportError(f"no running local stack ({path}: {exc}); start it with make local") from exc
        region = found.get("region") or "us-east-1"
        # the local endpoint accepts any credentials; never pick up real ones for it
        fake = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, **fake)
        return client, table
    if a.stack:
        cfn = boto3.client("cloudformation", region_name=a.region)
        try:
            outputs = cfn.describe_stacks(StackName=a.stack)["Stacks"][0].get("Outputs", [])
        except (BotoCoreError, ClientError) as exc:
            raise EventsExportError(f"stack {a.stack!r} cannot be read: {exc}") from exc
        by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        if OUTPUT_EVENTS_TABLE not in by_key:
            raise EventsExportError(f"stack {a.stack!r} has no output {OUTPUT_EVENTS_TABLE} (deploy this version)")
        return boto3.client("dynamodb", region_name=a.region), by_key[OUTPUT_EVENTS_TABLE]
    return boto3.client("dynamodb", endpoint_url=a.endpoint_url, region_name=a.region), a.table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.events_export", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="ratings CSV to write")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="the running local stack (make local / make demo)")
    where.add_argument("--stack", help="a deployed stack's name")
    where.add_argument("--table", help="an events table's name")
    p.add_argument("--endpoint-url", help="with --table: a DynamoDB endpoint other than AWS's")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument(
        "--settle-s",
        type=float,
        default=SETTLE_S,
        help="leave out the events stored in the last seconds before the export (default %(default)s)",
    )
    a = p.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client, table = source(a)
    except EventsExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    through_ms = int((time.time() - a.settle_s) * 1000)
    try:
        found = rows(scan(client, table), through_ms)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: cannot read the events table {table}: {exc}", file=sys.stderr)
        return 2
    write(a.out, found)
    users = len({r[0] for r in found})
    print(f"wrote {len(found):,} events of {users:,} users to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
