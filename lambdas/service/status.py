"""Read a request's status and result (inline in the item, or in S3 for results too large for DynamoDB)."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.service import store
from lambdas.service.aws import Services
from lambdas.service.errors import NotFound, Unavailable
from lambdas.service.logs import logger
from lambdas.settings import PARTITION_KEY, TTL_ATTRIBUTE


def read_status(services: Services, request_id: str) -> dict:
    """The status document of a request (``StatusResponse``'s fields); NotFound if unknown or expired."""
    item = store.get(services, request_id)
    if item is None or "kind" not in item:
        raise NotFound("not_found", f"no request {request_id} (unknown, or expired after its TTL)")
    out = {
        "request_id": item[PARTITION_KEY],
        "status": item["status"],
        "kind": item["kind"],
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
        "expires_at": store.iso(int(item[TTL_ATTRIBUTE])),
        "model_version": item.get("model_version"),
        "error": item.get("error"),
    }
    if item["status"] == store.COMPLETED:
        out["result"] = json.loads(item["result"]) if "result" in item else _s3_result(services, item["result_s3_key"])
    return out


def _s3_result(services: Services, key: str) -> dict:
    try:
        body = services.s3.get_object(Bucket=services.settings.bucket_name, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        logger.exception("result object unreadable", extra={"key": key})
        raise Unavailable(
            "result_unavailable", "the result is stored but cannot be read now; retry", headers={"Retry-After": "1"}
        ) from exc
    return json.loads(body)
