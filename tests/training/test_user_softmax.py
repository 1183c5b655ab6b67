"""The per-user softmax is the per-rating softmax's loss and gradient, computed once per user."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from training.batches import UserGroups, make_batches
from training.config import TrainConfig
from training.interactions import IdMap, to_interactions
from training.models import ModelConfig, build_model, training_model
from training.synthetic import low_rank_ratings


def _ratings(seed: int = 0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 6, 40).astype(np.int32)
    items = rng.integers(0, 30, 40).astype(np.int32)
    weights = rng.uniform(0.2, 3.0, 40).astype(np.float32)
    return users, items, weights


def _group(users, items, weights) -> dict:
    """The ratings as one step's user group (the ``group_*`` inputs of the per-user softmax)."""
    unique, pos = np.unique(users, return_inverse=True)
    return {
        "group_users": unique.astype(np.int32),
        "group_pos": pos.astype(np.int32),
        "group_items": items,
        "group_weights": weights,
    }


def test_group_loss_and_gradient_equal_keras_sparse_categorical_crossentropy():
    import keras
    import tensorflow as tf

    from training.user_softmax import group_softmax_loss

    keras.utils.set_random_seed(0)
    model = build_model(6, 30, ModelConfig(dim=4, hidden=(8,), rank_dim=5, item_features=False))
    twin = training_model(model)
    users, items, weights = _ratings()
    scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    group = _group(users, items, weights)
    head = [model.get_layer("rank_user_embedding").embeddings, *model.get_layer("rank_items").trainable_weights]
    with tf.GradientTape(persistent=True) as tape:
        logits = twin({"user": users, "item": items})["interaction"]
        per_rating = scce(items, logits, sample_weight=weights)
        per_user = group_softmax_loss(
            model.get_layer("rank_user_embedding"), model.get_layer("rank_items"), group, len(users)
        )
    np.testing.assert_allclose(float(per_user), float(per_rating), rtol=1e-6)
    for a, b in zip(tape.gradient(per_rating, head), tape.gradient(per_user, head), strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), atol=1e-6)


def test_user_groups_cover_every_rating_once_and_keep_users_whole():
    users = np.repeat(np.arange(50), np.random.default_rng(1).integers(1, 120, 50))
    n_steps = int(np.ceil(len(users) / 64))
    groups = UserGroups(users, 55, 64, n_steps, seed=3)
    for _ in range(2):
        seen = []
        for k in range(n_steps):
            members, rows, pos = groups.group(k)
            assert set(users[rows]) == set(members) or not len(members)
            np.testing.assert_array_equal(users[rows], members[pos])
            seen.append(rows)
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(len(users)))
        groups.shuffle()


def test_per_user_batches_carry_the_same_rating_batches_as_per_rating():
    data = low_rank_ratings(n_users=40, n_items=30, density=0.3, seed=0)
    inter = to_interactions(data, IdMap(np.unique(data["user_id"])), IdMap(np.unique(data["movie_id"])))
    a = make_batches(inter, TrainConfig(batch_size=64, softmax="per-user"), with_head=True)
    b = make_batches(inter, TrainConfig(batch_size=64, softmax="per-rating"), with_head=True)
    assert len(a) == len(b)
    for k in (0, len(a) - 1):
        (xa, ya), (xb, yb, wb) = a[k], b[k]
        np.testing.assert_array_equal(xa["user"], xb["user"])
        np.testing.assert_array_equal(ya["rating"], yb["rating"])
        assert np.all(xa["group_weights"] > 0) and len(xa["group_pos"]) == len(xa["group_items"])
        np.testing.assert_array_equal(wb["rating"], np.ones(len(xb["user"]), np.float32))


# The per-rating formulation's model before the per-user softmax and the split of training/train.py existed
# (recorded from commit c9ab7ea with this exact configuration): refactoring must not change what a seed trains.
BEFORE_PRED = [
    *(2.95813, 2.73946, 2.80508, 2.92198, 2.62409, 3.17859),
    *(2.92331, 3.32351, 2.76422, 2.90099, 2.81811, 3.15975),
]
BEFORE_RANK = [
    [-np.inf, 2.58434, 2.67510, 2.87206, -np.inf, 2.88205, 3.14064, 2.61736],
    [2.96603, -np.inf, 2.83305, 2.77668, 3.11497, -np.inf, 3.31175, 2.70907],
]


def test_per_rating_formulation_trains_the_same_model_as_before():
    from training.fit import fit

    data = low_rank_ratings(n_users=120, n_items=80, rank=3, density=0.3, noise=0.1, seed=0)
    cfg = TrainConfig(
        model=ModelConfig(dim=8, hidden=(32, 16), l2=1e-4, rank_dim=8),
        epochs=2,
        batch_size=256,
        lr=1e-2,
        patience=30,
        softmax="per-rating",
    )
    rec, _ = fit(data, cfg, progress=None)
    users, items = np.arange(12), (np.arange(12) * 7) % 80
    np.testing.assert_allclose(rec.predict(users, items), BEFORE_PRED, atol=1e-3)
    np.testing.assert_allclose(rec.rank_scores(np.array([0, 1]))[:, :8], BEFORE_RANK, atol=1e-3)


def _head_and_group():
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(6, 30, ModelConfig(dim=4, hidden=(8,), rank_dim=5, item_features=False))
    users, items, weights = _ratings()
    group = _group(users, items, weights)
    return model.get_layer("rank_user_embedding"), model.get_layer("rank_items"), group


