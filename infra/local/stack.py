"""The local stack: the whole request flow on one machine, no AWS account and no Docker.

Processes, as in AWS each part is its own service:

* two AWS endpoints (:mod:`infra.local.endpoint`, moto's server with fault injection): one for DynamoDB, one for
  SQS and S3 (one moto process is single-core bound: split, each service has a core's worth);
* ``api_processes`` API processes (:mod:`infra.local.api_pool`) sharing one listening socket, each running the
  HTTP gateway (:mod:`infra.local.gateway`) and the API handler it invokes, as API Gateway invokes the API
  function's containers;
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
import signal
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

from contract import is_artifact
from infra.config import StackConfig
from infra.local import endpoint, gateway
from infra.local.api_pool import ApiConfig, ApiPool
from infra.local.auth import UserPool, create_pool
from infra.local.context import LOCAL_REGION
from infra.local.moto_patches import MotoPatchError
from infra.local.poller import PollerConfig, WorkerPool
from infra.local.resources import create_resources, local_settings
from infra.local.throttle import Limits
from lambdas.service import aws, model_files, model_store
from lambdas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ARTIFACT = ROOT / "artifacts" / "artifact"
DEFAULT_PORT = 8765
DEFAULT_WORKERS = 2
DEFAULT_API_PROCESSES = 2
# The deployed stack's usage plans and stage throttle (infra.config's defaults), held by the local gateway too.
DEPLOYED_LIMITS = Limits.of(StackConfig())
ENDPOINT_START_S = 60
LOCAL_CACHE_S = 2  # seconds the processes keep the model-version parameter's value (60 in AWS)


class LocalStack:
    """AWS endpoint process + resources + API processes (HTTP gateway and API handler) + worker processes."""

    def __init__(
        self,
        artifact_dir: str | Path = DEFAULT_ARTIFACT,
        port: int = 0,
        *,
        workers: int = DEFAULT_WORKERS,
        api_processes: int = DEFAULT_API_PROCESSES,
        visibility_timeout_s: int = 5,
        poll_wait_s: int = 1,
        batch_size: int = 10,
        batching_window_s: float = 0.0,
        api_key: str | None = "",
        access_log: bool = False,
        worker_log_level: str = "WARNING",
        limits: Limits | None = DEPLOYED_LIMITS,
    ) -> None:
        """``api_key``: "" generates one (printed by the CLI), None turns the key check off. ``limits``: API
        Gateway's throttles the gateway holds calls to (429 over them); None: none (a load test or a fuzzer that
        measures the stack, not the limits)."""
        self.artifact_dir = Path(artifact_dir)
        self.port = port
        self.workers = workers
        self.api_processes = api_processes
        self.visibility_timeout_s = visibility_timeout_s
        self.poll_wait_s = poll_wait_s
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.api_key = secrets.token_urlsafe(24) if api_key == "" else api_key
        self.access_log = access_log
        self.worker_log_level = worker_log_level
        self.limits = limits
        self.url = ""
        self.endpoint_url = ""  # SQS, S3
        self.dynamodb_endpoint_url = ""
        self.settings: Settings | None = None
        self.services: aws.Services | None = None
        self.dlq_url = ""
        self.queue_arn = ""
        self.pool: WorkerPool | None = None
        self.api: ApiPool | None = None
        self.user_pool: UserPool | None = None  # the people's accounts (moto's Cognito)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._endpoints: list[subprocess.Popen] = []
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
        if not is_artifact(self.artifact_dir):
            raise FileNotFoundError(f"no artifact at {self.artifact_dir}: run `make export` or pass --artifact DIR")
        self.endpoint_url = self._start_endpoint()
        self.dynamodb_endpoint_url = self._start_endpoint()
        self._tmp = tempfile.TemporaryDirectory(prefix="recommender-local-")
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=LOCAL_REGION
        )
        settings = local_settings(
            uuid.uuid4().hex[:8], self.endpoint_url, Path(self._tmp.name) / "model", self.visibility_timeout_s
        )
        settings = replace(
            settings, dynamodb_endpoint_url=self.dynamodb_endpoint_url, page_api_key_id=gateway.PAGE_KEY_ID
        )
        services = aws.Services(settings, session)
        queues = create_resources(services)
        self.dlq_url, self.queue_arn = queues.dlq_url, queues.queue_arn
        services = aws.Services(replace(settings, queue_url=queues.queue_url), session)
        version = model_store.publish(services, self.artifact_dir)
        # The served version lives in an SSM parameter, as in AWS: publishing another (python -m infra.retrain
        # --local, infra.publish_model --bucket/--parameter) switches the running processes within LOCAL_CACHE_S.
        parameter = f"/recommender-local/{settings.table_name}/model-version"
        services.ssm.put_parameter(Name=parameter, Value=version, Type="String")
        self.settings = replace(
            services.settings,
            model_version=version,
            model_version_parameter=parameter,
            model_version_cache_s=LOCAL_CACHE_S,
        )
        self.services = aws.Services(self.settings, session)
        aws.configure(self.services)
        cognito = session.client("cognito-idp", endpoint_url=self.endpoint_url)
        self.user_pool = create_pool(cognito, f"recommender-{settings.table_name}", LOCAL_REGION, self.endpoint_url)

        self.api = ApiPool(
            self.api_processes,
            ApiConfig(
                asdict(self.settings),
                self.api_key,
                access_log=self.access_log,
                user_pool=self.user_pool,
                limits=self.limits,
            ),
            self.port,
            gateway.LISTEN_BACKLOG,
        )
        self.port = self.api.port
        self.url = f"http://127.0.0.1:{self.port}"
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
        self.api.start()
        self._spawn(self._supervise, "local-supervisor")
        return self

    def _start_endpoint(self) -> str:
        cmd = [sys.executable, "-m", "infra.local.endpoint", "--port", "0", "--exit-with-stdin"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._endpoints.append(proc)
        lines: queue.Queue[str] = queue.Queue()

        def drain() -> None:  # read every line, so that a full pipe never blocks the endpoint
            for line in proc.stdout:
                lines.put(line)
            lines.put("")  # end of output: it exited

        threading.Thread(target=drain, name="local-endpoint-stdout", daemon=True).start()
        try:
            line = lines.get(timeout=ENDPOINT_START_S)
        except queue.Empty:
            raise RuntimeError(f"the local AWS endpoint did not start within {ENDPOINT_START_S}s") from None
        refusal = line.removeprefix(endpoint.FAILED + "MotoPatchError: ")
        if refusal != line:
            raise MotoPatchError(refusal.strip())
        if not line.startswith("READY "):
            said = line.strip() or "it exited without a word on stdout (its stderr says why)"
            raise RuntimeError(f"the local AWS endpoint did not start: {said}")
        return line.split()[1]

    def stop(self) -> None:
        """Stop the gateway, let each worker finish its batch, stop the endpoint; idempotent."""
        self._stop.set()
        for thread in self._threads:  # the supervisor first: it must not replace a process being stopped
            thread.join(timeout=5)
        self._threads.clear()
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.pool is not None:
            self.pool.stop(timeout_s=self.poll_wait_s + 30)
            self.pool = None
        for proc in self._endpoints:
            proc.stdin.close()  # its end of file: it exits (it ignores SIGTERM and Ctrl-C, see processes.py)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._endpoints.clear()
        aws.configure(None)
        model_store.clear_cache()
        model_files.clear_cache()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self) -> None:
        while not self._stop.wait(0.2):
            for pool in (self.pool, self.api):
                if pool is not None:
                    pool.replace_dead()

    # ------------------------------------------------------------------ helpers for tests, the demo and scripts

    @property
    def batches(self) -> int:
        """Worker invocations so far, all processes together."""
        return self.pool.batches if self.pool is not None else 0

    def kill_worker(self, index: int = 0) -> int:
        """SIGKILL one worker process (it is replaced within a moment); returns its pid."""
        process = self.pool.processes[index]
        os.kill(process.pid, signal.SIGKILL)
        return process.pid

    def inject(self, faults: Iterable[endpoint.Fault]) -> list[dict]:
        """Replace the AWS endpoint's fault rules (``[]`` clears them); every process sees them at once."""
        faults = list(faults)
        endpoint.inject(self.dynamodb_endpoint_url, faults)
        return endpoint.inject(self.endpoint_url, faults)

    def fault_report(self) -> list[dict]:
        """The active rules, with their hits at both endpoints added up."""
        reports = [endpoint.fault_report(url) for url in (self.endpoint_url, self.dynamodb_endpoint_url)]
        return [{**rules[0], "hits": sum(r["hits"] for r in rules)} for rules in zip(*reports, strict=True)]

    def queue_depth(self, queue_url: str | None = None) -> int:
        """Visible + in-flight messages in the queue (or in ``queue_url``, e.g. ``self.dlq_url``)."""
        attrs = self.services.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.settings.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
