"""What the deployed request flow costs and how long it takes, from AWS list prices and our own benchmarks.

``python -m infra.costs`` prints markdown tables: the cost of one million recommendation requests hop by hop
(API Gateway REST -> API function -> SQS -> worker function -> DynamoDB, with the status polls or the long-poll),
the worker concurrency and the monthly bill at 100 and 1,000 requests/s sustained, the managed alternative (Amazon
Personalize real-time recommendations) for the same traffic, the batching-window trade-off, and the latency budget.

This is a model, not a bill. Prices are us-east-1 list prices without free tiers, savings plans or taxes (``PRICES``,
each with its source in ``SOURCES``); durations are our benchmarks where we have them and marked assumptions where
we do not (nothing here was measured in AWS). Every number that matters is a field of ``Assumptions``, and the CLI
takes the ones that move the result most (``--worker-ms``, ``--api-ms``, ``--window``, ``--long-poll`` ...).
Standard library only, so that it runs anywhere the repository is checked out.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from infra.config import StackConfig
from lambdas.service import status
from lambdas.settings import Settings

CONFIG = StackConfig()
HOURS_PER_MONTH = 730.0  # the AWS pricing calculator's month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MILLION = 1_000_000
# 1,000,000 requests spread evenly over one month: the rate at which "the cost of a million requests" is evaluated.
MILLION_PER_MONTH_RPS = MILLION / SECONDS_PER_MONTH
KB = 1024  # DynamoDB sizes are binary: 1 KB = 1024 bytes

# Short polling as the web page did before it long-polled (its old POLL_DELAYS_MS): the wait before each GET, the
# last one repeated; kept to price the alternative.
WEB_POLL_DELAYS_MS = (100, 150, 250, 400, 600, 800, 1000)
# The long-poll's table reads inside one GET ?wait=S: the pause after each read, the last one repeated (from
# lambdas/service/status.py, which the API function runs).
# Each is a consistent GetItem of the whole item; the read that finds it finished is the answer.
LONG_POLL_DELAYS_MS = tuple(round(d * 1000) for d in (*status.POLL_SCHEDULE_S, status.POLL_INTERVAL_S))


# ---------------------------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices in USD (first tier unless a tier table is given); sources in ``SOURCES``."""

    # API Gateway REST API, per million calls: first 333 M a month, next 667 M, next 19 B, beyond (tiers as pairs of
    # (millions of calls in the tier, price per million)). Source: API Gateway pricing page / AWS whitepaper table.
    apigw_rest_tiers: tuple[tuple[float, float], ...] = ((333, 3.50), (667, 2.80), (19_000, 2.38), (math.inf, 1.51))
    # Lambda: per million requests (both architectures) and per GB-second, first tier (6 B / 7.5 B GB-s a month).
    lambda_per_million_requests: float = 0.20
    lambda_gb_s_x86: float = 0.0000166667
    lambda_gb_s_arm: float = 0.0000133334
    # SQS standard queue, per million requests (first 100 B a month); each 64 KB chunk of a payload is one request.
    sqs_per_million: float = 0.40
    sqs_chunk_kb: float = 64.0
    # DynamoDB on demand, after the November 2024 cut (halved from 1.25 / 0.25): per million write / read request units.
    ddb_per_million_wru: float = 0.625
    ddb_per_million_rru: float = 0.125
    # DynamoDB Standard table storage per GB-month (beyond 25 GB free) and point-in-time recovery per GB-month.
    ddb_storage_gb_month: float = 0.25
    ddb_pitr_gb_month: float = 0.20  # UNVERIFIED: not found in the stored pages; the value we believe
    # S3 Standard requests, per 1,000.
    s3_put_per_1000: float = 0.005
    s3_get_per_1000: float = 0.0004
    # CloudWatch Logs standard ingestion per GB (Lambda logs are tiered since May 2025; this is the first tier).
    logs_ingest_per_gb: float = 0.50
    # X-Ray, per million traces recorded.
    xray_per_million_traces: float = 5.00
    # Amazon Personalize (custom solutions, recipes other than the -v2 ones): real-time recommendations per TPS-hour
    # by monthly tier (TPS-hours in the tier, price), training per training hour, data ingestion per GB.
    personalize_tps_hour_tiers: tuple[tuple[float, float], ...] = ((20_000, 0.20), (180_000, 0.10), (math.inf, 0.05))
    personalize_training_hour: float = 0.24
    personalize_ingest_per_gb: float = 0.05

    def lambda_gb_s(self, architecture: str) -> float:
        """The per-GB-second price of ``x86_64`` or ``arm64``."""
        return self.lambda_gb_s_arm if architecture == "arm64" else self.lambda_gb_s_x86


PRICES = Prices()


@dataclass(frozen=True)
class Source:
    """Where a price comes from, when it was read, and whether the stored text carried the number itself."""

    item: str
    value: str
    where: str
    verified: bool
    note: str = ""


