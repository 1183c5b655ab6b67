"""The SageMaker Training entry point, run here in SageMaker's directory layout with the environment its toolkit sets:
channels in, the verified artifact out, and a failure reason where SageMaker reads it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from contract.events_file import HEADER
from model_export import sagemaker_job

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"epochs": "2", "dim": "8", "hidden": "[32, 16]", "rank_dim": "8", "batch_size": "256", "rank_blend": "1.0"}


def layout(tmp: Path, small_model_dir: Path, hps: dict, events: bool = True) -> dict[str, str]:
    """``/opt/ml`` under ``tmp``: the data channel (the small fixture's ratings and movies), an events channel, the
    hyperparameters as SageMaker writes them (strings), and the variables the toolkit sets."""
    opt = tmp / "opt" / "ml"
    data = opt / "input" / "data" / "data"
    data.mkdir(parents=True)
    for name in ("ratings.csv", "movies.csv"):
        shutil.copy(small_model_dir.parent / name, data / name)
    channels = ["data"]
    env = {"SM_CHANNEL_DATA": str(data)}
    if events:
        ev = opt / "input" / "data" / "events"
        ev.mkdir(parents=True)
        rows = [",".join(HEADER), "9001,3,5.0,1700000000,1700000000000", "9001,7,4.5,1700000001,1700000001000"]
        (ev / "events.csv").write_text("\n".join(rows) + "\n")
        channels.append("events")
        env["SM_CHANNEL_EVENTS"] = str(ev)
    config = opt / "input" / "config"
    config.mkdir(parents=True)
    written = {**hps, "sagemaker_program": '"model_export/sagemaker_job.py"', "model_dir": '"s3://bucket/job/model"'}
    (config / "hyperparameters.json").write_text(json.dumps(written))
    (opt / "model").mkdir()
    env |= {
        # The toolkit's copy, decoded (and the SDK's model_dir, which the job leaves out).
        "SM_HPS": json.dumps({k: json.loads(v) for k, v in written.items() if not k.startswith("sagemaker_")}),
        "SM_CHANNELS": json.dumps(channels),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_MODEL_DIR": str(opt / "model"),
        "SM_OUTPUT_DIR": str(opt / "output"),
        "SM_OUTPUT_DATA_DIR": str(opt / "output" / "data"),
    }
    return env


def test_hyperparameters_arrive_as_strings_and_become_train_flags(tmp_path):
    (tmp_path / "hyperparameters.json").write_text(
        json.dumps({"epochs": "3", "hidden": "[64, 32]", "batchnorm": "false", "sagemaker_region": '"eu-west-1"'})
    )
    hps = sagemaker_job.hyperparameters({}, tmp_path)
    assert hps == {"epochs": 3, "hidden": [64, 32], "batchnorm": False}
    assert sagemaker_job.train_flags(hps) == ["--epochs", "3", "--hidden", "64", "32", "--no-batchnorm"]
    # The toolkit's SM_HPS is decoded already: a string stays a string.
    assert sagemaker_job.hyperparameters({"SM_HPS": '{"rank_dim": 16, "variant": "true"}'}, tmp_path) == {
        "rank_dim": 16,
        "variant": "true",
    }
    # What SageMaker, the SDK and tuning jobs add on their own is left out.
    added = '{"model_dir": "s3://b/m", "_tuning_objective_metric": "rmse", "sagemaker_job_name": "j", "lr": 0.01}'
    assert sagemaker_job.hyperparameters({"SM_HPS": added}, tmp_path) == {"lr": 0.01}


@pytest.mark.parametrize(
    ("hps", "says"),
    [
        ('{"ratings": "/tmp/other.csv"}', "hyperparameter 'ratings': the data come from the channels"),
        ('{"data-dir": "/tmp"}', "hyperparameter 'data-dir': the data come from the channels"),
        ('{"epochs": null}', "hyperparameter 'epochs': null is not a number"),
        ('{"hidden": {"a": 1}}', "is not a number, string, boolean or list"),
    ],
)
def test_hyperparameters_that_would_clash_with_the_channels_or_mean_nothing_are_refused(tmp_path, hps, says):
    with pytest.raises(sagemaker_job.JobError, match=says):
        sagemaker_job.hyperparameters({"SM_HPS": hps}, tmp_path)


def test_the_job_trains_and_exports_a_verified_artifact_in_the_container_layout(small_model_dir, tmp_path):
    """As SageMaker runs it: the file as a script, from the source's root, with the toolkit's variables."""
    pytest.importorskip("keras")
    env = layout(tmp_path, small_model_dir, SMALL)
    done = subprocess.run(
        [sys.executable, "model_export/sagemaker_job.py"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    from lambdas.engine import Engine

    engine = Engine(Path(env["SM_MODEL_DIR"]) / "artifact")  # loading verifies every file's hash
    assert engine.recommend(9001, k=3)["strategy"] == "personalized"  # the events' user is in the model
    meta = json.loads((Path(env["SM_OUTPUT_DATA_DIR"]) / "metadata.json").read_text())
    assert meta["train_config"]["epochs"] == 2
    assert not (Path(env["SM_OUTPUT_DIR"]) / "failure").exists()


def test_a_bad_hyperparameter_fails_the_job_with_its_reason_and_no_artifact(small_model_dir, tmp_path, capsys):
    env = layout(tmp_path, small_model_dir, {**SMALL, "epochz": "3"}, events=False)
    assert sagemaker_job.main(env) == 1
    reason = (Path(env["SM_OUTPUT_DIR"]) / "failure").read_text()
    assert reason.startswith("training failed:") and "--epochz" in reason
    assert not (Path(env["SM_MODEL_DIR"]) / "artifact").exists()


def test_a_missing_data_channel_names_what_is_missing(tmp_path):
    env = {"SM_CHANNEL_DATA": str(tmp_path / "nothing"), "SM_OUTPUT_DIR": str(tmp_path / "out")}
    assert sagemaker_job.main(env) == 1
    assert (tmp_path / "out" / "failure").read_text() == f"channel 'data': no ratings.csv in {tmp_path / 'nothing'}"


def test_an_events_channel_without_its_file_fails_rather_than_training_without_events(small_model_dir, tmp_path):
    env = layout(tmp_path, small_model_dir, SMALL)
    Path(env["SM_CHANNEL_EVENTS"], "events.csv").unlink()
    assert sagemaker_job.main(env) == 1
    assert (Path(env["SM_OUTPUT_DIR"]) / "failure").read_text() == (
        f"channel 'events': no events.csv in {env['SM_CHANNEL_EVENTS']}"
    )


def test_a_stopped_job_writes_why_and_leaves_no_artifact(small_model_dir, tmp_path, monkeypatch):
    """StopTrainingJob and the time limit send SIGTERM: the job says so where SageMaker reads it, and removes a
    partly copied artifact."""
    env = layout(tmp_path, small_model_dir, SMALL)

    def stopped_while_copying(_env):
        partial = Path(env["SM_MODEL_DIR"]) / ".artifact.partial"
        partial.mkdir()
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(sagemaker_job, "run", stopped_while_copying)
    assert sagemaker_job.main(env) == 1
    assert (Path(env["SM_OUTPUT_DIR"]) / "failure").read_text().startswith("stopped (signal SIGTERM")
    assert list(Path(env["SM_MODEL_DIR"]).iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is not sagemaker_job._stopped  # the handler is put back
