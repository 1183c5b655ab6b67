"""The API handler on API Gateway events (moto in-process): submit, idempotency, refusals, status, the contract."""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from contract.api import COMPLETED, FAILED
from infra import openapi as spec
from lambdas.api import handler as api
from lambdas.service import store
from lambdas.service import submit as submit_service
from lambdas.service.logs import logger
from tests.lambdas.conftest import load_event
from tests.openapi_contract import assert_matches, document

ROOT = Path(__file__).resolve().parents[2]
POST, GET = "/recommendations", "/recommendations/{request_id}"


def post(context, body, headers: dict | None = None, raw: bool = False) -> tuple[int, dict, dict]:
    """POST /recommendations through the handler; returns (status, headers, parsed body)."""
    event = load_event("api_post_recommendations.json")
    event["body"] = body if raw else json.dumps(body)
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return _answer(api.lambda_handler(event, context))


def get(context, request_id: str, headers: dict | None = None, query: dict | None = None) -> tuple[int, dict, dict]:
    event = load_event("api_get_recommendation.json")
    event["path"] = f"/recommendations/{request_id}"
    event["pathParameters"] = {"request_id": request_id}
    if query:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    event["requestContext"]["path"] = f"/prod/recommendations/{request_id}"
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return _answer(api.lambda_handler(event, context))


def _answer(response: dict) -> tuple[int, dict, dict]:
    headers = dict(response.get("headers") or {})
    headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], headers, json.loads(response["body"])


KINDS = [
    ({"user_id": 19}, "user"),
    ({"user_id": "19", "k": 3, "genres": ["Comedy"], "include_history": True}, "user"),
    ({"ratings": {"1": 5, "2": 4.5, "unknown-movie": 3}}, "cold_start"),
    ({"similar_to": 1, "k": 5}, "similar"),
    ({"user_ids": [1, 2, "3"], "include_metadata": False}, "batch"),
]


@pytest.mark.parametrize(("body", "kind"), KINDS)
def test_submit_stores_a_pending_item_with_ttl_and_queues_one_message(flow, lambda_context, body, kind):
    # WHEN a valid request of each kind is POSTed through API Gateway (stage prod)
    status, headers, answer = post(lambda_context, body)

    # THEN 202 with the request id and the absolute status URL, as documented
    assert status == 202, answer
    assert_matches("POST", POST, status, answer)
    rid = answer["request_id"]
    assert answer["status"] == "PENDING"
    assert answer["status_url"] == f"https://abc123.execute-api.eu-west-1.amazonaws.com/prod/recommendations/{rid}"
    assert headers["Location"] == answer["status_url"]
    # AND the item is PENDING, with the canonical request (defaults filled in) and a TTL 7 days out
    item = flow.item(rid)
    assert item["status"] == "PENDING" and item["kind"] == kind
    stored = json.loads(item["request"])
    assert stored["k"] == body.get("k", 10) and stored["exclude_seen"] is True
    assert abs(int(item["ttl"]) - (time.time() + 7 * 86400)) < 60
    assert item["created_at"] == item["updated_at"] and item["created_at"].endswith("Z")
    # AND exactly one message carries the request id and the same request
    event = flow.receive_event()
    assert len(event["Records"]) == 1
    message = json.loads(event["Records"][0]["body"])
    assert message["request_id"] == rid and message["request"] == stored


V = "validation_error"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bad(case: str, raw: str, status: int, code: str, fragment: str, headers: dict | None = None):
    return pytest.param(raw, headers or {}, status, code, fragment, id=case)


