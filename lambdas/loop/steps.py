"""The state machine's two function steps, around the SageMaker training job: :func:`start` (no overlap, then
:func:`~lambdas.loop.gather.gather`) and :func:`finish` (the job's ``model.tar.gz`` through the gate and into the
model store). ``lambdas/retrain/handler.py`` wires them to Lambda."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

from lambdas.loop import gather, publish
from lambdas.loop.layout import Layout
from lambdas.loop.settings import LoopSettings
from lambdas.settings import Settings


def job_name(run_id: str) -> str:
    """A SageMaker training job name for the run (letters, digits and hyphens, at most 63 characters)."""
    return ("recsys-" + re.sub(r"[^A-Za-z0-9-]", "-", run_id))[:63].rstrip("-")


def start(
    event: dict[str, Any], s3: Any, dynamodb: Any, ssm: Any, sfn: Any, settings: Settings, loop: LoopSettings
) -> dict[str, Any]:
    """``event``: ``execution`` (this run's execution ARN), ``state_machine`` (its ARN), ``name`` (the execution's
    name, the run id). Another run still going: nothing to do (two runs never overlap)."""
    if event.get("state_machine"):
        running = sfn.list_executions(stateMachineArn=event["state_machine"], statusFilter="RUNNING")["executions"]
        others = [e["name"] for e in running if e["executionArn"] != event.get("execution")]
        if others:
            return {"action": "none", "reason": f"run {others[0]} is still going; this one does nothing"}
    run_id = event.get("name") or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = gather.gather(s3, dynamodb, ssm, settings, loop, run_id)
    if record["action"] == "train":
        record["job_name"] = job_name(run_id)
        served = record["channels"]["served"]
        if served is None:
            # The state machine's job always has a served channel, and SageMaker refuses an empty S3 prefix: with
            # nothing served, it gets a folder holding one note (no manifest: the job judges the candidate alone).
            key = Layout(loop.data_prefix).run(run_id) + "served/NONE"
            s3.put_object(Bucket=loop.data_bucket, Key=key, Body=b"no model was served when this run started\n")
            served = f"s3://{loop.data_bucket}/{key.rsplit('/', 1)[0]}/"
        record["job_served"] = served
    return record


def finish(event: dict[str, Any], s3: Any, ssm: Any, settings: Settings, loop: LoopSettings) -> dict[str, Any]:
    """``event``: ``run`` (:func:`start`'s record) and ``model_artifacts`` (the job's ``model.tar.gz`` URI)."""
    event = {**event["run"], "model_artifacts": event["model_artifacts"]} if "run" in event else event
    with tempfile.TemporaryDirectory(prefix="candidate-") as tmp:
        folder = publish.unpack(s3, event["model_artifacts"], Path(tmp))
        keep = ("run_id", "served_version", "cutoff", "train_events", "heldout_events", "heldout_users")
        return publish.conclude(s3, ssm, settings, loop, folder, {k: event.get(k) for k in keep})
