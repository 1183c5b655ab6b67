"""Seeded train/test splits of a normalised ratings table; each returns boolean masks in file order.

Every split is described by a :class:`SplitSpec`, which is saved with the model so a run can be
repeated exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SPLIT_KINDS = ("random", "temporal", "kfold", "files")


@dataclass(frozen=True)
class SplitSpec:
    """How a data set was split; ``kind`` is one of :data:`SPLIT_KINDS`."""

    kind: str = "random"
    seed: int = 42
    test_fraction: float = 0.1  # random
    leave_last: int = 1  # temporal: per-user last N by time
    folds: int = 5  # kfold
    fold: int = 0  # kfold: which fold is the test set
    test_file: str | None = None  # files: e.g. ml-100k u1.test

    def __post_init__(self) -> None:
        if self.kind not in SPLIT_KINDS:
            raise ValueError(f"unknown split {self.kind!r}; choose one of {', '.join(SPLIT_KINDS)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_fraction must be in (0, 1)")
        if self.leave_last < 1 or self.folds < 2 or not 0 <= self.fold < self.folds:
            raise ValueError("need leave_last >= 1, folds >= 2 and 0 <= fold < folds")

    def to_dict(self) -> dict:
        return asdict(self)


def random_holdout(n: int, test_fraction: float = 0.1, seed: int = 42) -> np.ndarray:
    """Train mask: row r is in training when ``default_rng(seed).random(n)[r] < 1 - test_fraction``."""
    return np.random.default_rng(seed).random(n) < 1.0 - test_fraction


def temporal_leave_last(ratings: pd.DataFrame, n: int = 1) -> np.ndarray:
    """Train mask holding out each user's last ``n`` ratings by timestamp (later file row on ties).

    Users with ``n`` or fewer ratings keep all of them in training.
    """
    frame = pd.DataFrame({"u": ratings["user_id"].to_numpy(), "t": ratings["timestamp"].to_numpy()})
    frame["row"] = np.arange(len(frame))
    frame = frame.sort_values(["u", "t", "row"], kind="stable")
    rank_from_end = frame.groupby("u", sort=False).cumcount(ascending=False).to_numpy()
    count = frame.groupby("u", sort=False)["row"].transform("size").to_numpy()
    test_rows = frame["row"].to_numpy()[(rank_from_end < n) & (count > n)]
    mask = np.ones(len(frame), dtype=bool)
    mask[test_rows] = False
    return mask


def kfold_masks(n: int, folds: int = 5, seed: int = 42) -> Iterator[np.ndarray]:
    """Train masks of a seeded k-fold split: every row is in exactly one test fold."""
    assignment = np.random.default_rng(seed).permutation(n) % folds
    for k in range(folds):
        yield assignment != k


def train_mask(ratings: pd.DataFrame, spec: SplitSpec) -> np.ndarray:
    """The training mask that ``spec`` describes (``files`` splits have no mask: all rows train)."""
    n = len(ratings)
    if spec.kind == "random":
        return random_holdout(n, spec.test_fraction, spec.seed)
    if spec.kind == "temporal":
        return temporal_leave_last(ratings, spec.leave_last)
    if spec.kind == "kfold":
        return list(kfold_masks(n, spec.folds, spec.seed))[spec.fold]
    return np.ones(n, dtype=bool)
