"""Ranking with the catalogue graph: one ``catalogue.onnx`` call scores the whole catalogue for up to 64 users (exact
stage-1 scores, TopK, the full model's rating of the candidates, TopK again; see ``model_export/catalogue_graph.py``),
and the popularity fallback."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

import contract
from lambdas.engine.records import Records

BATCH_CHUNK = 64
# The movies a listed one holds its place against, for the reasons (:mod:`.explain`): the first 20 of the ranked
# candidates. Taking one rating away moves a top-10 movie past movies near it in the list: on 39 seeded u1 test users
# the reasons were as faithful with 20 as with 30 or 50 (and with 300), and a point less with 10.
COMPETITORS = 20


@dataclass
class Extras:
    """What a ranking call returns beside the list when reasons are wanted: the match figures [B, k], the
    interaction head's logits over the catalogue [B, N] (the reasons take the user's softmax from them), and the
    first :data:`COMPETITORS` ranked movies with their ranking scores [B, M] (M >= k; the list is their first k)."""

    match: np.ndarray
    logits: np.ndarray
    ranked_items: np.ndarray
    ranked_scores: np.ndarray

    def ranked(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """User ``row``'s ranked movie indices and scores (the finite ones)."""
        keep = np.isfinite(self.ranked_scores[row])
        return self.ranked_items[row][keep].astype(np.int64), self.ranked_scores[row][keep]


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

    def _run(self, user_rank, user_mf, user_bias, user_deep, exclude: np.ndarray, k: int, match: bool = False):
        """One catalogue.onnx call; ``exclude`` boolean [B, N]: (scores, items, ratings) [B, k] and, with ``match``,
        :class:`Extras` (the :meth:`match` figures, the logits and the first :data:`COMPETITORS` ranked movies: the
        graph is asked for that many and the list is their first k), else None."""
        if not match:
            feeds = catalogue_feeds(user_rank, user_mf, user_bias, user_deep, exclude, k, max(self.candidates, k))
            top_scores, top_items, top_ratings = self.session.run(["top_scores", "top_items", "top_ratings"], feeds)
            return top_scores, top_items, top_ratings, None
        ranked = max(k, COMPETITORS)
        feeds = catalogue_feeds(user_rank, user_mf, user_bias, user_deep, exclude, ranked, max(self.candidates, k))
        names = ["top_scores", "top_items", "top_ratings", "scores"] + (["logits"] if self.graph_logits else [])
        top_scores, top_items, top_ratings, stage1, *logits = self.session.run(names, feeds)
        if not logits:  # an artifact exported before the graph had them: stage 1 = logits + gamma (w_mf p.q + b_i)
            mf = feeds["user_mf"] * np.float32(self.gamma * self.mf_weight)
            logits = [stage1 - mf @ self.w["item_mf"].T - self.gamma_item_bias]
        scores, items, ratings = top_scores[:, :k], top_items[:, :k], top_ratings[:, :k]
        extras = Extras(self.match(stage1, feeds["user_bias"][:, 0], scores), logits[0], top_items, top_scores)
        return scores, items, ratings, extras

    def match(self, stage1: np.ndarray, user_bias: np.ndarray, top_scores: np.ndarray) -> np.ndarray:
        """How much of the catalogue each listed movie ranks above, in percent [B, k]: the share of movies whose
        score is below the listed movie's ranking score, the others scored without the deep branch's term (stage 1
        plus the user's constant ``gamma (mu + b_u)``). A function of the ranking score alone, so it never
        increases down a list."""
        # ref = stage1 + c, compared with each listed movie, in one pass over the catalogue: only the movies near or
        # above the list's lowest score (a slack of 1e-3 over float32's rounding of the sum) are summed and compared
        # exactly as ref's own entries would be; the rest are below them all.
        consts = (self.gamma * (self.mu + user_bias.astype(np.float32))).astype(np.float32)  # c [B]
        below = np.empty(top_scores.shape)
        for row, (scores, top, c) in enumerate(zip(stage1, top_scores, consts, strict=True)):
            lowest = top.min()
            near = scores[scores >= lowest - c - np.float32(1e-3) * (1 + abs(lowest) + abs(c))] + c
            below[row] = len(scores) - np.count_nonzero(near[None, :] >= top[:, None], axis=1)
        return 100.0 * below / stage1.shape[1]

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
        return [items for items, _, _ in self.ranked_rows(users, k, exclude_seen, genre_mask, match=False)]

    def ranked_rows(
        self, users: np.ndarray, k: int, exclude_seen: bool, genre_mask: np.ndarray | None, match: bool = True
    ) -> list[tuple[list[dict], Extras | None, int]]:
        """:meth:`recommend_index`'s lists, each with the :class:`Extras` of its chunk and its row there; with
        ``match`` the records carry their match figures, without it the extras are None."""
        out: list[tuple[list[dict], Extras | None, int]] = []
        for start in range(0, len(users), BATCH_CHUNK):
            chunk = np.asarray(users[start : start + BATCH_CHUNK])
            exclude = np.zeros((len(chunk), self.n_items), dtype=bool)
            if genre_mask is not None:
                exclude |= genre_mask
            if exclude_seen:
                for row, u in enumerate(chunk):
                    exclude[row, self._seen(int(u))] = True
            s, i, r, m = self._run(*self._user_inputs(chunk), exclude, k, match)
            for row in range(len(chunk)):
                if m is None:
                    out.append((self._items(s[row], i[row], r[row]), None, row))
                else:
                    out.append((self._items(s[row], i[row], r[row], m.match[row]), m, row))
        return out

    def popular(self, k: int = 10, genres=None, exclude_genres=None, exclude: Iterable[int] = ()) -> list[dict]:
        """The most-rated movies (the fallback for unknown users), filters applied."""
        k = self._check_k(k)
        blocked = self._genre_mask(genres, exclude_genres)
        blocked[np.fromiter(exclude, dtype=np.int64)] = True
        order = self.popularity[~blocked[self.popularity]][:k]
        return [self.movie(int(i), float(self.counts[i])) for i in order]

    def popular_for(
        self,
        user_id: Any,
        k: int = 10,
        exclude_seen: bool = True,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
        explain: bool = True,
    ) -> list[dict]:
        """The popularity ranking as ``user_id`` would get it: same filters, their rated movies left out; with
        ``explain`` each movie says it is popular (its number of ratings)."""
        u = self.user_index(user_id)
        seen = self._seen(u).tolist() if u >= 0 and exclude_seen else []
        items = self.popular(k, genres, exclude_genres, exclude=seen)
        return self.popular_reasons(items) if explain else items

    @staticmethod
    def popular_reasons(records: list[dict]) -> list[dict]:
        """A popular list says it is one: each movie's reason is its number of ratings in the training data (its
        ``score``); returns ``records``."""
        for rec in records:
            rec["reasons"] = [{"kind": "popular", "users": int(rec["score"])}]
        return records
