"""The request flow under a set of assumptions: how messages batch, how many status reads a request makes.

``batching`` models the SQS event source's batches (invocations per request, the wait a window adds);
``client_polls`` and ``long_poll_reads`` count the status reads of one request under a poll schedule; ``flow``
puts them together into the per-request calls and durations (``Flow``) that the bill prices.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from infra.costs.assumptions import LONG_POLL_DELAYS_MS, WEB_POLL_DELAYS_MS, Assumptions


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


def _times(delays_ms: Sequence[float]) -> tuple[float, ...]:
    """Read times (s, the first at 0) under a delay schedule whose last delay repeats, up to 5 minutes."""
    return _schedule(tuple(delays_ms))


@functools.cache
def _schedule(delays_ms: tuple[float, ...]) -> tuple[float, ...]:
    # a few thousand read times, the same for every request of a model run: computed once per schedule
    t, out, i = 0.0, [], 0
    while t < 300:
        out.append(t)
        t += delays_ms[min(i, len(delays_ms) - 1)] / 1000
        i += 1
    return tuple(out)


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
