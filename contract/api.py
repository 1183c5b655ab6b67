"""What the API promises its callers, in the one place the API function, the client and the load test read it."""

from __future__ import annotations

# A request's status: PENDING until the worker writes COMPLETED (with a result) or FAILED (with an error).
PENDING, COMPLETED, FAILED = "PENDING", "COMPLETED", "FAILED"
FINISHED = (COMPLETED, FAILED)
# The longest long-poll, ``GET /recommendations/{id}?wait=S`` (API Gateway answers 504 after 29 s).
MAX_WAIT_S = 20
