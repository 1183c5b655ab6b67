"""MovieLens-shaped synthetic data from a known model (training.synthetic.movielens_like) and its ceiling
(training.ceiling): seeded, the right shape and scale, heavy-tailed, learnable, and scored with the project's
protocol."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from training.baselines import Popularity
from training.ceiling import TrueModel, ceiling
from training.evaluate import HeldOut, compare
from training.metrics import rmse
from training.splits import random_holdout
from training.synthetic import (
    SHAPES,
    GroundTruth,
    Shape,
    TasteParams,
    gini,
    gumbel_threshold,
    movielens_like,
    ratings_summary,
)

SMALL = Shape(150, 600, 12_000)  # the half-star scale
WHOLE = Shape(120, 300, 8_000, scale=(1.0, 5.0), step=1.0, params=SHAPES["ml-100k"].params)


@pytest.fixture(scope="module")
def small():
    return movielens_like(SMALL, seed=3)


def test_same_seed_same_frame_and_truth(small):
    ratings, truth = small
    again, truth_again = movielens_like(SMALL, seed=3)
    pd.testing.assert_frame_equal(ratings, again)
    np.testing.assert_array_equal(truth.choice_logits(np.arange(5)), truth_again.choice_logits(np.arange(5)))
    other, _ = movielens_like(SMALL, seed=4)
    assert not ratings.equals(other)


@pytest.mark.parametrize("shape", [SMALL, WHOLE], ids=["half stars", "whole stars"])
def test_frame_has_the_shape_ids_scale_and_counts_asked_for(shape):
    ratings, truth = movielens_like(shape, seed=1)
    assert list(ratings.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert [str(t) for t in ratings.dtypes] == ["int64", "int64", "float32", "int64"]
    assert len(ratings) == shape.n_ratings
    assert not ratings.duplicated(["user_id", "movie_id"]).any()
    # Every user 0..n_users-1 with at least min_per_user ratings, as many as the truth says they chose.
    per_user = ratings.groupby("user_id").size()
    assert per_user.index.tolist() == list(range(shape.n_users))
    assert per_user.min() >= shape.params.min_per_user
    assert per_user.max() <= shape.params.max_user_share * shape.n_movies
    np.testing.assert_array_equal(per_user.to_numpy(), truth.counts)
    # Movies are the chosen ones, numbered 0..n-1 like the truth's rows, about as many as asked for.
    assert sorted(ratings["movie_id"].unique()) == list(range(truth.n_movies))
    assert abs(truth.n_movies - shape.n_movies) < 0.1 * shape.n_movies
    # Ratings on the scale's steps (whole stars for some users of a half-star scale).
    r = ratings["rating"].to_numpy()
    lo, hi = shape.scale
    assert r.min() >= lo and r.max() <= hi
    np.testing.assert_array_equal(r / shape.step, np.round(r / shape.step))
    whole = truth.step[ratings["user_id"]] == 1.0
    assert np.all(r[whole] == np.round(r[whole]))
    if shape.step < 1:
        assert 0.1 < (r % 1 != 0).mean() < 0.5
    # Timestamps in the span, each user's in order.
    t = ratings["timestamp"].to_numpy()
    assert shape.time_span[0] <= t.min() and t.max() <= shape.time_span[1]
    assert ratings.groupby("user_id")["timestamp"].apply(lambda s: s.is_monotonic_increasing).all()


def test_ratings_look_like_movielens(small):
    """About 3.5 on average, roughly half of them 4 or more, a long low tail."""
    s = ratings_summary(small[0])
    assert 3.3 < s["rating mean"] < 3.7
    assert 0.38 < s["share >= 4"] < 0.6
    assert 0.05 < s["share <= 2"] < 0.25


def test_popularity_is_heavy_tailed():
    ratings, _ = movielens_like(Shape(300, 2_000, 30_000), seed=0)
    counts = np.sort(ratings.groupby("movie_id").size().to_numpy())[::-1]
    assert gini(counts) > 0.6
    assert counts[: len(counts) // 10].sum() > 0.5 * counts.sum()  # the top 10% of movies take most ratings
    assert (counts == 1).mean() > 0.1  # and many are rated once


def test_gini_by_hand():
    assert gini(np.array([1, 1, 1, 1])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)


def test_too_many_ratings_for_the_users_is_refused():
    with pytest.raises(ValueError, match="do not fit"):
        movielens_like(Shape(10, 100, 10 * 40))  # at most 28 ratings per user at ml-latest-small's cap


def test_sampled_draw_matches_the_exact_one(monkeypatch):
    """Past exact_cells only the most popular movies' keys are drawn and the rest come from weighted candidates; it
    must choose like the exact draw: the same counts, no repeats, and chosen pairs with about the same choice
    logits, taste and popularity. A head of 200 movies leaves 90% of this catalogue to the candidates."""
    import training.synthetic

    monkeypatch.setattr(training.synthetic, "HEAD", 200)
    shape = Shape(300, 2_000, 15_000)

    def figures(exact_cells: int) -> np.ndarray:
        ratings, truth = movielens_like(shape, seed=5, exact_cells=exact_cells)
        assert not ratings.duplicated(["user_id", "movie_id"]).any() and len(ratings) == shape.n_ratings
        np.testing.assert_array_equal(ratings.groupby("user_id").size().to_numpy(), truth.counts)
        u, i = ratings["user_id"].to_numpy(), ratings["movie_id"].to_numpy()
        logits = truth.choice_logits(u, i)
        popularity = truth.mainstream[u] * truth.log_popularity[i]
        return np.array([logits.mean(), (logits - popularity).mean(), popularity.mean(), truth.n_movies])

    exact, sampled = figures(10**12), figures(0)
    np.testing.assert_allclose(sampled, exact, rtol=0.03)


def test_inclusion_probabilities_add_up_and_match_the_draw():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.5, (1, 12))
    tau = gumbel_threshold(logits, np.array([4]))
    inclusion = -np.expm1(-np.exp(logits[0] - tau[0]))
    assert inclusion.sum() == pytest.approx(4.0, abs=1e-5)
    keys = logits[0] + rng.gumbel(size=(20_000, 12))
    top = np.argpartition(-keys, 3, axis=1)[:, :4]
    np.testing.assert_allclose(inclusion, np.bincount(top.ravel(), minlength=12) / 20_000, atol=0.04)


def test_liked_probability_is_the_noisy_rounded_ratings_share(small):
    _, truth = small
    users = np.array([0, 1, 2])
    liked = truth.liked_probability(users)
    rng = np.random.default_rng(1)
    m = truth.expected_ratings(users)[:, :40]
    draws = 4_000
    noisy = m[None] + truth.draw_noise(rng, draws * m.size).reshape(draws, *m.shape)
    observed = truth.observe(np.broadcast_to(users[None, :, None], noisy.shape), noisy)
    np.testing.assert_allclose((observed >= 4).mean(axis=0), liked[:, :40], atol=0.04)
    assert abs(truth.draw_noise(rng, 200_000).mean()) < 0.01  # m is the mean before rounding


def test_the_known_model_is_learnable_and_the_ceiling_is_above_what_is_learnt():
    """On a small instance the true model ranks far better than popularity, and a quick baseline (EASE) lands
    between the two: there is something to learn, and not everything is learnt."""
    from bench.peers import EASE

    ratings, truth = movielens_like(Shape(300, 800, 24_000), seed=2)
    mask = random_holdout(len(ratings), 0.1, 42)
    train, test = ratings[mask].reset_index(drop=True), ratings[~mask].reset_index(drop=True)
    top = ceiling(truth, train, test)
    split = HeldOut.of(train, test)
    rows = compare([Popularity(), EASE(50.0)], split.train, split.test, split.task, truth.scale)
    best = top["true model (P relevant)"]["ndcg@10"]
    assert best > rows["popularity"]["ndcg@10"] + 0.1
    assert rows["popularity"]["ndcg@10"] < rows["EASE (lambda 50)"]["ndcg@10"] < best
    assert top["true model (choice logit)"]["ndcg@10"] > rows["popularity"]["ndcg@10"] + 0.05
    # The true expected rating is as good as the noise allows: the noise's and the rounding's share, about.
    assert top["true model (P relevant)"]["rmse"] < 0.9


def _tiny_truth() -> GroundTruth:
    """Two users, four movies; choice logits 3, 2, 1, 0 for both; latent ratings 3 + b_u + b_i."""
    return GroundTruth(
        log_popularity=np.array([3.0, 2.0, 1.0, 0.0]),
        mainstream=np.ones(2),
        taste=np.zeros((2, 1)),
        choice=np.zeros((4, 1)),
        liking=np.zeros((4, 1)),
        mean=3.0,
        user_bias=np.array([0.0, 0.5]),
        movie_bias=np.array([0.0, 1.0, -1.0, 0.5]),
        noise=0.1,
        disappointed=0.0,
        disappointment=0.0,
        step=np.full(2, 0.5),
        scale=(0.5, 5.0),
        counts=np.array([3, 4]),
    )


def _frame(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    u, i, r = zip(*rows, strict=True)
    return pd.DataFrame(
        {"user_id": u, "movie_id": i, "rating": np.array(r, np.float32), "timestamp": np.zeros(len(u), np.int64)}
    )


def test_ceiling_by_hand():
    """User 0 trained on movie 0 and holds out movie 1 (rated 2, not relevant) and movie 2 (4.5, relevant); user 1
    trained on 1, 2, 3 and holds out movie 0 (rated 4). Ids first appear out of order in training, so the index
    maps differ from the ids."""
    truth = _tiny_truth()
    train = _frame([(1, 3, 3.0), (1, 2, 3.0), (0, 0, 4.0), (1, 1, 3.0)])
    test = _frame([(0, 1, 2.0), (0, 2, 4.5), (1, 0, 4.0)])
    rows = ceiling(truth, train, test)
    # By choice logit, user 0's candidates rank 1, 2, 3: the relevant movie 2 is second; user 1's only candidate hits.
    choice = rows["true model (choice logit)"]
    assert choice["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1.0) / 2)
    assert choice["recall@10"] == pytest.approx(1.0)
    # By P(relevant), user 0's movie 2 (latent rating 2, never liked) falls behind movie 3 (3.5) and movie 1 (4).
    assert rows["true model (P relevant)"]["ndcg@10"] == pytest.approx((1 / math.log2(4) + 1.0) / 2)
    # RMSE of the latent ratings 4, 2 and 3.5 against 2, 4.5 and 4.
    expected = rmse(np.array([2.0, 4.5, 4.0]), np.array([4.0, 2.0, 3.5]))
    assert choice["rmse"] == pytest.approx(expected)
    assert choice["rmse"] == pytest.approx(math.sqrt((4 + 6.25 + 0.25) / 3))


def test_true_model_predicts_the_training_mean_for_what_training_never_saw():
    truth = _tiny_truth()
    train = _frame([(0, 0, 4.0), (0, 1, 2.0)])
    split = HeldOut.of(train, _frame([(1, 2, 3.0)]))
    model = TrueModel(truth, split.users, split.items).fit(split.train)
    np.testing.assert_allclose(model.predict(np.array([0, -1, 0]), np.array([1, 0, -1])), [4.0, 3.0, 3.0])
    with pytest.raises(ValueError, match="ranking"):
        TrueModel(truth, split.users, split.items, ranking="popularity")


def test_shapes_cover_the_releases_named():
    assert {"ml-latest-small", "ml-100k", "ml-25m"} <= set(SHAPES)
    assert SHAPES["ml-100k"].scale == (1.0, 5.0) and SHAPES["ml-100k"].step == 1.0
    assert replace(TasteParams(), rank=4).rank == 4
