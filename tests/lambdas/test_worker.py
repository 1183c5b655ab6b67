"""The worker handler on SQS events (moto in-process): results, duplicates, retries, the DLQ path, large results."""

from __future__ import annotations

import json

import pytest

from contract.api import COMPLETED, FAILED
from lambdas.service import model_store, store, worker
from lambdas.worker import handler as worker_handler
from tests.lambdas.conftest import load_event
from tests.lambdas.test_api import GET, get, post
from tests.openapi_contract import assert_matches

pytest.importorskip("onnxruntime")


def submit(context, body: dict) -> str:
    status, _, answer = post(context, body)
    assert status == 202, answer
    return answer["request_id"]


def run_worker(flow, context, receive_count: int | None = None) -> tuple[dict, dict]:
    """Receive what is queued and hand it to the worker handler, deleting the records it did not report (as
    Lambda's event source mapping does); returns (event, handler response)."""
    event = flow.receive_event()
    assert event["Records"], "nothing queued"
    if receive_count is not None:
        for record in event["Records"]:
            record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    response = worker_handler.lambda_handler(event, context)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            flow.services.sqs.delete_message(QueueUrl=flow.queues.queue_url, ReceiptHandle=record["receiptHandle"])
    return event, response


def status_of(context, request_id: str) -> dict:
    status, _, doc = get(context, request_id)
    assert status == 200
    assert_matches("GET", GET, status, doc)
    return doc


@pytest.mark.parametrize(
    ("body", "strategy"),
    [
        ({"user_id": 19, "k": 5, "include_history": True}, "personalized"),
        ({"user_id": "no-such-user", "k": 5}, "popular"),
        ({"ratings": {"1": 5, "2": 4.5, "3": 1, "999999": 4}, "k": 5}, "cold_start"),
        ({"ratings": {"999998": 4, "999999": 2}, "k": 5}, "popular"),
        ({"similar_to": 1, "k": 5, "genres": ["Comedy"]}, "similar"),
        ({"user_ids": [1, 2, "no-such-user"], "k": 3, "include_metadata": False}, "batch"),
    ],
)
def test_each_request_kind_completes_with_a_documented_result(flow, lambda_context, body, strategy):
    # GIVEN a submitted request
    rid = submit(lambda_context, body)

    # WHEN the worker processes the queued message
    _, response = run_worker(flow, lambda_context)

    # THEN the record succeeded and the request reads COMPLETED with the served model's result
    assert response == {"batchItemFailures": []}
    doc = status_of(lambda_context, rid)
    assert doc["status"] == "COMPLETED", doc.get("error")
    result = doc["result"]
    assert result["strategy"] == strategy and doc["model_version"] == flow.settings.model_version
    lists = [r["items"] for r in result["results"]] if strategy == "batch" else [result["items"]]
    assert all(len(items) == body["k"] for items in lists)
    if body.get("include_metadata", True):
        assert all({"title", "year", "genres"} <= set(m) for items in lists for m in items)
    else:
        metadata = {"title", "year", "genres"}
        assert all(not metadata & set(m) and "score" in m for items in lists for m in items)
        assert all(not metadata & set(r) for items in lists for m in items for r in m["reasons"])
    if "include_history" in body:
        assert result["history"] and all("rating" in m for m in result["history"])
    if "ratings" in body:
        assert "999999" in result["unknown_movies"]
    if "genres" in body:
        assert all("Comedy" in m["genres"] for m in result["items"])


def test_a_duplicate_delivery_never_overwrites_a_finished_result(flow, lambda_context, monkeypatch):
    # GIVEN a request processed to COMPLETED
    rid = submit(lambda_context, {"user_id": 19})
    event = flow.receive_event()
    assert worker_handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    before = flow.item(rid)

    # WHEN SQS delivers the same message again, and scoring would now give something else
    def different(*_args, **_kw):
        raise AssertionError("a finished request must not be scored again")

    monkeypatch.setattr(worker, "run_request", different)
    response = worker_handler.lambda_handler(event, lambda_context)

    # THEN the record succeeds (it is deleted) and the stored result is untouched
    assert response == {"batchItemFailures": []}
    assert flow.item(rid) == before


