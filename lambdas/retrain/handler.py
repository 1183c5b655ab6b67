"""The retraining state machine's function steps (``lambdas.loop.steps``): ``start_handler`` gathers a run's
data, ``finish_handler`` puts the trained candidate through the gate. Both return what the state machine passes on."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.loop import steps
from lambdas.loop.settings import LoopSettings
from lambdas.service.aws import get_services
from lambdas.service.logs import logger


@logger.inject_lambda_context(clear_state=True)
def start_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s = get_services()
    record = steps.start(event, s.s3, s.dynamodb, s.ssm, s.stepfunctions, s.settings, LoopSettings.from_env())
    logger.info(
        "run gathered", extra={k: record.get(k) for k in ("run_id", "action", "reason", "new", "heldout_events")}
    )
    return record


@logger.inject_lambda_context(clear_state=True)
def finish_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s = get_services()
    outcome = steps.finish(event, s.s3, s.ssm, s.settings, LoopSettings.from_env())
    logger.info(
        "run decided",
        extra={"run_id": outcome["run_id"], "action": outcome["action"], "reason": outcome["gate"]["reason"]},
    )
    return outcome
