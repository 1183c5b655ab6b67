"""Hyperparameter search, config files, L1 regularisation and the learning-rate range test, on tiny seeded data."""

from __future__ import annotations

import csv
import json
import sqlite3

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("optuna")

from bench import lr_find, tune
from training import cli
from training import train as train_cli
from training.config import TrainConfig
from training.models import ModelConfig, build_model
from training.synthetic import low_rank_ratings

TINY = ["--epochs", "3", "--batch-size", "256", "--patience", "3", "--quiet"]


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune") / "ratings.csv"
    data = low_rank_ratings(n_users=80, n_items=50, rank=3, density=0.3, noise=0.2, seed=3)
    data["rating"] = (np.round(data["rating"] * 2) / 2).clip(0.5, 5.0)
    data.to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def small_space(monkeypatch):
    """The real search space with tiny models, so each trial takes a second or two."""
    small = {"dim": (4, 8), "hidden": ("16", "16,8"), "rank_dim": (4, 8)}
    space = tuple(
        tune.Param(p.name, p.kind, p.low, p.high, small[p.name], small[p.name][:1]) if p.name in small else p
        for p in tune.SPACE
    )
    monkeypatch.setattr(tune, "SPACE", space)


def tune_args(ratings_csv, out, *extra: str) -> list[str]:
    return [
        "--ratings",
        str(ratings_csv),
        *TINY[:-1],
        "--storage",
        str(out / "study.db"),
        "--out",
        str(out),
        *extra,
    ]


