"""Seeded synthetic ratings with a known low-rank structure, for tests and scale runs."""

from __future__ import annotations

import numpy as np
import pandas as pd


def low_rank_ratings(
    n_users: int = 300,
    n_items: int = 200,
    rank: int = 4,
    density: float = 0.1,
    noise: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """Ratings = clip(3 + user bias + item bias + U V^T + noise) on a random ``density`` of pairs.

    Returns the normalised table (user_id, movie_id, rating, timestamp); ratings are continuous in
    [1, 5] so a model that recovers the structure gets an RMSE near ``noise``.
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1 / np.sqrt(rank), (n_users, rank))
    v = rng.normal(0, 1 / np.sqrt(rank), (n_items, rank))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    n = int(density * n_users * n_items)
    flat = rng.choice(n_users * n_items, size=n, replace=False)
    users, items = flat // n_items, flat % n_items
    r = 3.0 + bu[users] + bi[items] + np.sum(u[users] * v[items], axis=1) + rng.normal(0, noise, n)
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "movie_id": items.astype(np.int64),
            "rating": np.clip(r, 1.0, 5.0).astype(np.float32),
            "timestamp": rng.integers(1_000_000_000, 1_600_000_000, n),
        }
    )


def catalogue(n_users: int, n_items: int, ratings_per_user: int = 20, seed: int = 0) -> pd.DataFrame:
    """A large sparse synthetic catalogue (popularity-skewed items) for scale and speed runs."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    users = np.repeat(np.arange(n_users), ratings_per_user)
    items = rng.choice(n_items, size=len(users), p=pop)
    frame = pd.DataFrame({"user_id": users, "movie_id": items}).drop_duplicates()
    frame["rating"] = rng.integers(1, 11, len(frame)).astype(np.float32) / 2
    frame["timestamp"] = rng.integers(1_000_000_000, 1_600_000_000, len(frame))
    return frame.reset_index(drop=True)
