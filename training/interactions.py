"""Ratings in index space: raw ids <-> contiguous indices, and the (user, item, rating, time) arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Interactions:
    """Ratings in index space (users 0..n_users-1, items 0..n_items-1)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    n_users: int
    n_items: int


class IdMap:
    """Raw ids <-> contiguous indices; raw ids are int64 or str, and lookups accept either spelling."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids)
        self._index = pd.Index(self.ids)
        self.numeric = self.ids.dtype.kind in "iu"

    def __len__(self) -> int:
        return len(self.ids)

    def normalise(self, raw) -> object:
        """A raw id in this map's type (``"19"`` -> 19 for integer maps); unparseable -> None."""
        if self.numeric:
            try:
                value = int(str(raw).strip())
            except ValueError:
                return None
            return value
        return str(raw)

    def lookup(self, raw_ids) -> np.ndarray:
        """Indices of ``raw_ids``; -1 where unknown."""
        values = [self.normalise(r) for r in np.atleast_1d(np.asarray(raw_ids, dtype=object))]
        idx = self._index.get_indexer(
            pd.Index(values, dtype=self.ids.dtype if self.numeric and None not in values else object)
        )
        return idx.astype(np.int64)


def to_interactions(ratings: pd.DataFrame, users: IdMap, items: IdMap) -> Interactions:
    return Interactions(
        users.lookup(ratings["user_id"].to_numpy()),
        items.lookup(ratings["movie_id"].to_numpy()),
        ratings["rating"].to_numpy(np.float32),
        ratings["timestamp"].to_numpy(np.int64),
        len(users),
        len(items),
    )


def slice_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions ``starts[k] .. starts[k] + lengths[k] - 1`` of every slice, concatenated in order."""
    lengths = np.asarray(lengths, np.int64)
    return np.repeat(np.asarray(starts, np.int64) - (np.cumsum(lengths) - lengths), lengths) + np.arange(
        int(lengths.sum())
    )
