"""The running local stack's AWS side, from the connection file ``python -m infra.local`` writes: clients for its
endpoints and its settings, for the command lines that work on it (``infra.retrain``, ``infra.base_data``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import boto3

from infra.client import local_connection_file
from infra.local.context import LOCAL_REGION
from lambdas.settings import Settings

# The local endpoints accept any credentials; never pick up real ones for them.
FAKE = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def target_arguments(
    parser: argparse.ArgumentParser,
    local_help: str = "the running local stack (make local)",
    stack_help: str = "a deployed stack's name",
) -> None:
    """The command lines' choice of stack: ``--local`` (this module's) or ``--stack NAME`` with ``--region``."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help=local_help)
    where.add_argument("--stack", help=stack_help)
    parser.add_argument("--region", help="with --stack: AWS region (default: boto3's configuration)")


class NoLocalStack(RuntimeError):
    """No running local stack (or one started by an older version, without what is needed)."""


@dataclass(frozen=True)
class LocalAws:
    settings: Settings
    s3: Any
    ssm: Any
    dynamodb: Any


def local_aws(found: dict[str, Any] | None = None) -> LocalAws:
    """Clients and settings of the running local stack (``found``: its connection file's content, read if None)."""
    path = local_connection_file()
    if found is None:
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NoLocalStack(f"no running local stack ({path}: {exc}); start it with make local") from exc
    needed = ("endpoint", "dynamodb_endpoint", "bucket", "model_parameter", "events_table")
    missing = [k for k in needed if not found.get(k)]
    if missing:
        raise NoLocalStack(f"{path} lacks {', '.join(missing)}: restart make local with this version")
    region = found.get("region") or LOCAL_REGION
    settings = Settings(
        events_table_name=found["events_table"],
        bucket_name=found["bucket"],
        model_prefix=found.get("model_prefix") or Settings().model_prefix,
        model_version_parameter=found["model_parameter"],
        endpoint_url=found["endpoint"],
        dynamodb_endpoint_url=found["dynamodb_endpoint"],
        region=region,
    )

    def client(name: str, endpoint: str) -> Any:
        return boto3.client(name, endpoint_url=endpoint, region_name=region, **FAKE)

    return LocalAws(
        settings,
        client("s3", found["endpoint"]),
        client("ssm", found["endpoint"]),
        client("dynamodb", found["dynamodb_endpoint"]),
    )


def stack_connection(stack: Any) -> dict[str, Any]:
    """What a running :class:`~infra.local.stack.LocalStack` writes to the connection file (its AWS side)."""
    s = stack.settings
    return {
        "events_table": s.events_table_name,
        "dynamodb_endpoint": stack.dynamodb_endpoint_url,
        "region": s.region or "",
        "endpoint": stack.endpoint_url,
        "bucket": s.bucket_name,
        "model_prefix": s.model_prefix,
        "model_parameter": s.model_version_parameter,
        "table": s.table_name,
        # the people's accounts: sign up and in against the Cognito API at "endpoint" (python -m infra.accounts)
        "user_pool_id": stack.user_pool.pool_id if stack.user_pool else "",
        "user_pool_client_id": stack.user_pool.client_id if stack.user_pool else "",
    }
