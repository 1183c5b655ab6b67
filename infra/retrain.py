"""The retraining loop on this machine, against the running local stack: ``python -m infra.retrain --local``
(``make retrain``); or a run of the deployed stack's loop started now: ``python -m infra.retrain --stack NAME
[--wait]`` (the schedule starts one every week by default).

The same steps as the deployed state machine, calling the same modules (:mod:`lambdas.loop`): gather the base data
and every stored event from the local bucket and table (forgetting deleted users), hold out the newest events, train
and export in a subprocess that runs the SageMaker job's entry point (``model_export/sagemaker_job.py``) in
SageMaker's directory layout instead of on SageMaker, judge the candidate and the served model on the held-out
events, and publish to the local model store only if the gate passes. The running stack then serves the new version
within a few seconds, without a restart (its processes re-read the model-version parameter).

Exit status: 0 when the run did what it should (published, stopped by the gate, or nothing to do), 1 when a step
failed (the served model is untouched), 2 for a usage error (no local stack, no base data).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.config import StackConfig
from lambdas.loop import base_data, gather, publish
from lambdas.loop.base_data import BaseDataError
from lambdas.loop.layout import Layout
from lambdas.loop.settings import LoopSettings

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "model_export" / "sagemaker_job.py"


class RunFailed(RuntimeError):
    """A step failed; the served model is untouched."""


def _download_prefix(s3: Any, uri: str, dest: Path) -> None:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    dest.mkdir(parents=True, exist_ok=True)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for obj in (o for page in pages for o in page.get("Contents", [])):
        s3.download_file(bucket, obj["Key"], str(dest / obj["Key"][len(prefix) :]))


def job_layout(s3: Any, record: dict[str, Any], opt: Path, hyperparameters: dict[str, Any]) -> dict[str, str]:
    """``/opt/ml`` under ``opt`` as SageMaker lays it out for the run's channels, and the toolkit's variables."""
    env: dict[str, str] = {}
    channels = []
    for name, uri in record["channels"].items():
        if uri is None:
            continue
        where = opt / "input" / "data" / name
        _download_prefix(s3, uri, where)
        env[f"SM_CHANNEL_{name.upper()}"] = str(where)
        channels.append(name)
    config = opt / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: json.dumps(v) for k, v in hyperparameters.items()}))
    (opt / "model").mkdir()
    return env | {
        "SM_CHANNELS": json.dumps(channels),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_MODEL_DIR": str(opt / "model"),
        "SM_OUTPUT_DIR": str(opt / "output"),
        "SM_OUTPUT_DATA_DIR": str(opt / "output" / "data"),
    }


def run_job(env: dict[str, str], opt: Path, log: Callable[[str], None]) -> None:
    """The job's entry point in a subprocess, its output passed through; raises :class:`RunFailed` with SageMaker's
    failure reason if it fails."""
    proc = subprocess.run(
        [sys.executable, str(JOB)], cwd=opt, env={**os.environ, **env}, stdout=sys.stderr, stderr=sys.stderr
    )
    if proc.returncode:
        failure = opt / "output" / "failure"
        reason = failure.read_text() if failure.exists() else f"exit status {proc.returncode}"
        raise RunFailed(f"training job failed: {reason}")


def run(
    aws: Any,
    loop: LoopSettings,
    *,
    hyperparameters: dict[str, Any] | None = None,
    run_id: str | None = None,
    settle_ms: int = gather.SETTLE_MS,
    prepare: Callable[[Path], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One run of the loop against ``aws`` (:class:`~infra.local.connection.LocalAws`); returns its outcome
    (``action``: ``none``, ``published`` or ``stopped``, the gate's record, each step's seconds). ``prepare`` sees
    the job's ``/opt/ml`` folder before training (the tests break a candidate there)."""
    run_id = run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    layout = Layout(loop.data_prefix)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    record = gather.gather(aws.s3, aws.dynamodb, aws.ssm, aws.settings, loop, run_id, settle_ms=settle_ms)
    seconds["gather"] = round(time.perf_counter() - t0, 2)
    if record["action"] == "none":
        log(f"nothing to do: {record['reason']}")
        return {**record, "seconds": seconds}
    log(
        f"run {run_id}: {record['train_events']:,} training events, {record['heldout_events']:,} held out "
        f"({record['heldout_users']:,} users), base data {record['base']['version']}, "
        f"served {record['served_version'] or 'nothing'}"
    )
    with tempfile.TemporaryDirectory(prefix="retrain-") as tmp:
        opt = Path(tmp) / "opt" / "ml"
        env = job_layout(aws.s3, record, opt, hyperparameters or {})
        if prepare is not None:
            prepare(opt)
        t0 = time.perf_counter()
        log("training and exporting (the SageMaker job's entry point, in a subprocess)...")
        try:
            run_job(env, opt, log)
        except RunFailed as exc:
            outcome = {**record, "action": "failed", "reason": str(exc), "seconds": seconds}
            publish.write_decision(aws.s3, loop.data_bucket, layout, run_id, outcome)
            raise
        seconds["train"] = round(time.perf_counter() - t0, 2)
        outcome = publish.conclude(aws.s3, aws.ssm, aws.settings, loop, opt / "model", record, seconds)
    return outcome


