"""Sizing: how many environments a rate keeps busy (Little's law) and the ``max_concurrency`` to give them."""

from __future__ import annotations

import math


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
