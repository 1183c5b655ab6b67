"""Publish a model artifact to the deployed stack and switch the worker to it, or back, without a code deploy.

``python -m infra.publish_model --artifact DIR [--stack NAME]``: verify the artifact, upload it under
``<model_prefix><model_version>/`` in the model bucket (``manifest.json`` last; skipped if that version is already
there, complete), then set the SSM parameter the worker reads its model version from.
``--rollback`` switches to the version served before the current one; ``--version V`` to any published version
(checked complete in the bucket first); ``--list`` shows the published versions, and for those the retraining loop
judged, the gate's decision with both models' figures.

The bucket and parameter come from the stack's outputs (``--stack``, default ``MovieRecommender``) or are given
with ``--bucket`` and ``--parameter``; with ``--stack``, the web page's URL (``SiteUrl``) is printed last.
Credentials and region are boto3's usual ones (``AWS_PROFILE``, ``AWS_REGION``, or ``--region``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from contract import MANIFEST
from contract.serving import parse
from infra.config import DEFAULT_STACK_NAME, OUTPUT_BUCKET, OUTPUT_MODEL_PARAMETER, OUTPUT_SITE_URL, UNPUBLISHED
from lambdas.settings import Settings


class PublishError(RuntimeError):
    """Something the user must fix: no such stack, output, version or artifact."""


@dataclass(frozen=True)
class Target:
    """Where models live and which parameter the worker reads."""

    bucket: str
    parameter: str
    model_prefix: str = Settings().model_prefix

    def prefix(self, version: str) -> str:
        return f"{self.model_prefix}{version}/"


def stack_outputs(
    cloudformation: Any, stack: str, required: tuple[str, ...] = (), hint: str = "not a recommender stack?"
) -> dict[str, str]:
    """A deployed stack's outputs, by key; a PublishError naming any of ``required`` it lacks (and ``hint``)."""
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise PublishError(f"stack {stack!r} not found ({exc.response['Error']['Message']}); deploy it first") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    require_outputs(outputs, stack, required, hint)
    return outputs


def require_outputs(outputs: dict[str, str], stack: str, required: tuple[str, ...], hint: str) -> None:
    """A PublishError naming the outputs of ``required`` that ``outputs`` lacks."""
    missing = [k for k in required if k not in outputs]
    if missing:
        raise PublishError(f"stack {stack!r} has no output {', '.join(missing)} ({hint})")


def stack_target(outputs: dict[str, str], stack: str) -> Target:
    """The model bucket and version parameter from a deployed stack's outputs."""
    require_outputs(outputs, stack, (OUTPUT_BUCKET, OUTPUT_MODEL_PARAMETER), "not a recommender stack?")
    return Target(bucket=outputs[OUTPUT_BUCKET], parameter=outputs[OUTPUT_MODEL_PARAMETER])


def artifact_version(artifact: Path) -> tuple[str, dict]:
    """Verify every file of a local artifact (sizes, checksums, version hash); returns (version, manifest)."""
    from lambdas.engine.artifact import ArtifactError, verify

    try:
        manifest = verify(artifact)
    except ArtifactError as exc:
        raise PublishError(str(exc)) from exc
    return manifest["model_version"], manifest


