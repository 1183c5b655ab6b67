"""A signed-in person's own routes (``/me...``) and who may read which request, on the API handler (moto in-process).

The events are what API Gateway hands the function after its Cognito authoriser verified the token: the claims in
``requestContext.authorizer.claims`` (the token checks themselves are tested on the local gateway, in
tests/infra/test_accounts.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from infra.local.proxy_event import api_event
from lambdas.api import handler as api
from lambdas.service import accounts
from lambdas.service import events as events_service
from lambdas.service.aws import Services, configure
from lambdas.service.errors import Conflict, NotFound
from tests.lambdas.test_api import _answer
from tests.lambdas.test_worker import run_worker
from tests.openapi_contract import assert_matches

ANNA = {"sub": "0b5e6c1e-4d1f-4bb4-9d0e-aaaaaaaaaaaa", "email": "anna@example.com", "token_use": "id"}
BEN = {"sub": "7f3a9d2c-1111-4c4c-8e8e-bbbbbbbbbbbb", "email": "ben@example.com", "token_use": "id"}
PAGE_KEY = "page-key-id"


@pytest.fixture
def me_flow(flow):
    """The flow with a page key configured, as the deployed stack sets it."""
    flow.configure(page_api_key_id=PAGE_KEY)
    return flow


def call(context, method: str, path: str, body: object = None, claims: dict | None = None, key: str = "operator"):
    """One call as API Gateway hands it to the function: ``claims`` of a verified token, the API key's id."""
    raw = b"" if body is None else json.dumps(body).encode()
    headers = [("Host", "api.example"), ("Content-Type", "application/json")]
    event = api_event(method, path, {}, headers, raw, "198.51.100.7", full_path=f"/prod{path}", api_key_id=key)
    if claims is not None:
        event["requestContext"]["authorizer"] = {"claims": claims}
    return _answer(api.lambda_handler(event, context))


def test_every_personal_route_refuses_a_call_without_a_verified_token(me_flow, lambda_context):
    # GIVEN calls that reached the function with no claims (a stage deployed without the authoriser, or a bug)
    routes = [
        ("GET", "/me", None),
        ("DELETE", "/me", None),
        ("POST", "/me/recommendations", {}),
        ("POST", "/me/profile", None),
        ("GET", "/me/requests/8c2d1a7e-3b7f-4a52-9a43-2f1d2c3b4a5e", None),
        ("POST", "/me/events", {"events": [{"movie_id": 1, "rating": 4}]}),
    ]
    for method, path, body in routes:
        for key in ("operator", PAGE_KEY):
            status, _, doc = call(lambda_context, method, path, body, key=key)
            # THEN 401 with the JSON error body, whoever's key it came with, and nothing is written
            assert status == 401 and doc["error"]["code"] == "unauthorized", (method, path, doc)
    assert me_flow.items() == [] and me_flow.depth() == 0


def test_a_person_gets_their_own_recommendations_and_only_they_and_operators_read_them(me_flow, lambda_context):
    # GIVEN Anna's account linked by an operator to user 19 of the data set
    accounts.link(me_flow.services, ANNA["sub"], 19)
    status, _, me = call(lambda_context, "GET", "/me", claims=ANNA)
    assert status == 200 and me == {"sub": ANNA["sub"], "user_id": "19", "linked": True, "email": ANNA["email"]}

    # WHEN she asks for her recommendations THEN the request is user 19's, owned by her account
    status, headers, submitted = call(lambda_context, "POST", "/me/recommendations", {"k": 5}, claims=ANNA)
    assert status == 202, submitted
    rid = submitted["request_id"]
    assert submitted["status_url"] == f"https://api.example/prod/me/requests/{rid}" == headers["Location"]
    item = me_flow.item(rid)
    assert json.loads(item["request"])["user_id"] == "19" and item["owner"] == f"person:{ANNA['sub']}"
    run_worker(me_flow, lambda_context)
    status, _, doc = call(lambda_context, "GET", f"/me/requests/{rid}", claims=ANNA)
    assert status == 200 and doc["status"] == "COMPLETED" and doc["result"]["user_id"] == 19
    assert_matches("GET", "/me/requests/{request_id}", status, doc)
    assert len(doc["result"]["items"]) == 5

    # AND Ben's token, the page (a visitor) cannot read it; an operator can
    status, _, doc = call(lambda_context, "GET", f"/me/requests/{rid}", claims=BEN)
    assert status == 403 and doc["error"]["code"] == "forbidden"
    status, _, doc = call(lambda_context, "GET", f"/recommendations/{rid}", key=PAGE_KEY)
    assert status == 403 and doc["error"]["code"] == "forbidden"
    status, _, doc = call(lambda_context, "GET", f"/recommendations/{rid}")
    assert status == 200 and doc["status"] == "COMPLETED"


def test_the_body_cannot_name_another_user(me_flow, lambda_context):
    for path, body in (
        ("/me/recommendations", {"user_id": 19}),
        ("/me/recommendations", {"user_ids": [1, 2]}),
        ("/me/recommendations", {"profile_of": 19}),
        ("/me/events", {"user_id": 19, "events": [{"movie_id": 1, "rating": 4}]}),
    ):
        status, _, doc = call(lambda_context, "POST", path, body, claims=ANNA)
        assert status == 422 and doc["error"]["code"] == "validation_error", (path, doc)
    assert me_flow.items() == [] and me_flow.depth() == 0
    assert events_service.for_user(me_flow.services, "19") == []


