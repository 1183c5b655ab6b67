"""What every part of the engine reads: the artifact's arrays and maps, ids, genre filters, the request error.

:class:`EngineBase` declares the state :class:`~lambdas.engine.engine.Engine` sets up at load; the parts
(:mod:`.records`, :mod:`.ranking`, :mod:`.fold_in`, :mod:`.similar`) build on it, each with one job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import onnxruntime as ort

import contract
from lambdas.engine.artifact import Artifact


class RequestError(ValueError):
    """A request the engine cannot serve as asked (bad k, unknown movie or genre); ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EngineBase:
    """The loaded artifact's state, and the lookups every request makes."""

    artifact: Artifact
    model_version: str
    gamma: float
    mu: float
    mf_weight: float
    deep_weight: float
    scale: tuple[float, float]
    candidates: int
    events_through: int | None
    w: dict[str, np.ndarray]
    user_ids: np.ndarray
    item_ids: np.ndarray
    n_items: int
    numeric_ids: bool
    numeric_users: bool
    _user_index: dict[Any, int]
    _item_keys: list[Any]
    _item_index: dict[Any, int]
    titles: np.ndarray
    years: np.ndarray
    genre_names: list[str]
    _genre_col: dict[str, int]
    genres: np.ndarray
    popularity: np.ndarray
    counts: np.ndarray
    h_indptr: np.ndarray
    h_items: np.ndarray
    h_ratings: np.ndarray
    has_deep: bool
    fold_in_defaults: dict[str, Any]
    _similar: np.ndarray
    _table: tuple[np.ndarray, np.ndarray] | None
    _liked: np.ndarray | None
    similar_k: int
    session: ort.InferenceSession
    gamma_item_bias: np.ndarray
    title_list: list[str]
    rank_sum: np.ndarray
    rank_basis: np.ndarray
    explain_rows: np.ndarray
    proj_sum: np.ndarray
    graph_logits: bool
    load_seconds: float

    @staticmethod
    def _key(raw: Any, numeric: bool) -> Any:
        """An id as the map stores it (``contract.canonical_id``): ``"19"`` and ``19`` are one id in an integer
        map, ``"019"`` none of its ids."""
        return contract.integer_id(raw) if numeric else contract.canonical_id(raw)

    def user_index(self, user_id: Any) -> int:
        """Index of a known user, or -1."""
        return self._user_index.get(self._key(user_id, self.numeric_users), -1)

    def item_index(self, movie_id: Any) -> int:
        """Index of a known movie, or -1."""
        return self._item_index.get(self._key(movie_id, self.numeric_ids), -1)

    def _genre_mask(self, genres: Iterable[str] | None, exclude_genres: Iterable[str] | None) -> np.ndarray:
        """Boolean [N]: movies the genre filters rule out."""
        out = np.zeros(self.n_items, dtype=bool)

        def cols(names: Iterable[str]) -> list[int]:
            found = []
            for g in names:
                j = self._genre_col.get(str(g).lower())
                if j is None:
                    raise RequestError("unknown_genre", f"unknown genre {g!r}; known: {', '.join(self.genre_names)}")
                found.append(j)
            return found

        if genres:
            out |= ~self.genres[:, cols(genres)].any(axis=1)
        if exclude_genres:
            out |= self.genres[:, cols(exclude_genres)].any(axis=1)
        return out

    def _seen(self, u: int) -> np.ndarray:
        return self.h_items[self.h_indptr[u] : self.h_indptr[u + 1]]

    @staticmethod
    def _check_k(k: int) -> int:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise RequestError("invalid_k", f"k must be a positive integer, got {k!r}")
        return int(k)