def test_a_seeded_tuning_run_writes_its_report_and_resumes(ratings_csv, tmp_path, capsys):
    # GIVEN a tiny data set, WHEN two TPE trials run, THEN the report files exist and the best config trains
    assert tune.main(tune_args(ratings_csv, tmp_path, "--trials", "2", "--objective", "rmse")) == 0
    for name in ("best_config.json", "trials.csv", "report.md", "optimization_history.png", "learning_curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "param_importances.png").exists()
    out = capsys.readouterr().out
    assert "trial   0" in out and "trial   1" in out
    best = json.loads((tmp_path / "best_config.json").read_text())
    assert best["_value"] > 0 and {p.name for p in tune.SPACE} - {"item_features"} <= set(best)
    assert "item_features" not in best  # the data set has no movie metadata, so the features are not searched
    assert "time_feature" in best  # but it has timestamps
    rows = (tmp_path / "trials.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("number,state,rmse")

    # a second study with the same seed proposes the same parameters after the baseline trial 0
    assert tune.main(tune_args(ratings_csv, tmp_path / "again", "--trials", "2", "--objective", "rmse")) == 0
    a, b = (list(csv.DictReader((d / "trials.csv").read_text().splitlines())) for d in (tmp_path, tmp_path / "again"))
    params = lambda row: {k: v for k, v in row.items() if k in {p.name for p in tune.SPACE}}  # noqa: E731
    assert params(a[1]) == params(b[1]) and params(a[1]) != params(a[0])

    # the best configuration is a file training.train accepts
    model_dir = tmp_path / "model"
    args = ["--ratings", str(ratings_csv), "--config", str(tmp_path / "best_config.json"), "--out", str(model_dir)]
    assert train_cli.main([*args, *TINY, "--dim", "6", "--rank-dim", "8"]) == 0
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["train_config"]["lr"] == pytest.approx(best["lr"])
    assert meta["train_config"]["model"]["dim"] == 6  # an explicit flag wins over the file

    # WHEN asked for 3 trials on the same storage THEN only one more runs (the study resumes)
    assert tune.main(tune_args(ratings_csv, tmp_path, "--trials", "3", "--objective", "rmse")) == 0
    assert "2 of 3 trials already done" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "study.db") as db:
        assert db.execute("select count(*) from trials").fetchone()[0] == 3
    # the resumed run proposes something new instead of replaying trial 0 (its sampler was reseeded)
    rows = list(csv.DictReader((tmp_path / "trials.csv").read_text().splitlines()))
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    assert {k: v for k, v in rows[2].items() if k in ("lr", "l2")} != {
        k: v for k, v in rows[0].items() if k in ("lr", "l2")
    }
    # and a study keeps the objective it was started with
    assert tune.main(tune_args(ratings_csv, tmp_path, "--trials", "4", "--objective", "ndcg@10")) == 2
    assert "optimises rmse" in capsys.readouterr().err


def test_trial_zero_of_a_new_study_is_the_untuned_configuration(ratings_csv, tmp_path):
    args = tune_args(ratings_csv, tmp_path, "--trials", "1", "--dim", "8", "--lr", "0.02", "--l1", "0")
    assert tune.main(args) == 0
    row = next(csv.DictReader((tmp_path / "trials.csv").read_text().splitlines()))
    assert int(row["dim"]) == 8  # as given
    assert row["hidden"] in ("16", "16,8")  # the default 400,100 is not offered in this space: sampled
    assert float(row["lr"]) == pytest.approx(1e-2)  # 0.02 is above the range: moved to its end
    assert float(row["l1"]) == pytest.approx(1e-8) and float(row["dropout"]) == pytest.approx(0.3)
    assert row["batchnorm"] == "True" and row["lr_schedule"] == "exponential" and row["time_feature"] == "False"


def test_grid_sampler_only_proposes_grid_values(ratings_csv, tmp_path):
    assert tune.main(tune_args(ratings_csv, tmp_path, "--trials", "2", "--sampler", "grid")) == 0
    best = json.loads((tmp_path / "best_config.json").read_text())
    grid = {p.name: p.grid for p in tune.SPACE}
    assert best["dim"] in grid["dim"] and best["lr"] in grid["lr"] and best["l2"] in grid["l2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "config.json:1: invalid JSON"),
        ('{"dimm": 8}', "unknown option 'dimm'"),
        ('{"lr": "fast"}', "option 'lr'"),
        ('{"lr-schedule": "sometimes"}', "option 'lr-schedule'"),
        ('{"batchnorm": "yes"}', "expected true or false"),
        ('{"dim": true}', "option 'dim': expected a single int"),
        ('{"dim": 2.5}', "option 'dim': expected an integer"),
        ('{"dim": null}', "option 'dim': null is not allowed"),
        ('{"rating_scale": [1]}', "expected 2 values"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_config_files_are_clear_errors(ratings_csv, tmp_path, capsys, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    code = train_cli.main(["--ratings", str(ratings_csv), "--config", str(path), "--out", str(tmp_path / "m")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_config_file_sets_defaults_with_dashes_underscores_and_variant(tmp_path):
    path = tmp_path / "c.json"
    values = {"variant": "mf", "lr-schedule": "cosine", "dense_l1": 1e-6, "hidden": [8], "_x": 1, "dim": 16.0}
    path.write_text(json.dumps({**values, "rating_scale": [1, 5], "alpha": None}))
    p = __import__("argparse").ArgumentParser()
    cli.add_data_args(p)
    cli.add_train_args(p)
    p.add_argument("--config")
    a = cli.parse_with_config(p, ["--config", str(path), "--lr", "0.01"])
    assert a.rating_scale == [1.0, 5.0] and a.dim == 16
    cfg = cli.config_from_args(a)
    assert (cfg.model.kind, cfg.lr_schedule, cfg.model.dense_l1, cfg.model.hidden, cfg.lr) == (
        "mf",
        "cosine",
        1e-6,
        (8,),
        0.01,
    )


def test_l1_regularisers_are_built_and_recorded():
    cfg = ModelConfig(dim=4, hidden=(8, 4), rank_dim=4, l1=1e-5, dense_l1=1e-6, dense_l2=1e-4)
    model = build_model(10, 12, cfg)
    emb = model.get_layer("user_embedding").embeddings_regularizer.get_config()
    dense = model.get_layer("deep_dense_0").kernel_regularizer.get_config()
    assert emb["l1"] == pytest.approx(1e-5) and emb["l2"] == pytest.approx(cfg.l2)
    assert dense["l1"] == pytest.approx(1e-6) and dense["l2"] == pytest.approx(1e-4)
    assert TrainConfig(model=cfg).to_dict()["model"]["l1"] == 1e-5
    assert build_model(10, 12, ModelConfig(dim=4, rank_dim=0)).get_layer("user_embedding").embeddings_regularizer


def test_learning_rate_range_test_sweeps_and_suggests(ratings_csv, tmp_path, capsys):
    args = ["--ratings", str(ratings_csv), "--dim", "8", "--hidden", "16", "--rank-dim", "8", "--batch-size", "64"]
    assert lr_find.main([*args, "--steps", "30", "--min-lr", "1e-4", "--max-lr", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "lr_find.json").read_text())
    lrs = [r["lr"] for r in result["history"]]
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-4) and 10 <= result["steps_run"] <= 30
    assert 1e-4 <= result["suggested_lr"] <= 1
    assert (tmp_path / "lr_find.png").stat().st_size > 0
    assert "steepest descent" in capsys.readouterr().out


def test_every_hyperparameter_comes_from_the_config_models_alone():
    import argparse

    from training.config import ModelConfig, TrainConfig, cli_fields

    p = argparse.ArgumentParser()
    cli.add_train_args(p)
    fields = set(cli_fields(ModelConfig)) | set(cli_fields(TrainConfig))
    assert {a.dest for a in p._actions if a.dest != "help"} == fields
    assert {prm.name for prm in tune.SPACE} <= fields
    # the flags' defaults are the models' defaults, and they parse back to the same configuration
    assert cli.config_from_args(p.parse_args([])) == TrainConfig()
    a = p.parse_args(["--variant", "mf", "--no-batchnorm", "--hidden", "8", "4", "--softmax", "per-rating"])
    cfg = cli.config_from_args(a)
    assert (cfg.model.kind, cfg.model.batchnorm, cfg.model.hidden, cfg.softmax) == ("mf", False, (8, 4), "per-rating")
