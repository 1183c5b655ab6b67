"""API Gateway's throttling, emulated for the local gateway: token buckets shared by every API process.

Deployed, a call is counted against its API key's usage plan (the page's key: ``page_throttle_rate`` /
``page_throttle_burst``; an operator's: ``throttle_rate`` / ``throttle_burst``) and against the stage's limit, and
a call over either is refused with 429 before the function runs (the stack's ``Default4xx`` gateway response makes
it ``{"error": {"code": "throttled", ...}}``). Here each bucket lives in shared memory, so the limit holds for the
whole local stack, not per process. Like API Gateway's, a bucket holds ``burst`` tokens and refills at ``rate`` a
second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

from infra.config import StackConfig

PAGE = "page"
OPERATOR = "operator"
STAGE = "stage"


@dataclass(frozen=True)
class Limits:
    """Requests a second and burst, per usage plan and for the stage (the deployed stack's context values)."""

    page_rate: float
    page_burst: int
    operator_rate: float
    operator_burst: int

    @classmethod
    def of(cls, config: StackConfig) -> Limits:
        return cls(config.page_throttle_rate, config.page_throttle_burst, config.throttle_rate, config.throttle_burst)


class TokenBucket:
    """``burst`` tokens refilled at ``rate`` a second, in shared memory (picklable into a spawned process)."""

    def __init__(self, rate: float, burst: int, ctx: BaseContext, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock  # system-wide (CLOCK_MONOTONIC): the same in every process
        self._state: Any = ctx.Array("d", [float(burst), clock()])  # tokens, last refill; with a lock

    def take(self) -> bool:
        """One token if there is one (True), else False (the call is throttled)."""
        with self._state.get_lock():
            now = self.clock()
            tokens = min(self.burst, self._state[0] + (now - self._state[1]) * self.rate)
            self._state[1] = now
            if tokens < 1:
                self._state[0] = tokens
                return False
            self._state[0] = tokens - 1
            return True


class Throttle:
    """The page's plan, the operators' plan and the stage: a call passes when its plan and the stage both let it."""

    def __init__(self, limits: Limits, ctx: BaseContext) -> None:
        self.limits = limits
        self.buckets = {
            PAGE: TokenBucket(limits.page_rate, limits.page_burst, ctx),
            OPERATOR: TokenBucket(limits.operator_rate, limits.operator_burst, ctx),
            # The stage's own limit is the stack's throttle_rate / burst too (infra/constructs/api.py).
            STAGE: TokenBucket(limits.operator_rate, limits.operator_burst, ctx),
        }

    def allow(self, plan: str) -> bool:
        """Whether a call on ``plan`` (PAGE or OPERATOR) is served now."""
        return self.buckets[plan].take() and self.buckets[STAGE].take()
