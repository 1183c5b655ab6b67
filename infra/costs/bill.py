"""The bill: what one million recommendation requests (or stored events) cost, hop by hop, under the assumptions."""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.costs.assumptions import HOURS_PER_MONTH, KB, MILLION, SECONDS_PER_MONTH, Assumptions
from infra.costs.flow import flow
from infra.costs.prices import PRICES, Prices, tiered


@dataclass(frozen=True)
class Line:
    """One hop's share of the cost: what is counted, and its price in USD."""

    hop: str
    quantity: str
    usd: float


def _wru(kb: float) -> int:
    return max(1, math.ceil(kb - 1e-9))


def _rru(kb: float) -> int:
    return max(1, math.ceil(kb / 4 - 1e-9))


def _xray_share(rate: float) -> float:
    """The share of a Poisson stream of ``rate`` requests/s that X-Ray's default rule records: the first request of
    each second (the reservoir), then 5% of the rest."""
    if rate <= 0:
        return 1.0
    first = -math.expm1(-rate)  # P(at least one request in a second)
    return (first + 0.05 * (rate - first)) / rate


def _kb(kb: float) -> str:
    return f"{kb:.2f} KB"


def cost_per_million(a: Assumptions = Assumptions(), prices: Prices = PRICES, first_tier: bool = True) -> list[Line]:
    """The hop-by-hop cost of 1,000,000 recommendation requests under ``a``; the last line is the total.

    ``first_tier``: API Gateway at its first-tier price (else at the tiers reached by a month at ``a.rate_rps``).
    """
    f, n = flow(a), MILLION
    b = f.batching
    gb_s = prices.lambda_gb_s(a.architecture)
    api_gb, worker_gb = a.api_memory_mb / 1024, a.worker_memory_mb / 1024
    lines: list[Line] = []

    api_calls = n * (1 + f.gets)
    if first_tier:
        apigw = api_calls / MILLION * prices.apigw_rest_tiers[0][1]
    else:
        month = a.rate_rps * SECONDS_PER_MONTH * (1 + f.gets) / MILLION  # millions of calls a month
        apigw = tiered(month, prices.apigw_rest_tiers) / month * api_calls / MILLION
    lines.append(Line("API Gateway REST (POST + GETs)", f"{api_calls / MILLION:.2f} M calls", apigw))

    lines.append(
        Line(
            "API function: requests",
            f"{api_calls / MILLION:.2f} M invocations",
            api_calls / MILLION * prices.lambda_per_million_requests,
        )
    )
    # Lambda bills whole milliseconds, per invocation.
    api_ms = n * (math.ceil(a.api_post_ms) + f.gets * math.ceil(f.get_billed_ms))
    what = "long-poll GET" if a.long_poll else "GET"
    lines.append(
        Line(
            "API function: duration",
            f"POST {math.ceil(a.api_post_ms)} ms + {f.gets:.2f} x {what} {math.ceil(f.get_billed_ms)} ms"
            f" at {a.api_memory_mb} MB",
            api_ms / 1000 * api_gb * gb_s,
        )
    )

    chunks = max(1, math.ceil(a.sqs_message_kb / prices.sqs_chunk_kb))
    lines.append(
        Line("SQS: SendMessage", f"{chunks} request per message", n * chunks / MILLION * prices.sqs_per_million)
    )
    receives = n * (2 * b.invocations_per_request + b.empty_receives_per_request)
    lines.append(
        Line(
            "SQS: event source (receive + delete per batch, empty receives)",
            f"{2 * b.invocations_per_request:.2f} + {b.empty_receives_per_request:.2f} requests per message",
            receives / MILLION * prices.sqs_per_million,
        )
    )

    invocations = n * b.invocations_per_request
    lines.append(
        Line(
            "Worker function: requests",
            f"{invocations / MILLION:.2f} M invocations (batch {b.mean_batch:.2f})",
            invocations / MILLION * prices.lambda_per_million_requests,
        )
    )
    per_invocation_ms = math.ceil(a.worker_invocation_ms + a.worker_per_request_ms * b.mean_batch)
    lines.append(
        Line(
            "Worker function: duration",
            f"{per_invocation_ms} ms per invocation ({a.worker_per_request_ms:.2f} ms per message) at"
            f" {a.worker_memory_mb} MB",
            invocations * per_invocation_ms / 1000 * worker_gb * gb_s,
        )
    )
    init_gb_s = a.cold_start_fraction * (api_calls * a.api_init_s * api_gb + invocations * a.worker_init_s * worker_gb)
    lines.append(
        Line(
            "Lambda INIT (cold starts, billed since 2025-08-01)",
            f"{a.cold_start_fraction:.1%} of invocations; {a.api_init_s:g} s / {a.worker_init_s:g} s",
            init_gb_s * gb_s,
        )
    )

    # The PENDING put is a transaction (x2 per item) when the request names a user (with its pointer) or carries an
    # Idempotency-Key (with the idem# record); the two are taken as independent.
    item_wru = _wru(a.pending_item_kb)
    in_transaction = 1 - (1 - a.named_user_fraction) * (1 - a.idempotent_fraction)
    put_wru = item_wru * (1 + in_transaction) + a.idempotent_fraction * 2 * item_wru
    update_wru = _wru(max(a.pending_item_kb, a.completed_item_kb))
    wru = n * (put_wru + update_wru)
    lines.append(
        Line(
            "DynamoDB writes (PENDING put, UpdateItem COMPLETED)",
            f"{put_wru:g} + {update_wru} WRU ({_kb(a.pending_item_kb)} -> {_kb(a.completed_item_kb)}; the put in a"
            f" transaction for {in_transaction:.0%})",
            wru / MILLION * prices.ddb_per_million_wru,
        )
    )
    lines.append(
        Line(
            "DynamoDB users table (the request's pointer, in its transaction; the worker's events Query)",
            f"{a.named_user_fraction:.0%} of requests: 2 WRU + 1 RRU",
            n * a.named_user_fraction * (2 * prices.ddb_per_million_wru + prices.ddb_per_million_rru) / MILLION,
        )
    )
    get_reads = f.gets * f.reads_per_get
    # The worker's read, then the status reads: all PENDING but the last, which finds the COMPLETED item.
    rru_per_request = _rru(a.pending_item_kb)
    if get_reads > 0:
        rru_per_request += (get_reads - 1) * _rru(a.pending_item_kb) + _rru(a.completed_item_kb)
    lines.append(
        Line(
            "DynamoDB reads (worker GetItem, status reads; consistent)",
            f"1 + {get_reads:.2f} reads, {rru_per_request:.2f} RRU",
            n * rru_per_request / MILLION * prices.ddb_per_million_rru,
        )
    )
    # Items live ttl_days; a month of 1 M requests keeps n * size * ttl / month on average (TTL deletes can lag).
    gb_month = n * a.completed_item_kb / KB / KB * min(a.ttl_days * 24 / HOURS_PER_MONTH, 1.0)
    storage = gb_month * (prices.ddb_storage_gb_month + (prices.ddb_pitr_gb_month if a.pitr else 0.0))
    lines.append(
        Line(
            "DynamoDB storage + PITR (items kept for the TTL)",
            f"{gb_month:.2f} GB-month",
            storage,
        )
    )
    s3 = n * a.s3_result_fraction * (prices.s3_put_per_1000 + f.gets * prices.s3_get_per_1000) / 1000
    lines.append(Line("S3 (results over 350 KB)", f"{a.s3_result_fraction:.1%} of results", s3))

    log_bytes = n * (a.log_bytes_per_post + f.gets * a.log_bytes_per_get) + n * (
        a.log_bytes_per_worker_message + b.invocations_per_request * a.log_bytes_per_worker_invocation
    )
    lines.append(
        Line(
            "CloudWatch Logs ingestion",
            f"{log_bytes / n:.0f} B per request",
            log_bytes / 1e9 * prices.logs_ingest_per_gb,
        )
    )
    if a.tracing:
        # One trace per API call (API Gateway samples; the API function follows its decision) and one per worker
        # invocation (Lambda samples the SQS-triggered function itself), each stream under the default rule.
        calls, r = 1 + f.gets, a.rate_rps
        traces = n * (
            calls * _xray_share(r * calls) + b.invocations_per_request * _xray_share(r * b.invocations_per_request)
        )
        lines.append(
            Line(
                "X-Ray traces (default sampling)",
                f"{traces / n:.2f} traces per request",
                traces / MILLION * prices.xray_per_million_traces,
            )
        )
    lines.append(Line("Total", "", sum(line.usd for line in lines)))
    return lines


