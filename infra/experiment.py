"""Try a published model on a share of users beside the served one; see how it does; promote or roll it back.

    python -m infra.experiment --local start --version 1e954138a3211b22 --share 0.1
    python -m infra.experiment --local status
    python -m infra.experiment --local report [--horizon-days 7]
    python -m infra.experiment --local decide [--apply]
    python -m infra.experiment --stack MovieRecommender promote | rollback

``--local``: the running local stack (``make local``); ``--stack NAME``: a deployed one (its outputs name the model
bucket, the served-version parameter and the events table). The experiment lives in the served-version parameter
(:mod:`contract.serving`), so every worker switches within its parameter cache time, and ending it is one write.
``start`` refuses a version that is not published, or whose recorded gate decision was not to publish (a candidate
that fails the offline gate never becomes a variant). ``report`` and ``decide`` scan the events table once (the lists
shown and the ratings after them: :mod:`lambdas.loop.experiment`); ``decide --apply`` promotes or rolls back as the
decision says and records it with the candidate's manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from contract import MANIFEST
from contract.serving import Experiment, Serving, parse, render
from infra.config import OUTPUT_BUCKET, OUTPUT_EVENTS_TABLE, OUTPUT_MODEL_PARAMETER, StackConfig
from infra.local.connection import target_arguments
from infra.publish_model import PublishError, stack_outputs
from lambdas.loop import experiment as judge
from lambdas.loop.table import scan

CONFIG = StackConfig()


class ExperimentError(Exception):
    """A refusal the operator should read (exit status 2)."""


@dataclass(frozen=True)
class Target:
    ssm: Any
    s3: Any
    dynamodb: Any
    parameter: str
    bucket: str
    model_prefix: str
    events_table: str


def local_target() -> Target:
    from infra.local.connection import local_aws

    aws = local_aws()
    s = aws.settings
    return Target(
        aws.ssm, aws.s3, aws.dynamodb, s.model_version_parameter, s.bucket_name, s.model_prefix, s.events_table_name
    )


def stack_target(stack: str, region: str | None) -> Target:
    session = boto3.session.Session(region_name=region)
    required = (OUTPUT_BUCKET, OUTPUT_MODEL_PARAMETER, OUTPUT_EVENTS_TABLE)
    outputs = stack_outputs(session.client("cloudformation"), stack, required)
    return Target(
        session.client("ssm"),
        session.client("s3"),
        session.client("dynamodb"),
        outputs[OUTPUT_MODEL_PARAMETER],
        outputs[OUTPUT_BUCKET],
        "models/",
        outputs[OUTPUT_EVENTS_TABLE],
    )


def serving(target: Target) -> Serving:
    return parse(target.ssm.get_parameter(Name=target.parameter)["Parameter"]["Value"])


def _write(target: Target, value: Serving | Experiment | str) -> None:
    target.ssm.put_parameter(Name=target.parameter, Value=render(value), Type="String", Overwrite=True)


def manifest(target: Target, version: str) -> dict:
    key = f"{target.model_prefix}{version}/{MANIFEST}"
    try:
        return json.loads(target.s3.get_object(Bucket=target.bucket, Key=key)["Body"].read())
    except ClientError as exc:
        raise ExperimentError(f"version {version} is not published (no s3://{target.bucket}/{key})") from exc


def start(
    target: Target,
    version: str,
    share: float = CONFIG.canary_share,
    window_days: float = CONFIG.experiment_window_days,
    min_users: int = CONFIG.experiment_min_users,
    now: float | None = None,
) -> Experiment:
    """Serve ``version`` to ``share`` of users beside the served model."""
    now = time.time() if now is None else now
    current = serving(target)
    if current.experiment is not None:
        raise ExperimentError(f"experiment {current.experiment.experiment} runs: promote or roll it back first")
    if version == current.served:
        raise ExperimentError(f"{version} is the served model already")
    gate = manifest(target, version).get("gate")
    if gate is not None and not gate.get("publish", False):
        raise ExperimentError(f"{version} failed the offline gate ({gate.get('reason', 'no reason recorded')})")
    experiment = Experiment(
        served=current.served,
        candidate=version,
        share=share,
        experiment=time.strftime("exp-%Y%m%d-%H%M%S", time.gmtime(now)),
        started_at=int(now),
        window_days=window_days,
        min_users=min_users,
    )
    _write(target, experiment)
    return experiment


def end(target: Target, promote: bool, decision: dict | None = None) -> str:
    """Promote the candidate (everyone gets it) or roll back (everyone gets the served one); records the decision
    with the candidate's manifest (``experiment`` field). Returns the version now served."""
    running = serving(target).experiment
    if running is None:
        raise ExperimentError("no experiment runs")
    expected = running.experiment if decision is None else decision.get("experiment", running.experiment)
    try:
        return judge.end(
            target.ssm, target.s3, target.parameter, target.bucket, target.model_prefix, promote, decision, expected
        )
    except judge.ExperimentChanged as exc:
        raise ExperimentError(str(exc)) from exc


