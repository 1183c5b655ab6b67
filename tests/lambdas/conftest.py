"""The request flow's AWS side under moto (in-process): table, queue + DLQ, bucket, the small artifact published."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from infra.local.context import LambdaContext, sqs_record
from infra.local.resources import Queues, create_resources
from lambdas.service import aws, model_store
from lambdas.service.aws import Services
from lambdas.settings import Settings

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict:
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


@dataclass
class Flow:
    """The configured services plus helpers to look at what was written and queued."""

    services: Services
    queues: Queues

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def items(self) -> list[dict]:
        return self.services.table.scan(ConsistentRead=True)["Items"]

    def item(self, request_id: str) -> dict | None:
        return self.services.table.get_item(Key={"request_id": request_id}, ConsistentRead=True).get("Item")

    def depth(self, queue_url: str | None = None) -> int:
        attrs = self.services.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queues.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def receive_event(self, max_messages: int = 10) -> dict:
        """An SQS event (as Lambda delivers it) made of the messages waiting in the queue."""
        messages = self.services.sqs.receive_message(
            QueueUrl=self.queues.queue_url, MaxNumberOfMessages=max_messages, AttributeNames=["All"]
        ).get("Messages", [])
        return {"Records": [sqs_record(m, self.queues.queue_arn) for m in messages]}

    def configure(self, **changes: object) -> None:
        """Change settings for the rest of the test (e.g. a tiny inline-result limit)."""
        self.services = Services(replace(self.settings, **changes))
        aws.configure(self.services)


@pytest.fixture
def flow(moto_aws, small_artifact, tmp_path) -> Flow:
    """GIVEN the table, queue, DLQ and bucket exist and the small model is published, as in a deployed stack."""
    settings = Settings(
        table_name="recommender-requests",
        events_table_name="recommender-events",
        bucket_name="recommender-models",
        model_cache_dir=str(tmp_path / "model-cache"),
        region="us-east-1",
        visibility_timeout_s=0,  # received messages are visible again at once: tests re-receive without waiting
    )
    queues = create_resources(Services(settings))
    services = Services(replace(settings, queue_url=queues.queue_url))
    version = model_store.publish(services, small_artifact)
    services = Services(replace(services.settings, model_version=version))
    aws.configure(services)
    model_store.clear_cache()
    yield Flow(services, queues)
    aws.configure(None)
    model_store.clear_cache()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext("recommender-test")