def cost_per_million_events(a: Assumptions = Assumptions(), prices: Prices = PRICES) -> list[Line]:
    """What 1,000,000 stored events cost (``POST /events``, ``a.events_per_post`` a call); the last line is the
    total. Each event is one item of at most 1 KB in a TransactWriteItems (2 WRU) and its entry in the local index by
    storage time (counted at 2 WRU too, an upper bound), kept ``a.events_kept_days`` (events never expire: they
    are the retraining loop's training data)."""
    n = MILLION
    calls = n / a.events_per_post
    gb_s = prices.lambda_gb_s(a.architecture)
    api_gb = a.api_memory_mb / 1024
    # user, movie, rating, timestamp, received_at, ttl, keys: about 200 B (an upper bound); its entry in the index by
    # time (keys, movie, rating, timestamp) about 150 B with DynamoDB's 100 B of index overhead
    event_kb = 0.35
    days = float(a.events_kept_days)
    lines = [
        Line(
            "API Gateway REST (POST /events)",
            f"{calls / MILLION:.2f} M calls",
            calls / MILLION * prices.apigw_rest_tiers[0][1],
        ),
        Line(
            "API function: requests",
            f"{calls / MILLION:.2f} M invocations",
            calls / MILLION * prices.lambda_per_million_requests,
        ),
        Line(
            "API function: duration",
            f"{math.ceil(a.api_events_ms)} ms at {a.api_memory_mb} MB",
            calls * math.ceil(a.api_events_ms) / 1000 * api_gb * gb_s,
        ),
        Line(
            "DynamoDB writes (one transaction per call)",
            "2 WRU per event + 2 for its index entry",
            n * 4 * prices.ddb_per_million_wru / MILLION,
        ),
        Line(
            "DynamoDB storage + PITR (events are kept)",
            f"{event_kb:g} KB each, {days:g} days",
            n * event_kb / KB / KB * days * 24 / HOURS_PER_MONTH * prices.ddb_storage_gb_month
            + n * event_kb / KB / KB * days * 24 / HOURS_PER_MONTH * prices.ddb_pitr_gb_month,
        ),
        Line(
            "CloudWatch Logs ingestion",
            f"{a.log_bytes_per_events_post:g} B per call",
            calls * a.log_bytes_per_events_post / 1e9 * prices.logs_ingest_per_gb,
        ),
    ]
    if a.tracing:
        share = _xray_share(a.rate_rps)
        lines.append(
            Line(
                "X-Ray traces (default sampling)",
                f"{share:.2f} per call",
                calls * share / MILLION * prices.xray_per_million_traces,
            )
        )
    lines.append(Line("Total", "", sum(line.usd for line in lines)))
    return lines


def total(a: Assumptions = Assumptions(), prices: Prices = PRICES, first_tier: bool = True) -> float:
    """USD per million requests under ``a``."""
    return cost_per_million(a, prices, first_tier)[-1].usd
