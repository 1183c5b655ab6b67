"""How long one request takes: the warm latency budget hop by hop, and what a cold start adds."""

from __future__ import annotations

from dataclasses import dataclass, replace

from infra.costs.assumptions import Assumptions
from infra.costs.flow import flow


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
            "worker INIT + model load (114.5 MiB package; 64.0 MB artifact from S3; sha256 checks; warm-up)",
            a.worker_init_s * 1000,
            "assumption; the engine's cold start alone is 0.41 s (`make bench`, 2026-12-07); a local worker process's"
            " first request (imports, the model from moto's S3) takes 0.88 s (`make demo`)",
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
