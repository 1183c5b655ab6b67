"""End to end through the local stack: real HTTP, the API handler, SQS (moto server) and the worker loop."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from infra.client import ApiError, Client, format_status
from infra.local import LocalStack
from infra.local.endpoint import Fault
from tests.openapi_contract import assert_matches, document

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
POST, GET = "/recommendations", "/recommendations/{request_id}"


@pytest.fixture(scope="module")
def stack(small_artifact):
    """GIVEN the local stack with a 1 s visibility timeout (retries and the DLQ within seconds)."""
    with LocalStack(small_artifact, port=0, visibility_timeout_s=1, poll_wait_s=1) as running:
        yield running


@pytest.fixture
def client(stack) -> Client:
    return Client(stack.url, stack.api_key)


def finished(client: Client, request_id: str, timeout_s: float = 30) -> dict:
    """Poll like a client would, checking every answer against the OpenAPI document."""
    doc = client.wait(request_id, timeout_s=timeout_s)
    assert_matches("GET", GET, 200, doc)
    return doc


def wait_until(condition, timeout_s: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def item(stack: LocalStack, request_id: str) -> dict:
    return stack.services.table.get_item(Key={"request_id": request_id}, ConsistentRead=True)["Item"]


def table_size(stack: LocalStack) -> int:
    return stack.services.table.scan(Select="COUNT", ConsistentRead=True)["Count"]


@pytest.mark.parametrize(
    ("body", "strategy"),
    [
        ({"user_id": 19, "k": 5, "include_history": True}, "personalized"),
        ({"ratings": {"1": 5, "2": 4, "7": 1.5, "no-such-movie": 3}, "k": 5}, "cold_start"),
        ({"similar_to": 1, "k": 5}, "similar"),
        ({"user_ids": [1, 2, 3], "k": 4, "genres": ["Drama", "Comedy"]}, "batch"),
    ],
)
def test_every_request_kind_end_to_end(stack, client, body, strategy):
    # WHEN a request is POSTed over HTTP
    response = client.request("POST", "/recommendations", body)

    # THEN 202 with a status URL on this server, as documented
    assert response.status == 202, response.body
    assert_matches("POST", POST, 202, response.body)
    accepted = response.body
    assert accepted["status_url"] == f"{stack.url}/recommendations/{accepted['request_id']}"

    # AND the worker loop completes it; the result has titles and the requested number of movies
    doc = finished(client, accepted["request_id"])
    assert doc["status"] == "COMPLETED", doc.get("error")
    result = doc["result"]
    assert result["strategy"] == strategy
    lists = [r["items"] for r in result["results"]] if strategy == "batch" else [result["items"]]
    assert len(lists) == len(body.get("user_ids", [0])) and all(len(items) == body["k"] for items in lists)
    assert all(m["title"].startswith("Movie ") for items in lists for m in items)
    if strategy == "cold_start":
        assert result["unknown_movies"] == ["no-such-movie"]
    if strategy == "batch":
        assert all({"Drama", "Comedy"} & set(m["genres"]) for items in lists for m in items)
    text = format_status(doc)
    assert "Movie " in text
    # AND the printed result says why each movie is there (what make demo shows)
    if strategy in ("personalized", "cold_start", "batch"):
        assert "because you rated Movie " in text and "(match " in text
    # AND the item carries its TTL, and the table's TTL is on
    assert int(item(stack, accepted["request_id"])["ttl"]) > time.time() + 6 * 86400
    ttl = stack.services.table.meta.client.describe_time_to_live(TableName=stack.settings.table_name)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_an_unknown_similar_to_movie_is_accepted_then_fails(stack, client):
    accepted = client.submit({"similar_to": 987654})
    doc = finished(client, accepted["request_id"])
    assert doc["status"] == "FAILED" and doc["error"]["code"] == "unknown_movie"


def test_bad_requests_over_http_are_refused_and_nothing_is_stored_or_queued(stack, client):
    wait_until(lambda: stack.queue_depth() == 0, what="an idle queue")
    before = table_size(stack)
    cases = [
        (b'{"user_id": 19,', 400, "invalid_json"),
        (json.dumps({"user_id": 1, "ratings": {"1": 4}}).encode(), 422, "validation_error"),
        (json.dumps({"user_id": 1, "k": 1000}).encode(), 422, "validation_error"),
        (json.dumps({"ratings": {"1": "great"}}).encode(), 422, "validation_error"),
        (json.dumps({"user_ids": [1], "pad": "x" * 70_000}).encode(), 413, "body_too_large"),
    ]
    for raw, status, code in cases:
        response = client.request("POST", "/recommendations", raw)
        assert (response.status, response.body["error"]["code"]) == (status, code), response.body
        assert_matches("POST", POST, status, response.body)
    for request_id, status in (("nope", 400), ("00000000-0000-4000-8000-000000000000", 404)):
        response = client.request("GET", f"/recommendations/{request_id}")
        assert response.status == status
        assert_matches("GET", GET, status, response.body)
    assert table_size(stack) == before and stack.queue_depth() == 0


def test_the_openapi_document_is_served(client):
    response = client.request("GET", "/openapi.json")
    assert response.status == 200 and response.body == document()


def test_idempotency_key_over_http(stack, client):
    first = client.submit({"user_id": 7, "k": 3}, idempotency_key="demo-7")
    again = client.request("POST", "/recommendations", {"user_id": 7, "k": 3}, {"Idempotency-Key": "demo-7"})
    assert again.status == 202 and again.body["request_id"] == first["request_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(ApiError) as conflict:
        client.submit({"user_id": 7, "k": 4}, idempotency_key="demo-7")
    assert conflict.value.status == 409 and conflict.value.code == "idempotency_conflict"
    assert finished(client, first["request_id"])["status"] == "COMPLETED"


def test_a_duplicated_sqs_delivery_does_not_overwrite_the_result(stack, client):
    # GIVEN a completed request and the exact message the API queued for it
    accepted = client.submit({"user_id": 11, "k": 3})
    assert finished(client, accepted["request_id"])["status"] == "COMPLETED"
    before = item(stack, accepted["request_id"])
    message = {"request_id": accepted["request_id"], "request": json.loads(before["request"])}

    # WHEN SQS delivers it a second time (at-least-once delivery)
    batches = stack.batches
    stack.services.sqs.send_message(QueueUrl=stack.settings.queue_url, MessageBody=json.dumps(message))
    wait_until(lambda: stack.batches > batches and stack.queue_depth() == 0, what="the duplicate to be handled")

    # THEN it is consumed and the stored result is exactly what it was
    assert item(stack, accepted["request_id"]) == before


def test_a_transient_failure_is_retried_to_completed(stack, client):
    # GIVEN the worker's writes to DynamoDB fail three times in a row (botocore's own retries included)
    stack.inject([Fault("dynamodb", "UpdateItem", status=500, code="InternalServerError", times=3)])
    try:
        # WHEN a request is submitted THEN it completes after SQS redelivers it (visibility timeout)
        accepted = client.submit({"user_id": 12, "k": 3})
        doc = finished(client, accepted["request_id"])
        assert doc["status"] == "COMPLETED"
        assert stack.fault_report()[0]["hits"] == 3
    finally:
        stack.inject([])
    assert stack.queue_depth(stack.dlq_url) == 0


def test_a_poison_message_ends_in_the_dlq_and_writes_nothing(stack, client):
    # GIVEN a message no worker can read (not a work message)
    before = table_size(stack)
    stack.services.sqs.send_message(QueueUrl=stack.settings.queue_url, MessageBody='{"not": "a work message"}')

    # THEN after maxReceiveCount receives SQS (moto's redrive) moves it to the DLQ, and nothing was written
    wait_until(lambda: stack.queue_depth(stack.dlq_url) == 1, what="the message in the DLQ")
    dead = stack.services.sqs.receive_message(QueueUrl=stack.dlq_url, VisibilityTimeout=0, AttributeNames=["All"])
    message = dead["Messages"][0]
    assert json.loads(message["Body"]) == {"not": "a work message"}
    assert int(message["Attributes"]["ApproximateReceiveCount"]) >= stack.settings.max_receive_count
    assert stack.queue_depth() == 0 and table_size(stack) == before
    stack.services.sqs.purge_queue(QueueUrl=stack.dlq_url)


# Bounds for a loaded 2-core CI machine (a run takes a few seconds when idle; every wait ends as soon as its event
# happens, so the bounds only decide how long a broken run takes to fail).
START_S = 180  # python -m infra.local: imports, moto server, resources, model upload, the first request served
CLIENT_S = 120  # python -m infra.client: submit and poll until COMPLETED
STOP_S = 60  # SIGTERM to exit: the worker finishes its batch, moto stops


def _lines(proc: subprocess.Popen) -> queue.Queue[str]:
    """The process's stdout lines, read by a thread (a buffered pipe defeats select())."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], proc: subprocess.Popen, marker: str, timeout_s: float) -> str:
    deadline, seen = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return line
    state = "running" if proc.poll() is None else f"exited {proc.returncode}"
    raise AssertionError(f"no {marker!r} within {timeout_s}s ({state}); stdout: {''.join(seen)[-2000:]}")


