"""The cost model against hand-computed values (infra/costs/)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.costs import __main__ as cli
from infra.costs.assumptions import MILLION_PER_MONTH_RPS, Assumptions
from infra.costs.bill import cost_per_million, cost_per_million_events
from infra.costs.capacity import concurrency_for, setting_for, worker_rps
from infra.costs.flow import batching, client_polls, long_poll_reads
from infra.costs.personalize import personalize_cost
from infra.costs.prices import PRICES, tiered

# One request in isolation: no status GETs, no X-Ray, every message its own invocation.
BARE = Assumptions(polls_per_request=0, tracing=False, achieved_batch=1, long_poll=False)


def line(a: Assumptions, hop: str) -> float:
    return next(x.usd for x in cost_per_million(a) if x.hop.startswith(hop))


def test_api_gateway_line_is_the_per_million_price_per_call():
    assert line(BARE, "API Gateway") == pytest.approx(3.50)
    assert line(replace(BARE, polls_per_request=2), "API Gateway") == pytest.approx(3 * 3.50)


def test_worker_duration_bills_whole_milliseconds():
    # 5 ms per invocation + (0.49 + 15) ms per message = 20.49 ms -> 21 ms, at 1 GB, x86.
    a = replace(BARE, worker_engine_ms=0.49)
    assert line(a, "Worker function: duration") == pytest.approx(1e6 * 0.021 * 1.0 * 0.0000166667)


def test_a_request_naming_a_user_adds_its_pointer_write_and_the_events_query():
    # The pointer in the request's transaction: 2 WRU (USD 0.625 per million each) + 1 consistent RRU (USD 0.125).
    named = replace(BARE, named_user_fraction=1.0)
    assert line(named, "DynamoDB users table") == pytest.approx(2 * 0.625 + 0.125)
    assert line(replace(BARE, named_user_fraction=0.5), "DynamoDB users table") == pytest.approx(0.6875)
    # and its PENDING put is transactional too: 2 WRU instead of 1
    assert line(named, "DynamoDB writes") == pytest.approx(4 * 0.625)


def test_a_million_stored_events_cost_four_write_units_each_and_a_call_per_post():
    # 2 WRU for the item (a transaction) + 2 for its entry in the index by time (counted transactional too)
    lines = cost_per_million_events(replace(BARE, events_per_post=10))
    by_hop = {x.hop: x.usd for x in lines}
    assert by_hop["DynamoDB writes (one transaction per call)"] == pytest.approx(4 * 0.625)
    assert by_hop["API Gateway REST (POST /events)"] == pytest.approx(0.1 * 3.50)  # 100,000 calls
    assert lines[-1].usd == pytest.approx(sum(x.usd for x in lines[:-1]))


def test_dynamodb_writes_count_item_sizes_and_transactions():
    anonymous = replace(BARE, named_user_fraction=0.0)  # a cold start: no user, no pointer
    # PENDING 0.37 KB: 1 WRU; UpdateItem to 1.95 KB: 2 WRU.
    assert line(anonymous, "DynamoDB writes") == pytest.approx(3 * 0.625)
    # With an Idempotency-Key: two items in one transaction, 2 WRU each.
    assert line(replace(anonymous, idempotent_fraction=1.0), "DynamoDB writes") == pytest.approx((4 + 2) * 0.625)
    # A 3.2 KB result (include_history) needs 4 WRU; the status read of it still 1 RRU (strongly consistent, 4 KB).
    big = replace(anonymous, completed_item_kb=3.15, polls_per_request=1)
    assert line(big, "DynamoDB writes") == pytest.approx(5 * 0.625)
    assert line(big, "DynamoDB reads") == pytest.approx(2 * 0.125)


def test_total_is_the_sum_of_the_lines():
    lines = cost_per_million(Assumptions())
    assert lines[-1].hop == "Total"
    assert lines[-1].usd == pytest.approx(sum(x.usd for x in lines[:-1]))


def test_littles_law():
    assert concurrency_for(1000, 20) == pytest.approx(20.0)
    # Batches of 10 at 100 requests/s: 10 invocations/s of 5 + 10 x 11.22 ms.
    assert concurrency_for(100, 11.22, batch=10, per_invocation_ms=5) == pytest.approx(1.172)
    assert worker_rps(1.22) == pytest.approx(819.7, abs=0.1)
    assert setting_for(11.7) == 18
    assert setting_for(0.1) == 2


def test_tiers():
    # 400 M REST calls: 333 M at 3.50, 67 M at 2.80.
    assert tiered(400, PRICES.apigw_rest_tiers) == pytest.approx(333 * 3.50 + 67 * 2.80)


def test_personalize_bills_the_minimum_tps_then_tiers():
    spread = personalize_cost(MILLION_PER_MONTH_RPS, training_hours=0, ingest_gb=0)
    assert spread["tps_hours"] == pytest.approx(730)
    assert spread["total"] == pytest.approx(730 * 0.20)
    sustained = personalize_cost(100, training_hours=0, ingest_gb=0)
    assert sustained["inference"] == pytest.approx(20_000 * 0.20 + 53_000 * 0.10)


def test_batching_window_trades_invocations_for_latency():
    idle = batching(0.01, window_s=1, batch_size=10)
    assert idle.mean_batch == pytest.approx(1.0, abs=0.01)
    assert (idle.mean_added_s, idle.max_added_s) == (0.5, 1)
    none = batching(0.01, window_s=0, batch_size=10)
    assert none.mean_added_s == 0 and none.mean_batch == pytest.approx(1.0, abs=0.01)
    busy = batching(1000, window_s=1, batch_size=10)
    assert busy.invocations_per_request == pytest.approx(0.1)
    assert busy.max_added_s == pytest.approx(10 / (1000 / 5))  # the batch fills before the window ends


def test_status_read_schedules():
    # Web page: GETs at 0.1, 0.25, 0.5 s; a request done at 0.3 s is seen by the third, 0.2 s later.
    gets, late = client_polls(0.3)
    assert (gets, late) == (3, pytest.approx(0.2))
    # Long-poll: reads at 0, 50, 150, 300 ms; done at 120 ms -> 3 reads, 150 ms waited, seen 30 ms late.
    reads, waited, seen = long_poll_reads(0.12)
    assert (reads, waited, seen) == (3, pytest.approx(0.15), pytest.approx(0.03))
    # A wait shorter than the request: reads up to 800 ms, one more at the 1 s deadline, the whole wait billed.
    assert long_poll_reads(5.0, wait_s=1.0)[:2] == (7, 1.0)


def test_cli_prints_the_tables(capsys):
    cli.main(["--window", "0", "--long-poll", "20", "--worker-ms", "2"])
    out = capsys.readouterr().out
    for heading in ("(a) One million", "(b) Sustained", "(c) Amazon Personalize", "(d) Batching", "(e) Latency"):
        assert heading in out
    assert "**Total**" in out


def test_the_retraining_loop_costs_a_week_as_counted_by_hand():
    """One run a week: the job's hours (plus the start) at the instance's rate, 9 transitions, one schedule
    invocation, the Scan of a year of events (1 RRU per 4 KB), their storage and PITR for a week, S3 storage; and
    Personalize's training hours at its rate."""
    from infra.costs.prices import PRICES
    from infra.costs.retraining import Shape, personalize_week, week

    shape = Shape("t", 1, base_gb=1.0, events_per_week=1000, train_hours=1.0, source="s", personalize_training_hours=10)
    lines = {line.hop.split(" (")[0].split(":")[0]: line.usd for line in week(shape, events_kept_weeks=52)}
    assert lines["SageMaker training"] == pytest.approx(1.1 * 0.23)
    assert lines["Step Functions"] == pytest.approx(9 * 0.025 / 1000)
    assert lines["EventBridge Scheduler"] == pytest.approx(1e-6)
    assert lines["Gather"] == pytest.approx(52_000 * 0.35 / 4 / 1e6 * 0.125)
    gb = 52_000 * 0.35 / 1024 / 1024
    assert lines["Events in DynamoDB"] == pytest.approx(gb * (0.25 + 0.20) * 12 / 52)
    assert lines["S3"] == pytest.approx((1.0 + 4 * 0.05 * 2) * 0.023 * 12 / 52)
    assert lines["Total"] == pytest.approx(sum(v for k, v in lines.items() if k != "Total"))
    assert personalize_week(shape) == pytest.approx(10 * PRICES.personalize_training_hour)


def test_the_abuse_bounds_cost_a_month_as_counted_by_hand():
    from infra.costs.guard import Usage, month

    lines = {line.hop: line.usd for line in month(Usage(2.0, 3.0, 100_000, 1.0), cloudfront_waf=True, api_waf=True)}
    assert lines["WAF on the API stage (regional web ACL)"] == pytest.approx(5 + 2 * 1 + 2.0 * 0.60)
    assert lines["WAF on CloudFront (us-east-1)"] == pytest.approx(5 + 3 * 1 + 3.0 * 0.60)
    assert lines["Cognito user pool (Essentials)"] == pytest.approx((100_000 - 10_000) * 0.015)
    assert lines["AWS Budgets"] == 0  # one budget: the first two are free
    assert lines["Long-poll slots (a conditional put and a delete per waiting GET)"] == pytest.approx(2 * 0.625)
    assert lines["Total"] == pytest.approx(sum(v for k, v in lines.items() if k != "Total"))
    without = {line.hop for line in month(Usage(2.0, 3.0, 0, 1.0), cloudfront_waf=False, api_waf=False)}
    assert not any(hop.startswith("WAF") for hop in without)