BAD_INPUTS = [
    bad("not json", "{user_id: 19", 400, "invalid_json", "not valid JSON"),
    bad("truncated json", '{"user_id": 19', 400, "invalid_json", "not valid JSON"),
    bad("empty body", "", 422, V, "a JSON body is required"),
    bad("json null", "null", 422, V, "a JSON body is required"),
    bad("json array", "[19]", 422, V, "body: must be a JSON object"),
    bad(
        "no request kind",
        '{"k": 5}',
        422,
        V,
        "exactly one of user_id, ratings, similar_to, user_ids, profile_of is required",
    ),
    bad("two kinds", '{"user_id": 1, "similar_to": 2}', 422, V, "(got user_id, similar_to)"),
    bad("unknown field", '{"user_id": 1, "limit": 5}', 422, V, "body.limit: unknown field"),
    bad("k zero", '{"user_id": 1, "k": 0}', 422, V, "body.k: Input should be greater than or equal to 1"),
    bad("k too big", '{"user_id": 1, "k": 101}', 422, V, "body.k: Input should be less than or equal to 100"),
    bad("k as string", '{"user_id": 1, "k": "10"}', 422, V, "body.k: Input should be a valid integer"),
    bad("k as float", '{"user_id": 1, "k": 2.5}', 422, V, "body.k: Input should be a valid integer"),
    bad("bool as user", '{"user_id": true}', 422, V, "body.user_id: an id must be an integer"),
    bad("empty user", '{"user_id": ""}', 422, V, "body.user_id: an id must be"),
    bad("exclude_seen int", '{"user_id": 1, "exclude_seen": 1}', 422, V, "body.exclude_seen"),
    bad("rating text", '{"ratings": {"1": "five"}}', 422, V, "body.ratings.1: Input should be a valid number"),
    bad("rating too high", '{"ratings": {"1": 5.5}}', 422, V, "body.ratings.1: Input should be less than or equal"),
    bad("rating too low", '{"ratings": {"1": 0}}', 422, V, "body.ratings.1: Input should be greater than or equal"),
    bad("rating NaN", '{"ratings": {"1": NaN}}', 422, V, "body.ratings.1: Input should be a finite number"),
    bad("no ratings", '{"ratings": {}}', 422, V, "body.ratings: Dictionary should have at least 1 item"),
    bad("501 ratings", json.dumps({"ratings": {str(i): 4 for i in range(501)}}), 422, V, "at most 500 items"),
    bad("empty batch", '{"user_ids": []}', 422, V, "body.user_ids: List should have at least 1 item"),
    bad("99 users", json.dumps({"user_ids": list(range(99))}), 422, V, "body.user_ids: List should have at most 98"),
    bad("genres not list", '{"user_id": 1, "genres": "Comedy"}', 422, V, "body.genres"),
    bad("body over 64 KB", json.dumps({"user_id": 1, "pad": "x" * 70_000}), 413, "body_too_large", "limit is 65536"),
    bad("form body", "user_id=19", 415, "unsupported_media_type", "send application/json", FORM),
    bad("bad key", '{"user_id": 1}', 422, V, "header.Idempotency-Key", {"Idempotency-Key": "has space"}),
    bad("long key", '{"user_id": 1}', 422, V, "header.Idempotency-Key", {"Idempotency-Key": "k" * 256}),
]


@pytest.mark.parametrize(("raw", "headers", "status", "code", "fragment"), BAD_INPUTS)
def test_bad_input_is_refused_with_a_json_error_and_nothing_is_written_or_queued(
    flow, lambda_context, raw, headers, status, code, fragment
):
    # WHEN a malformed or out-of-contract request is POSTed
    got, _, answer = post(lambda_context, raw, headers, raw=True)

    # THEN the documented 4xx with {"error": {"code", "message"}}, no stack trace
    assert got == status, answer
    assert_matches("POST", POST, got, answer)
    assert answer["error"]["code"] == code
    assert fragment in answer["error"]["message"]
    assert "Traceback" not in json.dumps(answer)
    # AND nothing was stored or queued
    assert flow.items() == []
    assert flow.depth() == 0


