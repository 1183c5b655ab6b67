"""The SageMaker Training job's entry point: this project's own ``training.train`` and ``model_export.export`` (the
served configuration, the same code as locally), in SageMaker's container contract.

A prebuilt SageMaker TensorFlow training image runs it with this repository's source as a tarball
(``sagemaker_submit_directory``) and ``sagemaker_program`` = ``model_export/sagemaker_job.py``. The image's toolkit
installs the tarball's ``requirements.txt`` first, and this repository's is the development list: a job-only one is
still to do (docs/training.md, "On SageMaker Training"). What it reads and writes (each path from the variable the
toolkit sets, else SageMaker's fixed path):

* channel ``data`` (``SM_CHANNEL_DATA``, ``/opt/ml/input/data/data``): ``ratings.csv`` (MovieLens's header) and
  optionally ``movies.csv``, the base data an operator uploaded;
* channel ``events`` (``SM_CHANNEL_EVENTS``, optional): ``events.csv``, the stored events
  (:mod:`contract.events_file`), added to the training data as ``training.train --events`` adds them;
* channel ``served`` (``SM_CHANNEL_SERVED``, optional): the served model's artifact files; with
  ``events/heldout.csv`` (the events the retraining loop held out, :mod:`lambdas.loop.plan`) the job judges the
  candidate and the served model on them (:mod:`model_export.holdout`) and writes the figures to
  ``/opt/ml/model/evaluation.json`` beside the artifact, where the loop's gate reads them;
* hyperparameters (``SM_HPS``, the toolkit's decoded JSON; else ``/opt/ml/input/config/hyperparameters.json``, where
  SageMaker writes every value as a string, read as JSON where it is): ``training.train`` flags by name (``epochs``,
  ``dim``, ``hidden``, ``batchnorm``: true/false, ...); none gives the served configuration. SageMaker's and the
  SDK's own (``sagemaker_*``, ``_*`` such as a tuning job's objective, ``model_dir``) are ignored; the data flags
  (:data:`RESERVED`) are refused, since the channels give the data;
* the verified serving artifact goes to ``/opt/ml/model/artifact`` (``SM_MODEL_DIR``; SageMaker uploads the folder
  as ``model.tar.gz``), exported in a temporary folder and moved there whole at the end; the trained model's
  ``metadata.json`` to ``/opt/ml/output/data`` (``SM_OUTPUT_DATA_DIR``);
* on failure, or when SageMaker stops the job (SIGTERM), the reason goes to ``/opt/ml/output/failure`` (SageMaker
  reports it as the job's ``FailureReason``) and the process exits non-zero, leaving no artifact.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # SageMaker runs this file as a script from the source's root: the packages are beside it, one folder up.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contract.training_job import (
    ARTIFACT,
    DATA_CHANNEL,
    EVALUATION,
    EVENTS,
    EVENTS_CHANNEL,
    HELDOUT,
    MOVIES,
    RATINGS,
    SERVED_CHANNEL,
)

OPT_ML = Path("/opt/ml")
FAILURE_LIMIT = 1024  # SageMaker keeps the first 1,024 characters of the failure reason
# training.train's flags that the channels and the job set: a hyperparameter may not give them.
RESERVED = frozenset({"dataset", "ratings", "movies", "events", "data_dir", "out", "quiet", "config"})
# Hyperparameters the SageMaker Python SDK adds on its own (the TensorFlow estimator's S3 model_dir).
SDK_ADDED = frozenset({"model_dir"})


class JobError(RuntimeError):
    """The job cannot run: a missing channel or file, a bad hyperparameter, or training or export failed."""


def paths(env: Mapping[str, str]) -> dict[str, Path]:
    """Where the container contract puts each thing, from the toolkit's variables or SageMaker's fixed paths."""
    return {
        "data": Path(env.get("SM_CHANNEL_DATA", OPT_ML / "input" / "data" / DATA_CHANNEL)),
        "events": Path(env.get("SM_CHANNEL_EVENTS", OPT_ML / "input" / "data" / EVENTS_CHANNEL)),
        "served": Path(env.get("SM_CHANNEL_SERVED", OPT_ML / "input" / "data" / SERVED_CHANNEL)),
        "config": Path(env.get("SM_INPUT_CONFIG_DIR", OPT_ML / "input" / "config")),
        "model": Path(env.get("SM_MODEL_DIR", OPT_ML / "model")),
        "output": Path(env.get("SM_OUTPUT_DIR", OPT_ML / "output")),
        "output_data": Path(env.get("SM_OUTPUT_DATA_DIR", OPT_ML / "output" / "data")),
    }


def hyperparameters(env: Mapping[str, str], config_dir: Path) -> dict[str, Any]:
    """The job's ``training.train`` settings: ``SM_HPS`` (the toolkit's JSON, already decoded), else
    ``hyperparameters.json`` with each string value read as JSON where it is (``"8"`` -> 8, ``"[64, 32]"`` -> a
    list, ``"true"`` -> True). SageMaker's and the SDK's own are left out; a data flag or a value that is not a
    number, string, boolean or list raises :class:`JobError`."""
    if "SM_HPS" in env:
        raw = json.loads(env["SM_HPS"])
        decode = False
    else:
        path = config_dir / "hyperparameters.json"
        raw = json.loads(path.read_text()) if path.exists() else {}
        decode = True
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith(("sagemaker_", "_")) or key in SDK_ADDED:
            continue
        if key.replace("-", "_") in RESERVED:
            raise JobError(f"hyperparameter {key!r}: the data come from the channels, not from hyperparameters")
        if decode and isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if value is None or isinstance(value, dict):
            raise JobError(f"hyperparameter {key!r}: {json.dumps(value)} is not a number, string, boolean or list")
        decoded[key] = value
    return decoded


def train_flags(hps: Mapping[str, Any]) -> list[str]:
    """``training.train`` flags for the hyperparameters: ``--name value``, a list as several values, a boolean as
    ``--name`` / ``--no-name``."""
    flags: list[str] = []
    for key, value in hps.items():
        name = key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, list):
            flags += [f"--{name}", *(str(v) for v in value)]
        else:
            flags += [f"--{name}", str(value)]
    return flags


class _Tee(io.TextIOBase):
    """Writes to the job's log (the real stderr) and keeps a copy for the failure reason."""

    def __init__(self, real: Any) -> None:
        self.real, self.copy = real, io.StringIO()

    def write(self, s: str) -> int:
        self.real.write(s)
        return self.copy.write(s)

    def flush(self) -> None:
        self.real.flush()


