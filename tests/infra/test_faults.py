"""Faults on the local stack's real processes: a worker killed mid-batch, AWS errors injected at the endpoint.

Every scenario ends with the same checks: each request COMPLETED, or FAILED with a reason; none PENDING; the DLQ
holds exactly what should be there. Faults are injected at the local AWS endpoint (``infra.local.endpoint``), so
they reach the worker processes as an outage of S3, DynamoDB or SQS would.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from infra.client import Client
from infra.local import LocalStack
from infra.local.endpoint import Fault

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def stack(small_artifact):
    """GIVEN the local stack with two worker processes and a 1 s visibility timeout."""
    with LocalStack(small_artifact, port=0, workers=2, visibility_timeout_s=1, poll_wait_s=1) as running:
        Client(running.url, running.api_key).recommend({"user_id": 1, "k": 1}, timeout_s=120)  # a warm worker
        yield running


@pytest.fixture
def client(stack) -> Client:
    return Client(stack.url, stack.api_key)


@pytest.fixture(autouse=True)
def no_faults_left(stack):
    yield
    stack.inject([])
    drain(stack, stack.dlq_url)


def drain(stack: LocalStack, queue_url: str) -> None:
    """Delete every message in the queue (PurgeQueue is allowed once a minute)."""
    sqs = stack.services.sqs
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def wait_until(condition, timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def dead_letters(stack: LocalStack) -> list[dict]:
    got = stack.services.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def settle(stack: LocalStack, client: Client, request_ids: list[str], timeout_s: float = 90) -> list[dict]:
    """Every request's final document; none may stay PENDING."""
    docs = [client.wait(rid, timeout_s=timeout_s) for rid in request_ids]
    assert all(d["status"] in ("COMPLETED", "FAILED") for d in docs)
    for d in docs:
        if d["status"] == "FAILED":
            assert d["error"]["code"] and d["error"]["message"], d
    return docs


def test_partial_batch_responses_are_read_as_lambda_reads_them():
    """Nothing reported: all deleted; an identifier that is empty or not in the batch: the whole batch stays."""
    from infra.local.poller import reported_failures

    batch = [{"MessageId": "a"}, {"MessageId": "b"}]
    assert reported_failures(None, batch) == reported_failures({}, batch) == set()
    assert reported_failures({"batchItemFailures": [{"itemIdentifier": "a"}]}, batch) == {"a"}
    for wrong in ("x", ""):
        assert reported_failures({"batchItemFailures": [{"itemIdentifier": wrong}]}, batch) == {"a", "b"}


def test_a_worker_killed_while_it_holds_a_batch_loses_nothing(stack, client):
    # GIVEN every result write takes 1.5 s, so that the workers hold their batches for a while
    stack.inject([Fault("dynamodb", "UpdateItem", delay_s=1.5)])
    ids = [client.submit({"user_id": u, "k": 3})["request_id"] for u in range(1, 21)]
    # WHEN worker 0 is SIGKILLed while it holds a batch
    wait_until(lambda: stack.pool.slots[0].holding.value == 1, what="worker 0 to hold a batch")
    killed = stack.kill_worker(0)
    stack.inject([])
    # THEN a new worker process takes its place, and every request completes (the killed batch's messages come
    # back after the visibility timeout), none in the DLQ
    wait_until(lambda: stack.pool.processes[0].pid != killed, what="worker 0 to be replaced")
    docs = settle(stack, client, ids)
    assert [d["status"] for d in docs] == ["COMPLETED"] * len(ids)
    wait_until(lambda: stack.queue_depth() == 0, what="the queue to drain")
    assert dead_letters(stack) == [] and stack.pool.restarts >= 1


def test_s3_down_while_a_cold_worker_loads_the_model_then_back(stack, client):
    # GIVEN cold workers (new processes: empty model cache) and S3 refusing the model's files for a while
    stack.inject([Fault("s3", "GetObject", times=6)])
    for i in range(stack.workers):
        stack.kill_worker(i)
    wait_until(lambda: stack.pool.restarts >= 2, what="the workers to be replaced")
    # WHEN a request arrives THEN it completes once S3 answers again, through SQS's redelivery
    doc = client.recommend({"user_id": 2, "k": 3}, timeout_s=90)
    assert doc["status"] == "COMPLETED"
    assert stack.fault_report()[0]["hits"] == 6
    assert dead_letters(stack) == []