READ_ON = "2026-12-02"
SOURCES: tuple[Source, ...] = (
    Source(
        "API Gateway REST, per million calls",
        "3.50 (first 333 M), 2.80, 2.38, 1.51",
        "AWS whitepaper 'Best Practices for Designing Amazon API Gateway Private APIs', Cost optimization, table 4 "
        "(docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
        "cost-optimization.html); aws.amazon.com/api-gateway/pricing/",
        True,
    ),
    Source(
        "Lambda, per million requests / per GB-s x86 / arm64",
        "0.20 / 0.0000166667 / 0.0000133334",
        "aws.amazon.com/lambda/pricing/ (rates rendered client-side; the stored copy shows 0.20/M and 0.00001667 in "
        "its examples); Lambda's own rate table in artillery's lib/platform/aws-lambda/prices.js (x86 1666670, arm "
        "1333340 per 1e-11); cloudchipr.com 'AWS Lambda Pricing' (tiers)",
        True,
        "1 ms billing granularity; INIT (cold start) billed for ZIP/managed runtimes since 2025-08-01 (AWS Compute "
        "Blog 'AWS Lambda standardizes billing for INIT phase')",
    ),
    Source(
        "SQS standard, per million requests",
        "0.40 (first 100 B); 64 KB chunks",
        "cloudburn.io 'Amazon SQS Pricing' (March 2026); factualminds.com 'Amazon SQS Pricing: The 64 KB Rule' "
        "(June 2026); the AWS page text was not in the store",
        False,
        "third-party, consistent; empty receives count",
    ),
    Source(
        "DynamoDB on demand, per million WRU / RRU",
        "0.625 / 0.125",
        "airbyte.com 'Amazon DynamoDB Pricing' (July 2025: 'after the 50% reduction ... late 2024'); jusdb.com "
        "(Aug 2025: effective 2024-11-01); unit rules from aws.amazon.com/dynamodb/pricing/on-demand",
        False,
        "third-party for the numbers; AWS for 1 WRU per 1 KB, 1 RRU per 4 KB strongly consistent, x2 in transactions",
    ),
    Source(
        "DynamoDB storage / PITR, per GB-month",
        "0.25 / 0.20",
        "aws.amazon.com/dynamodb/pricing/ (storage: 'prices start from $0.25 per GB-month'); PITR not found",
        False,
        "PITR value unverified",
    ),
    Source(
        "S3 Standard PUT / GET, per 1,000",
        "0.005 / 0.0004",
        "c3x.dev 'S3 request fees explained'; cloudkaramchari.com",
        False,
        "third-party; used only for results over 350 KB",
    ),
    Source(
        "CloudWatch Logs ingestion, per GB",
        "0.50",
        "duckbillgroup.com (Lambda logs tiering, May 2025: first tier 0.50 in us-east-1); c3x.dev (June 2026)",
        False,
        "third-party",
    ),
    Source(
        "X-Ray, per million traces recorded",
        "5.00; default sampling 1/s + 5%",
        "aws.amazon.com/de/xray/pricing/ (5 USD per million recorded, 100,000 free); tsypuk.github.io (default rule)",
        True,
    ),
    Source(
        "Personalize real-time, per TPS-hour",
        "0.20 (first 20,000 TPS-h/month), 0.10 (next 180,000), 0.05 (over 200,000)",
        "a public cost playbook for Amazon Personalize on GitHub ('Last Updated: July 2026'); the AWS page "
        "(aws.amazon.com/personalize/pricing/) was stored only in German, without numbers",
        False,
        "billing unit and minimum (1 TPS per active campaign, max(min, actual) per 5 minutes) from the AWS "
        "CreateCampaign API reference",
    ),
    Source(
        "Personalize training hour / ingestion per GB",
        "0.24 / 0.05",
        "same playbook",
        False,
    ),
    Source(
        "Personalize User-Personalization-v2",
        "not found",
        "docs.aws.amazon.com/personalize/latest/dg/native-recipe-user-personalization-v2.html says it 'uses a "
        "different pricing model than other recipes'; the numbers were not in the stored pages",
        False,
        "not modelled",
    ),
)


def tiered(quantity: float, tiers: Sequence[tuple[float, float]]) -> float:
    """The price of ``quantity`` units under ``(units in the tier, price per unit)`` tiers, cheapest last."""
    total, left = 0.0, quantity
    for size, price in tiers:
        used = min(left, size)
        total += used * price
        left -= used
        if left <= 0:
            break
    return total


# ---------------------------------------------------------------------------------------------- assumptions