def test_a_new_persons_ratings_are_kept_under_their_account_and_forgotten_with_it(me_flow, lambda_context):
    # GIVEN Ben, not linked: his user id is his account's subject
    body = {"events": [{"movie_id": 1, "rating": 5}, {"movie_id": 2, "rating": 4.5, "event_id": "e2"}]}
    status, _, stored = call(lambda_context, "POST", "/me/events", body, claims=BEN)
    assert status == 200 and stored["user_id"] == BEN["sub"] and stored["stored"] == 2
    assert {e["movie_id"] for e in events_service.for_user(me_flow.services, BEN["sub"])} == {1, 2}

    # WHEN he asks for recommendations THEN they are the cold start from his events (the model does not know him)
    status, _, submitted = call(lambda_context, "POST", "/me/recommendations", {"k": 3}, claims=BEN)
    run_worker(me_flow, lambda_context)
    status, _, doc = call(lambda_context, "GET", f"/me/requests/{submitted['request_id']}", claims=BEN)
    assert doc["status"] == "COMPLETED" and doc["result"]["strategy"] == "cold_start", doc

    # AND his profile is refused as unknown (no model was trained on him)
    status, _, submitted = call(lambda_context, "POST", "/me/profile", claims=BEN)
    assert status == 202
    run_worker(me_flow, lambda_context)
    status, _, doc = call(lambda_context, "GET", f"/me/requests/{submitted['request_id']}", claims=BEN)
    assert doc["status"] == "FAILED" and doc["error"]["code"] == "unknown_user"

    # WHEN he deletes his data THEN his events and requests are gone, and Anna's untouched
    call(lambda_context, "POST", "/me/events", {"events": [{"movie_id": 3, "rating": 3}]}, claims=ANNA)
    status, _, gone = call(lambda_context, "DELETE", "/me", claims=BEN)
    assert status == 200 and gone == {
        "user_id": BEN["sub"],
        "events_deleted": 2,
        "lists_deleted": 1,
        "requests_deleted": 2,
    }
    assert events_service.for_user(me_flow.services, BEN["sub"]) == []
    assert len(events_service.for_user(me_flow.services, ANNA["sub"])) == 1


def test_deleting_a_linked_account_forgets_its_user_and_frees_the_link(me_flow, lambda_context):
    accounts.link(me_flow.services, ANNA["sub"], 19)
    call(lambda_context, "POST", "/me/events", {"events": [{"movie_id": 1, "rating": 5}]}, claims=ANNA)
    assert len(events_service.for_user(me_flow.services, "19")) == 1
    status, _, gone = call(lambda_context, "DELETE", "/me", claims=ANNA)
    assert status == 200 and gone["user_id"] == "19" and gone["events_deleted"] == 1
    assert accounts.account(me_flow.services, ANNA["sub"]).linked is False
    accounts.link(me_flow.services, BEN["sub"], 19)  # user 19 may now belong to another account


def test_one_user_belongs_to_one_account(me_flow):
    assert accounts.account_of(me_flow.services, 19) is None
    accounts.link(me_flow.services, ANNA["sub"], 19)
    assert accounts.account_of(me_flow.services, "19") == ANNA["sub"]
    with pytest.raises(Conflict, match="linked to another account"):
        accounts.link(me_flow.services, BEN["sub"], "19")
    with pytest.raises(Conflict, match="linked to user 19 already"):
        accounts.link(me_flow.services, ANNA["sub"], 20)
    accounts.unlink(me_flow.services, ANNA["sub"])
    with pytest.raises(NotFound):
        accounts.unlink(me_flow.services, ANNA["sub"])


def test_a_visitor_reads_only_what_a_visitor_submitted(me_flow, lambda_context):
    status, _, mine = call(lambda_context, "POST", "/recommendations", {"similar_to": 1, "k": 3}, key=PAGE_KEY)
    assert status == 202 and me_flow.item(mine["request_id"])["owner"] == "visitor"
    status, _, theirs = call(lambda_context, "POST", "/recommendations", {"user_id": 19})
    assert me_flow.item(theirs["request_id"])["owner"] == "operator"
    assert call(lambda_context, "GET", f"/recommendations/{mine['request_id']}", key=PAGE_KEY)[0] == 200
    assert call(lambda_context, "GET", f"/recommendations/{theirs['request_id']}", key=PAGE_KEY)[0] == 403
    assert call(lambda_context, "GET", f"/recommendations/{mine['request_id']}")[0] == 200


def test_a_batch_is_an_operators_only(me_flow, lambda_context):
    status, _, doc = call(lambda_context, "POST", "/recommendations", {"user_ids": [1, 2]}, key=PAGE_KEY)
    assert status == 403 and doc["error"]["code"] == "forbidden" and "operator" in doc["error"]["message"]
    assert me_flow.items() == [] and me_flow.depth() == 0
    assert call(lambda_context, "POST", "/recommendations", {"user_ids": [1, 2]})[0] == 202


def test_an_idempotency_key_is_its_owners_own(me_flow, lambda_context):
    headers_key = "same-key"

    def submit(key: str) -> str:
        event = api_event(
            "POST",
            "/recommendations",
            {},
            [("Content-Type", "application/json"), ("Idempotency-Key", headers_key)],
            json.dumps({"similar_to": 1}).encode(),
            "198.51.100.7",
            api_key_id=key,
        )
        status, _, doc = _answer(api.lambda_handler(event, lambda_context))
        assert status == 202
        return doc["request_id"]

    # the operator's and a visitor's uses of one key are two requests; each repeat replays its own
    first, second = submit("operator"), submit(PAGE_KEY)
    assert first != second and submit("operator") == first and submit(PAGE_KEY) == second


def test_without_a_page_key_configured_every_key_is_an_operators(flow, lambda_context):
    configure(Services(replace(flow.settings, page_api_key_id="")))
    _, _, submitted = call(lambda_context, "POST", "/recommendations", {"similar_to": 1}, key="anything")
    assert flow.item(submitted["request_id"])["owner"] == "operator"