def test_s3_that_never_comes_back_fails_the_request_and_dead_letters_it(stack, client):
    # GIVEN cold workers and S3 down for good
    stack.inject([Fault("s3", "GetObject")])
    restarts = stack.pool.restarts
    for i in range(stack.workers):
        stack.kill_worker(i)
    wait_until(lambda: stack.pool.restarts >= restarts + 2, what="the workers to be replaced")
    # WHEN a request arrives THEN after max_receive_count attempts it reads FAILED retries_exhausted, and its
    # message is the one in the DLQ
    accepted = client.submit({"user_id": 3, "k": 3})
    doc = settle(stack, client, [accepted["request_id"]])[0]
    assert doc["status"] == "FAILED" and doc["error"]["code"] == "retries_exhausted"
    wait_until(lambda: stack.queue_depth(stack.dlq_url) == 1, what="the message in the DLQ")
    assert [m["request_id"] for m in dead_letters(stack)] == [accepted["request_id"]]


def test_throttled_and_failing_dynamodb_writes_are_retried(stack, client):
    # GIVEN DynamoDB throttles the worker's writes twice (botocore retries), then answers 500 three times
    # (botocore gives up: SQS redelivers)
    stack.inject([Fault("dynamodb", "UpdateItem", status=400, code="ThrottlingException", times=2)])
    first = client.recommend({"user_id": 4, "k": 3}, timeout_s=60)
    assert stack.fault_report()[0]["hits"] == 2
    stack.inject([Fault("dynamodb", "UpdateItem", status=500, code="InternalServerError", times=3)])
    second = client.recommend({"user_id": 5, "k": 3}, timeout_s=60)
    # THEN both complete, nothing in the DLQ
    assert first["status"] == second["status"] == "COMPLETED"
    assert stack.fault_report()[0]["hits"] == 3 and dead_letters(stack) == []


def test_sqs_down_at_submit_is_a_503_with_retry_after_and_nothing_pending(stack, client):
    # GIVEN SQS refuses every SendMessage
    stack.inject([Fault("sqs", "SendMessage")])
    before = {i["request_id"] for i in stack.services.table.scan(ConsistentRead=True)["Items"]}
    # WHEN a request is submitted THEN it is refused with 503 and Retry-After
    answer = client.request("POST", "/recommendations", {"user_id": 6})
    assert answer.status == 503 and answer.body["error"]["code"] == "queue_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    # AND the item written before the send reads FAILED, not PENDING
    items = stack.services.table.scan(ConsistentRead=True)["Items"]
    new = [i for i in items if i["request_id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "FAILED" and new[0]["error"]["code"] == "queue_unavailable"
    # AND once SQS is back the same call succeeds
    stack.inject([])
    assert client.recommend({"user_id": 6, "k": 3}, timeout_s=60)["status"] == "COMPLETED"


def test_a_poison_message_is_dead_lettered_and_a_message_for_an_expired_request_is_dropped(stack, client):
    sqs, queue_url = stack.services.sqs, stack.settings.queue_url
    batches = stack.batches
    # GIVEN a message for a request that no longer exists (expired by TTL) and a message no worker can read
    gone = str(uuid.uuid4())
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"request_id": gone, "request": {"user_id": 1}}))
    sqs.send_message(QueueUrl=queue_url, MessageBody="not json at all")
    # THEN the expired one is consumed at once, and the poison one ends in the DLQ after max_receive_count tries
    wait_until(lambda: stack.queue_depth(stack.dlq_url) == 1, what="the poison message in the DLQ")
    wait_until(lambda: stack.queue_depth() == 0, what="the queue to drain")
    dead = stack.services.sqs.receive_message(QueueUrl=stack.dlq_url, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in dead] == ["not json at all"]
    assert stack.batches > batches
    # AND nothing was written for the expired request
    assert "Item" not in stack.services.table.get_item(Key={"request_id": gone})


def test_the_same_message_delivered_to_two_workers_at_once_is_answered_once(stack, client):
    # GIVEN result writes slowed to 1 s, and a request whose message SQS delivers three times at once (at-least-once
    # delivery: the API's message and two duplicates, so that both workers score it while it is PENDING)
    stack.inject([Fault("dynamodb", "UpdateItem", delay_s=1.0)])
    batches = stack.batches
    accepted = client.submit({"user_id": 8, "k": 3})
    duplicate = json.dumps({"request_id": accepted["request_id"]})
    for _ in range(2):
        stack.services.sqs.send_message(QueueUrl=stack.settings.queue_url, MessageBody=duplicate)
    # WHEN the first write lands (the other deliveries still in their own slowed writes)
    first = client.wait(accepted["request_id"])
    assert first["status"] == "COMPLETED"
    # THEN once every delivery is consumed the request reads exactly as it did: no later write replaced it
    wait_until(lambda: stack.queue_depth() == 0 and stack.batches >= batches + 2, what="the deliveries to be consumed")
    assert client.status(accepted["request_id"]) == first
    assert stack.fault_report()[0]["hits"] >= 2  # more than one delivery reached the write
    assert dead_letters(stack) == []