@dataclass(frozen=True)
class Assumptions:
    """Everything the model needs besides prices; defaults: the stack's configuration and our benchmarks."""

    rate_rps: float = MILLION_PER_MONTH_RPS  # arrival rate (batching, sampling and empty receives depend on it)
    architecture: str = CONFIG.architecture
    api_memory_mb: int = CONFIG.api_memory_mb
    worker_memory_mb: int = CONFIG.worker_memory_mb
    # API function, warm, per call. UNMEASURED in AWS (assumption): POST = validation + one TransactWriteItems (the
    # item and the user's request pointer) + SendMessage, GET = one consistent GetItem; both with Powertools routing
    # and a log line.
    api_post_ms: float = 25.0
    api_get_ms: float = 20.0
    # Worker, per message: the engine's p50 from `make bench` (README, 2026-12-02's last run: 0.89 ms on
    # ml-latest-small, 4.71 ms with 100,000 movies), plus the three DynamoDB calls it waits for (GetItem, the user's
    # events Query, UpdateItem; assumption: 5 ms each).
    worker_engine_ms: float = 0.89
    worker_io_ms: float = 15.0
    # Worker, per invocation (per batch): handler entry, BatchProcessor, the cached model lookup (assumption).
    worker_invocation_ms: float = 5.0
    batch_size: int = CONFIG.batch_size
    batching_window_s: float = float(CONFIG.batching_window_s)
    # Messages per invocation actually achieved; None: from the batching model at ``rate_rps``.
    achieved_batch: float | None = None
    # Concurrent SQS pollers: Lambda keeps 5 when idle, and max_concurrency disables the scale-down to 2.
    pollers: int = 5
    sqs_receive_ms: float = 20.0  # a receive that finds a message, round trip (assumption)
    sqs_long_poll_s: float = 20.0  # an empty long-poll receive's wait (the queue's ReceiveMessageWaitTime)
    # Status reads. Short polling: GETs per request; None: from the web page's schedule and the completion time.
    polls_per_request: float | None = None
    client_poll_delays_ms: tuple[float, ...] = WEB_POLL_DELAYS_MS
    # Long-poll (GET ?wait=S, the function reads the table until COMPLETED or S seconds): on or off, S, schedule.
    long_poll: bool = True  # the web page and infra.client long-poll
    long_poll_wait_s: float = 20.0  # the API's maximum, which infra.client asks for
    long_poll_delays_ms: tuple[float, ...] = LONG_POLL_DELAYS_MS
    # Latency hops (ms) that are not our code: SQS ESM pickup after a send, Lambda's invoke of the worker.
    esm_pickup_ms: float = 20.0  # assumption: long-polling pollers return as soon as a message is available
    invoke_overhead_ms: float = 10.0  # assumption
    # Item and message sizes in KB (1024 B), measured with the served artifact for {"user_id": 19, "k": 10}:
    # PENDING 367 B; COMPLETED 1,992 B (3,222 B with include_history; 16,360 B for a 10-user batch); message 314 B.
    pending_item_kb: float = 0.37
    completed_item_kb: float = 1.95
    sqs_message_kb: float = 0.31
    idempotent_fraction: float = 0.0  # POSTs with an Idempotency-Key: TransactWriteItems of two items instead
    # Requests naming one user (user_id, profile_of; the measured request is one): the PENDING put becomes one
    # TransactWriteItems with the r# pointer under the user (x2: the item's WRU and the pointer's 1 WRU, doubled),
    # and the worker makes a consistent Query of their events (1 RRU up to 4 KB, about 40 events).
    named_user_fraction: float = 1.0
    # POST /events (priced per million stored events, table (a3)): events per call, the API function's warm time
    # (validation, the cached movie index, one TransactWriteItems; assumption), the call's log bytes.
    events_per_post: float = 1.0
    api_events_ms: float = 20.0
    log_bytes_per_events_post: float = 1250.0
    s3_result_fraction: float = 0.0  # results over 350 KB, written to and read from S3 instead
    ttl_days: float = float(CONFIG.result_ttl_days)
    pitr: bool = True
    # Logs (assumptions; CloudWatch counts uncompressed event bytes): every API call writes Lambda's START/END/REPORT
    # lines (~400 B) and an API Gateway access-log line (~300 B); a POST adds its "request accepted" Powertools line
    # (~550 B); the worker writes one line per message (~600 B) and the platform lines per invocation.
    log_bytes_per_post: float = 1250.0
    log_bytes_per_get: float = 700.0
    log_bytes_per_worker_message: float = 600.0
    log_bytes_per_worker_invocation: float = 400.0
    tracing: bool = True  # the stack turns on X-Ray for API Gateway and both functions
    # Cold starts: share of invocations that start a new environment, and the INIT each one bills (assumptions;
    # the worker's includes the 53 MB artifact download and the engine's 0.27 s load from `make bench`).
    cold_start_fraction: float = 0.002
    api_init_s: float = 0.6
    worker_init_s: float = 2.0

    @property
    def worker_per_request_ms(self) -> float:
        """The worker's time per message (engine + its DynamoDB calls)."""
        return self.worker_engine_ms + self.worker_io_ms


@dataclass(frozen=True)
class Line:
    """One hop's share of the cost: what is counted, and its price in USD."""

    hop: str
    quantity: str
    usd: float


# ---------------------------------------------------------------------------------------------- batching model


@dataclass(frozen=True)
class Batching:
    """The SQS event source's batching at one arrival rate (a model; see ``batching``)."""

    mean_batch: float  # messages per worker invocation
    invocations_per_request: float
    mean_added_s: float  # the wait a message spends in a batch being gathered (beyond the pickup)
    max_added_s: float
    empty_receives_per_request: float