def _kill(proc: subprocess.Popen) -> None:
    """Make sure the process is gone (no-op once it has exited)."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def _run_client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``python -m infra.client ARGS``; its output is in the failure message if it fails or overruns CLIENT_S."""
    cmd = [sys.executable, "-m", "infra.client", *args, "--timeout", str(CLIENT_S - 20)]
    env = {k: v for k, v in env.items() if k not in ("RECOMMENDER_API_URL", "RECOMMENDER_API_KEY")}
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CLIENT_S)
    except subprocess.TimeoutExpired as exc:
        output = f"stdout: {exc.stdout!r}; stderr: {exc.stderr!r}"
        raise AssertionError(f"the client ran over {CLIENT_S}s; {output}") from None
    assert done.returncode == 0, f"client exited {done.returncode}; stdout: {done.stdout}; stderr: {done.stderr}"
    return done


def test_the_cli_prints_its_url_serves_the_client_and_stops_on_sigterm(small_artifact, tmp_path):
    connection = tmp_path / "local-stack.json"
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING", "RECOMMENDER_LOCAL_CONNECTION": str(connection)}
    cmd = [sys.executable, "-m", "infra.local", "--port", "0", "--artifact", str(small_artifact), "--quiet"]
    # stderr to a file, not a pipe: nobody reads a pipe while the test waits, and a full one would block the stack.
    stderr_path = tmp_path / "infra.local.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        # WHEN it is ready THEN it prints its URL
        lines = _lines(proc)
        url = _wait_for(lines, proc, "API URL: http://127.0.0.1:", START_S).split("API URL: ")[1].strip()
        key = _wait_for(lines, proc, "API key: ", START_S).split()[2]
        # AND it checks the key it printed, as API Gateway does
        assert Client(url).request("GET", "/model").status == 403
        # AND it completes a request (the cold start, imports and model load, paid here under generous timeouts,
        # not within the client CLI's 10 s per HTTP call)
        warm = Client(url, key, timeout_s=START_S).recommend({"user_id": 19, "k": 3}, timeout_s=START_S)
        assert warm["status"] == "COMPLETED", warm

        # AND the client CLI, given neither the URL nor the key, finds both and gets readable recommendations
        saved = json.loads(connection.read_text())
        assert {k: saved[k] for k in ("url", "api_key")} == {"url": url, "api_key": key}
        assert saved["events_table"].startswith("recommender-events-") and saved["dynamodb_endpoint"].startswith("http")
        done = _run_client(env, "recommend", "--user", "19", "--k", "3")
        listed = [line for line in done.stdout.splitlines() if re.match(r"\s+\d+\. Movie ", line)]
        assert "COMPLETED" in done.stdout and len(listed) == 3, done.stdout
        assert done.stdout.count("because you rated Movie ") == 3, done.stdout

        # WHEN it gets SIGTERM (as Ctrl-C) THEN it stops cleanly
        proc.send_signal(signal.SIGTERM)
        assert _wait_for(lines, proc, "stopped", STOP_S)
        assert proc.wait(timeout=STOP_S) == 0
        assert not connection.exists()
    except BaseException:
        _kill(proc)  # first, so that its stderr is complete
        print(f"--- python -m infra.local (exit {proc.returncode}) stderr ---\n{stderr_path.read_text()[-4000:]}")
        raise
    finally:
        _kill(proc)