def _object_size(s3: Any, bucket: str, key: str) -> int | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def published_manifest(s3: Any, target: Target, version: str) -> dict:
    """The manifest of a version in the bucket, after checking that every file it lists is there at its size."""
    key = target.prefix(version) + MANIFEST
    try:
        manifest = json.loads(s3.get_object(Bucket=target.bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            raise PublishError(f"version {version} is not published (no s3://{target.bucket}/{key})") from exc
        raise
    for name, meta in manifest["files"].items():
        size = _object_size(s3, target.bucket, target.prefix(version) + name)
        if size != meta["bytes"]:
            expected = meta["bytes"]
            raise PublishError(f"version {version} is incomplete in the bucket: {name} is {size} bytes, not {expected}")
    return manifest


def upload(s3: Any, target: Target, artifact: Path, log=print) -> str:
    """Upload an artifact under its version prefix (the manifest last, so a listed manifest means complete)."""
    version, manifest = artifact_version(artifact)
    try:
        published_manifest(s3, target, version)
        log(f"version {version} is already in s3://{target.bucket}/{target.prefix(version)}; not uploading again")
        return version
    except PublishError:
        pass
    names = sorted(manifest["files"])
    total = sum(manifest["files"][n]["bytes"] for n in names)
    log(f"uploading {len(names) + 1} files ({total / 1e6:.1f} MB) to s3://{target.bucket}/{target.prefix(version)}")
    for name in [*names, MANIFEST]:
        s3.upload_file(str(artifact / name), target.bucket, target.prefix(version) + name)
    return version


def published_versions(s3: Any, target: Target) -> list[str]:
    """Versions with a manifest in the bucket (in key order)."""
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=target.bucket, Prefix=target.model_prefix, Delimiter="/"
    )
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    versions = [p[len(target.model_prefix) :].rstrip("/") for p in prefixes]
    return [v for v in versions if _object_size(s3, target.bucket, target.prefix(v) + MANIFEST) is not None]


def gate_note(s3: Any, target: Target, version: str) -> str:
    """What the retraining loop's gate decided about a version, from its manifest (empty for one published by
    hand): ``  published by the gate (run R): NDCG@10 0.1234 vs served 0.1200, RMSE ...``."""
    key = target.prefix(version) + MANIFEST
    gate = json.loads(s3.get_object(Bucket=target.bucket, Key=key)["Body"].read()).get("gate")
    if not gate:
        return ""
    verdict = "published by the gate" if gate.get("publish") else "stopped by the gate"
    return f"  {verdict} (run {gate.get('run_id')}, {gate.get('users', 0)} users judged): {gate.get('reason', '')}"


def current_version(ssm: Any, target: Target) -> str:
    """The version served to everyone (during an experiment: the served one, not the candidate)."""
    return parse(ssm.get_parameter(Name=target.parameter)["Parameter"]["Value"]).served


def previous_version(ssm: Any, target: Target) -> str:
    """The version served before the current one (a second rollback goes forward again, like ``cd -``)."""
    history: list[str] = []
    kwargs = {"Name": target.parameter}
    while True:
        page = ssm.get_parameter_history(**kwargs)
        history += [parse(p["Value"]).served for p in page["Parameters"]]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    current = current_version(ssm, target)
    for value in reversed(history):
        if value not in (current, UNPUBLISHED):
            return value
    raise PublishError(f"no earlier version in the history of {target.parameter} to roll back to")


def switch(ssm: Any, target: Target, version: str) -> str:
    """Point the worker at ``version``; returns the version it served before. Refused while an experiment runs
    (end it first with ``python -m infra.experiment promote`` or ``rollback``, which records its outcome)."""
    running = parse(ssm.get_parameter(Name=target.parameter)["Parameter"]["Value"]).experiment
    if running is not None:
        raise PublishError(
            f"experiment {running.experiment} runs ({running.candidate} beside {running.served}): end it first "
            "with python -m infra.experiment promote or rollback"
        )
    before = current_version(ssm, target)
    if before != version:
        ssm.put_parameter(Name=target.parameter, Value=version, Type="String", Overwrite=True)
    return before


def main(argv: list[str] | None = None, session: Any = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.publish_model", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--artifact", type=Path, help="an exported artifact directory to upload and serve")
    what.add_argument("--rollback", action="store_true", help="serve the version served before the current one")
    what.add_argument("--version", help="serve this already published version")
    what.add_argument("--list", action="store_true", help="list the published versions and the one served")
    p.add_argument("--stack", default=DEFAULT_STACK_NAME, help="the deployed stack (default %(default)s)")
    p.add_argument("--bucket", help="the model bucket (default: the stack's output)")
    p.add_argument("--parameter", help="the model-version SSM parameter (default: the stack's output)")
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument("--upload-only", action="store_true", help="with --artifact: upload, do not switch")
    a = p.parse_args(argv)

    session = session or boto3.session.Session(region_name=a.region)
    outputs: dict[str, str] = {}
    try:
        if a.bucket and a.parameter:
            target = Target(a.bucket, a.parameter)
        else:
            outputs = stack_outputs(session.client("cloudformation"), a.stack)
            target = stack_target(outputs, a.stack)
            target = Target(a.bucket or target.bucket, a.parameter or target.parameter)
        s3, ssm = session.client("s3"), session.client("ssm")
        if a.list:
            served = current_version(ssm, target)
            for v in published_versions(s3, target):
                print(f"{'*' if v == served else ' '} {v}{gate_note(s3, target, v)}")
            if served == UNPUBLISHED:
                print("(no model published yet)")
            return 0
        if a.artifact is not None:
            version = upload(s3, target, a.artifact)
            if a.upload_only:
                print(f"uploaded {version}; serving is unchanged")
                return 0
        elif a.rollback:
            version = previous_version(ssm, target)
            published_manifest(s3, target, version)
        else:
            version = a.version
            published_manifest(s3, target, version)
        before = switch(ssm, target, version)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 1
    if before == version:
        print(f"{target.parameter} already serves {version}")
    else:
        print(f"{target.parameter}: {before} -> {version} (workers switch within their parameter cache time)")
    if OUTPUT_SITE_URL in outputs:  # what `make deploy` ends with: where to open the page
        print(f"web page: {outputs[OUTPUT_SITE_URL]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