def batching(
    rate_rps: float,
    window_s: float,
    batch_size: int,
    pollers: int = 5,
    receive_s: float = 0.020,
    invocation_s: float = 0.005,
    per_message_s: float = 0.011,
    long_poll_s: float = 20.0,
) -> Batching:
    """Model the event source mapping's batches: invocations per request and added latency.

    Arrivals are Poisson at ``rate_rps``, shared evenly by ``pollers`` pollers (rate ``lam`` each). Lambda invokes
    when the batch is full, the batching window expires or the payload reaches 6 MB, and with SQS the next window
    starts as soon as the previous invocation completes (Lambda developer guide, event source mappings), so windows
    follow each other back to back and a message waits for the rest of the window it lands in:

    * ``window_s > 0``: a poller gathers for ``g = min(window, time to fill the batch)``; a batch holds
      ``E[N | N >= 1]`` messages with ``N ~ Poisson(lam * g)`` (capped at the batch size); a message waits ``g / 2``
      on average, ``g`` at most. An idle window costs no invocation.
    * ``window_s == 0``: a long-poll receive returns as soon as a message is there, so a batch is that message plus
      those that arrived while the poller was busy with its receive and its previous invocation (a fixed point); no
      added wait.

    Empty receives: a poller's 20 s long poll comes back empty with probability ``exp(-lam * 20)``. A model, not a
    measurement: the local stack's measured version of this trade-off belongs beside it.
    """
    if rate_rps <= 0:
        raise ValueError("rate_rps must be positive")
    if batch_size < 1 or pollers < 1 or window_s < 0:
        raise ValueError("batch_size and pollers must be >= 1 and window_s >= 0")
    lam = rate_rps / pollers
    if window_s > 0:
        gather = min(window_s, batch_size / lam)
        n = lam * gather
        mean_batch = min(float(batch_size), n / -math.expm1(-n)) if n > 1e-12 else 1.0
        added, worst = gather / 2, gather
    else:
        mean_batch = 1.0
        for _ in range(50):  # busy time grows with the batch it gathers: iterate to the fixed point
            busy = receive_s + invocation_s + per_message_s * mean_batch
            mean_batch = min(float(batch_size), 1.0 + lam * busy)
        added, worst = 0.0, 0.0
    empty = pollers * math.exp(-lam * long_poll_s) / long_poll_s / rate_rps
    return Batching(mean_batch, 1.0 / mean_batch, added, worst, empty)


def batching_for(a: Assumptions) -> Batching:
    """``batching`` with the assumptions' rate, window, sizes and durations; ``achieved_batch`` overrides the size."""
    b = batching(
        a.rate_rps,
        a.batching_window_s,
        a.batch_size,
        a.pollers,
        a.sqs_receive_ms / 1000,
        a.worker_invocation_ms / 1000,
        a.worker_per_request_ms / 1000,
        a.sqs_long_poll_s,
    )
    if a.achieved_batch is not None:
        b = replace(b, mean_batch=a.achieved_batch, invocations_per_request=1.0 / a.achieved_batch)
    return b


# ---------------------------------------------------------------------------------------------- status reads


def _times(delays_ms: Sequence[float]) -> list[float]:
    """Read times (s, the first at 0) under a delay schedule whose last delay repeats, up to 5 minutes."""
    t, out, i = 0.0, [], 0
    while t < 300:
        out.append(t)
        t += delays_ms[min(i, len(delays_ms) - 1)] / 1000
        i += 1
    return out


def client_polls(completion_s: float, delays_ms: Sequence[float] = WEB_POLL_DELAYS_MS) -> tuple[int, float]:
    """GETs a client makes (sleeping ``delays_ms[i]`` before GET i) to see a request completed ``completion_s`` after
    its POST returned, and how long after completion the seeing GET comes."""
    t = 0.0
    for i in range(10_000):
        t += delays_ms[min(i, len(delays_ms) - 1)] / 1000
        if t >= completion_s:
            return i + 1, t - completion_s
    raise ValueError("the request never completes within the poll schedule")


def long_poll_reads(
    completion_s: float, wait_s: float = 20.0, delays_ms: Sequence[float] = LONG_POLL_DELAYS_MS
) -> tuple[int, float, float]:
    """Table reads one long-poll GET makes (its first read when the GET arrives, ``completion_s`` before completion),
    the seconds the function waits, and the delay between completion and the read that sees it. A pause is cut
    short at the deadline, where one last read is made; a wait that ends before completion counts the reads made
    and the whole wait (the client then asks again)."""
    reads = 0
    for t in _times(delays_ms):
        t = min(t, wait_s)
        reads += 1
        if t >= completion_s:
            return reads, t, t - completion_s
        if t >= wait_s:
            break
    return reads, wait_s, math.inf


# ---------------------------------------------------------------------------------------------- the flow


@dataclass(frozen=True)
class Flow:
    """Per recommendation request: calls, durations and sizes that the prices apply to."""

    batching: Batching
    completion_s: float  # mean time from the POST's answer to the item being COMPLETED
    gets: float  # GET calls per request
    get_billed_ms: float  # billed ms per GET (a long-poll includes its wait)
    reads_per_get: float  # table reads per GET
    detection_s: float  # mean delay between completion and the client seeing it


