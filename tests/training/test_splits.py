"""Split properties: no leakage, determinism, the documented rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.splits import SplitSpec, kfold_masks, random_holdout, temporal_leave_last, train_mask


@pytest.fixture
def ratings() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 500
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 20, n),
            "movie_id": rng.integers(0, 50, n),
            "rating": 4.0,
            "timestamp": rng.integers(0, 1000, n),
        }
    )


def test_random_holdout_is_the_documented_rule():
    mask = random_holdout(1000, 0.1, 42)
    assert np.array_equal(mask, np.random.default_rng(42).random(1000) < 0.9)
    assert np.array_equal(mask, random_holdout(1000, 0.1, 42))
    assert not np.array_equal(mask, random_holdout(1000, 0.1, 43))


def test_temporal_holds_out_each_users_latest(ratings):
    mask = temporal_leave_last(ratings, 2)
    for _, g in ratings.assign(train=mask).groupby("user_id"):
        test, train = g[~g.train], g[g.train]
        if len(g) <= 2:
            assert test.empty
        else:
            assert len(test) == 2 and test.timestamp.min() >= train.timestamp.max()


def test_kfold_partitions_every_row_once():
    masks = list(kfold_masks(103, 5, seed=3))
    test_counts = np.sum([~m for m in masks], axis=0)
    assert (test_counts == 1).all()
    assert [int((~m).sum()) for m in masks] in ([21, 21, 21, 20, 20], sorted([21, 21, 21, 20, 20], reverse=True))
    assert all(np.array_equal(a, b) for a, b in zip(masks, kfold_masks(103, 5, seed=3), strict=True))


def test_spec_dispatch_and_validation(ratings):
    assert np.array_equal(train_mask(ratings, SplitSpec("random", seed=7)), random_holdout(len(ratings), 0.1, 7))
    assert train_mask(ratings, SplitSpec("files", test_file="u1")).all()
    with pytest.raises(ValueError, match="unknown split"):
        SplitSpec("bogus")
    with pytest.raises(ValueError):
        SplitSpec("kfold", folds=3, fold=3)
