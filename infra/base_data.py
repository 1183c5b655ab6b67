"""Upload the base data the retraining loop trains on (with every stored event since): once, by an operator.

``python -m infra.base_data --ratings ratings.csv [--movies movies.csv] (--local | --stack NAME | --bucket B)``

The ratings (MovieLens's CSV header: ``userId,movieId,rating[,timestamp]``) are checked first (an error names the
file and line), then written as a new version under the data bucket's ``data/base/<version>/`` and made current;
the version they replace is deleted. ``--show`` prints the current version instead. Forgetting a user
(``DELETE /users/{id}``) rewrites the base data without them at the loop's next run (docs/retraining.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra.config import DEFAULT_STACK_NAME, OUTPUT_DATA_BUCKET
from lambdas.loop import base_data
from lambdas.loop.layout import Layout
from lambdas.loop.settings import LoopSettings


def target(a: argparse.Namespace) -> tuple[Any, str]:
    """The S3 client and data bucket that ``--local``, ``--stack`` or ``--bucket`` name."""
    import boto3

    if a.local:
        from infra.local.connection import local_aws

        aws = local_aws()
        return aws.s3, aws.settings.bucket_name
    if a.bucket:
        return boto3.client("s3", region_name=a.region), a.bucket
    from infra.publish_model import PublishError, stack_outputs

    outputs = stack_outputs(boto3.client("cloudformation", region_name=a.region), a.stack)
    if OUTPUT_DATA_BUCKET not in outputs:
        raise PublishError(f"stack {a.stack!r} has no output {OUTPUT_DATA_BUCKET} (deploy this version)")
    return boto3.client("s3", region_name=a.region), outputs[OUTPUT_DATA_BUCKET]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.base_data", description=__doc__.split("\n")[0])
    p.add_argument("--ratings", type=Path, help="the ratings CSV")
    p.add_argument("--movies", type=Path, help="the movies CSV (movieId,title,genres)")
    p.add_argument("--show", action="store_true", help="print the current base data's pointer")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local stack (make local)")
    where.add_argument("--stack", default=DEFAULT_STACK_NAME, help="a deployed stack (default %(default)s)")
    where.add_argument("--bucket", help="a data bucket by name")
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    a = p.parse_args(argv)
    if not a.show and a.ratings is None:
        p.error("--ratings is required (or --show)")
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.local.connection import NoLocalStack
    from infra.publish_model import PublishError

    layout = Layout(LoopSettings().data_prefix)
    try:
        s3, bucket = target(a)
        if a.show:
            print(json.dumps(base_data.read_pointer(s3, bucket, layout), indent=1))
            return 0
        for path in (a.ratings, a.movies):
            if path is not None and not path.is_file():
                raise base_data.BaseDataError(f"{path}: no such file")
        pointer = base_data.upload(s3, bucket, layout, a.ratings, a.movies)
    except (base_data.BaseDataError, NoLocalStack, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 1
    print(f"base data {pointer['version']}: {pointer['rows']:,} ratings in s3://{bucket}/{pointer['prefix']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
