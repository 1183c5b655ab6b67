"""POST /events through the API handler and the worker under moto: stored all or nothing, read-your-writes,
validated against the served model, folded into the next recommendation."""

from __future__ import annotations

import json
import time

import pytest

from lambdas.api import handler as api
from lambdas.api.models import EventsRequest
from lambdas.engine import Engine
from lambdas.service import events
from tests.lambdas.conftest import load_event
from tests.lambdas.test_api import _answer
from tests.lambdas.test_worker import run_worker, status_of, submit
from tests.openapi_contract import assert_matches

EVENTS_PATH = "/events"


def post_events(context, body) -> tuple[int, dict]:
    event = load_event("api_post_recommendations.json")
    event["path"] = event["resource"] = EVENTS_PATH
    event["requestContext"]["path"] = f"/prod{EVENTS_PATH}"
    event["requestContext"]["resourcePath"] = EVENTS_PATH
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    status, _, answer = _answer(api.lambda_handler(event, context))
    assert_matches("POST", EVENTS_PATH, status, answer)
    return status, answer


@pytest.fixture(scope="module")
def engine(small_artifact) -> Engine:
    return Engine(small_artifact)


def stored(flow) -> list[dict]:
    return flow.services.dynamodb.scan(TableName=flow.settings.events_table_name, ConsistentRead=True)["Items"]


def test_events_are_stored_and_read_back_in_one_query(flow, lambda_context, engine):
    movie = int(engine.item_ids[5])
    status, answer = post_events(
        lambda_context,
        {
            "user_id": 7,
            "events": [
                {"movie_id": movie, "rating": 4.5, "timestamp": 1_700_000_000, "event_id": "a-1"},
                {"movie_id": "not-a-movie", "rating": 3},
            ],
        },
    )
    assert status == 200, answer
    assert answer["stored"] == 2 and answer["unknown_movies"] == ["not-a-movie"]
    assert answer["event_ids"][0] == "a-1" and len(answer["event_ids"][1]) == 32
    found = events.for_user(flow.services, "7")  # "7" and 7 are one user
    assert [(e["movie_id"], e["rating"]) for e in found] == [(movie, 4.5), ("not-a-movie", 3.0)]  # by timestamp
    # the same event id again replaces that event
    post_events(lambda_context, {"user_id": "7", "events": [{"movie_id": movie, "rating": 2, "event_id": "a-1"}]})
    found = events.for_user(flow.services, 7)
    assert len(found) == 2 and sorted(e["rating"] for e in found) == [2.0, 3.0]
    item = next(i for i in stored(flow) if i["event_id"]["S"] == "a-1")
    assert "ttl" not in item  # events are kept: the retraining loop's training data
    # a model trained on events through a time: the Query reads only the newer ones
    newest = max(e["received_at"] for e in found)
    assert events.for_user(flow.services, 7, after_ms=newest - 1) == [e for e in found if e["received_at"] == newest]
    assert events.for_user(flow.services, 7, after_ms=newest) == []