def test_a_late_duplicate_racing_the_first_delivery_cannot_overwrite(flow, lambda_context):
    # GIVEN a request that another delivery finished while this one was scoring
    rid = submit(lambda_context, {"user_id": 19})
    assert store.finish(flow.services, rid, COMPLETED, result_json='{"first": true}', model_version="v")
    # WHEN the slower delivery tries to store its own result THEN the conditional write refuses
    assert not store.finish(flow.services, rid, COMPLETED, result_json='{"second": true}', model_version="v")
    assert not store.finish(flow.services, rid, FAILED, error={"code": "x", "message": "y"})
    assert json.loads(flow.item(rid)["result"]) == {"first": True}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"similar_to": 424242}, "unknown_movie"),
        ({"user_id": 19, "genres": ["Western"]}, "unknown_genre"),
        ({"similar_to": 1, "exclude_genres": ["Western"]}, "unknown_genre"),
    ],
)
def test_permanent_errors_fail_the_request_without_retry(flow, lambda_context, body, code):
    rid = submit(lambda_context, body)

    _, response = run_worker(flow, lambda_context)

    # THEN FAILED with the engine's code, and the record is not reported (SQS deletes it: no retry)
    assert response == {"batchItemFailures": []}
    doc = status_of(lambda_context, rid)
    assert doc["status"] == "FAILED" and doc["error"]["code"] == code


def test_an_invalid_stored_request_fails_permanently(flow, lambda_context):
    # GIVEN a stored request that breaks today's contract (e.g. written by an older API version)
    rid = submit(lambda_context, {"user_id": 19})
    stored = json.loads(flow.item(rid)["request"])
    flow.services.table.update_item(
        Key={"request_id": rid},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "request"},
        ExpressionAttributeValues={":r": json.dumps({**stored, "k": 0})},
    )

    # WHEN the worker gets its message THEN it is FAILED (invalid_request) and not retried
    assert run_worker(flow, lambda_context)[1] == {"batchItemFailures": []}
    error = flow.item(rid)["error"]
    assert error["code"] == "invalid_request" and "k" in error["message"]