def test_events_round_trip_through_the_local_stack(stack, client):
    """POST /events over HTTP, then the user's next recommendation folds them in (read-your-writes)."""
    before = finished(client, client.submit({"user_id": 3, "k": 5})["request_id"])["result"]
    top = before["items"][0]["movie_id"]
    stored = client.post_events(3, [{"movie_id": top, "rating": 0.5, "event_id": "local-1"}])
    assert_matches("POST", "/events", 200, stored)
    assert stored["stored"] == 1 and stored["event_ids"] == ["local-1"] and stored["unknown_movies"] == []
    after = finished(client, client.submit({"user_id": 3, "k": 5})["request_id"])["result"]
    assert after["events_used"] == 1 and top not in [m["movie_id"] for m in after["items"]]
    with pytest.raises(ApiError) as refused:
        client.post_events(3, [{"movie_id": top, "rating": 9}])
    assert refused.value.status == 422


def test_the_demo_shows_a_list_changing_after_a_rating_and_forgets_the_user(stack, client):
    import io

    from infra.demo import rate_and_see

    out = io.StringIO()
    assert rate_and_see(client, out, user_id=5) == 0
    assert "(events_used 1)" in out.getvalue() and out.getvalue().count(" -> ") == 6  # POST line + 5 rows
    assert (
        stack.services.dynamodb.query(
            TableName=stack.settings.events_table_name,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": "5"}},
        )["Items"]
        == []
    )
