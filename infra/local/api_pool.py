"""The API function's containers: ``n`` processes that accept on one listening socket, each running the gateway.

In AWS each concurrent API request has its own Lambda container. Here each process is one "container" with its own
copy of the handler's module state, and its gateway threads take turns in the handler's resolver (see
``lambdas.api.handler``: Powertools keeps the current event in class-level state), so ``n`` processes resolve ``n``
requests at once while long-polls wait outside the resolver. The kernel spreads connections over the processes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from infra.config import StackConfig
from infra.local.auth import UserPool
from infra.local.context import LambdaContext
from infra.local.processes import Flag, ProcessPool, leave_signals_to_parent
from infra.local.throttle import Limits, Throttle

API_FUNCTION = "recommender-api-local"
# The deployed API function's timeout and memory, as the context reports them.
API_TIMEOUT_S = StackConfig().api_timeout_s
API_MEMORY_MB = StackConfig().api_memory_mb


@dataclass(frozen=True)
class ApiConfig:
    """What one API process needs (picklable: it crosses into a spawned process)."""

    settings: dict[str, Any]
    api_key: str | None
    access_log: bool = False
    log_level: str = "WARNING"
    user_pool: UserPool | None = None
    # API Gateway's usage plans and stage throttle (None: no throttling, as for the fuzzer and the load test)
    limits: Limits | None = None


def listening_socket(port: int, backlog: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:``port`` (0: any free one) and listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    return sock


def run(config: ApiConfig, sock: socket.socket, stop: Any, ready: Any, throttle: Throttle | None = None) -> None:
    """One API process: configure the services, serve the gateway on ``sock`` until ``stop`` is set (``throttle``:
    the buckets every process shares)."""
    leave_signals_to_parent()
    import boto3

    from infra.local import gateway
    from lambdas.api.handler import lambda_handler
    from lambdas.service import aws
    from lambdas.service.logs import logger
    from lambdas.settings import Settings

    logger.setLevel(config.log_level)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    services = aws.Services(Settings(**config.settings), session)
    for client in ("table", "dynamodb", "sqs", "s3", "ssm"):  # made now, before the gateway's threads share them
        getattr(services, client)
    aws.configure(services)
    # Non-blocking accept: every process wakes for a new connection and one takes it; a blocking socket would leave
    # the others stuck in accept() (and deaf to shutdown) until the next connection.
    sock.setblocking(False)

    def invoke(event: dict) -> dict:
        context = LambdaContext(API_FUNCTION, timeout_s=API_TIMEOUT_S, memory_limit_in_mb=API_MEMORY_MB)
        return lambda_handler(event, context)

    app = gateway.Gateway(invoke, config.api_key, user_pool=config.user_pool, throttle=throttle)
    server = gateway.make_server(app, access_log=config.access_log, fd=sock)
    thread = threading.Thread(target=server.serve_forever, name="local-api", daemon=True)
    thread.start()
    ready.set()
    parent = os.getppid()
    while not stop.wait(0.5) and os.getppid() == parent:
        pass
    server.shutdown()
    server.server_close()
    logging.shutdown()


class ApiPool(ProcessPool):
    """``n`` API processes on one listening socket."""

    def __init__(self, n: int, config: ApiConfig, port: int, backlog: int) -> None:
        super().__init__(n)
        self.config = config
        self.socket = listening_socket(port, backlog)
        self.port = self.socket.getsockname()[1]
        self.throttle = Throttle(config.limits, self._ctx) if config.limits is not None else None

    def start(self, timeout_s: float = 60) -> None:
        readies = [self._start(i) for i in range(len(self.processes))]
        deadline = time.monotonic() + timeout_s
        for ready in readies:
            if not ready.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"an API process did not start within {timeout_s}s")

    def _start(self, i: int) -> Flag:
        ready = Flag(self._ctx)
        process = self._ctx.Process(
            target=run,
            args=(self.config, self.socket, self._stop, ready, self.throttle),
            name=f"local-api-{i}",
            daemon=True,
        )
        process.start()
        self.processes[i] = process
        return ready

    def stop(self, timeout_s: float = 10) -> None:
        super().stop(timeout_s)
        self.socket.close()