def report(target: Target, horizon_days: float, now: float | None = None) -> tuple[Experiment, judge.Decision]:
    """The running experiment's figures and the decision they make now."""
    now = time.time() if now is None else now
    current = serving(target)
    if current.experiment is None:
        raise ExperimentError("no experiment runs")
    items = list(scan(target.dynamodb, target.events_table))
    decision = judge.judge(
        current.experiment, items, now, horizon_days, CONFIG.experiment_confidence, CONFIG.experiment_margin
    )
    return current.experiment, decision


def render_report(experiment: Experiment, decision: judge.Decision) -> str:
    lines = [
        f"experiment {experiment.experiment}: {experiment.candidate} on {experiment.share:.0%} of users beside "
        f"{experiment.served}, started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(experiment.started_at))}, "
        f"window {experiment.window_days:g} days",
        "",
        "| variant | users | hit rate (interval) | mean rating (interval, ratings) | liked share (interval) |",
        "|---|---|---|---|---|",
    ]
    for variant, f in decision.figures.items():
        lines.append(
            f"| {variant} | {f['users']} | {_pct(f['hit_rate'], f['hit_rate_interval'])} "
            f"| {_num(f['mean_rating'], f['mean_rating_interval'])} ({f['ratings']}) "
            f"| {_pct(f['liked_share'], f['liked_share_interval'])} |"
        )
    lines += ["", f"decision: {decision.action}: {decision.reason}", f"test: {decision.test}"]
    return "\n".join(lines)


def _pct(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None or interval is None:
        return "-"
    return f"{value:.1%} ({interval[0]:.1%}-{interval[1]:.1%})"


def _num(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" + (f" ({interval[0]:.2f}-{interval[1]:.2f})" if interval else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.experiment", description=__doc__.split("\n")[0])
    target_arguments(p)
    sub = p.add_subparsers(dest="command", required=True)
    go = sub.add_parser("start", help="serve a published version to a share of users")
    go.add_argument("--version", required=True)
    go.add_argument("--share", type=float, default=CONFIG.canary_share)
    go.add_argument("--window-days", type=float, default=CONFIG.experiment_window_days)
    go.add_argument("--min-users", type=int, default=CONFIG.experiment_min_users)
    sub.add_parser("status", help="what is served now")
    for name in ("report", "decide"):
        cmd = sub.add_parser(name, help="the figures so far" if name == "report" else "the decision they make now")
        cmd.add_argument("--horizon-days", type=float, default=CONFIG.experiment_horizon_days)
        if name == "decide":
            cmd.add_argument("--apply", action="store_true", help="promote or roll back as decided")
    sub.add_parser("promote", help="end the experiment: everyone gets the candidate")
    sub.add_parser("rollback", help="end the experiment: everyone gets the served model")
    a = p.parse_args(argv)
    try:
        target = local_target() if a.local else stack_target(a.stack, a.region)
        if a.command == "start":
            e = start(target, a.version, a.share, a.window_days, a.min_users)
            print(f"{e.experiment}: {e.candidate} on {e.share:.0%} of users, {e.served} for the rest")
        elif a.command == "status":
            now = serving(target)
            print(render(now) if now.experiment else f"serving {now.served} to everyone (no experiment)")
        elif a.command in ("report", "decide"):
            experiment, decision = report(target, a.horizon_days)
            print(render_report(experiment, decision))
            if a.command == "decide" and a.apply and decision.action != judge.WAIT:
                served = end(
                    target,
                    decision.action == judge.PROMOTE,
                    {**decision.as_dict(), "experiment": experiment.experiment},
                )
                print(f"applied: serving {served} to everyone")
        else:
            served = end(target, a.command == "promote")
            print(f"serving {served} to everyone")
    except (ExperimentError, PublishError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
