"""A run's last step: the candidate artifact into the model store with the gate's record in its manifest, and,
when the gate passed, the switch of the model-version parameter: to the candidate, or (``canary_share`` > 0) to an
experiment serving it to a share of users (the API and the workers follow within their parameter cache time; the
served model is untouched otherwise).

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
from contract.serving import Experiment, parse, render
from contract.training_job import ARTIFACT, EVALUATION
from lambdas.loop import gate
from lambdas.loop.layout import Layout
from lambdas.loop.settings import LoopSettings
from lambdas.settings import UNPUBLISHED, Settings


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
    s3: Any,
    ssm: Any,
    settings: Settings,
    artifact: Path,
    decision: dict[str, Any],
    run_id: str,
    loop: LoopSettings | None = None,
) -> dict[str, Any]:
    """Upload the verified candidate with ``decision`` under ``gate`` in its manifest and, if the gate passed, serve
    it: to a share of users as an experiment beside the served model when ``loop.canary_share`` > 0 and a model is
    served (:mod:`contract.serving`; decided by a later run, :mod:`.experiment`), else to everyone. While another
    experiment runs, a passing candidate is kept in the store only. Returns ``{"version", "published", "before"}``
    and, for an experiment started, ``experiment``."""
    loop = loop or LoopSettings()
    manifest = contract.verify(artifact)
    version = manifest["model_version"]
    prefix = f"{settings.model_prefix}{version}/"
    for name in sorted(manifest["files"]):
        s3.upload_file(str(artifact / name), settings.bucket_name, prefix + name)
    gate = {**decision, "run_id": run_id, "decided_at": int(time.time())}
    body = json.dumps({**manifest, "gate": gate}, indent=1).encode()
    s3.put_object(Bucket=settings.bucket_name, Key=prefix + contract.MANIFEST, Body=body)
    before = None
    out: dict[str, Any] = {"version": version, "published": bool(decision["publish"])}
    name = settings.model_version_parameter
    if name:
        now = parse(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        before = now.served
        if decision["publish"] and before != version:
            value: str = version
            if now.experiment is not None:
                out |= {"published": False, "held": f"experiment {now.experiment.experiment} still runs"}
            elif loop.canary_share > 0 and before not in ("", UNPUBLISHED):
                trial = Experiment(
                    served=before,
                    candidate=version,
                    share=loop.canary_share,
                    experiment=f"exp-{run_id}",
                    started_at=int(time.time()),
                    window_days=loop.experiment_window_days,
                    min_users=loop.experiment_min_users,
                )
                value, out["experiment"] = render(trial), trial.experiment
            if out["published"]:
                ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    return {**out, "before": before or UNPUBLISHED}


def conclude(
    s3: Any,
    ssm: Any,
    settings: Settings,
    loop: LoopSettings,
    model: Path,
    record_: dict[str, Any],
    seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A run's end, deployed and local alike: the gate's decision on the job's ``evaluation.json`` in ``model``
    (the job's model folder), the candidate published or stopped (:func:`record`), and the run's outcome (``record_``,
    the gather step's record, with the action, version, served version before and the gate's decision) written
    beside the run's files and returned. ``seconds``: the run's step timings so far, recorded with this step's
    (``publish``) added."""
    started = time.perf_counter()
    decision = gate.decide(json.loads((model / EVALUATION).read_text()), loop)
    published = record(s3, ssm, settings, model / ARTIFACT, decision, record_["run_id"], loop)
    action = "stopped"
    if published["published"]:
        action = "experiment" if "experiment" in published else "published"
    extra: dict[str, Any] = {k: published[k] for k in ("experiment", "held") if k in published}
    outcome = {
        **record_,
        "action": action,
        "version": published["version"],
        "before": published["before"],
        "gate": decision,
        **extra,
    }
    if seconds is not None:
        outcome["seconds"] = {**seconds, "publish": round(time.perf_counter() - started, 2)}
    write_decision(s3, loop.data_bucket, Layout(loop.data_prefix), record_["run_id"], outcome)
    return outcome


def write_decision(s3: Any, bucket: str, layout: Layout, run_id: str, outcome: dict[str, Any]) -> None:
    """The run's outcome beside its files (``runs/<run>/decision.json``)."""
    s3.put_object(Bucket=bucket, Key=layout.run(run_id) + "decision.json", Body=json.dumps(outcome, indent=1).encode())
