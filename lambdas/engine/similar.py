"""Similar movies: the artifact's neighbour table (co-occurrence at export), else the interaction factors' cosine."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from lambdas.engine.base import RequestError
from lambdas.engine.records import Records


class Similar(Records):
    """A movie's nearest neighbours."""

    def similar_movies(
        self,
        movie_id: Any,
        k: int = 10,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
        explain: bool = True,
    ) -> dict:
        """The movie's k nearest neighbours, the movie itself excluded, best first.

        From the artifact's neighbour table when it has one (``similar_k`` per movie, by co-occurrence in the
        training ratings; the method is in ``manifest["similarity"]``), else by the cosine of the interaction
        factors. Past the table's neighbours (k above ``similar_k``, or a movie with fewer) the list continues in
        factor-cosine order with score 0 (the table holds no score for them), so any k gets min(k, catalogue - 1)
        movies. Genre filters (the same rule as every other request's) apply within the ``similar_k`` nearest
        neighbours, then the list is cut to k, so a narrow filter can return fewer than k movies.

        With ``explain`` each movie says what links it to this one: for the table's neighbours, how many people
        liked both (``liked_together``, when the artifact has the counts); past them, the factor cosine.
        """
        k = self._check_k(k)
        i = self.item_index(movie_id)
        if i < 0:
            raise RequestError("unknown_movie", f"movie {movie_id!r} is not in the model's catalogue")
        if genres or exclude_genres:
            blocked = self._genre_mask(genres, exclude_genres)
            top, scores = self._neighbours(i, max(k, self.similar_k))
            keep = ~blocked[top]
            top, scores = top[keep][:k], scores[keep][:k]
        else:
            top, scores = self._neighbours(i, k)
        items = [self.movie(int(j), float(s)) for j, s in zip(top, scores, strict=True)]
        if explain:
            self._similar_reasons(i, top, items)
        return {"strategy": "similar", "movie": self.movie(i), "items": items, "model_version": self.model_version}

    def _similar_reasons(self, i: int, top: np.ndarray, items: list[dict]) -> None:
        liked: dict[int, int] = {}
        if self._table is not None and self._liked is not None:
            row = self._table[0][i]
            liked = {int(j): int(n) for j, n in zip(row[row >= 0], self._liked[i][row >= 0], strict=True)}
        for j, rec in zip(top.tolist(), items, strict=True):
            if j in liked:
                rec["reasons"] = [{"kind": "liked_together", "users": liked[j]}]
            else:
                cosine = float(self._similar[j] @ self._similar[i])
                rec["reasons"] = [{"kind": "factors", "share": round(cosine, 6)}]

    def _neighbours(self, i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Movie ``i``'s k nearest neighbours (indices, scores), the table's first."""
        top, scores = np.empty(0, np.int64), np.empty(0, np.float32)
        if self._table is not None:
            row, row_scores = self._table[0][i], self._table[1][i]
            keep = row >= 0
            top, scores = row[keep][:k].astype(np.int64), row_scores[keep][:k]
        if len(top) < k:
            sims = self._similar @ self._similar[i]
            sims[i] = -np.inf
            sims[top] = -np.inf
            kk = min(k - len(top), self.n_items - 1 - len(top))
            rest = np.argpartition(-sims, kk - 1)[:kk] if kk > 0 else np.array([], np.int64)
            rest = rest[np.argsort(-sims[rest], kind="stable")]
            rest_scores = sims[rest] if self._table is None else np.zeros(len(rest), np.float32)
            top, scores = np.concatenate([top, rest]), np.concatenate([scores, rest_scores])
        return top, scores
