"""Why a movie is on a user's list, in the model's own terms: each rated movie's share of the item's ranking score.

The ranking score of movie ``i`` (what the list is ordered by) is

    s_i = q'_i . p' + c_i  +  gamma (b_i + w_mf q_i . p + mu + b_u + w_deep f(u, i))

with ``p'`` the user's interaction factors and ``[p, b_u]`` their rating factors and bias. A rated movie ``j``
enters through the two user vectors:

* **interaction head** (first order): ``p'`` maximises the penalised softmax likelihood
  ``sum_j w_j log softmax_j(p') - rank_l2 / 2 |p'|^2`` (the fold-in's problem; a trained user's factors are its
  centre in the events update). Its Hessian at the solution is ``H = (sum_j w_j) Cov(p') + rank_l2 I`` (``Cov`` the
  item factors' covariance under the user's softmax, over its :data:`HESSIAN_TOP` most probable movies, as in
  the events update), and rating ``j``'s gradient term is ``g_j = w_j (q'_j - E[q'])``. Removing ``j`` moves ``p'``
  by ``-H^-1 g_j`` to first order (an influence function), so ``j``'s share of ``q'_i . p'`` is
  ``q'_i^T H^-1 g_j``: the structure of ``implicit``'s ALS explanation, through the inverse Hessian instead of
  its Cholesky factor.
* **rating head** (exact for a new user): ``[p, b_u]`` is the ridge solution ``M^-1 A^T y`` with rows
  ``a_j = [w_mf q_j, 1]``, targets ``y_j = r_j - mu - b_j`` and ``M = A^T A + l2 I``, so ``j``'s share of
  ``gamma w_mf q_i . p`` is ``gamma [w_mf q_i, 0]^T M^-1 a_j y_j``, and the shares add up to it exactly. The user's
  bias ``b_u`` moves every movie alike, so it explains no movie's place: it is left to the baseline.
  For a trained user the same formula is applied at their training ratings; what the trained factors hold beyond
  the ridge solution is left to the rest.

What the ratings do not explain (the movie's biases, the user's bias, the global mean, the deep branch, and the
difference between the first-order shares and the exact score) is ``baseline = s_i - sum_j share_j``, so that the
shares and the baseline add up to the score exactly. Each item carries its :data:`REASONS` largest shares as
``reasons`` (the rated movie, the user's rating, the signed share), the rest of the rated movies' shares as
``share_other_ratings`` and the baseline as ``share_baseline``.

Cost per request, beyond ranking: one pass of the softmax over the catalogue (N x R multiply-adds), the
covariance over ``HESSIAN_TOP`` movies, two small solves, and an [n_rated, k] product: well under a millisecond at
ml-latest-small's 9,700 movies (``make bench`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lambdas.engine.fold_in import EVENTS_HESSIAN_TOP, FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING, FoldIn

REASONS = 3
HESSIAN_TOP = EVENTS_HESSIAN_TOP


@dataclass
class RatedUser:
    """What a user's list was ranked from: their interaction factors and the ratings that made them."""

    user_rank: np.ndarray  # p' [R]
    items: np.ndarray  # rated movie indices [n]
    ratings: np.ndarray  # their ratings [n]
    rank_l2: float  # the interaction head's prior precision for this user


