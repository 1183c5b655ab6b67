"""Movie features for the deep branch: encoding, the model with and without them, export parity with them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from training.features import encode_items, genre_vocabulary, scale_time  # noqa: E402
from training.models import ModelConfig, build_model  # noqa: E402

MOVIES = pd.DataFrame(
    {
        "movie_id": [10, 11, 12, 13],
        "title": ["A", "B", "C", "D"],
        "year": [1990, None, 2010, 0],
        "genres": [["Drama", "Comedy"], ["(no genres listed)"], ["Sci-Fi"], ["Drama", "Western"]],
    }
)


def test_genres_are_multi_hot_over_the_training_vocabulary():
    matrix, names = encode_items(MOVIES, [12, 10, 11])
    assert names == ["genre:Comedy", "genre:Drama", "genre:Sci-Fi", "year", "year_missing"]
    np.testing.assert_array_equal(matrix[:, :3], [[0, 0, 1], [1, 1, 0], [0, 0, 0]])  # placeholder = no genre
    assert matrix.dtype == np.float32


def test_genres_outside_a_fixed_vocabulary_and_unknown_movies_are_ignored():
    matrix, names = encode_items(MOVIES, [13, 99], vocabulary=["Drama", "Sci-Fi"])
    assert names[:2] == ["genre:Drama", "genre:Sci-Fi"]
    np.testing.assert_array_equal(matrix[:, :2], [[1, 0], [0, 0]])  # Western dropped; movie 99 has no metadata
    assert matrix[1, -1] == 1.0  # ... and no year


def test_missing_years_get_the_median_and_a_flag():
    matrix, _ = encode_items(MOVIES, [10, 11, 12, 13])
    year, missing = matrix[:, -2], matrix[:, -1]
    np.testing.assert_array_equal(missing, [0, 1, 0, 1])  # None and 0 are unknown years
    np.testing.assert_allclose(year, [(1990 - 2000) / 20, 0.0, (2010 - 2000) / 20, 0.0])  # median 2000
    assert genre_vocabulary(MOVIES) == ["Comedy", "Drama", "Sci-Fi", "Western"]


def test_the_deep_branch_reads_the_features_and_they_stay_fixed():
    features, _ = encode_items(MOVIES, [10, 11, 12, 13])
    cfg = ModelConfig(dim=4, hidden=(16, 8), rank_dim=3, item_features=True)
    keras.utils.set_random_seed(0)
    model = build_model(5, 4, cfg, features)
    table = model.get_layer("item_features")
    assert not table.trainable
    np.testing.assert_array_equal(table.get_weights()[0], features)
    # the output layer starts at zero: give it weights so the branch shows in the prediction
    out = model.get_layer("deep_out")
    out.set_weights([np.ones_like(w) for w in out.get_weights()])
    x = {"user": np.array([0, 1, 2], np.int32), "item": np.array([0, 1, 2], np.int32)}
    before = model.predict(x, verbose=0)["rating"]
    table.set_weights([features + 1.0])
    assert not np.allclose(before, model.predict(x, verbose=0)["rating"])
    with pytest.raises(ValueError, match="feature matrix"):
        build_model(5, 4, cfg)
    assert "item_features" not in {lyr.name for lyr in build_model(5, 4, ModelConfig(dim=4, rank_dim=3)).layers}


def test_training_with_features_exports_with_parity(small_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from model_export.export import export
    from training import train as train_cli

    model_dir = tmp_path / "model"
    args = [
        "--ratings",
        str(small_model_dir.parent / "ratings.csv"),
        "--movies",
        str(small_model_dir.parent / "movies.csv"),
    ]
    small = ["--epochs", "3", "--dim", "8", "--hidden", "32", "16", "--rank-dim", "8", "--batch-size", "256"]
    flags = ["--item-features", "--time-feature", "--quiet"]
    assert train_cli.main([*args, *small, *flags, "--out", str(model_dir)]) == 0
    meta = json.loads((model_dir / "metadata.json").read_text())
    model_meta = meta["train_config"]["model"]
    assert model_meta["item_features"] is True and model_meta["time_feature"] is True
    # served at the last training rating's time, on the year column's scale
    last = pd.read_csv(small_model_dir.parent / "ratings.csv")["timestamp"].max()
    assert model_meta["time_now"] == pytest.approx(float(scale_time(last)), abs=1e-3)
    assert "year" in meta["training"]["item_features"] and any(
        n.startswith("genre:") for n in meta["training"]["item_features"]
    )
    artifact = tmp_path / "artifact"
    # raises unless ONNX matches Keras within 1e-4: the pairwise graph with its time input, and the catalogue
    # graph (time folded into the first layer's bias) against Keras predict at time_now
    export(model_dir, artifact, log=lambda *_: None)
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    assert "time" in [i["name"] for i in manifest["onnx"]["pairwise"]["inputs"]]
    weights = np.load(artifact / "weights.npz", allow_pickle=False)
    assert weights["item_features"].shape[1] == len(meta["training"]["item_features"])


def test_features_need_movie_metadata(tmp_path, capsys, small_model_dir):
    from training import train as train_cli

    args = ["--ratings", str(small_model_dir.parent / "ratings.csv"), "--item-features", "--epochs", "1"]
    assert train_cli.main([*args, "--quiet", "--out", str(tmp_path / "m")]) == 2
    assert "needs movie metadata" in capsys.readouterr().err


def test_rare_movie_metrics_of_the_ablation(small_model_dir, monkeypatch):
    from bench import ablation
    from training.recommender import load

    rec, _ = load(small_model_dir)
    test = pd.read_csv(small_model_dir / "test.csv")
    assert ablation.rare_movie_metrics(rec, test, (0.5, 5.0)) == {}  # every movie has >= 5 training ratings
    monkeypatch.setattr(ablation, "RARE", 10**6)  # now every movie is rare
    m = ablation.rare_movie_metrics(rec, test, (0.5, 5.0))
    assert m["rare_ratings"] == len(test) and 0 < m["rare_rmse"] < 2 and 0 <= m["rare_pctile"] <= 1


def test_time_feature_is_an_input_that_changes_predictions_and_needs_timestamps():
    cfg = ModelConfig(dim=4, hidden=(16, 8), rank_dim=3, time_feature=True)
    keras.utils.set_random_seed(0)
    model = build_model(5, 4, cfg)
    assert "time" in [t.name for t in model.inputs]
    out = model.get_layer("deep_out")
    out.set_weights([np.ones_like(w) for w in out.get_weights()])
    x = {"user": np.array([0, 1], np.int32), "item": np.array([0, 1], np.int32)}
    early = model.predict({**x, "time": scale_time([8e8, 8e8])}, verbose=0)["rating"]
    late = model.predict({**x, "time": scale_time([1.5e9, 1.5e9])}, verbose=0)["rating"]
    assert not np.allclose(early, late)
    assert scale_time([946_684_800])[0] == pytest.approx(0.0, abs=1e-3)  # 2000-01-01 is the origin

    from training.config import TrainConfig
    from training.fit import fit

    ratings = pd.DataFrame({"user_id": [1, 1, 2, 2], "movie_id": [1, 2, 1, 2], "rating": [4.0, 3, 5, 2]})
    with pytest.raises(ValueError, match="needs rating timestamps"):
        fit(ratings.assign(timestamp=0), TrainConfig(epochs=1, model=cfg), progress=None)


def test_ablation_steps_run_only_the_chosen_rows_with_the_accumulated_configuration(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    from bench import ablation

    monkeypatch.setattr(ablation, "split", lambda name, data_dir: (SimpleNamespace(), [0] * 8, [0] * 2))
    seen: list[tuple[dict, dict]] = []

    def fake_run_step(train, test, ds, model_kw, train_kw):
        seen.append((model_kw, train_kw))
        return {c: 0.5 for c in ablation.COLUMNS}

    monkeypatch.setattr(ablation, "run_step", fake_run_step)
    tuned = tmp_path / "best_config.json"
    tuned.write_text(json.dumps({"_value": 0.9, "dim": 16, "hidden": [200], "lr": 0.01}))
    assert (
        ablation.main(["--datasets", "u1", "--tuned", f"u1={tuned}", "--steps", "3", "8", "9", "--out", str(tmp_path)])
        == 0
    )
    assert len(seen) == 3
    assert seen[0] == ({"item_features": True, "rank_l2": 5e-5}, {"user_balance": 0.0})  # steps 1-3 built up
    assert seen[1] == (
        {
            "item_features": True,
            "rank_l2": 7e-5,
            "time_feature": True,
            "dim": 64,
            "hidden": (800, 200),
            "dense_l2": 1e-5,
            "l1": 1e-7,
            "dropout": 0.4,
        },
        {"user_balance": 0.35, "lr_schedule": "cosine"},
    )
    assert seen[2] == ({"dim": 16, "hidden": (200,)}, {"lr": 0.01})  # tuned replaces the configuration
    rows = json.loads((tmp_path / "ablation.json").read_text())["u1"]
    assert list(rows) == ["+ genre/year features", "+ cosine schedule", "tuned (best_config.json)"]
    with pytest.raises(SystemExit):
        ablation.main(["--datasets", "u1", "--steps", "10"])  # no tuned file: still 1..9, 10 is out of range
    assert "--steps" in capsys.readouterr().err