HOUR_AHEAD = int(time.time()) + 3600


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"user_id": 1, "events": []}, 422, "validation_error"),
        ({"user_id": 1, "events": [{"movie_id": 1, "rating": 6}]}, 422, "validation_error"),
        ({"user_id": 1, "events": [{"movie_id": 1, "rating": 4, "extra": 1}]}, 422, "validation_error"),
        ({"user_id": 1, "events": [{"movie_id": 1, "rating": 4, "event_id": "x"}] * 2}, 422, "validation_error"),
        ({"user_id": 1, "events": [{"movie_id": 1, "rating": 4}] * 101}, 422, "validation_error"),
        ({"events": [{"movie_id": 1, "rating": 4}]}, 422, "validation_error"),
        # far ahead of the API's clock: it would look newer than every model trained later
        (
            {"user_id": 1, "events": [{"movie_id": 1, "rating": 4, "timestamp": int(time.time()) + 3600}]},
            422,
            "validation_error",
        ),
        ("{not json", 400, "invalid_json"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_written(flow, lambda_context, body, status, code):
    got, answer = post_events(lambda_context, body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert stored(flow) == []


def test_a_rating_off_the_served_models_scale_is_refused_whole_call(flow, lambda_context, tmp_path, monkeypatch):
    from lambdas.service import model_files

    real = model_files.manifest

    def narrow(services):
        found = json.loads(json.dumps(real(services)))
        found["scoring"]["rating_scale"] = [1.0, 5.0]
        return found

    monkeypatch.setattr(model_files, "manifest", narrow)
    got, answer = post_events(
        lambda_context, {"user_id": 1, "events": [{"movie_id": 1, "rating": 4}, {"movie_id": 2, "rating": 0.5}]}
    )
    assert got == 422 and answer["error"]["code"] == "invalid_rating" and "events[1]" in answer["error"]["message"]
    assert stored(flow) == []


def test_the_next_recommendation_sees_the_events(flow, lambda_context, engine):
    counts = [int(engine.h_indptr[u + 1] - engine.h_indptr[u]) for u in range(len(engine.user_ids))]
    u = counts.index(max(counts))
    uid = int(engine.user_ids[u])
    first = submit(lambda_context, {"user_id": uid, "k": 5})
    run_worker(flow, lambda_context)
    before = status_of(lambda_context, first)["result"]
    assert "events_used" not in before
    top = before["items"][0]["movie_id"]
    status, _ = post_events(lambda_context, {"user_id": uid, "events": [{"movie_id": top, "rating": 0.5}]})
    assert status == 200
    second = submit(lambda_context, {"user_id": uid, "k": 5})
    run_worker(flow, lambda_context)
    after = status_of(lambda_context, second)["result"]
    assert after["strategy"] == "personalized" and after["events_used"] == 1
    assert top not in [m["movie_id"] for m in after["items"]]


def test_a_visitor_with_events_gets_the_same_list_as_with_inline_ratings(flow, lambda_context, engine):
    ratings = {str(int(engine.item_ids[i])): r for i, r in [(1, 5.0), (4, 4.0), (9, 2.0)]}
    post_events(
        lambda_context,
        {"user_id": "visitor-42", "events": [{"movie_id": int(m), "rating": r} for m, r in ratings.items()]},
    )
    via_events = submit(lambda_context, {"user_id": "visitor-42"})
    inline = submit(lambda_context, {"ratings": ratings})
    run_worker(flow, lambda_context)
    a, b = status_of(lambda_context, via_events)["result"], status_of(lambda_context, inline)["result"]
    assert a["strategy"] == b["strategy"] == "cold_start"
    assert a["events_used"] == 3 and a["user_id"] == "visitor-42"
    assert a["items"] == b["items"]


def delete_user(context, user_id: str) -> tuple[int, dict]:
    event = load_event("api_get_recommendation.json")
    event["httpMethod"] = "DELETE"
    event["path"] = f"/users/{user_id}"
    event["resource"] = "/users/{user_id}"
    event["pathParameters"] = {"user_id": user_id}
    event["requestContext"]["path"] = f"/prod/users/{user_id}"
    event["requestContext"]["resourcePath"] = "/users/{user_id}"
    event["requestContext"]["httpMethod"] = "DELETE"
    status, _, answer = _answer(api.lambda_handler(event, context))
    assert_matches("DELETE", "/users/{user_id}", status, answer)
    return status, answer


def test_a_timestamp_a_little_ahead_of_the_clock_is_taken(flow, lambda_context):
    got, answer = post_events(
        lambda_context, {"user_id": 1, "events": [{"movie_id": 1, "rating": 4, "timestamp": int(time.time()) + 60}]}
    )
    assert got == 200, answer


def test_one_user_under_every_spelling_of_their_id_is_one_partition_and_one_deletion(flow, lambda_context, engine):
    movie = int(engine.item_ids[3])
    for spelled in (19, "19", " 19 "):
        assert post_events(lambda_context, {"user_id": spelled, "events": [{"movie_id": movie, "rating": 4}]})[0] == 200
    # "019" is another id ("19" in an integer-id model is 19; "019" names no user of it, as in the engine)
    post_events(lambda_context, {"user_id": "019", "events": [{"movie_id": movie, "rating": 4}]})
    assert {i["user_id"]["S"] for i in stored(flow)} == {"19", "019"}
    assert engine.user_index("019") == -1 and engine.user_index(" 19 ") == engine.user_index(19)
    status, answer = delete_user(lambda_context, " 19")
    assert status == 200 and answer["events_deleted"] == 3
    assert {i["user_id"]["S"] for i in stored(flow)} == {"019", "forgotten#19"}  # the mark for the base data


def test_forgetting_a_user_leaves_nothing_of_them_in_the_table_or_bucket(flow, lambda_context, engine):
    flow.configure(inline_result_max_bytes=1)  # every result goes to S3, so the bucket is covered too
    uid = int(engine.user_ids[0])
    other = int(engine.user_ids[1])
    post_events(lambda_context, {"user_id": uid, "events": [{"movie_id": int(engine.item_ids[2]), "rating": 4}]})
    mine = [
        submit(lambda_context, {"user_id": uid}),
        submit(lambda_context, {"profile_of": str(uid)}),
        submit(lambda_context, {"user_ids": [other, uid]}),
    ]
    theirs = submit(lambda_context, {"user_id": other})
    run_worker(flow, lambda_context)
    results = flow.settings.results_prefix

    def objects() -> set[str]:
        listed = flow.services.s3.list_objects_v2(Bucket=flow.settings.bucket_name, Prefix=results)
        return {o["Key"] for o in listed.get("Contents", [])}

    assert {f"{results}{r}.json" for r in [*mine, theirs]} <= objects()
    status, answer = delete_user(lambda_context, str(uid))
    assert status == 200 and answer == {
        "user_id": str(uid),
        "events_deleted": 1,
        "lists_deleted": 2,
        "requests_deleted": 3,
    }
    assert all(flow.item(r) is None for r in mine) and flow.item(theirs) is not None
    assert not {f"{results}{r}.json" for r in mine} & objects()
    assert [i for i in stored(flow) if i["user_id"]["S"] in (str(uid), f"requests#{uid}")] == []
    assert [i for i in stored(flow) if i["user_id"]["S"] == f"requests#{other}"]  # the other user's pointers stay
    assert events.for_user(flow.services, uid) == []
    # what stays is the mark the retraining loop drops the user from the base data by (lambdas.loop.gather)
    (mark,) = [i for i in stored(flow) if i["user_id"]["S"] == f"forgotten#{uid}"]
    assert set(mark) == {"user_id", "item_key", "forgotten_at"}
    # the other user of the batch keeps their own request, and a repeat finds nothing left
    assert delete_user(lambda_context, str(uid))[1] == {
        "user_id": str(uid),
        "events_deleted": 0,
        "lists_deleted": 0,
        "requests_deleted": 0,
    }
    assert delete_user(lambda_context, str(other))[1]["requests_deleted"] == 1  # the batch went with the first user


def test_a_request_and_its_users_pointers_are_written_together_or_not_at_all(flow, lambda_context, monkeypatch):
    """One transaction: DELETE /users/{id} never meets a request whose pointer it could not see. A transaction
    that fails on a conflict is answered 503 with Retry-After, and nothing of it is stored."""
    from botocore.exceptions import ClientError

    request_id = submit(lambda_context, {"user_ids": [1, 2, 1]})
    pointers = {i["user_id"]["S"] for i in stored(flow) if i["item_key"]["S"] == f"r#{request_id}"}
    assert pointers == {"requests#1", "requests#2"} and flow.item(request_id) is not None
    # the largest batch, with an Idempotency-Key: 98 pointers + the request + its record, DynamoDB's 100 at most
    event = _submit_event({"user_ids": list(range(1000, 1098))})
    event["headers"]["Idempotency-Key"] = "largest-batch"
    status, _, answer = _answer(api.lambda_handler(event, lambda_context))
    assert status == 202, answer
    assert sum(i["item_key"]["S"] == f"r#{answer['request_id']}" for i in stored(flow)) == 98

    client = flow.services.table.meta.client
    conflict = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        },
        "TransactWriteItems",
    )

    def refuse(**_):
        raise conflict

    monkeypatch.setattr(client, "transact_write_items", refuse)
    before = len(stored(flow))
    status, headers, answer = _answer(api.lambda_handler(_submit_event({"user_id": 3}), lambda_context))
    assert status == 503 and answer["error"]["code"] == "service_unavailable" and headers["Retry-After"] == "1"
    assert len(stored(flow)) == before
    # with an Idempotency-Key too: a conflict is not the key being taken (that is ConditionalCheckFailed on the
    # record, the transaction's first item), so it is no 409 and no read of a record that is not there
    keyed = _submit_event({"user_id": 3})
    keyed["headers"]["Idempotency-Key"] = "met-a-conflict"
    status, headers, answer = _answer(api.lambda_handler(keyed, lambda_context))
    assert status == 503 and headers["Retry-After"] == "1", answer
    assert len(stored(flow)) == before


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        ({"Error": {"Code": "ThrottlingException"}}, True),
        ({"Error": {"Code": "AccessDeniedException"}}, False),
        ({"Error": {"Code": "ValidationException"}}, False),
        (
            {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": [{"Code": "ThrottlingError"}]},
            True,
        ),
        (
            {
                "Error": {"Code": "TransactionCanceledException"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "ProvisionedThroughputExceeded"}],
            },
            True,
        ),
        (
            {
                "Error": {"Code": "TransactionCanceledException"},
                "CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "TransactionConflict"}],
            },
            False,
        ),
    ],
)
def test_which_aws_errors_are_worth_a_retry(error, transient):
    """503 + Retry-After for what a retry may get past, 500 for the rest (a missing permission, a bad call)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ParamValidationError

    from lambdas.service.aws import is_transient

    assert is_transient(ClientError(error, "TransactWriteItems")) is transient
    assert is_transient(EndpointConnectionError(endpoint_url="https://dynamodb")) is True
    assert is_transient(NoCredentialsError()) is False
    assert is_transient(ParamValidationError(report="bad")) is False


def _submit_event(body: dict) -> dict:
    event = load_event("api_post_recommendations.json")
    event["body"] = json.dumps(body)
    return event


def test_a_result_a_worker_writes_while_its_request_is_deleted_is_deleted_too(flow, lambda_context):
    """store.delete removes the item first, then the one key a worker writes results to: an object put while the
    request was still PENDING does not outlive it."""
    from lambdas.service import store

    request_id = submit(lambda_context, {"user_id": 4})
    key = f"{flow.settings.results_prefix}{request_id}.json"
    flow.services.s3.put_object(Bucket=flow.settings.bucket_name, Key=key, Body=b"{}")  # the worker, mid-way
    assert store.delete(flow.services, request_id) is True
    listed = flow.services.s3.list_objects_v2(Bucket=flow.settings.bucket_name, Prefix=key)
    assert listed.get("KeyCount", 0) == 0 and flow.item(request_id) is None
    assert store.delete(flow.services, request_id) is False


def test_forgetting_a_heavy_user_stops_in_time_and_a_repeat_finishes(flow, lambda_context, monkeypatch):
    """The events go first; past the budget a call stops after the chunk in hand, and what it deleted stays
    deleted (a request's pointer with it), so repeats finish the job."""
    from infra.local.context import LambdaContext

    monkeypatch.setattr(events, "FORGET_CHUNK", 2)
    monkeypatch.setattr(events, "FORGET_THREADS", 2)
    monkeypatch.setattr(events, "BATCH_WRITE", 2)  # 2 batches of 2 a chunk: 5 events take 2 chunks
    mine = [submit(lambda_context, {"user_id": 5, "k": k}) for k in (1, 2, 3, 4, 5)]
    post_events(lambda_context, {"user_id": 5, "events": [{"movie_id": m, "rating": 4} for m in (1, 2, 3, 4, 5)]})
    with pytest.raises(events.Unavailable) as stopped:
        events.forget(flow.services, 5, budget_s=0)
    assert stopped.value.code == "forget_incomplete"
    assert (
        "deleted 4 of the user's 5 events (and lists shown) and went through 0 of their 5 requests"
        in stopped.value.message
    )
    with pytest.raises(events.Unavailable) as stopped:
        events.forget(flow.services, 5, budget_s=0)
    assert (
        "deleted 1 of the user's 1 events (and lists shown) and went through 0 of their 5 requests"
        in stopped.value.message
    )
    assert events.for_user(flow.services, 5) == []
    with pytest.raises(events.Unavailable) as stopped:
        events.forget(flow.services, 5, budget_s=0)
    assert (
        "deleted 0 of the user's 0 events (and lists shown) and went through 2 of their 5 requests (2 deleted"
        in stopped.value.message
    )
    assert sum(flow.item(r) is None for r in mine) == 2
    left = [i for i in stored(flow) if i["user_id"]["S"] == "requests#5"]
    assert len(left) == 3  # the deleted requests' pointers went with them
    # through the API the budget is what the invocation has left, less FORGET_MARGIN_S: 503 with Retry-After
    status, answer = delete_user(LambdaContext("short", timeout_s=2), "5")
    assert status == 503 and answer["error"]["code"] == "forget_incomplete"
    assert sum(flow.item(r) is None for r in mine) == 4
    assert delete_user(lambda_context, "5")[1] == {
        "user_id": "5",
        "events_deleted": 0,
        "lists_deleted": 0,
        "requests_deleted": 1,
    }
    left = [i["user_id"]["S"] for i in stored(flow) if "5" in i["user_id"]["S"]]
    assert all(flow.item(r) is None for r in mine) and left == ["forgotten#5"]  # only the loop's mark


def test_a_user_flooding_the_table_costs_a_bounded_read_of_their_newest_events(flow, monkeypatch):
    """One Query of the local index by storage time reads MAX_READ items, the newest, whatever the event ids: the
    events just stored are always among those read (read-your-writes for a user with many events)."""
    monkeypatch.setattr(events, "MAX_READ", 3)
    # event ids that sort the other way from storage time, and client timestamps that do too
    for n in range(1, 9):
        request = EventsRequest(
            user_id=8, events=[{"movie_id": n, "rating": 4, "timestamp": 100 - n, "event_id": f"{9 - n}"}]
        )
        events.store(flow.services, request, now=1_000_000 + n)
    client = flow.services.dynamodb
    real, calls = client.query, []

    def spy(**kwargs):
        page = real(**kwargs)
        calls.append((kwargs.get("IndexName"), kwargs.get("Limit"), len(page["Items"])))
        return page

    monkeypatch.setattr(client, "query", spy)
    found = events.for_user(flow.services, 8)
    assert calls == [(events.EVENTS_BY_TIME_INDEX, 4, 4)]  # one Query, 3 items used (and one more read) of the 8
    assert [e["movie_id"] for e in found] == [8, 7, 6]  # the newest stored, oldest client timestamp first
    assert [e["received_at"] for e in found] == [1_000_008_000, 1_000_007_000, 1_000_006_000]


def test_the_lists_a_worker_logs_for_a_request_deleted_meanwhile_are_deleted_too(flow, lambda_context, monkeypatch):
    """The worker logs a list before it finishes the request; when the request is gone by then (DELETE /users/{id}
    ran meanwhile) the list goes too."""
    from lambdas.loop.table import scan
    from lambdas.service import store, worker

    request_id = submit(lambda_context, {"user_id": 4})
    finish = store.finish

    def deleted_first(services, rid, *args, **kwargs):
        store.delete(services, rid)  # DELETE /users/4 between the list log and the finish
        return finish(services, rid, *args, **kwargs)

    monkeypatch.setattr(worker.store, "finish", deleted_first)
    run_worker(flow, lambda_context)
    logged = [i for i in scan(flow.services.dynamodb, flow.settings.events_table_name) if i["item_key"][:2] == "l#"]
    assert logged == [] and flow.item(request_id) is None