class Explain(FoldIn):
    """Reasons for personalised lists (:func:`shares`), and the words for similar and popular ones."""

    def rated_user(self, u: int) -> RatedUser:
        """A trained user, explained from their training ratings at their trained factors (the events update's
        prior: precision ``FOLD_IN_RANK_L2_MIN``)."""
        lo, hi = self.h_indptr[u], self.h_indptr[u + 1]
        return RatedUser(
            self.w["user_rank"][u], self.h_items[lo:hi].astype(np.int64), self.h_ratings[lo:hi], FOLD_IN_RANK_L2_MIN
        )

    def events_user(self, u: int, pr: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> RatedUser:
        """A trained user with events folded in: their training ratings (a re-rated movie as its event) and events,
        at the updated factors."""
        lo, hi = self.h_indptr[u], self.h_indptr[u + 1]
        hist_items, hist_ratings = self.h_items[lo:hi].astype(np.int64), self.h_ratings[lo:hi]
        keep = ~np.isin(hist_items, items, assume_unique=False)
        return RatedUser(
            pr,
            np.concatenate([hist_items[keep], items]),
            np.concatenate([hist_ratings[keep], ratings]),
            FOLD_IN_RANK_L2_MIN,
        )

    def new_user(self, pr: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> RatedUser:
        """A new user (cold start), at the fold-in's solution and with its prior."""
        rank_l2 = self.fold_in_defaults["rank_l2"]
        if rank_l2 is None:
            rank_l2 = max(FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING * len(items))
        return RatedUser(pr, np.asarray(items, np.int64), np.asarray(ratings, np.float64), float(rank_l2))

    def shares(self, user: RatedUser, items: np.ndarray) -> np.ndarray:
        """Each rated movie's share of each listed movie's ranking score: float64 [n_rated, len(items)]."""
        w, d = self.w, self.fold_in_defaults
        rated, ratings = user.items, np.asarray(user.ratings, np.float64)
        if len(rated) == 0 or len(items) == 0:
            return np.zeros((len(rated), len(items)))
        weights = np.where(ratings >= d["liked_threshold"], d["liked_weight"], 1.0)
        weights = weights / weights.mean()  # mean weight 1, as the fold-in and the events update take them
        # Interaction head: the softmax at p' and its Hessian over the most probable movies (float32 throughout: the
        # Hessian holds the prior's rank_l2 on its diagonal, so the solves are well conditioned).
        qr = w["item_rank"]
        s = qr @ user.user_rank + w["item_rank_bias"]
        prob = np.exp(s - s.max())
        prob /= prob.sum()
        mean = prob @ qr
        n_top = min(HESSIAN_TOP, len(prob))
        top = np.argpartition(-prob, n_top - 1)[:n_top]
        qt = (qr[top] - mean) * np.sqrt(prob[top])[:, None]
        eye = np.eye(qr.shape[1], dtype=np.float32)
        hess = np.float32(weights.sum()) * (qt.T @ qt) + np.float32(user.rank_l2) * eye
        grads = (qr[rated] - mean) * weights.astype(np.float32)[:, None]  # g_j [n, R]
        out = (grads @ np.linalg.solve(hess, qr[items].T)).astype(np.float64)
        # Rating head: the ridge solution's rows.
        a = np.empty((len(rated), w["item_mf"].shape[1] + 1), np.float32)
        a[:, :-1] = w["item_mf"][rated] * np.float32(self.mf_weight)
        a[:, -1] = 1.0
        y = (ratings - self.mu - w["item_bias"][rated]).astype(np.float32)
        m = a.T @ a + np.float32(d["l2"]) * np.eye(a.shape[1], dtype=np.float32)
        # Only the factors' part: the user's bias moves every movie alike, so it explains no movie (it is baseline).
        targets = np.hstack([w["item_mf"][items] * np.float32(self.mf_weight), np.zeros((len(items), 1), np.float32)])
        out += self.gamma * ((a * y[:, None]) @ np.linalg.solve(m, targets.T))
        return out

    def add_reasons(self, user: RatedUser, records: list[dict]) -> list[dict]:
        """``records`` (a ranked list, each with its ``score``) with ``reasons``, ``share_other_ratings`` and
        ``share_baseline`` added; returns ``records``."""
        if not records:
            return records
        idx = np.fromiter((self.item_index(r["movie_id"]) for r in records), dtype=np.int64, count=len(records))
        table = self.shares(user, idx)  # [n_rated, k]
        n = min(REASONS, len(table))
        best = np.argpartition(-table, n - 1, axis=0)[:n] if n else np.empty((0, len(records)), np.int64)
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(table, best, axis=0), axis=0), axis=0)
        totals = table.sum(axis=0)
        items, ratings = user.items.tolist(), np.asarray(user.ratings, np.float64).tolist()
        for col, rec in enumerate(records):
            rows = best[:, col].tolist()
            shares = table[rows, col].tolist()
            rec["reasons"] = [self.reason_rated(items[j], ratings[j], v) for j, v in zip(rows, shares, strict=True)]
            rec["share_other_ratings"] = round(float(totals[col]) - sum(shares), 6)
            rec["share_baseline"] = round(float(rec["score"]) - float(totals[col]), 6)
        return records

    def reason_rated(self, j: int, rating: float, share: float) -> dict[str, Any]:
        return {
            "kind": "rated",
            "movie_id": self.movie_key(j),
            "title": str(self.titles[j]),
            "rating": rating,
            "share": round(share, 6),
        }