def start_deployed(stack: str, region: str | None, wait: bool, poll_s: float = 30.0) -> int:
    """Start the deployed stack's retraining state machine now; with ``wait``, print the run's outcome."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.config import OUTPUT_RETRAIN
    from infra.publish_model import PublishError, stack_outputs

    try:
        outputs = stack_outputs(boto3.client("cloudformation", region_name=region), stack)
        if OUTPUT_RETRAIN not in outputs:
            raise PublishError(f"stack {stack!r} has no output {OUTPUT_RETRAIN} (deployed with -c retrain=false?)")
        sfn = boto3.client("stepfunctions", region_name=region)
        name = time.strftime("manual-%Y%m%dT%H%M%SZ", time.gmtime())
        arn = sfn.start_execution(stateMachineArn=outputs[OUTPUT_RETRAIN], name=name)["executionArn"]
        print(f"started {arn}")
        while wait:
            run = sfn.describe_execution(executionArn=arn)
            if run["status"] != "RUNNING":
                print(f"{run['status']}: {run.get('output') or run.get('cause') or ''}")
                return 0 if run["status"] == "SUCCEEDED" else 1
            time.sleep(poll_s)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _figures(side: dict | None) -> str:
    if not side:
        return "-"
    return f"NDCG@10 {side['ndcg@10']:.4f}, recall@10 {side['recall@10']:.4f}, RMSE {side['rmse']:.4f}"


def main(argv: list[str] | None = None) -> int:
    from infra.local.connection import NoLocalStack, local_aws, target_arguments

    defaults = LoopSettings()
    p = argparse.ArgumentParser(prog="python -m infra.retrain", description=__doc__.split("\n")[0])
    target_arguments(
        p, "the running local stack (make local): run the loop here", "a deployed stack: start its state machine now"
    )
    p.add_argument("--wait", action="store_true", help="with --stack: wait for the run and print its outcome")
    p.add_argument("--hyperparameters", type=json.loads, default={}, help="training.train settings as a JSON object")
    p.add_argument("--holdout-share", type=float, default=defaults.holdout_share)
    p.add_argument("--min-users", type=int, default=defaults.min_users)
    p.add_argument("--ndcg-margin", type=float, default=defaults.ndcg_margin)
    p.add_argument("--rmse-margin", type=float, default=defaults.rmse_margin)
    config = StackConfig()
    p.add_argument(
        "--canary-share",
        type=float,
        default=config.canary_share,
        help="serve a passing candidate to this share of users as an experiment first (the stack's canary_share, "
        "default %(default)s; 0: to everyone at once)",
    )
    p.add_argument(
        "--base-dir",
        type=Path,
        help="with no base data uploaded yet: upload this folder's ratings.csv and movies.csv first",
    )
    p.add_argument("--settle-s", type=float, default=gather.SETTLE_MS / 1000, help="leave the newest seconds' events")
    a = p.parse_args(argv)
    if a.stack:
        return start_deployed(a.stack, a.region, a.wait)
    try:
        aws = local_aws()
        loop = LoopSettings(
            data_bucket=aws.settings.bucket_name,
            holdout_share=a.holdout_share,
            min_users=a.min_users,
            ndcg_margin=a.ndcg_margin,
            rmse_margin=a.rmse_margin,
            canary_share=a.canary_share,
            experiment_window_days=config.experiment_window_days,
            experiment_min_users=config.experiment_min_users,
            experiment_horizon_days=config.experiment_horizon_days,
            experiment_confidence=config.experiment_confidence,
            experiment_margin=config.experiment_margin,
        )
        if a.base_dir is not None and base_data.read_pointer(aws.s3, loop.data_bucket, Layout()) is None:
            movies = a.base_dir / "movies.csv"
            pointer = base_data.upload(
                aws.s3, loop.data_bucket, Layout(), a.base_dir / "ratings.csv", movies if movies.exists() else None
            )
            print(f"uploaded the base data in {a.base_dir}: {pointer['rows']:,} ratings, version {pointer['version']}")
        outcome = run(aws, loop, hyperparameters=a.hyperparameters, settle_ms=int(a.settle_s * 1000))
    except (NoLocalStack, BaseDataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"error: {exc}; the served model is unchanged", file=sys.stderr)
        return 1
    if outcome["action"] == "none":
        return 0
    g = outcome["gate"]
    print(f"candidate {outcome['version']}: {_figures(g['candidate'])}")
    print(f"served    {g['served_version'] or '(none)'}: {_figures(g['served'])}")
    print(f"judged on {g['users']:,} held-out users ({g['pairs']:,} rated pairs)")
    verb = {"published": "published", "experiment": "passed the gate"}.get(outcome["action"], "stopped by the gate")
    print(f"{verb}: {g['reason']}")
    served = outcome["version"] if outcome["action"] == "published" else outcome["before"]
    if outcome["action"] == "experiment":
        print(
            f"experiment {outcome['experiment']}: {outcome['version']} on {a.canary_share:.0%} of users beside "
            f"{served} (python -m infra.experiment --local report; a later run decides)"
        )
    elif outcome.get("held"):
        print(f"kept in the store, not served: {outcome['held']}")
    print(f"serving {served}; steps took {', '.join(f'{k} {v:g} s' for k, v in outcome['seconds'].items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
