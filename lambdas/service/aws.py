"""Settings plus the boto3 clients built from them, created once per container (or configured by the local stack)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from lambdas.settings import Settings

# Fail fast instead of holding an API call for a minute when a dependency is down; standard retries cover blips.
# A Lambda container makes one call at a time; the pool size is for the local stack, whose gateway threads share
# one client (botocore's default of 10 connections would open and drop a connection per call beyond that).
CLIENT_CONFIG = Config(
    connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=128
)


# Error codes of an AWS call that a retry may get past (throttling, a service's own trouble, a transaction that met
# another): the API answers 503 with Retry-After for these, 500 for the rest (a missing permission, a bad call).
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
    }
)
# A cancelled transaction's reasons (CancellationReasons[].Code) that a retry may get past.
TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)


def is_transient(exc: Exception) -> bool:
    """Whether a botocore error is worth retrying: a connection failure, or one of :data:`TRANSIENT_CODES` (a
    cancelled transaction counts when every reason is one of :data:`TRANSIENT_REASONS`)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        if error.get("Code") == "TransactionCanceledException":
            reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])} - {"None", None}
            return bool(reasons) and reasons <= TRANSIENT_REASONS
        return error.get("Code") in TRANSIENT_CODES
    # a connection refused, closed or timed out; not a missing credential or a malformed call
    return isinstance(exc, (ConnectionError, HTTPClientError))


@dataclass
class Services:
    """The settings and lazily created clients for DynamoDB (resource and client), SQS, S3 and SSM."""

    settings: Settings
    session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    # boto3 sessions are not thread-safe: the local stack's gateway threads may ask for a client at the same time
    _lock: Any = field(default_factory=threading.Lock, repr=False)

    def _client(self, name: str) -> Any:
        with self._lock:
            return self._make(name)

    def _make(self, name: str) -> Any:
        if name not in self._clients:
            session = self.session or _default_session()
            kwargs = {"config": CLIENT_CONFIG, "region_name": self.settings.region}
            endpoint = self.settings.endpoint_url
            if name in ("table", "dynamodb") and self.settings.dynamodb_endpoint_url:
                endpoint = self.settings.dynamodb_endpoint_url
            if endpoint:
                kwargs["endpoint_url"] = endpoint
            if name == "table":
                self._clients[name] = session.resource("dynamodb", **kwargs).Table(self.settings.table_name)
            else:
                self._clients[name] = session.client(name, **kwargs)
        return self._clients[name]

    @property
    def table(self) -> Any:
        """The requests table (boto3 resource: plain Python values in and out)."""
        return self._client("table")

    @property
    def dynamodb(self) -> Any:
        """The low-level DynamoDB client (typed attribute values; unlike resources, safe to share between threads)."""
        return self._client("dynamodb")

    @property
    def sqs(self) -> Any:
        return self._client("sqs")

    @property
    def s3(self) -> Any:
        return self._client("s3")

    @property
    def ssm(self) -> Any:
        return self._client("ssm")

    @property
    def stepfunctions(self) -> Any:
        return self._client("stepfunctions")


@cache
def _default_session() -> boto3.session.Session:
    # One botocore session per process: each new session reloads the service models (~100 ms per client).
    return boto3.session.Session()


_current: Services | None = None
_lock = threading.Lock()


def get_services() -> Services:
    """The process's services: configured ones, else built once from the environment."""
    global _current
    with _lock:
        if _current is None:
            _current = Services(Settings.from_env())
        return _current


def configure(services: Services | None) -> None:
    """Use these services from now on (the local stack and tests); ``None`` goes back to the environment."""
    global _current
    with _lock:
        _current = services