def _completion_points(a: Assumptions, b: Batching, points: int = 21, spread: float = 0.5) -> list[float]:
    """Completion times to average over: the message lands uniformly within the window it waits in, and the hops
    outside the window vary uniformly by +-``spread`` around their means (an assumption: they are not measured)."""
    base = (
        a.esm_pickup_ms
        + a.invoke_overhead_ms
        + a.worker_invocation_ms
        + a.worker_per_request_ms * (b.mean_batch + 1) / 2  # its place in the batch
    ) / 1000
    window = [(i + 0.5) / points for i in range(points)]
    hops = [(i + 0.5) / 7 for i in range(7)]
    return [base * (1 - spread + 2 * spread * u) + b.max_added_s * v for u in hops for v in window]


def flow(a: Assumptions) -> Flow:
    """The per-request calls of the deployed flow under ``a`` (averaged over where a message lands in its window)."""
    b = batching_for(a)
    points = _completion_points(a, b)
    completion = sum(points) / len(points)
    if a.long_poll:
        rows = [long_poll_reads(t, a.long_poll_wait_s, a.long_poll_delays_ms) for t in points]
        if any(math.isinf(r[2]) for r in rows):
            raise ValueError("a request outlives the long-poll's wait: raise long_poll_wait_s")
        reads = sum(r[0] for r in rows) / len(rows)
        waited = sum(r[1] for r in rows) / len(rows)
        detection = sum(r[2] for r in rows) / len(rows)
        gets = a.polls_per_request if a.polls_per_request is not None else 1.0
        # the reads while waiting; the one that finds the request finished is the answer
        return Flow(b, completion, gets, a.api_get_ms + waited * 1000, reads, detection)
    rows2 = [client_polls(t, a.client_poll_delays_ms) for t in points]
    gets = a.polls_per_request if a.polls_per_request is not None else sum(r[0] for r in rows2) / len(rows2)
    detection = sum(r[1] for r in rows2) / len(rows2)
    return Flow(b, completion, gets, a.api_get_ms, 1.0, detection)


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
    storage time (counted at 2 WRU too, an upper bound), kept ``events_ttl_days``."""
    n = MILLION
    calls = n / a.events_per_post
    gb_s = prices.lambda_gb_s(a.architecture)
    api_gb = a.api_memory_mb / 1024
    # user, movie, rating, timestamp, received_at, ttl, keys: about 200 B (an upper bound); its entry in the index by
    # time (keys, movie, rating, timestamp) about 150 B with DynamoDB's 100 B of index overhead
    event_kb = 0.35
    days = float(Settings().events_ttl_days)
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
            "DynamoDB storage + PITR (kept for the TTL)",
            f"{event_kb:g} KB each, {days:g} days",
            n
            * event_kb
            / KB
            / KB
            * min(days * 24 / HOURS_PER_MONTH, 1.0)
            * (prices.ddb_storage_gb_month + prices.ddb_pitr_gb_month),
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


# ---------------------------------------------------------------------------------------------- concurrency


def concurrency_for(rps: float, per_request_ms: float, batch: float = 1.0, per_invocation_ms: float = 0.0) -> float:
    """Little's law: the mean number of busy environments serving ``rps`` requests/s, each invocation taking
    ``per_invocation_ms`` plus ``per_request_ms`` for each of its ``batch`` requests (the API function: batch 1)."""
    if rps < 0 or per_request_ms < 0 or batch < 1:
        raise ValueError("rps and per_request_ms must be >= 0 and batch >= 1")
    invocations = rps / batch
    return invocations * (per_invocation_ms + per_request_ms * batch) / 1000


def worker_rps(per_request_ms: float, batch: float = 1.0, per_invocation_ms: float = 0.0) -> float:
    """Requests/s one busy worker environment sustains (the inverse of its time per request)."""
    return 1000 / (per_request_ms + per_invocation_ms / batch)


def setting_for(busy: float, headroom: float = 0.5) -> int:
    """A ``max_concurrency`` for a mean of ``busy`` environments: room for bursts above the mean (+50% by default),
    at least SQS's minimum of 2."""
    return max(2, math.ceil(busy * (1 + headroom)))


# ---------------------------------------------------------------------------------------------- Personalize


def personalize_cost(
    rps: float,
    hours: float = HOURS_PER_MONTH,
    min_tps: float = 1.0,
    training_hours: float = 4 * 2.2,
    ingest_gb: float = 0.1,
    prices: Prices = PRICES,
) -> dict[str, float]:
    """Amazon Personalize real-time recommendations for ``rps`` requests/s held for ``hours`` (a campaign bills
    max(minimum provisioned TPS, actual TPS) per 5 minutes, in TPS-hours, tiered by month), plus training and data
    ingestion. Defaults: one campaign at the minimum 1 TPS; four retrainings a month at 2.2 billed training hours each
    (AWS's Personalize FAQ for 100k MovieLens interactions: 2.135 hours); 0.1 GB of events ingested. One
    GetRecommendations call per recommendation request: no status polls, but no API in front either."""
    tps_hours = max(min_tps, rps) * hours
    inference = tiered(tps_hours, prices.personalize_tps_hour_tiers)
    training = training_hours * prices.personalize_training_hour
    ingest = ingest_gb * prices.personalize_ingest_per_gb
    requests = rps * hours * 3600
    return {
        "tps_hours": tps_hours,
        "inference": inference,
        "training": training,
        "ingestion": ingest,
        "total": inference + training + ingest,
        "per_million": (inference + training + ingest) / requests * MILLION if requests else math.inf,
    }


