"""What a response says about movies and users: movie records, result envelopes, histories, profiles."""

from __future__ import annotations

from typing import Any

import numpy as np

from lambdas.engine.base import EngineBase, RequestError


class Records(EngineBase):
    """Movie and user records, as the API returns them."""

    def movie(self, i: int, score: float | None = None, rating: float | None = None) -> dict:
        """Display record of movie index ``i``."""
        mid = self.item_ids[i]
        rec: dict[str, Any] = {
            "movie_id": int(mid) if self.numeric_ids else str(mid),
            "title": str(self.titles[i]),
            "year": int(self.years[i]) or None,
            "genres": [self.genre_names[j] for j in np.flatnonzero(self.genres[i])],
        }
        if score is not None:
            rec["score"] = round(float(score), 6)
        if rating is not None:
            rec["predicted_rating"] = round(float(np.clip(rating, *self.scale)), 4)
        return rec

    def _items(
        self, scores: np.ndarray, items: np.ndarray, ratings: np.ndarray, match: np.ndarray | None = None
    ) -> list[dict]:
        keep = np.isfinite(scores)
        out = [self.movie(int(i), s, r) for s, i, r in zip(scores[keep], items[keep], ratings[keep], strict=True)]
        if match is not None:
            for rec, m in zip(out, match[keep], strict=True):
                rec["match"] = round(float(m), 2)
        return out

    def movie_key(self, i: int) -> int | str:
        """Movie index ``i``'s id as the API returns it."""
        return int(self.item_ids[i]) if self.numeric_ids else str(self.item_ids[i])

    def _result(self, user_id: Any, strategy: str, items: list[dict]) -> dict:
        out = {"strategy": strategy, "items": items, "model_version": self.model_version}
        if user_id is not None:
            out["user_id"] = self._user_key(user_id)
        return out

    def _user_key(self, user_id: Any) -> Any:
        key = self._key(user_id, self.numeric_users)
        return key if key is not None else str(user_id)

    def history(self, user_id: Any, n: int = 10) -> list[dict]:
        """The user's highest-rated training movies (most recent first among equal ratings)."""
        u = self.user_index(user_id)
        if u < 0:
            return []
        lo, hi = self.h_indptr[u], min(self.h_indptr[u + 1], self.h_indptr[u] + n)
        return [
            {**self.movie(int(i)), "rating": float(r)}
            for i, r in zip(self.h_items[lo:hi], self.h_ratings[lo:hi], strict=True)
        ]

    def user_features(self, user_id: Any, top_genres: int = 5) -> dict | None:
        """Embedding, bias and favourite genres (among movies rated >= 4) of a known user."""
        u = self.user_index(user_id)
        if u < 0:
            return None
        seen = self._seen(u)
        liked = seen[self.h_ratings[self.h_indptr[u] : self.h_indptr[u + 1]] >= 4.0]
        counts = self.genres[liked].sum(axis=0)
        order = [int(j) for j in np.argsort(-counts, kind="stable")[:top_genres] if counts[j] > 0]
        return {
            "user_id": self._key(user_id, self.numeric_users),
            "n_ratings": len(seen),
            "bias": float(self.w["user_bias"][u]),
            "embedding": [round(float(x), 6) for x in self.w["user_mf"][u]],
            "top_genres": [{"genre": self.genre_names[j], "liked": int(counts[j])} for j in order],
        }

    def profile(self, user_id: Any, n_history: int = 20) -> dict:
        """A known user's ratings summary, taste by genre (most-rated genre first) and highest-rated movies."""
        u = self.user_index(user_id)
        if u < 0:
            raise RequestError("unknown_user", f"user {user_id!r} is not in the model's training data")
        lo, hi = self.h_indptr[u], self.h_indptr[u + 1]
        items, ratings = self.h_items[lo:hi], self.h_ratings[lo:hi].astype(np.float64)
        has = self.genres[items]  # [n, G]
        counts = has.sum(axis=0)
        sums = ratings @ has
        liked = (ratings >= 4.0).astype(np.int64) @ has  # a count (bool @ bool would be a logical OR)
        n = len(items)
        order = [int(j) for j in np.argsort(-counts, kind="stable") if counts[j] > 0]
        return {
            "strategy": "profile",
            "user_id": self._key(user_id, self.numeric_users),
            "n_ratings": int(n),
            "mean_rating": round(float(ratings.mean()), 4) if n else 0.0,
            "genres": [
                {
                    "genre": self.genre_names[j],
                    "count": int(counts[j]),
                    "share": round(float(counts[j]) / n, 4),
                    "mean_rating": round(float(sums[j]) / float(counts[j]), 4),
                    "liked": int(liked[j]),
                }
                for j in order
            ],
            "history": self.history(user_id, n_history),
            "model_version": self.model_version,
        }