def test_idempotency_key_replays_the_first_request_and_refuses_another_body(flow, lambda_context):
    # GIVEN a request submitted with an Idempotency-Key
    first = post(lambda_context, {"user_id": 19}, {"Idempotency-Key": "order-42"})
    rid = first[2]["request_id"]

    # WHEN it is repeated with the same body (defaults spelled out, header in another case)
    status, headers, again = post(lambda_context, {"user_id": 19, "k": 10}, {"idempotency-key": "order-42"})

    # THEN the same request id comes back, marked as a replay, and nothing more is stored or queued
    assert status == 202 and again["request_id"] == rid
    assert headers.get("Idempotent-Replayed") == "true"
    assert_matches("POST", POST, status, again)
    assert len(flow.items()) == 2  # the request and its idem#order-42 record
    assert flow.depth() == 1

    # WHEN the key is reused with a different body THEN 409 and still nothing new
    status, _, conflict = post(lambda_context, {"user_id": 20}, {"Idempotency-Key": "order-42"})
    assert status == 409 and conflict["error"]["code"] == "idempotency_conflict"
    assert_matches("POST", POST, status, conflict)
    assert len(flow.items()) == 2 and flow.depth() == 1

    # AND a replay reports the request's current status once it has finished
    assert store.finish(flow.services, rid, COMPLETED, result_json="{}", model_version="v")
    assert post(lambda_context, {"user_id": 19}, {"Idempotency-Key": "order-42"})[2]["status"] == "COMPLETED"

    # AND another key is another request
    assert post(lambda_context, {"user_id": 19}, {"Idempotency-Key": "order-43"})[2]["request_id"] != rid


def test_queue_failure_marks_the_request_failed_answers_503_and_releases_the_key(flow, lambda_context, monkeypatch):
    # GIVEN SQS cannot be reached
    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    monkeypatch.setattr(flow.services.sqs, "send_message", unreachable)

    # WHEN a request is submitted with an Idempotency-Key
    status, headers, answer = post(lambda_context, {"user_id": 19}, {"Idempotency-Key": "retry-me"})

    # THEN 503 queue_unavailable, with Retry-After, and the stored request reads FAILED (never PENDING forever)
    assert status == 503 and answer["error"]["code"] == "queue_unavailable"
    assert headers.get("Retry-After") == "1"
    assert_matches("POST", POST, status, answer)
    [item] = flow.items()
    assert item["status"] == "FAILED" and item["error"]["code"] == "queue_unavailable"

    # WHEN SQS is back and the client retries with the same key THEN it is a new, queued request
    monkeypatch.undo()
    status, _, retried = post(lambda_context, {"user_id": 19}, {"Idempotency-Key": "retry-me"})
    assert status == 202 and retried["request_id"] != item["request_id"]
    assert flow.depth() == 1


def test_status_of_pending_completed_and_failed_requests(flow, lambda_context):
    # GIVEN three submitted requests
    ids = [post(lambda_context, {"user_id": u})[2]["request_id"] for u in (1, 2, 3)]
    result = {"strategy": "personalized", "user_id": 2, "items": [{"movie_id": 5, "score": 1.5}], "model_version": "v1"}
    store.finish(flow.services, ids[1], COMPLETED, result_json=json.dumps(result), model_version="v1")
    store.finish(flow.services, ids[2], FAILED, error={"code": "unknown_movie", "message": "movie 9 unknown"})

    # WHEN each is read THEN 200 with its state, as documented
    docs = []
    for rid in ids:
        status, _, doc = get(lambda_context, rid)
        assert status == 200
        assert_matches("GET", GET, status, doc)
        docs.append(doc)
    assert docs[0]["status"] == "PENDING" and "result" not in docs[0] and "error" not in docs[0]
    # a result stored without a variant (before experiments) reads as the served model's
    assert docs[1]["status"] == "COMPLETED" and docs[1]["result"] == {**result, "variant": "served"}
    assert docs[1]["model_version"] == "v1"
    assert docs[2]["status"] == "FAILED" and docs[2]["error"]["code"] == "unknown_movie"
    assert docs[0]["expires_at"] > docs[0]["created_at"]


def test_status_reads_a_result_stored_in_s3(flow, lambda_context):
    # GIVEN a COMPLETED request whose result is in S3 (too large for its item)
    rid = post(lambda_context, {"user_ids": [1, 2]})[2]["request_id"]
    result = {"strategy": "batch", "results": [], "model_version": "v1"}
    key = f"results/{rid}.json"
    flow.services.s3.put_object(Bucket=flow.settings.bucket_name, Key=key, Body=json.dumps(result).encode())
    store.finish(flow.services, rid, COMPLETED, result_s3_key=key, model_version="v1")

    # WHEN it is read THEN the result comes from S3
    status, _, doc = get(lambda_context, rid)
    assert status == 200 and doc["result"] == {**result, "variant": "served"}
    assert_matches("GET", GET, status, doc)