# ---------------------------------------------------------------------------------------------- latency budget


@dataclass(frozen=True)
class Hop:
    """One hop of the deployed flow's latency: mean milliseconds and where the figure comes from."""

    hop: str
    ms: float
    source: str


def latency_budget(a: Assumptions = Assumptions()) -> list[Hop]:
    """The expected warm latency of one request, hop by hop, from the client's POST to the GET that sees the result
    (the client's network round trips excluded); the last hop is the total."""
    f = flow(a)
    b = f.batching
    hops = [
        Hop("API Gateway overhead (POST)", 10.0, "assumption; measure as Latency - IntegrationLatency (AWS metrics)"),
        Hop(
            "API function, warm POST (validation, TransactWriteItems of the item and the user's pointer, SendMessage)",
            a.api_post_ms,
            "assumption (unmeasured in AWS); DynamoDB claims single-digit ms per call",
        ),
        Hop("SQS -> event source pickup", a.esm_pickup_ms, "assumption: long-polling pollers return on arrival"),
        Hop(
            f"batching window (W = {a.batching_window_s:g} s, at {a.rate_rps:.2f} req/s)",
            b.mean_added_s * 1000,
            f"model (batching): mean half the gathering time, max {b.max_added_s * 1000:.0f} ms",
        ),
        Hop("Lambda invoke of the worker (warm)", a.invoke_overhead_ms, "assumption"),
        Hop(
            "worker: GetItem + events Query + engine + UpdateItem (its place in the batch)",
            a.worker_invocation_ms + a.worker_per_request_ms * (b.mean_batch + 1) / 2,
            f"engine {a.worker_engine_ms:g} ms p50 (`make bench`, ml-latest-small); DynamoDB calls"
            f" {a.worker_io_ms:g} ms (assumption)",
        ),
        Hop(
            "long-poll: completion -> the read that sees it" if a.long_poll else "polling: completion -> the next GET",
            f.detection_s * 1000,
            "long-poll schedule " + "/".join(f"{d:g}" for d in a.long_poll_delays_ms) + " ms"
            if a.long_poll
            else "web page schedule " + "/".join(f"{d:g}" for d in a.client_poll_delays_ms) + " ms",
        ),
        Hop("the answer: API Gateway back to the client", 10.0, "assumption")
        if a.long_poll
        else Hop(
            "the seeing GET: API Gateway + API function (GetItem)", 10.0 + a.api_get_ms, "assumptions, as for the POST"
        ),
    ]
    return [*hops, Hop("Total (warm, network excluded)", sum(h.ms for h in hops), "")]


def cold_start_hops(a: Assumptions = Assumptions()) -> list[Hop]:
    """What a cold environment adds to one request (not in the warm budget), and what it does to the status reads."""
    warm = flow(a)
    cold = flow(replace(a, esm_pickup_ms=a.esm_pickup_ms + a.worker_init_s * 1000))
    reads = "table reads" if a.long_poll else "GETs"
    return [
        Hop(
            "API function INIT (10.8 MiB package, no numpy/onnxruntime)",
            a.api_init_s * 1000,
            "assumption (unmeasured in AWS)",
        ),
        Hop(
            "worker INIT + model load (114.5 MiB package; 53 MB artifact from S3; sha256 checks; warm-up)",
            a.worker_init_s * 1000,
            "assumption; the engine's cold start alone is 0.27 s (`make bench`); a local worker process's first"
            " request (imports, the model from moto's S3) takes 0.88 s (`make demo`)",
        ),
        Hop(
            f"status {reads} per request with a cold worker (warm: {warm.gets * warm.reads_per_get:.2f})",
            cold.gets * cold.reads_per_get,
            "model (count, not ms)",
        ),
        Hop(
            f"completion -> the client sees it, cold worker (warm: {warm.detection_s * 1000:.0f} ms)",
            cold.detection_s * 1000,
            "model",
        ),
    ]


# ---------------------------------------------------------------------------------------------- CLI


