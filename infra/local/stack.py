"""The local stack: the whole request flow on one machine, no AWS account and no Docker.

Processes, as in AWS each part is its own service:

* the AWS endpoint (:mod:`infra.local.endpoint`): moto's server for SQS, DynamoDB and S3, with fault injection;
* this process: the HTTP gateway (:mod:`infra.local.gateway`) and the API handler it invokes, as API Gateway
  invokes the API function;
* ``workers`` worker processes (:mod:`infra.local.poller`), each playing the SQS event source mapping for one
  warm worker "container"; one that dies is replaced, as Lambda starts a new container.

The queue, its DLQ (same redrive policy as in AWS), the table (with TTL) and the bucket are created from
:mod:`lambdas.settings` (:mod:`infra.local.resources`) and the artifact is published as ``make deploy`` does.

In tests and the demo: ``with LocalStack(artifact_dir) as stack: ... stack.url ... stack.api_key ...``.
"""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import boto3

from infra.local import endpoint, gateway
from infra.local.poller import PollerConfig, WorkerPool
from infra.local.resources import create_resources, local_settings
from lambdas.context import LOCAL_REGION, LambdaContext
from lambdas.service import aws, catalogue, model_store
from lambdas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ARTIFACT = ROOT / "artifacts" / "artifact"
DEFAULT_PORT = 8765
DEFAULT_WORKERS = 2
ENDPOINT_START_S = 60
API_FUNCTION = "recommender-api-local"
API_TIMEOUT_S = 29  # API Gateway's integration timeout


class LocalStack:
    """AWS endpoint process + resources + HTTP gateway and API handler (this process) + worker processes."""

    def __init__(
        self,
        artifact_dir: str | Path = DEFAULT_ARTIFACT,
        port: int = 0,
        *,
        workers: int = DEFAULT_WORKERS,
        visibility_timeout_s: int = 5,
        poll_wait_s: int = 1,
        batch_size: int = 10,
        batching_window_s: float = 0.0,
        api_key: str | None = "",
        access_log: bool = False,
        worker_log_level: str = "WARNING",
    ) -> None:
        """``api_key``: "" generates one (printed by the CLI), None turns the key check off."""
        self.artifact_dir = Path(artifact_dir)
        self.port = port
        self.workers = workers
        self.visibility_timeout_s = visibility_timeout_s
        self.poll_wait_s = poll_wait_s
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.api_key = secrets.token_urlsafe(24) if api_key == "" else api_key
        self.access_log = access_log
        self.worker_log_level = worker_log_level
        self.url = ""
        self.endpoint_url = ""
        self.settings: Settings | None = None
        self.services: aws.Services | None = None
        self.dlq_url = ""
        self.queue_arn = ""
        self.pool: WorkerPool | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._endpoint: subprocess.Popen | None = None
        self._http: Any = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start everything; returns when the API answers and the workers poll (cleans up if anything fails)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        if not (self.artifact_dir / "manifest.json").exists():
            raise FileNotFoundError(f"no artifact at {self.artifact_dir}: run `make export` or pass --artifact DIR")
        self.endpoint_url = self._start_endpoint()
        self._tmp = tempfile.TemporaryDirectory(prefix="recommender-local-")
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=LOCAL_REGION
        )
        settings = local_settings(
            uuid.uuid4().hex[:8], self.endpoint_url, Path(self._tmp.name) / "model", self.visibility_timeout_s
        )
        services = aws.Services(settings, session)
        queues = create_resources(services)
        self.dlq_url, self.queue_arn = queues.dlq_url, queues.queue_arn
        services = aws.Services(replace(settings, queue_url=queues.queue_url), session)
        version = model_store.publish(services, self.artifact_dir)
        self.settings = replace(services.settings, model_version=version)
        self.services = aws.Services(self.settings, session)
        aws.configure(self.services)

        self._http = gateway.make_server(gateway.Gateway(self.invoke_api, self.api_key), self.port, self.access_log)
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._spawn(self._http.serve_forever, "local-gateway")

        self.pool = WorkerPool(
            self.workers,
            PollerConfig(
                settings=asdict(self.settings),
                queue_arn=self.queue_arn,
                poll_wait_s=self.poll_wait_s,
                batch_size=self.batch_size,
                batching_window_s=self.batching_window_s,
                log_level=self.worker_log_level,
            ),
        )
        self.pool.start()
        self._spawn(self._supervise, "local-supervisor")
        return self

    def _start_endpoint(self) -> str:
        cmd = [sys.executable, "-m", "infra.local.endpoint", "--port", "0", "--exit-with-stdin"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._endpoint = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        lines: queue.Queue[str] = queue.Queue()

        def drain() -> None:  # read every line, so that a full pipe never blocks the endpoint
            for line in self._endpoint.stdout:
                lines.put(line)

        threading.Thread(target=drain, name="local-endpoint-stdout", daemon=True).start()
        try:
            line = lines.get(timeout=ENDPOINT_START_S)
        except queue.Empty:
            raise RuntimeError(f"the local AWS endpoint did not start within {ENDPOINT_START_S}s") from None
        if not line.startswith("READY "):
            raise RuntimeError(f"the local AWS endpoint did not start: {line.strip()}")
        return line.split()[1]

    def stop(self) -> None:
        """Stop the gateway, let each worker finish its batch, stop the endpoint; idempotent."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self.pool is not None:
            self.pool.stop(timeout_s=self.poll_wait_s + 30)
            self.pool = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self._endpoint is not None:
            self._endpoint.stdin.close()
            self._endpoint.terminate()
            try:
                self._endpoint.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._endpoint.kill()
                self._endpoint.wait(timeout=10)
            self._endpoint = None
        aws.configure(None)
        model_store.clear_cache()
        catalogue.clear_cache()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self) -> None:
        while not self._stop.wait(0.2):
            if self.pool is not None:
                self.pool.replace_dead()

    # ------------------------------------------------------------------ the API function

    def invoke_api(self, event: dict) -> dict:
        from lambdas.api.handler import lambda_handler

        return lambda_handler(event, LambdaContext(API_FUNCTION, timeout_s=API_TIMEOUT_S, memory_limit_in_mb=512))

    # ------------------------------------------------------------------ helpers for tests, the demo and scripts

    @property
    def batches(self) -> int:
        """Worker invocations so far, all processes together."""
        return self.pool.batches if self.pool is not None else 0

    def kill_worker(self, index: int = 0) -> int:
        """SIGKILL one worker process (it is replaced within a moment); returns its pid."""
        import signal

        process = self.pool.processes[index]
        os.kill(process.pid, signal.SIGKILL)
        return process.pid

    def inject(self, faults: Iterable[endpoint.Fault]) -> list[dict]:
        """Replace the AWS endpoint's fault rules (``[]`` clears them); every process sees them at once."""
        return endpoint.inject(self.endpoint_url, faults)

    def fault_report(self) -> list[dict]:
        return endpoint.fault_report(self.endpoint_url)

    def queue_depth(self, queue_url: str | None = None) -> int:
        """Visible + in-flight messages in the queue (or in ``queue_url``, e.g. ``self.dlq_url``)."""
        attrs = self.services.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.settings.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