def test_transient_errors_are_reported_alone_and_retried(flow, lambda_context, monkeypatch):
    # GIVEN three requests in one batch: one fine, one hitting a transient error, one permanently wrong
    ok = submit(lambda_context, {"user_id": 1})
    flaky = submit(lambda_context, {"user_id": 2})
    bad = submit(lambda_context, {"similar_to": 424242})
    real = worker.run_request

    def throttled(engine, request, *args):
        if request.user_id == 2:
            raise ConnectionError("throttled")
        return real(engine, request, *args)

    monkeypatch.setattr(worker, "run_request", throttled)

    # WHEN the worker handles the batch
    event, response = run_worker(flow, lambda_context)

    # THEN only the transient record is reported, and its request is still PENDING
    assert len(event["Records"]) == 3
    flaky_message = next(r["messageId"] for r in event["Records"] if flaky in r["body"])
    assert response == {"batchItemFailures": [{"itemIdentifier": flaky_message}]}
    assert [flow.item(r)["status"] for r in (ok, flaky, bad)] == ["COMPLETED", "PENDING", "FAILED"]

    # WHEN it is delivered again and the dependency has recovered THEN it completes
    monkeypatch.setattr(worker, "run_request", real)
    retry = {"Records": [r for r in event["Records"] if r["messageId"] == flaky_message]}
    retry["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert worker_handler.lambda_handler(retry, lambda_context) == {"batchItemFailures": []}
    assert flow.item(flaky)["status"] == "COMPLETED"


def test_the_last_allowed_receive_marks_the_request_failed_and_still_reports_the_record(
    flow, lambda_context, monkeypatch
):
    # GIVEN a request whose processing always fails transiently
    rid = submit(lambda_context, {"user_id": 3})

    def down(*_args):
        raise TimeoutError("model store down")

    monkeypatch.setattr(worker, "run_request", down)

    # WHEN it is received for the last time SQS allows (maxReceiveCount)
    event, response = run_worker(flow, lambda_context, receive_count=flow.settings.max_receive_count)

    # THEN the request reads FAILED (retries_exhausted) and the record is still reported, so SQS moves it to the DLQ
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    doc = status_of(lambda_context, rid)
    assert doc["status"] == "FAILED" and doc["error"]["code"] == "retries_exhausted"
    assert "model store down" in doc["error"]["message"]


def test_an_unreadable_message_is_reported_for_the_dlq_and_writes_nothing(flow, lambda_context):
    event = load_event("sqs_work_batch.json")
    event["Records"][0]["body"] = "this is not a work message"

    response = worker_handler.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert flow.items() == []


def test_a_message_for_an_unknown_or_expired_request_is_dropped(flow, lambda_context):
    # GIVEN the sample message, whose request id was never stored (or its item expired)
    event = load_event("sqs_work_batch.json")

    assert worker_handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert flow.items() == []  # the worker never creates an item


def test_results_too_large_for_dynamodb_go_to_s3_and_are_served_from_there(flow, lambda_context):
    # GIVEN an inline limit smaller than a batch result (in AWS: 350 KB against DynamoDB's 400 KB)
    flow.configure(inline_result_max_bytes=2_000)
    rid = submit(lambda_context, {"user_ids": list(range(20)), "k": 10})

    _, response = run_worker(flow, lambda_context)

    # THEN the item points at results/<id>.json and the status endpoint serves the whole result from S3
    assert response == {"batchItemFailures": []}
    item = flow.item(rid)
    assert item["result_s3_key"] == f"results/{rid}.json" and "result" not in item
    doc = status_of(lambda_context, rid)
    assert doc["status"] == "COMPLETED" and len(doc["result"]["results"]) == 20


def test_the_engine_is_loaded_once_per_container_and_reloaded_from_tmp(flow, lambda_context, monkeypatch):
    downloads = []
    real_download = model_store._download
    monkeypatch.setattr(model_store, "_download", lambda *a: downloads.append(a) or real_download(*a))

    # WHEN two batches are processed by one container THEN the artifact is downloaded once
    for user in (1, 2):
        submit(lambda_context, {"user_id": user})
        assert run_worker(flow, lambda_context)[1] == {"batchItemFailures": []}
    assert len(downloads) == 1

    # WHEN the in-memory engine is gone but /tmp survived (a re-created engine) THEN no new download
    model_store.clear_cache()
    submit(lambda_context, {"user_id": 3})
    assert run_worker(flow, lambda_context)[1] == {"batchItemFailures": []}
    assert len(downloads) == 1


def test_the_model_version_can_come_from_an_ssm_parameter(flow, lambda_context):
    # GIVEN the served version is named by an SSM parameter (what a publish moves), re-read on every use here
    version, name = flow.settings.model_version, "/recommender/model-version"
    flow.services.ssm.put_parameter(Name=name, Value=version, Type="String")
    flow.configure(model_version="", model_version_parameter=name, model_version_cache_s=0)

    # WHEN a request is processed THEN it is scored by that version
    rid = submit(lambda_context, {"user_id": 1})
    assert run_worker(flow, lambda_context)[1] == {"batchItemFailures": []}
    assert flow.item(rid)["model_version"] == version

    # WHEN the parameter moves to a version that is not in the bucket THEN records are retried, not failed
    flow.services.ssm.put_parameter(Name=name, Value="unpublished", Type="String", Overwrite=True)
    rid = submit(lambda_context, {"user_id": 2})
    event, response = run_worker(flow, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert flow.item(rid)["status"] == "PENDING"


def test_a_missing_model_is_a_transient_error(flow, lambda_context):
    # GIVEN the configured model version is not in the bucket (a deploy pointing at an unpublished model)
    flow.configure(model_version="0000000000000000")
    rid = submit(lambda_context, {"user_id": 1})

    event, response = run_worker(flow, lambda_context)

    # THEN the record is retried (a publish may fix it) and the request stays PENDING until the last receive
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert flow.item(rid)["status"] == "PENDING"


def test_the_dlq_handler_marks_pending_requests_failed_and_leaves_finished_ones(flow, lambda_context):
    # GIVEN two dead letters: a request still PENDING (its worker timed out) and one already COMPLETED
    pending = submit(lambda_context, {"user_id": 1})
    done = submit(lambda_context, {"user_id": 2})
    store.finish(flow.services, done, COMPLETED, result_json="{}", model_version="v")
    event = flow.receive_event()
    event["Records"].append({**event["Records"][0], "messageId": "unreadable", "body": "garbage"})

    # WHEN the DLQ consumer handles them
    response = worker_handler.dlq_handler(event, lambda_context)

    # THEN nothing is retried, the PENDING one is FAILED and the COMPLETED one untouched
    assert response == {"batchItemFailures": []}
    assert flow.item(pending)["error"]["code"] == "retries_exhausted"
    assert flow.item(done)["status"] == "COMPLETED"
