"""A run's last step: the candidate artifact into the model store with the gate's record in its manifest, and,
when the gate passed, the switch of the model-version parameter (the API and the workers follow within their
parameter cache time; the served model is untouched otherwise).

A stopped candidate is uploaded too (``python -m infra.publish_model --list`` shows it with the gate's figures, and
an operator may still serve it with ``--version``); the manifest goes last, so a listed version is complete.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import contract
from lambdas.loop.layout import Layout
from lambdas.settings import UNPUBLISHED, Settings

ARTIFACT = "artifact"  # the artifact's folder in the job's model.tar.gz (model_export.sagemaker_job.ARTIFACT)
EVALUATION = "evaluation.json"  # the held-out figures beside it (model_export.holdout)


def unpack(s3: Any, uri: str, dest: Path) -> Path:
    """Download and unpack a training job's ``model.tar.gz`` (``s3://bucket/key``) into ``dest``; returns it."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    with tempfile.TemporaryDirectory(prefix="model-tar-") as tmp:
        archive = Path(tmp) / "model.tar.gz"
        s3.download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")  # no absolute paths, links out or devices
    return dest


def record(
    s3: Any, ssm: Any, settings: Settings, artifact: Path, decision: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """Upload the verified candidate with ``decision`` under ``gate`` in its manifest, and switch to it if the gate
    passed. Returns ``{"version", "published", "before"}``."""
    manifest = contract.verify(artifact)
    version = manifest["model_version"]
    prefix = f"{settings.model_prefix}{version}/"
    for name in sorted(manifest["files"]):
        s3.upload_file(str(artifact / name), settings.bucket_name, prefix + name)
    gate = {**decision, "run_id": run_id, "decided_at": int(time.time())}
    body = json.dumps({**manifest, "gate": gate}, indent=1).encode()
    s3.put_object(Bucket=settings.bucket_name, Key=prefix + contract.MANIFEST, Body=body)
    before = None
    if settings.model_version_parameter:
        before = ssm.get_parameter(Name=settings.model_version_parameter)["Parameter"]["Value"]
        if decision["publish"] and before != version:
            ssm.put_parameter(Name=settings.model_version_parameter, Value=version, Type="String", Overwrite=True)
    return {"version": version, "published": bool(decision["publish"]), "before": before or UNPUBLISHED}


def write_decision(s3: Any, bucket: str, layout: Layout, run_id: str, outcome: dict[str, Any]) -> None:
    """The run's outcome beside its files (``runs/<run>/decision.json``)."""
    s3.put_object(Bucket=bucket, Key=layout.run(run_id) + "decision.json", Body=json.dumps(outcome, indent=1).encode())