@pytest.mark.parametrize(
    ("request_id", "status", "code"),
    [
        ("not-a-uuid", 400, "invalid_request_id"),
        ("2f1d7c1e-8a7b-4c3d-9e5f-0a1b2c3d4e5", 400, "invalid_request_id"),
        ("0b0e7c2a-5d4f-4e6a-9c1b-3f2e1d0c9b8a", 404, "not_found"),  # a well-formed id never issued
    ],
)
def test_malformed_or_unknown_request_id(flow, lambda_context, request_id, status, code):
    got, _, answer = get(lambda_context, request_id)
    assert (got, answer["error"]["code"]) == (status, code)
    assert_matches("GET", GET, got, answer)


def test_unknown_route_and_unexpected_errors_answer_json_without_details(flow, lambda_context, monkeypatch):
    event = load_event("api_get_recommendation.json")
    event["path"] = "/no-such-route"
    status, _, answer = _answer(api.lambda_handler(event, lambda_context))
    assert status == 404 and answer["error"]["code"] == "not_found"

    # GIVEN a bug in the service THEN a 500 that says nothing about it
    def broken(*_args, **_kw):
        raise KeyError("secret internals")

    monkeypatch.setattr(submit_service, "submit", broken)
    status, _, answer = post(lambda_context, {"user_id": 1})
    assert status == 500 and answer == {"error": {"code": "internal_error", "message": "internal error"}}
    assert_matches("POST", POST, status, answer)


APP_ORIGIN, OTHER_ORIGIN = "https://app.example", "https://admin.example"


@pytest.fixture
def handler_with_cors():
    """Re-import the handler with ``CORS_ALLOW_ORIGINS`` set to a value (or unset: None), as a cold start would.

    The resolver is built at import time from the environment; afterwards the module is re-imported as it was.
    """
    with pytest.MonkeyPatch.context() as env:

        def load(origins: str | None):
            if origins is None:
                env.delenv("CORS_ALLOW_ORIGINS", raising=False)
            else:
                env.setenv("CORS_ALLOW_ORIGINS", origins)
            return importlib.reload(api)

        yield load
    importlib.reload(api)


