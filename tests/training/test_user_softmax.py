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


def test_group_loss_and_gradient_equal_keras_sparse_categorical_crossentropy():
    import keras
    import tensorflow as tf

    from training.user_softmax import group_softmax_loss

    keras.utils.set_random_seed(0)
    model = build_model(6, 30, ModelConfig(dim=4, hidden=(8,), rank_dim=5, item_features=False))
    twin = training_model(model)
    users, items, weights = _ratings()
    scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    unique, pos = np.unique(users, return_inverse=True)
    group = {
        "group_users": unique.astype(np.int32),
        "group_pos": pos.astype(np.int32),
        "group_items": items,
        "group_weights": weights,
    }
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
