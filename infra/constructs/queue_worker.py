"""The request queue, its dead-letter queue and the worker that drains it into the results table."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import FunctionProps, PythonFunction

# SQS's maximum long-poll wait: fewest empty receives when the queue is idle.
LONG_POLL_S = 20
# Longer than the request queue's retention: a redriven message keeps its original enqueue time.
DLQ_RETENTION_DAYS = 14
QUEUE_RETENTION_DAYS = 4


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
        self.worker = PythonFunction(self, "Worker", props=props.function)
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
                sources.SqsEventSource(self.dlq, batch_size=10, report_batch_item_failures=True, max_concurrency=2)
            )
