"""Ranking with the catalogue graph: one ``catalogue.onnx`` call scores the whole catalogue for up to 64 users (exact
stage-1 scores, TopK, the full model's rating of the candidates, TopK again; see ``model_export/catalogue_graph.py``),
and the popularity fallback."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import contract
from lambdas.engine.records import Records

BATCH_CHUNK = 64


def catalogue_feeds(
    user_rank: np.ndarray,
    user_mf: np.ndarray,
    user_bias: np.ndarray,
    user_deep: np.ndarray,
    exclude: np.ndarray,
    k: int,
    candidates: int = contract.CANDIDATES,
) -> dict[str, np.ndarray]:
    """The inputs of ``catalogue.onnx`` (:data:`~contract.CATALOGUE_INPUTS`) for B users.

    ``exclude``: boolean [B, N], True for a movie not to recommend. The exporter's parity check feeds the graph
    through this function too.
    """
    cand = min(exclude.shape[1], candidates)
    feeds = {
        "user_rank": user_rank.astype(np.float32, copy=False),
        "user_mf": user_mf.astype(np.float32, copy=False),
        "user_bias": user_bias.reshape(-1, 1).astype(np.float32, copy=False),
        "user_deep": user_deep.astype(np.float32, copy=False),
        "exclude": np.where(exclude, np.float32(-np.inf), np.float32(0.0)),
        "candidates": np.array([cand], np.int64),
        "k": np.array([min(k, cand)], np.int64),
    }
    return feeds


class Ranking(Records):
    """Known users' top-k lists and the popular lists."""

    def _run(self, user_rank, user_mf, user_bias, user_deep, exclude: np.ndarray, k: int):
        """One catalogue.onnx call; ``exclude`` boolean [B, N]."""
        feeds = catalogue_feeds(user_rank, user_mf, user_bias, user_deep, exclude, k, max(self.candidates, k))
        top_scores, top_items, top_ratings = self.session.run(["top_scores", "top_items", "top_ratings"], feeds)
        return top_scores, top_items, top_ratings

    def _user_inputs(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        w = self.w
        rank, mf = w["user_rank"][users], w["user_mf"][users]
        implicit = w["user_implicit"][users] if "user_implicit" in w else None
        return rank, mf, w["user_bias"][users], self.deep_inputs(implicit, mf)

    def deep_inputs(self, implicit: np.ndarray | None, mf: np.ndarray) -> np.ndarray:
        """The deep branch's user input [B, D]: the rating factors, plus the implicit ones when the model has them."""
        if not self.has_deep:
            return np.zeros((len(mf), 0), np.float32)
        return mf if implicit is None or "user_implicit" not in self.w else np.concatenate([mf, implicit], axis=1)

    def recommend_index(
        self, users: np.ndarray, k: int = 10, exclude_seen: bool = True, genre_mask: np.ndarray | None = None
    ) -> list[list[dict]]:
        """Top-k records for known user indices (vectorised, chunks of 64 users per ONNX call)."""
        out: list[list[dict]] = []
        for start in range(0, len(users), BATCH_CHUNK):
            chunk = np.asarray(users[start : start + BATCH_CHUNK])
            exclude = np.zeros((len(chunk), self.n_items), dtype=bool)
            if genre_mask is not None:
                exclude |= genre_mask
            if exclude_seen:
                for row, u in enumerate(chunk):
                    exclude[row, self._seen(int(u))] = True
            s, i, r = self._run(*self._user_inputs(chunk), exclude, k)
            out.extend(self._items(s[row], i[row], r[row]) for row in range(len(chunk)))
        return out

    def popular(self, k: int = 10, genres=None, exclude_genres=None, exclude: Iterable[int] = ()) -> list[dict]:
        """The most-rated movies (the fallback for unknown users), filters applied."""
        k = self._check_k(k)
        blocked = self._genre_mask(genres, exclude_genres)
        blocked[np.fromiter(exclude, dtype=np.int64)] = True
        order = self.popularity[~blocked[self.popularity]][:k]
        return [self.movie(int(i), float(self.counts[i])) for i in order]

    def popular_for(
        self, user_id: Any, k: int = 10, exclude_seen: bool = True, genres=None, exclude_genres=None
    ) -> list[dict]:
        """The popularity ranking as ``user_id`` would get it: same filters, their rated movies left out."""
        u = self.user_index(user_id)
        seen = self._seen(u).tolist() if u >= 0 and exclude_seen else []
        return self.popular(k, genres, exclude_genres, exclude=seen)

    def recommend_batch(self, user_ids: list, k: int = 10, exclude_seen: bool = True, genres=None, exclude_genres=None):
        """Many users in one call: known users are scored together, unknown ones get the fallback."""
        k = self._check_k(k)
        mask = self._genre_mask(genres, exclude_genres) if genres or exclude_genres else None
        idx = np.array([self.user_index(u) for u in user_ids], dtype=np.int64)
        known = np.flatnonzero(idx >= 0)
        scored = self.recommend_index(idx[known], k, exclude_seen, mask) if len(known) else []
        by_row = dict(zip(known.tolist(), scored, strict=True))
        fallback = None
        results = []
        for row, user_id in enumerate(user_ids):
            if row in by_row:
                results.append(self._result(user_id, "personalized", by_row[row]))
            else:
                fallback = fallback if fallback is not None else self.popular(k, genres, exclude_genres)
                results.append(self._result(user_id, "popular", fallback))
        return results