def _call(step: str, main: Callable[[list[str]], int], argv: list[str]) -> None:
    """Runs a CLI's ``main`` in this process; raises :class:`JobError` with what it printed on stderr if it fails."""
    tee = _Tee(sys.stderr)
    with contextlib.redirect_stderr(tee):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's errors
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    if code:
        said = [line.strip() for line in tee.copy.getvalue().splitlines() if line.strip()]
        last = said[-1].removeprefix("error: ") if said else f"exit status {code}"
        raise JobError(f"{step} failed: {last}")


def run(env: Mapping[str, str]) -> Path:
    """Trains and exports from the channels into the model folder; returns the artifact's folder."""
    where = paths(env)
    ratings = where["data"] / RATINGS
    if not ratings.exists():
        raise JobError(f"channel {DATA_CHANNEL!r}: no {RATINGS} in {where['data']}")
    args = ["--ratings", str(ratings)]
    if (where["data"] / MOVIES).exists():
        args += ["--movies", str(where["data"] / MOVIES)]
    if (where["events"] / EVENTS).exists():
        args += ["--events", str(where["events"] / EVENTS)]
    elif "SM_CHANNEL_EVENTS" in env:
        raise JobError(f"channel {EVENTS_CHANNEL!r}: no {EVENTS} in {where['events']}")
    try:
        hps = hyperparameters(env, where["config"])
    except json.JSONDecodeError as exc:
        raise JobError(f"hyperparameters: not JSON ({exc})") from exc
    heldout = where["events"] / HELDOUT
    if heldout.exists() and not (where["events"] / EVENTS).exists():
        raise JobError(f"channel {EVENTS_CHANNEL!r}: {HELDOUT} without {EVENTS}")
    artifact = where["model"] / ARTIFACT
    # imported once the inputs are known good: a bad channel or hyperparameter fails before TensorFlow loads
    from model_export import export as export_cli
    from training import train as train_cli

    with tempfile.TemporaryDirectory(prefix="recsys-job-") as tmp:
        model_dir, staged = Path(tmp) / "model", Path(tmp) / ARTIFACT
        _call("training", train_cli.main, [*args, *train_flags(hps), "--out", str(model_dir), "--quiet"])
        _call("export", export_cli.main, ["--model", str(model_dir), "--out", str(staged)])
        # Into the model folder whole: a copy beside it, then a rename (the temporary folder may be on another disk).
        partial = where["model"] / f".{ARTIFACT}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staged, partial)
        partial.rename(artifact)
        where["output_data"].mkdir(parents=True, exist_ok=True)
        shutil.copy2(model_dir / "metadata.json", where["output_data"] / "metadata.json")
    if heldout.exists():
        judge(artifact, where)
    return artifact


def judge(artifact: Path, where: dict[str, Path]) -> None:
    """The candidate and the served model (when the ``served`` channel holds one) on the held-out events, written
    to the model folder's ``evaluation.json``."""
    from contract import is_artifact
    from model_export.holdout import compare

    served = where["served"] if is_artifact(where["served"]) else None
    figures = compare(artifact, served, where["events"] / EVENTS, where["events"] / HELDOUT, log=_log)
    (where["model"] / EVALUATION).write_text(json.dumps(figures, indent=1))
    _log(f"judged on {figures['users']} held-out users, {figures['pairs']} pairs: {json.dumps(figures)}")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stopped(signum: int, frame: Any) -> None:
    raise JobError(f"stopped (signal {signal.Signals(signum).name}: StopTrainingJob or the job's time limit)")


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    where = paths(env)
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        artifact = run(env)
    except Exception as exc:  # every failure becomes the job's FailureReason
        reason = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
        print(f"error: {reason}", file=sys.stderr)
        for leftover in (where["model"] / ARTIFACT, where["model"] / f".{ARTIFACT}.partial"):
            shutil.rmtree(leftover, ignore_errors=True)
        (where["model"] / EVALUATION).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            where["output"].mkdir(parents=True, exist_ok=True)
            (where["output"] / "failure").write_text(reason[:FAILURE_LIMIT])
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"artifact written to {artifact}")
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