def _usd(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.2f}" if x >= 1 else f"{x:.3f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _cost_table(a: Assumptions) -> str:
    rows = [(line.hop, line.quantity, _usd(line.usd)) for line in cost_per_million(a)]
    rows[-1] = ("**Total**", "", f"**{_usd(cost_per_million(a)[-1].usd)}**")
    return table(("hop", "per request (or counted)", "USD per 1M requests"), rows)


def _events_table(a: Assumptions) -> str:
    lines = cost_per_million_events(a)
    rows = [(line.hop, line.quantity, _usd(line.usd)) for line in lines]
    rows[-1] = ("**Total**", "", f"**{_usd(lines[-1].usd)}**")
    return table(("hop", "per event (or counted)", "USD per 1M events"), rows)


def _sustained_table(a: Assumptions, rates: Sequence[float]) -> str:
    rows = []
    for r in rates:
        ar = replace(a, rate_rps=r)
        f = flow(ar)
        b = f.batching
        worker_busy = concurrency_for(r, ar.worker_per_request_ms, b.mean_batch, ar.worker_invocation_ms)
        api_busy = concurrency_for(r, ar.api_post_ms) + concurrency_for(r * f.gets, f.get_billed_ms)
        month_m = r * SECONDS_PER_MONTH / MILLION
        usd = total(ar, first_tier=False) * month_m
        rows.append(
            (
                f"{r:,.0f}",
                f"{month_m:,.0f} M",
                f"{b.mean_batch:.2f}",
                f"{worker_busy:.1f} -> **{setting_for(worker_busy)}**",
                f"{api_busy:.1f}",
                _usd(usd),
                _usd(usd / month_m),
            )
        )
    return table(
        (
            "requests/s",
            "requests a month",
            "batch",
            "worker environments busy (Little) -> max_concurrency",
            "API environments busy",
            "USD a month",
            "USD per 1M",
        ),
        rows,
    )


def _scenario_table(a: Assumptions) -> str:
    """The same million requests under the window and status-read choices (everything else as in ``a``)."""
    rows = []
    for label, window, long_poll, tracing in (
        ("window 1 s, short polling (before)", 1.0, False, a.tracing),
        ("window 0, short polling", 0.0, False, a.tracing),
        ("window 1 s, long-poll", 1.0, True, a.tracing),
        ("window 0, long-poll (as deployed)", 0.0, True, a.tracing),
        ("window 0, long-poll, X-Ray off", 0.0, True, False),
    ):
        s = replace(a, batching_window_s=window, long_poll=long_poll, tracing=tracing)
        lines, f = cost_per_million(s), flow(s)
        by = {line.hop.split(" (")[0].split(":")[0]: 0.0 for line in lines}
        for line in lines:
            by[line.hop.split(" (")[0].split(":")[0]] += line.usd
        rows.append(
            (
                label,
                f"{f.batching.invocations_per_request:.2f}",
                f"{f.gets:.2f}",
                f"{1 + f.gets * f.reads_per_get:.2f}",
                f"{latency_budget(s)[-1].ms:.0f}",
                _usd(by["API Gateway REST"]),
                _usd(by["API function"]),
                _usd(by.get("X-Ray traces", 0.0)),
                f"**{_usd(lines[-1].usd)}**",
            )
        )
    return table(
        (
            "choice",
            "worker invocations per request",
            "GETs per request",
            "table reads per request",
            "end-to-end ms (warm)",
            "API Gateway USD",
            "API function USD",
            "X-Ray USD",
            "total USD per 1M",
        ),
        rows,
    )


def _personalize_table(a: Assumptions, rates: Sequence[float]) -> str:
    rows = []
    for label, r in (("1M requests spread over a month", MILLION_PER_MONTH_RPS), *((f"{x:,.0f}/s", x) for x in rates)):
        p = personalize_cost(r)
        ours = total(replace(a, rate_rps=r), first_tier=False) * r * SECONDS_PER_MONTH / MILLION
        rows.append(
            (
                label,
                f"{p['tps_hours']:,.0f}",
                _usd(p["inference"]),
                _usd(p["training"] + p["ingestion"]),
                _usd(p["total"]),
                _usd(p["per_million"]),
                _usd(ours),
            )
        )
    return table(
        (
            "traffic",
            "TPS-hours",
            "inference USD",
            "training + ingestion USD",
            "Personalize USD a month",
            "USD per 1M",
            "this stack USD a month",
        ),
        rows,
    )


def _window_table(a: Assumptions, rates: Sequence[float], windows: Sequence[float]) -> str:
    rows = []
    for r in rates:
        for w in windows:
            aw = replace(a, rate_rps=r, batching_window_s=w)
            f = flow(aw)
            b = f.batching
            budget = latency_budget(aw)[-1].ms
            rows.append(
                (
                    f"{r:,.2f}",
                    f"{w:g} s",
                    f"{b.mean_batch:.2f}",
                    f"{b.invocations_per_request:.2f}",
                    f"{b.mean_added_s * 1000:.0f} / {b.max_added_s * 1000:.0f}",
                    f"{f.gets:.2f}",
                    f"{budget:.0f}",
                    _usd(total(aw)),
                )
            )
    return table(
        (
            "requests/s",
            "window",
            "batch",
            "worker invocations per request",
            "added wait mean / max ms",
            "GETs per request",
            "end-to-end ms (warm)",
            "USD per 1M",
        ),
        rows,
    )


def _latency_table(a: Assumptions) -> str:
    rows = [(h.hop, f"{h.ms:.0f}", h.source) for h in latency_budget(a)]
    rows[-1] = (f"**{rows[-1][0]}**", f"**{rows[-1][1]}**", "")
    return table(("hop", "ms (mean)", "source"), rows)


def _sources_table() -> str:
    rows = [(s.item, s.value, s.where, "yes" if s.verified else "**no**", s.note) for s in SOURCES]
    return table(("price (us-east-1, USD)", "value", f"source (read {READ_ON})", "number in an AWS text", "note"), rows)


def report(a: Assumptions, rates: Sequence[float] = (100, 1000)) -> str:
    """All the tables, as markdown."""
    f = flow(a)
    mode = f"long-poll (GET ?wait={a.long_poll_wait_s:g})" if a.long_poll else "short polling (the web page's schedule)"
    head = (
        f"Assumptions: {a.architecture}; API function {a.api_memory_mb} MB, POST {a.api_post_ms:g} ms, GET"
        f" {a.api_get_ms:g} ms; worker {a.worker_memory_mb} MB, {a.worker_per_request_ms:.2f} ms per message"
        f" + {a.worker_invocation_ms:g} ms per invocation; batch size {a.batch_size}, window"
        f" {a.batching_window_s:g} s; status: {mode}; items {a.pending_item_kb:g} KB PENDING,"
        f" {a.completed_item_kb:g} KB COMPLETED; us-east-1 list prices, no free tier."
    )
    per_worker = worker_rps(a.worker_per_request_ms, a.batch_size, a.worker_invocation_ms)
    engine_only = worker_rps(a.worker_engine_ms)
    return "\n\n".join(
        [
            head,
            f"### (a) One million requests at {a.rate_rps:.2f} requests/s (1M spread over a month)",
            _cost_table(a),
            "### (a2) The same million under the batching-window and status-read choices",
            _scenario_table(a),
            f"### (a3) One million stored events (`POST /events`, {a.events_per_post:g} per call)",
            _events_table(a),
            "### (b) Sustained load",
            f"One busy worker environment sustains {per_worker:,.0f} requests/s with full batches of"
            f" {a.batch_size} ({engine_only:,.0f}/s on the engine's {a.worker_engine_ms:g} ms per request alone,"
            " without the DynamoDB calls)."
            f" The stack's max_concurrency is {CONFIG.max_concurrency}; its API stage throttle,"
            f" {CONFIG.throttle_rate:g} calls/s (burst {CONFIG.throttle_burst}), caps the whole API at"
            f" {CONFIG.throttle_rate / (1 + f.gets):.0f} recommendation requests/s with {1 + f.gets:.2f} calls each.",
            _sustained_table(a, rates),
            "### (c) Amazon Personalize for the same traffic",
            _personalize_table(a, rates),
            "### (d) Batching window: invocations against latency (model)",
            _window_table(a, (MILLION_PER_MONTH_RPS, 1, 10, 100, 1000), (0, 1, 5)),
            "### (e) Latency budget of one request (warm)",
            _latency_table(a),
            "### (f) A cold start (not in the warm total)",
            table(("what", "ms (or count)", "source"), [(h.hop, f"{h.ms:.0f}", h.source) for h in cold_start_hops(a)]),
            "### Price sources",
            _sources_table(),
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m infra.costs")
    parser.add_argument("--worker-ms", type=float, help="worker ms per message (engine + DynamoDB calls)")
    parser.add_argument("--api-ms", type=float, help="API function ms per call (POST and GET)")
    parser.add_argument("--window", type=float, help=f"batching window s (config: {CONFIG.batching_window_s})")
    parser.add_argument("--batch", type=int, help=f"batch size (config: {CONFIG.batch_size})")
    parser.add_argument("--achieved-batch", type=float, help="messages per invocation achieved (default: modelled)")
    parser.add_argument("--polls", type=float, help="status GETs per request (default: from the poll schedule)")
    parser.add_argument("--long-poll", type=float, metavar="S", help="use GET ?wait=S instead of short polling")
    parser.add_argument("--arch", choices=("x86_64", "arm64"), help=f"architecture (config: {CONFIG.architecture})")
    parser.add_argument("--completed-kb", type=float, help="COMPLETED item size in KB (default 1.95)")
    parser.add_argument("--no-tracing", action="store_true", help="X-Ray off")
    parser.add_argument("--events-per-post", type=float, help="events per POST /events call for (a3) (default 1)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 1000], help="sustained rates for (b), (c)")
    return parser.parse_args(argv)


def assumptions_from(args: argparse.Namespace) -> Assumptions:
    """``Assumptions`` with the CLI's overrides."""
    a = Assumptions()
    changes: dict = {}
    if args.worker_ms is not None:
        changes.update(worker_engine_ms=args.worker_ms, worker_io_ms=0.0)
    if args.api_ms is not None:
        changes.update(api_post_ms=args.api_ms, api_get_ms=args.api_ms)
    if args.window is not None:
        changes["batching_window_s"] = args.window
    if args.batch is not None:
        changes["batch_size"] = args.batch
    if args.achieved_batch is not None:
        changes["achieved_batch"] = args.achieved_batch
    if args.polls is not None:
        changes["polls_per_request"] = args.polls
    if args.long_poll is not None:
        changes.update(long_poll=True, long_poll_wait_s=args.long_poll)
    if args.arch is not None:
        changes["architecture"] = args.arch
    if args.completed_kb is not None:
        changes["completed_item_kb"] = args.completed_kb
    if args.no_tracing:
        changes["tracing"] = False
    if args.events_per_post is not None:
        changes["events_per_post"] = args.events_per_post
    return replace(a, **changes)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(report(assumptions_from(args), args.rates))


if __name__ == "__main__":
    main()