def test_sampled_normaliser_over_every_movie_once_at_uniform_proposal_is_the_exact_loss():
    from training.user_softmax import group_softmax_loss

    rank_user, rank_items, group = _head_and_group()
    exact = float(group_softmax_loss(rank_user, rank_items, group, 40))
    # K = N draws, each movie once, q = 1/N: (1/K) sum_j exp(s_j) / q_j is the normaliser itself (log(K q) = 0).
    whole = {**group, "group_sample": np.arange(30, dtype=np.int32), "group_logq": np.zeros(30, np.float32)}
    np.testing.assert_allclose(float(group_softmax_loss(rank_user, rank_items, whole, 40)), exact, rtol=1e-6)
    # Half the catalogue is not the normaliser: the estimate must see every movie it stands for.
    half = {**group, "group_sample": np.arange(15, dtype=np.int32), "group_logq": np.zeros(15, np.float32)}
    assert float(group_softmax_loss(rank_user, rank_items, half, 40)) < exact - 1e-3


def test_sampled_normaliser_drawn_from_the_proposal_estimates_the_exact_loss():
    from training.batches import CatalogueSample
    from training.user_softmax import group_softmax_loss

    rank_user, rank_items, group = _head_and_group()
    rank_items.c.assign(np.linspace(-2.0, 2.0, 30).astype(np.float32))  # an uneven catalogue, as a trained one is
    exact = float(group_softmax_loss(rank_user, rank_items, group, 40))
    popular = np.repeat(np.arange(30), np.arange(30) + 1)  # popularity from the training ratings: the proposal's half
    sample = CatalogueSample(popular, 30, 24, seed=5, head=8)
    np.testing.assert_array_equal(sample.head, np.arange(22, 30))  # the most-rated movies, summed exactly
    assert np.isclose(sample.q.sum(), 1.0) and sample.q.min() >= 0.5 / 22 - 1e-12
    draws = []
    for _ in range(300):
        drawn, logq = sample.draw()
        assert drawn.dtype == np.int32 and len(drawn) == 24 and drawn[8:].max() < 22
        np.testing.assert_array_equal(drawn[:8], sample.head)
        np.testing.assert_allclose(logq[:8], 0.0)
        np.testing.assert_allclose(logq[8:], np.log(16 * sample.q[drawn[8:]]), rtol=1e-6)
        draws.append(
            float(group_softmax_loss(rank_user, rank_items, {**group, "group_sample": drawn, "group_logq": logq}, 40))
        )
    # log of an unbiased estimate: close, and at most a little below on average (Jensen).
    assert abs(np.mean(draws) - exact) < 0.02 * abs(exact)
    assert np.mean(draws) <= exact + 1e-3


def test_sample_size_follows_the_catalogue_and_batches_carry_one_draw_a_step():
    from training.batches import SAMPLE_FROM, SAMPLE_SIZE, softmax_sample_size

    cfg = TrainConfig()
    assert softmax_sample_size(9_742, cfg) == 0  # ml-latest-small: the whole catalogue, as before
    assert softmax_sample_size(SAMPLE_FROM, cfg) == 0
    assert softmax_sample_size(62_000, cfg) == SAMPLE_SIZE
    assert softmax_sample_size(62_000, TrainConfig(softmax_sample=0)) == 0
    assert softmax_sample_size(30, TrainConfig(softmax_sample=64)) == 0  # a draw no smaller than the catalogue
    data = low_rank_ratings(n_users=40, n_items=30, density=0.3, seed=0)
    inter = to_interactions(data, IdMap(np.unique(data["user_id"])), IdMap(np.unique(data["movie_id"])))
    batches = make_batches(inter, TrainConfig(batch_size=64, softmax_sample=16), with_head=True)
    x, _ = batches[0]
    assert x["group_sample"].shape == (16,) and x["group_logq"].shape == (16,)
    assert "group_sample" not in make_batches(inter, TrainConfig(batch_size=64), with_head=True)[0][0]


def test_fit_with_a_sampled_normaliser_records_it_and_ranks_as_the_exact_one_does():
    # A smoke test of the wiring (the loss tests above check the estimate): at this size the rating head dominates
    # the ranking score, so it cannot tell a good estimate from a poor one.
    from training.fit import fit

    data = low_rank_ratings(n_users=120, n_items=80, rank=3, density=0.3, noise=0.1, seed=0)
    base = {"epochs": 3, "batch_size": 256, "lr": 1e-2, "patience": 30, "seed": 0}
    model = ModelConfig(dim=8, hidden=(32, 16), l2=1e-4, rank_dim=8, item_features=False)
    sampled, summary = fit(data, TrainConfig(model=model, softmax_sample=24, **base), progress=None)
    exact, _ = fit(data, TrainConfig(model=model, softmax_sample=0, **base), progress=None)
    assert summary["softmax"]["sample"] == 24
    a, b = sampled.rank_scores(np.arange(20)), exact.rank_scores(np.arange(20))
    finite = np.isfinite(a) & np.isfinite(b)
    # Trained from the same seed, the sampled normaliser's scores order the catalogue much as the exact one's.
    corr = np.mean([np.corrcoef(a[u][finite[u]], b[u][finite[u]])[0, 1] for u in range(20)])
    assert corr > 0.8, corr
