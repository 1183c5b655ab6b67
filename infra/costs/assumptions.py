"""What the cost model assumes besides prices: the stack's configuration, our benchmarks and labelled guesses.

Every number that matters is a field of ``Assumptions`` (its defaults are the deployed configuration, from
``infra.config``, and the figures measured by our benchmarks, with the run they come from); the module also fixes
the units the model counts in (a 730-hour month, binary kilobytes) and the status-read schedules it prices.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import StackConfig
from lambdas.service import status

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
# The `make bench` run that the engine's per-request time (``Assumptions.worker_engine_ms``) comes from.
ENGINE_MEASURED_ON = "2026-12-07"


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
    # Worker, per message: the engine's p50 from `make bench` with the reasons every request gets by default
    # (docs/serving.md, 2026-12-07: 3.05 ms on ml-latest-small, 1.58 ms without them; 9.74 ms with 100,000 movies;
    # a slower day of this machine than 2026-12-04's 1.66 / 0.74 ms), plus the three DynamoDB calls it waits for
    # (GetItem, the user's events Query, UpdateItem; assumption: 5 ms each).
    worker_engine_ms: float = 3.05
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
    # Stored events are kept (the retraining loop trains on them): the cost model counts a year of storage.
    events_kept_days: int = 365
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
    # the worker's includes the 64.0 MB artifact download and the engine's 0.41 s load from `make bench`, 2026-12-07).
    cold_start_fraction: float = 0.002
    api_init_s: float = 0.6
    worker_init_s: float = 2.0

    @property
    def worker_per_request_ms(self) -> float:
        """The worker's time per message (engine + its DynamoDB calls)."""
        return self.worker_engine_ms + self.worker_io_ms
