"""Fast checks of the benchmark peers on tiny synthetic data."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bench.peers import EASE, ImplicitPeer, SurprisePeer

N_USERS, N_ITEMS = 40, 10


def _two_groups(held_out: bool = True) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Users 0-19 (group A) like items 0-4, users 20-39 (group B) items 5-9.

    With ``held_out`` each user misses one item of their own group (a different one per user);
    returns the pairs and the held-out item of each user.
    """
    users, items, held = [], [], {}
    for u in range(N_USERS):
        group = range(0, 5) if u < 20 else range(5, 10)
        skip = group[u % 5] if held_out else -1
        held[u] = skip
        for i in group:
            if i != skip:
                users.append(u)
                items.append(i)
    return np.array(users), np.array(items), held


def _ratings(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random explicit ratings on a 30 x 12 grid, about half observed, on a 0.5-5 scale."""
    rng = np.random.default_rng(seed)
    mask = rng.random((30, 12)) < 0.5
    users, items = np.nonzero(mask)
    ratings = np.clip(np.round(rng.normal(3.5, 1.0, len(users)) * 2) / 2, 0.5, 5.0)
    return users, items, ratings


def test_ease_ranks_held_out_item_of_own_group_first() -> None:
    users, items, held = _two_groups()
    model = EASE().fit_pairs(users, items, N_USERS, N_ITEMS, lam=1.0)
    scores = model.score(np.arange(N_USERS))
    assert scores.shape == (N_USERS, N_ITEMS)
    for u in range(N_USERS):
        other = range(5, 10) if u < 20 else range(0, 5)
        assert scores[u, held[u]] > scores[u, list(other)].max()


def test_ease_weights_and_shapes() -> None:
    users, items, _ = _two_groups()
    model = EASE().fit_pairs(users, items, N_USERS, N_ITEMS, lam=10.0)
    assert model.B is not None and model.B.shape == (N_ITEMS, N_ITEMS)
    np.testing.assert_array_equal(np.diag(model.B), 0.0)
    # No co-occurrence across groups: the cross-group blocks of B are exactly zero.
    np.testing.assert_allclose(model.B[:5, 5:], 0.0, atol=1e-12)
    np.testing.assert_allclose(model.B[5:, :5], 0.0, atol=1e-12)
    assert model.score(np.array([3, 0, 25])).shape == (3, N_ITEMS)
    assert model.score(np.array([], dtype=np.int64)).shape == (0, N_ITEMS)


def test_ease_matches_closed_form_and_ignores_duplicates() -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((15, 8)) < 0.4).astype(np.float64)
    users, items = np.nonzero(x)
    # Repeat some pairs: the binary matrix must not change.
    users = np.concatenate([users, users[:5]])
    items = np.concatenate([items, items[:5]])
    lam = 3.0
    model = EASE().fit_pairs(users, items, 15, 8, lam=lam)
    p = np.linalg.inv(x.T @ x + lam * np.eye(8))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.B, b, atol=1e-10)
    np.testing.assert_allclose(model.score(np.arange(15)), x @ b, atol=1e-10)


def test_ease_rejects_out_of_range_indices() -> None:
    with pytest.raises(ValueError):
        EASE().fit_pairs(np.array([0, 5]), np.array([0, 1]), 5, 2)


@pytest.mark.parametrize("algorithm", ["als", "bpr"])
def test_implicit_peer_shapes_and_structure(algorithm: str) -> None:
    pytest.importorskip("implicit")
    users, items, held = _two_groups()
    if algorithm == "als":
        model = ImplicitPeer("als", factors=4, iterations=10, regularization=0.01, random_state=0)
    else:
        model = ImplicitPeer("bpr", factors=4, iterations=200, regularization=0.001, random_state=0, learning_rate=0.05)
    model.fit_pairs(users, items, N_USERS, N_ITEMS)
    scores = model.score(np.arange(N_USERS))
    assert scores.shape == (N_USERS, N_ITEMS)
    assert np.isfinite(scores).all()
    # Averaged over users, the held-out own-group item beats the other group's items.
    own = np.array([scores[u, held[u]] for u in range(N_USERS)])
    other = np.array([scores[u, 5:].mean() if u < 20 else scores[u, :5].mean() for u in range(N_USERS)])
    assert (own > other).mean() >= 0.9
    assert model.score(np.array([2, 30])).shape == (2, N_ITEMS)


def test_implicit_peer_is_reproducible_and_keeps_empty_items() -> None:
    pytest.importorskip("implicit")
    users, items, _ = _two_groups()
    a = ImplicitPeer("als", factors=4, iterations=5, random_state=3, num_threads=1).fit_pairs(users, items, N_USERS, 12)
    b = ImplicitPeer("als", factors=4, iterations=5, random_state=3, num_threads=1).fit_pairs(users, items, N_USERS, 12)
    np.testing.assert_allclose(a.score(np.arange(5)), b.score(np.arange(5)), atol=1e-6)
    assert a.score(np.arange(5)).shape == (5, 12)  # items 10, 11 never seen still get a column


@pytest.mark.parametrize("algorithm", ["svd", "svdpp"])
def test_surprise_score_equals_predict(algorithm: str) -> None:
    pytest.importorskip("surprise")
    users, items, ratings = _ratings()
    # Feed the rows in a shuffled order so that surprise's inner ids differ from our indices.
    order = np.random.default_rng(2).permutation(len(users))
    model = SurprisePeer(algorithm, random_state=0, n_factors=5, n_epochs=10)
    model.fit_ratings(
        users[order], items[order], ratings[order], n_users=32, n_items=14
    )  # users 30-31, items 12-13 unseen
    assert (model.user_inner[:30] != np.arange(30)).any()

    all_u = np.arange(32)
    scores = model.score(all_u)
    assert scores.shape == (32, 14)
    uu, ii = np.meshgrid(all_u, np.arange(14), indexing="ij")
    np.testing.assert_allclose(model.predict(uu.ravel(), ii.ravel()).reshape(32, 14), scores, atol=1e-6)
    np.testing.assert_allclose(
        model.predict(uu.ravel(), ii.ravel(), clip=False).reshape(32, 14), model.score(all_u, clip=False), atol=1e-6
    )
    # Against surprise itself, on its own raw ids.
    for u, i in [(0, 0), (7, 3), (31, 2), (4, 13), (31, 13)]:
        assert scores[u, i] == pytest.approx(model.algo.predict(u, i).est, abs=1e-6)
    # Both unknown: the global mean.
    assert model.predict(np.array([31]), np.array([13]))[0] == pytest.approx(ratings.mean())
    assert model.predict(np.array([-1]), np.array([-1]))[0] == pytest.approx(ratings.mean())
    assert model.score(np.array([5, 1])).shape == (2, 14)


def test_surprise_unbiased_svd_and_rating_scale() -> None:
    pytest.importorskip("surprise")
    users, items, ratings = _ratings(seed=4)
    model = SurprisePeer("svd", random_state=1, biased=False, n_factors=3, n_epochs=5)
    model.fit_ratings(users, items, ratings, rating_scale=(0.5, 5.0), n_users=31, n_items=12)
    scores = model.score(np.arange(31))
    assert scores.min() >= 0.5 and scores.max() <= 5.0
    np.testing.assert_allclose(scores[30], ratings.mean())  # unknown user, unbiased: global mean
    pairs_u, pairs_i = np.array([0, 3, 30, 12]), np.array([1, 11, 4, 0])
    np.testing.assert_allclose(model.predict(pairs_u, pairs_i), scores[pairs_u, pairs_i], atol=1e-6)


def test_peer_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        ImplicitPeer("lmf")
    with pytest.raises(ValueError):
        SurprisePeer("knn")
    with pytest.raises(RuntimeError):
        EASE().score(np.array([0]))


def test_ease_numpy_only_fallback_matches_scipy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    users, items, _ = _two_groups()
    expected = EASE().fit_pairs(users, items, N_USERS, N_ITEMS, lam=5.0).B
    # Block scipy: EASE must fall back to numpy (dense Gram blocks, np.linalg.inv) and agree.
    for name in ("scipy", "scipy.sparse", "scipy.linalg"):
        monkeypatch.setitem(sys.modules, name, None)
    got = EASE().fit_pairs(users, items, N_USERS, N_ITEMS, lam=5.0).B
    np.testing.assert_allclose(got, expected, atol=1e-10)
