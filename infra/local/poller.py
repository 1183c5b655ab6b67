"""The SQS event source mapping, played by worker processes: each long-polls the queue and calls the worker handler.

As Lambda's event source mapping does: a batch is up to ``batch_size`` messages gathered for at most
``batching_window_s`` after the first one; only the records the handler did not report in ``batchItemFailures``
are deleted; a handler that raises (an invocation error) leaves the whole batch to the visibility timeout. Failed
messages come back after the visibility timeout and, after ``max_receive_count`` receives, SQS (moto) moves them to
the DLQ. Each process is one warm "container": module state (the loaded engine) lives as long as the process, and a
process killed mid-batch loses nothing, because its messages are visible again after the visibility timeout.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from infra.local.context import LambdaContext, sqs_record
from infra.local.processes import ProcessPool, leave_signals_to_parent

WORKER_FUNCTION = "recommender-worker-local"
WINDOW_POLL_S = 0.05


@dataclass(frozen=True)
class PollerConfig:
    """What one worker process needs (picklable: it crosses into a spawned process)."""

    settings: dict[str, Any]
    queue_arn: str
    poll_wait_s: int = 1
    batch_size: int = 10
    batching_window_s: float = 0.0
    log_level: str = "WARNING"


@dataclass
class WorkerSlot:
    """Counters a worker process shares with the stack: batches handled, and whether it holds one now."""

    batches: Any  # RawValue("q"): written by the slot's process only (one at a time), read by the stack
    holding: Any  # RawValue("i")


def receive_batch(sqs: Any, queue_url: str, config: PollerConfig) -> list[dict]:
    """One batch: a long poll; once a message is there, more receives until ``batch_size`` messages or the batching
    window has passed since the first (as Lambda's event source waits out its window)."""
    got = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=min(10, config.batch_size),
        WaitTimeSeconds=config.poll_wait_s,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    messages = list(got)
    deadline = time.monotonic() + config.batching_window_s
    while messages and len(messages) < config.batch_size:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, config.batch_size - len(messages)),
            WaitTimeSeconds=min(config.poll_wait_s, int(left)),  # whole seconds only: under 1 s, poll every 50 ms
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        messages.extend(got)
        if not got and left < 1:
            time.sleep(min(WINDOW_POLL_S, left))
    return messages


def reported_failures(response: Any, messages: list[dict]) -> set[str]:
    """The message ids to leave on the queue, read as Lambda reads a partial batch response: none for an empty or
    null response, and the whole batch when a reported identifier is empty or not in the batch."""
    ids = {m["MessageId"] for m in messages}
    reported = (response.get("batchItemFailures") if isinstance(response, dict) else None) or []
    failed = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in reported}
    return ids if not failed <= ids else failed


def run(config: PollerConfig, slot: WorkerSlot, stop: Any) -> None:
    """A worker process's life: configure the services, then poll and invoke until ``stop`` is set."""
    leave_signals_to_parent()
    import boto3

    from lambdas.service import aws
    from lambdas.service.logs import logger
    from lambdas.settings import Settings
    from lambdas.worker.handler import lambda_handler

    logging.getLogger("botocore").setLevel(logging.WARNING)
    logger.setLevel(config.log_level)
    settings = Settings(**config.settings)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    services = aws.Services(settings, session)
    aws.configure(services)
    sqs = services.sqs
    parent = os.getppid()
    while not stop.is_set() and os.getppid() == parent:  # a stack killed with SIGKILL leaves no worker behind
        try:
            messages = receive_batch(sqs, settings.queue_url, config)
        except Exception:
            if stop.is_set():
                break
            logger.exception("local worker: receive failed")
            time.sleep(0.5)
            continue
        if not messages:
            continue
        slot.holding.value = 1
        event = {"Records": [sqs_record(m, config.queue_arn) for m in messages]}
        try:
            response = lambda_handler(event, LambdaContext(WORKER_FUNCTION, timeout_s=settings.worker_timeout_s))
            failed = reported_failures(response, messages)
        except Exception:
            # an invocation error: Lambda retries the whole batch, so nothing is deleted
            logger.exception("local worker: handler raised; the whole batch will be retried")
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        try:
            if done:
                sqs.delete_message_batch(
                    QueueUrl=settings.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
        except Exception:
            # not deleted: delivered again after the visibility timeout, a duplicate the worker skips
            logger.exception("local worker: delete failed; the messages will be delivered again")
        finally:
            slot.holding.value = 0
            slot.batches.value += 1


class WorkerPool(ProcessPool):
    """``n`` worker processes, each with the counters it shares with the stack."""

    def __init__(self, n: int, config: PollerConfig) -> None:
        super().__init__(n)
        self.config = config
        self.slots = [WorkerSlot(self._ctx.RawValue("q", 0), self._ctx.RawValue("i", 0)) for _ in range(n)]
        self._generation = 0

    def start(self) -> None:
        for i in range(len(self.slots)):
            self._start(i)

    # One thread per numerical library in each worker, as in a Lambda container that runs one batch at a time: the
    # processes share this machine's cores, and BLAS threads that spin on a busy core cost 3-4x in the cold start's
    # fold-in (measured: 63 ms of CPU single-threaded against 227 ms with the default threads, 2 workers busy).
    THREAD_ENV: ClassVar[dict[str, str]] = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def _start(self, i: int) -> None:
        self.slots[i].holding.value = 0
        # each process has its own model cache, as each Lambda container has its own /tmp (a new one: empty)
        self._generation += 1
        cache = f"{self.config.settings['model_cache_dir']}/worker-{i}-{self._generation}"
        config = replace(self.config, settings={**self.config.settings, "model_cache_dir": cache})
        process = self._ctx.Process(
            target=run, args=(config, self.slots[i], self._stop), name=f"local-worker-{i}", daemon=True
        )
        saved = {name: os.environ.get(name) for name in self.THREAD_ENV}
        os.environ.update(self.THREAD_ENV)  # a spawned process starts with the parent's environment
        try:
            process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self.processes[i] = process

    @property
    def batches(self) -> int:
        return sum(slot.batches.value for slot in self.slots)
