"""The request queue, its dead-letter queue and the worker that drains it into the results table."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import checkov
from infra.constructs.function import FunctionProps, PythonFunction

# SQS's maximum long-poll wait: fewest empty receives when the queue is idle.
LONG_POLL_S = 20
# checkov 3's CloudFormation CKV_AWS_27 reads only KmsMasterKeyId (bridgecrewio/checkov#7381, open).
SSE_SQS = (
    "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled: true, SQS-owned AES-256 keys; the queue policy denies "
    "requests without TLS). The check reads only KmsMasterKeyId (bridgecrewio/checkov#7381). SSE-KMS would add KMS "
    "request charges (and $1/month with a customer-managed key) and no control this queue needs: only this "
    "stack's function roles are granted it."
)
# Reserved concurrency on an SQS-driven function: its event source's MaximumConcurrency is the cap instead.
ESM_CAPPED = (
    "Concurrency is capped by the function's only trigger, its SQS event source's MaximumConcurrency ({cap}), the "
    "control AWS recommends for SQS consumers (a reserved limit under the pollers' demand throttles and "
    "re-queues messages). Reserving it too would hold that share of the account's pool even when idle, and Lambda "
    "keeps 100 units unreserved, so the deploy would fail in accounts with a small concurrency quota."
)
# Longer than the request queue's retention: a redriven message keeps its original enqueue time.
DLQ_RETENTION_DAYS = 14
QUEUE_RETENTION_DAYS = 4
# The dead-letter consumer's cap: the SQS event source minimum (dead letters are rare and each is one update).
DLQ_CONCURRENCY = 2


@dataclass(frozen=True)
class QueueWorkerProps:
    """The worker function and how it consumes the queue."""

    function: FunctionProps
    visibility_timeout_s: int
    max_receive_count: int
    batch_size: int
    batching_window_s: int
    max_concurrency: int
    # A small consumer of the DLQ that marks dead-lettered requests FAILED: the worker does so on a message's last
    # receive, but not when that attempt timed out or crashed. None: dead letters stay in the DLQ.
    dead_letter_function: FunctionProps | None = None


class QueueWorker(Construct):
    """``queue`` -> ``worker`` (SQS event source, partial batch responses) with ``dlq`` after ``max_receive_count``."""

    def __init__(self, scope: Construct, id: str, *, props: QueueWorkerProps) -> None:
        super().__init__(scope, id)
        if props.visibility_timeout_s < 6 * props.function.timeout_s:
            raise ValueError("the visibility timeout must be at least 6 x the worker timeout (AWS's guidance)")
        dlq_timeout = props.dead_letter_function.timeout_s if props.dead_letter_function else 5
        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(DLQ_RETENTION_DAYS),
            visibility_timeout=cdk.Duration.seconds(6 * dlq_timeout),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(props.visibility_timeout_s),
            receive_message_wait_time=cdk.Duration.seconds(LONG_POLL_S),
            retention_period=cdk.Duration.days(QUEUE_RETENTION_DAYS),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=props.max_receive_count),
        )
        for queue in (self.dlq, self.queue):
            checkov.skip(queue, "CKV_AWS_27", SSE_SQS)
        self.worker = PythonFunction(self, "Worker", props=props.function)
        checkov.skip(
            self.worker.function, "CKV_AWS_115", ESM_CAPPED.format(cap=f"max_concurrency={props.max_concurrency}")
        )
        window = cdk.Duration.seconds(props.batching_window_s) if props.batching_window_s else None
        self.worker.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=props.batch_size,
                max_batching_window=window,
                # Only the failed records come back; the rest of the batch is deleted.
                report_batch_item_failures=True,
                # Caps the worker's concurrency (and so the table's write rate) without reserving concurrency.
                max_concurrency=props.max_concurrency,
            )
        )
        self.dead_letter_worker: PythonFunction | None = None
        if props.dead_letter_function is not None:
            self.dead_letter_worker = PythonFunction(self, "DeadLetterWorker", props=props.dead_letter_function)
            self.dead_letter_worker.function.add_event_source(
                sources.SqsEventSource(
                    self.dlq, batch_size=10, report_batch_item_failures=True, max_concurrency=DLQ_CONCURRENCY
                )
            )
            checkov.skip(self.dead_letter_worker.function, "CKV_AWS_115", ESM_CAPPED.format(cap=f"{DLQ_CONCURRENCY}"))
