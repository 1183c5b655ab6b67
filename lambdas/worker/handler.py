"""SQS worker handler (event source with ``ReportBatchItemFailures``): score each queued request.

Each record is processed on its own; only records whose processing raised are returned in
``batchItemFailures``, so SQS redelivers just those. The engine is loaded once per container by
``lambdas.service.model_store`` (from S3, cached in memory and under ``/tmp``).
"""

from __future__ import annotations

import os

# One request at a time per container, and the engine's onnxruntime session runs on one thread: numpy's BLAS should
# too. Its threads spin against each other on a shared core (a 128 x 128 solve of the reasons took 0.29 ms on one
# thread and 5.5 ms on two with the other core busy, here); set before numpy is first imported, by the engine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.service import dlq, worker
from lambdas.service.aws import get_services
from lambdas.service.logs import logger

# raise_on_entire_batch_failure=False: a batch where every record failed is still a partial response, so SQS
# applies the same per-record retry and DLQ rules instead of treating it as a failed invocation.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
dlq_processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> str:
    """One request; raises on transient errors so the record is retried (and finally moved to the DLQ)."""
    receive_count = int(record.attributes.approximate_receive_count or 1)
    return worker.process_message(get_services(), record.body, receive_count)


def dead_letter_handler(record: SQSRecord) -> str:
    """One dead letter: its request is marked FAILED if it is still PENDING."""
    return dlq.handle_dead_letter(get_services(), record.body)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


@logger.inject_lambda_context(clear_state=True)
def dlq_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    """Optional consumer of the DLQ (covers a worker that timed out on a message's last receive)."""
    return process_partial_response(
        event=event, record_handler=dead_letter_handler, processor=dlq_processor, context=context
    )
