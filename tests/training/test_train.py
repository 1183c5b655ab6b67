"""Training end to end: synthetic recovery, determinism, the CLIs and their saved files, real data."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from training import evaluate as evaluate_cli
from training import train as train_cli
from training.baselines import BiasBaseline
from training.config import ModelConfig, TrainConfig
from training.evaluate import evaluate
from training.fit import fit, reg_scale
from training.interactions import to_interactions
from training.recommender import load
from training.synthetic import low_rank_ratings

FAST = dict(epochs=30, batch_size=256, lr=1e-2, patience=30, lr_decay=0.97)


def small_cfg(kind: str = "residual", **kw) -> TrainConfig:
    model = ModelConfig(kind=kind, dim=8, hidden=(32, 16), l2=1e-4, rank_dim=8)
    return TrainConfig(model=model, **{**FAST, **kw})


@pytest.fixture(scope="module")
def synthetic():
    data = low_rank_ratings(n_users=200, n_items=120, rank=3, density=0.3, noise=0.1, seed=0)
    mask = np.random.default_rng(0).random(len(data)) < 0.85
    return data[mask].reset_index(drop=True), data[~mask].reset_index(drop=True)


@pytest.mark.parametrize("kind", ["residual", "mf"])
def test_training_recovers_a_low_rank_structure(synthetic, kind):
    train, test = synthetic
    rec, summary = fit(train, small_cfg(kind), progress=None)
    tr, te = to_interactions(train, rec.users, rec.items), to_interactions(test, rec.users, rec.items)
    bias = BiasBaseline().fit(tr)
    bias_rmse = float(np.sqrt(np.mean((bias.predict(te.users, te.items) - te.ratings) ** 2)))
    report = evaluate(rec, test, (1.0, 5.0), baselines=False)
    assert report["model"]["rmse"] < 0.6 * bias_rmse, (report["model"]["rmse"], bias_rmse)
    assert summary["epochs_run"] >= 1 and len(summary["history"]) == summary["epochs_run"]


def test_same_seed_same_model(synthetic):
    train, _ = synthetic
    cfg = small_cfg(epochs=2)
    a, _ = fit(train, cfg, progress=None)
    b, _ = fit(train, small_cfg(epochs=2), progress=None)
    users, items = np.arange(20), np.arange(20) % 100
    np.testing.assert_array_equal(a.predict(users, items), b.predict(users, items))
    np.testing.assert_array_equal(a.rank_scores(users[:3]), b.rank_scores(users[:3]))


def test_train_cli_writes_a_complete_model_dir_and_evaluate_reads_it(tmp_path, synthetic, capsys):
    train, _ = synthetic
    csv = tmp_path / "ratings.csv"
    train.rename(columns={"user_id": "userId", "movie_id": "movieId"}).to_csv(csv, index=False)
    out = tmp_path / "model"
    args = [
        "--ratings",
        str(csv),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--dim",
        "8",
        "--hidden",
        "16",
        "8",
        "--rank-dim",
        "8",
        "--batch-size",
        "512",
        "--seed",
        "3",
    ]
    assert train_cli.main(args) == 0
    assert "epoch   1" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {
        "model.keras",
        "metadata.json",
        "ids.npz",
        "train.npz",
        "test.csv",
        "movies.csv",
    }
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["split"]["kind"] == "random" and meta["seed"] == 3
    assert meta["train_config"]["model"]["dim"] == 8 and meta["train_config"]["epochs"] == 2
    assert meta["dataset"]["files"]["ratings.csv"] and {"rmse", "ndcg@10"} <= set(meta["metrics"])
    rec, _ = load(out)
    assert len(rec.users) == meta["n_users"]

    assert evaluate_cli.main(["--model", str(out), "--test", str(out / "test.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["rmse"] == pytest.approx(meta["metrics"]["rmse"], abs=1e-6)
    assert set(report["baselines"]) == {"global mean", "user+item bias", "popularity"}
    assert evaluate_cli.main(["--model", str(out), "--test", str(out / "test.csv")]) == 0
    assert "user+item bias" in capsys.readouterr().out


def test_bad_input_is_a_clear_cli_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("userId,movieId,rating\n1,2,4\n1,3,lots\n")
    assert train_cli.main(["--ratings", str(bad), "--out", str(tmp_path / "m")]) == 2
    assert "bad.csv:3: rating 'lots' is not a number" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert evaluate_cli.main(["--model", str(tmp_path), "--test", str(bad)]) == 2
    assert "not a model directory" in capsys.readouterr().err


@pytest.mark.slow
def test_brief_training_on_real_ml_latest_small(data_dir, tmp_path):
    args = [
        "--dataset",
        "ml-latest-small",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "m"),
        "--epochs",
        "2",
        "--quiet",
    ]
    assert train_cli.main(args) == 0
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert meta["n_users"] == 610 and meta["split"] == {**meta["split"], "kind": "random", "seed": 42}
    assert meta["metrics"]["rmse"] < 1.0 and meta["metrics"]["ndcg@10"] > 0.05


def test_ratings_held_out_for_validation_still_count_as_seen(synthetic):
    # GIVEN a model trained with a validation part, WHEN it ranks, THEN every movie the user rated is excluded,
    # including the validation ratings it was not fitted on (they are the user's ratings all the same)
    train, _ = synthetic
    rec, summary = fit(train, small_cfg(epochs=1, val_fraction=0.2), progress=None)
    assert summary["n_val"] > 0 and len(rec.train.users) == len(train) == summary["n_train"] + summary["n_val"]
    all_seen = to_interactions(train, rec.users, rec.items)
    users = np.arange(10)
    scores = rec.rank_scores(users)
    for row, u in enumerate(users):
        assert np.isneginf(scores[row, all_seen.items[all_seen.users == u]]).all()


def test_movie_features_default_to_on_when_there_is_metadata(synthetic):
    import pandas as pd

    train, _ = synthetic
    movies = pd.DataFrame({"movie_id": sorted(train["movie_id"].unique()), "title": "x", "year": 1999})
    movies["genres"] = [["Drama"] if m % 2 else ["Comedy"] for m in movies["movie_id"]]
    with_meta, s = fit(train, small_cfg(epochs=1), progress=None, movies=movies)
    assert with_meta.config.model.item_features is True and s["item_features"][-2:] == ["year", "year_missing"]
    without, s = fit(train, small_cfg(epochs=1), progress=None)
    assert without.config.model.item_features is False and s["item_features"] == []
    mf, _ = fit(train, small_cfg("mf", epochs=1), progress=None, movies=movies)
    assert mf.config.model.item_features is False  # no deep branch to read them


def test_softmax_weights_balance_users_and_favour_liked_ratings():
    # GIVEN user 0 with 9 ratings and user 1 with 1, one of user 0's liked (>= 4)
    from training.batches import softmax_weights
    from training.interactions import Interactions

    users = np.array([0] * 9 + [1])
    ratings = np.array([4.5] + [3.0] * 8 + [3.0], dtype=np.float32)
    data = Interactions(users, np.arange(10), ratings, np.zeros(10, np.int64), 2, 10)
    # WHEN there is no balancing THEN every rating weighs the same but the liked one (3x), mean 1
    flat = softmax_weights(data, TrainConfig(user_balance=0.0))
    assert flat.mean() == pytest.approx(1.0) and flat[0] == pytest.approx(3 * flat[1]) and flat[1] == flat[9]
    # WHEN balancing fully THEN each user's weights sum to the same (the liked rating still 3x its neighbours)
    full = softmax_weights(data, TrainConfig(user_balance=1.0))
    assert full.mean() == pytest.approx(1.0) and full[0] == pytest.approx(3 * full[1])
    assert full[9] == pytest.approx(9 * full[1])
    # AND the served default sits in between: a heavy user's rating weighs 9 ** -0.35 of a light user's
    half = softmax_weights(data, TrainConfig())
    assert half[1] / half[9] == pytest.approx(9 ** -TrainConfig().user_balance, rel=1e-5)
    with pytest.raises(ValueError, match="user_balance"):
        TrainConfig(user_balance=1.5)


def test_fit_leaves_the_callers_config_as_it_was(synthetic):
    train, _ = synthetic
    cfg = small_cfg(epochs=1)
    before = cfg.model_dump()
    rec, _ = fit(train, cfg, progress=None)
    assert cfg.model_dump() == before
    assert rec.config is not cfg and rec.config.rank_blend is not None and cfg.rank_blend is None
    assert rec.config.model.item_features is False and cfg.model.item_features is None


def test_events_join_the_training_part_and_replace_what_they_re_rate():
    """An event replaces the user's earlier training rating of the movie (the later of two events winning) and takes
    a re-rated movie out of the test part, also when the test part holds its ids in another type."""
    import pandas as pd

    from training.cli import add_events

    cols = ["user_id", "movie_id", "rating", "timestamp"]
    train = pd.DataFrame([("u1", "10", 3.0, 1), ("u1", "11", 4.0, 2), ("u2", "10", 5.0, 3)], columns=cols)
    test = pd.DataFrame([(1, 12, 2.0, 4), (2, 11, 1.0, 5)], columns=cols).astype({"user_id": str})
    test["movie_id"] = test["movie_id"].astype("int64")  # as a test file's all-numeric column is read
    events = pd.DataFrame([("u1", "10", 5.0, 6), ("u1", "10", 1.0, 7), ("2", "11", 4.0, 8)], columns=cols)
    merged, left = add_events(train, test.assign(user_id=["u1", "2"]), events)
    got = {(u, m): r for u, m, r in merged[["user_id", "movie_id", "rating"]].itertuples(index=False)}
    assert got == {("u1", "10"): 1.0, ("u1", "11"): 4.0, ("u2", "10"): 5.0, ("2", "11"): 4.0}
    assert left[["user_id", "movie_id"]].values.tolist() == [["u1", 12]]  # user 2's re-rated movie 11 left
    same = add_events(train, test, None)
    assert same[0] is train and same[1] is test


def test_regularisation_weakens_as_one_over_the_ratings_past_the_reference():
    cfg = TrainConfig(reg_reference=100_000)
    assert reg_scale(50_000, cfg) == reg_scale(100_000, cfg) == 1.0
    assert reg_scale(1_000_000, cfg) == pytest.approx(0.1)
    assert reg_scale(1_000_000, TrainConfig(reg_reference=0)) == 1.0


def test_fit_builds_the_model_with_the_strengths_scaled_for_its_data(synthetic):
    train, _ = synthetic
    rec, summary = fit(train, small_cfg(epochs=1, reg_reference=1_000), progress=None)
    scale = 1_000 / summary["n_train"]
    assert summary["reg_scale"] == pytest.approx(scale) and rec.config.model.reg_scale == pytest.approx(scale)
    assert rec.config.model.l2 == 1e-4  # the strength as given is what the model's config records
    user = rec.model.get_layer("user_embedding").embeddings_regularizer
    assert float(user.l2) == pytest.approx(1e-4 * scale)
    assert rec.model.get_layer("rank_items").l2 == pytest.approx(rec.config.model.rank_l2 * scale)
    _, unscaled = fit(train, small_cfg(epochs=1), progress=None)  # about 5,800 ratings: below the default reference
    assert unscaled["reg_scale"] == 1.0
