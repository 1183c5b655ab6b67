"""The local gateway's usage plans (infra.local.throttle): the page's calls and an operator's are held apart, as
API Gateway holds them deployed (the figures under a real flood: bench.flood, docs/security.md)."""

from __future__ import annotations

import multiprocessing as mp

import werkzeug.test

from infra.local.gateway import Gateway
from infra.local.throttle import Limits, Throttle, TokenBucket

KEY = "operator-key"
NEVER = 1e-9  # a refill rate that adds no token during a test


def gateway(limits: Limits) -> tuple[werkzeug.test.Client, list[dict]]:
    served: list[dict] = []

    def invoke(event: dict) -> dict:
        served.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}

    app = Gateway(invoke, api_key=KEY, throttle=Throttle(limits, mp.get_context("spawn")))
    return werkzeug.test.Client(app), served


def test_a_flood_through_the_page_is_held_to_its_plan_and_operators_are_still_served():
    client, served = gateway(Limits(page_rate=NEVER, page_burst=3, operator_rate=NEVER, operator_burst=10))
    page = [client.get("/api/movies?q=toy") for _ in range(20)]
    assert [r.status_code for r in page] == [200] * 3 + [429] * 17
    refused = page[-1]
    assert refused.json == {"error": {"code": "throttled", "message": "Too Many Requests"}}
    assert refused.headers["Content-Type"] == "application/json"
    assert len(served) == 3  # a refused call never reaches the function
    # the page's refused calls took nothing from the stage: an operator has the rest of it (10 - 3 = 7)
    operator = [client.get("/movies?q=toy", headers={"x-api-key": KEY}) for _ in range(8)]
    assert [r.status_code for r in operator] == [200] * 7 + [429]
    assert len(served) == 10


def test_a_call_refused_for_its_key_costs_no_token():
    client, served = gateway(Limits(page_rate=NEVER, page_burst=1, operator_rate=NEVER, operator_burst=2))
    for _ in range(5):
        assert client.get("/movies", headers={"x-api-key": "wrong"}).status_code == 403
    assert [client.get("/movies", headers={"x-api-key": KEY}).status_code for _ in range(3)] == [200, 200, 429]
    assert len(served) == 2


def test_a_bucket_refills_at_its_rate_up_to_its_burst():
    clock = [100.0]
    bucket = TokenBucket(rate=2.0, burst=4, ctx=mp.get_context("spawn"), clock=lambda: clock[0])
    assert [bucket.take() for _ in range(5)] == [True] * 4 + [False]
    clock[0] += 1.0  # 2 tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock[0] += 60.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 4
