"""The local stack's AWS resources, created on the local endpoint as the CDK stack declares them in AWS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from infra.local.context import LOCAL_REGION
from lambdas.service import aws
from lambdas.settings import (
    EVENTS_BY_TIME_INDEX,
    EVENTS_INDEX_ATTRIBUTES,
    EVENTS_PARTITION_KEY,
    EVENTS_SORT_KEY,
    EVENTS_TIME_KEY,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    Settings,
)

# The events table's local index as CreateTable takes it (the CDK stack's EventsTable declares the same; a template
# test compares the two).
EVENTS_INDEXES = [
    {
        "IndexName": EVENTS_BY_TIME_INDEX,
        "KeySchema": [
            {"AttributeName": EVENTS_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": EVENTS_TIME_KEY, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(EVENTS_INDEX_ATTRIBUTES)},
    }
]


def local_settings(suffix: str, endpoint_url: str, cache_dir: Path, visibility_timeout_s: int) -> Settings:
    """The local stack's own resource names; everything else keeps the shared defaults (receive count, TTL...)."""
    return Settings(
        table_name=f"recommender-requests-{suffix}",
        events_table_name=f"recommender-events-{suffix}",
        queue_url="",  # known once the queue exists
        bucket_name=f"recommender-local-{suffix}",
        model_cache_dir=str(cache_dir),
        visibility_timeout_s=visibility_timeout_s,
        endpoint_url=endpoint_url,
        region=LOCAL_REGION,
    )


@dataclass(frozen=True)
class Queues:
    queue_url: str
    queue_arn: str
    dlq_url: str


def create_resources(services: aws.Services) -> Queues:
    """Queue + DLQ (redrive after ``max_receive_count``), the requests and events tables (TTL on), bucket, named as
    ``services.settings``.

    The queue is named after the table (the settings hold the queue's URL, which exists only once it is created).
    """
    s = services.settings
    sqs = services.sqs

    def arn(url: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    dlq_url = sqs.create_queue(QueueName=f"{s.table_name}-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=s.table_name,
        Attributes={
            "VisibilityTimeout": str(s.queue_visibility_timeout_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn(dlq_url), "maxReceiveCount": s.max_receive_count}),
        },
    )["QueueUrl"]
    dynamodb = services.table.meta.client
    dynamodb.create_table(
        TableName=s.table_name,
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=s.events_table_name,
        KeySchema=[
            {"AttributeName": EVENTS_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": EVENTS_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": EVENTS_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": EVENTS_SORT_KEY, "AttributeType": "S"},
            {"AttributeName": EVENTS_TIME_KEY, "AttributeType": "N"},
        ],
        LocalSecondaryIndexes=EVENTS_INDEXES,
        BillingMode="PAY_PER_REQUEST",
    )
    for table in (s.table_name, s.events_table_name):
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
    services.s3.create_bucket(Bucket=s.bucket_name)
    return Queues(queue_url, arn(queue_url), dlq_url)