def cors_headers(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


def test_with_cors_origins_set_every_answer_allows_those_origins(flow, lambda_context, handler_with_cors):
    # GIVEN the API function is configured with two origins (as the stack does from its cors_origins context)
    handler_with_cors(f"{APP_ORIGIN}, {OTHER_ORIGIN}")

    # WHEN a browser on an allowed origin submits a request
    status, headers, answer = post(lambda_context, {"user_id": 19}, {"Origin": OTHER_ORIGIN})

    # THEN the answer allows that origin and lets its scripts read Location and Idempotent-Replayed
    assert status == 202, answer
    assert headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN
    exposed = {h.strip() for h in headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Idempotent-Replayed", "Retry-After"} <= exposed
    assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]
    # AND so do the status read and the errors: resolver refusals, service errors and the pre-parse checks
    answers = [
        get(lambda_context, answer["request_id"], {"origin": APP_ORIGIN}),
        post(lambda_context, {"user_id": 1, "k": 0}, {"Origin": APP_ORIGIN}),
        get(lambda_context, str(uuid.uuid4()), {"Origin": APP_ORIGIN}),
        post(lambda_context, "user_id=19", {"Origin": APP_ORIGIN, "Content-Type": "text/plain"}, raw=True),
    ]
    assert [a[0] for a in answers] == [200, 422, 404, 415]
    assert all(a[1]["Access-Control-Allow-Origin"] == APP_ORIGIN for a in answers), [a[1] for a in answers]

    # WHEN the origin is not one of them, or the caller is no browser (no Origin)
    for extra in ({"Origin": "https://evil.example"}, {}):
        status, headers, _ = post(lambda_context, {"user_id": 19}, extra)
        # THEN the request is served, without any CORS header
        assert status == 202 and cors_headers(headers) == {}
    status, headers, _ = post(lambda_context, "x" * 70_000, {"Origin": "https://evil.example"}, raw=True)
    assert status == 413 and cors_headers(headers) == {}


def test_without_cors_origins_answers_carry_no_cors_headers(flow, lambda_context, handler_with_cors):
    # GIVEN no origins configured (the default)
    handler_with_cors(None)

    # WHEN a browser submits a request and reads it back
    status, headers, answer = post(lambda_context, {"user_id": 19}, {"Origin": APP_ORIGIN})
    got, read_headers, _ = get(lambda_context, answer["request_id"], {"Origin": APP_ORIGIN})
    refused, refused_headers, _ = post(lambda_context, "x" * 70_000, {"Origin": APP_ORIGIN}, raw=True)

    # THEN no answer carries a CORS header
    assert (status, got, refused) == (202, 200, 413)
    assert cors_headers(headers) == cors_headers(read_headers) == cors_headers(refused_headers) == {}


def test_every_log_line_is_json_and_names_the_request(flow, lambda_context):
    # GIVEN the shared logger writes into a buffer (its handler holds the stream it was created with)
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    try:
        # WHEN a request is submitted and read back
        rid = post(lambda_context, {"user_id": 19})[2]["request_id"]
        get(lambda_context, rid)
    finally:
        logger.registered_handler.setStream(previous)
    # THEN every line is a JSON object carrying the request id and API Gateway's request id
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    assert lines, "the API logged nothing"
    assert all(line.get("request_id") == rid for line in lines)
    assert all(line["correlation_id"] for line in lines)


def test_openapi_document_is_generated_from_the_code_and_valid():
    from openapi_spec_validator import validate

    # THEN the committed document is what the routes and models generate (regenerate: python -m infra.openapi)
    assert spec.render(spec.build()) == api.OPENAPI_PATH.read_text()
    validate(document())
    # AND it documents the decisions on unknown movie ids
    text = json.dumps(document())
    assert "unknown_movies" in text and "unknown_movie" in text


def test_the_docs_api_reference_is_rendered_from_the_committed_document():
    from infra import api_reference

    # THEN the page is what the committed document renders to (regenerate: make openapi)
    rendered = api_reference.render(document())
    assert rendered == api_reference.PAGE.read_text(), "docs/api-reference.md is stale: run make openapi"
    # AND every operation and schema of the document has its section
    for path, operations in document()["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in rendered
    for name in document()["components"]["schemas"]:
        assert f"### {name}\n" in rendered


def test_openapi_document_is_served(flow, lambda_context):
    event = load_event("api_get_recommendation.json")
    event["path"] = "/openapi.json"
    status, _, doc = _answer(api.lambda_handler(event, lambda_context))
    assert status == 200 and doc == document()


def test_handlers_import_with_only_the_lambda_bundle_and_the_api_needs_no_numpy():
    # Lambda packages: lambdas/requirements.txt (installed --no-deps) + boto3 from the runtime; nothing else.
    allowed = {
        "lambdas", "contract", "boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six",
        "aws_lambda_powertools", "pydantic", "pydantic_core", "annotated_types", "typing_extensions",
        "typing_inspection", "numpy", "onnxruntime",
    }  # fmt: skip
    code = textwrap.dedent(
        f"""
        import sys
        allowed = {sorted(allowed)!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in allowed and not top.startswith("_"):
                    raise ImportError("not in the Lambda bundle: " + name)
        sys.meta_path.insert(0, Block())
        import lambdas.api.handler
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "onnxruntime"))
        assert not heavy, heavy
        import lambdas.worker.handler
        import lambdas.service.model_store, lambdas.engine
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
    requirements = (ROOT / "lambdas" / "requirements.txt").read_text().lower()
    for dist in ("aws-lambda-powertools", "pydantic", "pydantic-core", "annotated-types", "typing-extensions"):
        assert f"\n{dist}==" in requirements, f"{dist} is not pinned in lambdas/requirements.txt"


def test_the_spec_publishes_the_contracts_long_poll_limit():
    """The client, the API function and the load test read contract.api; the document callers read says the same."""
    from contract.api import MAX_WAIT_S

    params = json.loads((ROOT / "lambdas" / "api" / "openapi.json").read_text())["paths"][
        "/recommendations/{request_id}"
    ]["get"]["parameters"]
    wait = next(p for p in params if p["name"] == "wait")
    assert wait["schema"]["maximum"] == MAX_WAIT_S
