"""Why a movie is on a user's list, in the model's own terms: each rated movie's share of the item's ranking score.

The ranking score of movie ``i`` (what the list is ordered by) is

    s_i = q'_i . p' + c_i  +  gamma (b_i + w_mf q_i . p + mu + b_u + w_deep f(u, i))

with ``p'`` the user's interaction factors and ``[p, b_u]`` their rating factors and bias. A rated movie ``j``
enters through the two user vectors:

* **interaction head** (first order): ``p'`` maximises the penalised softmax likelihood
  ``sum_j w_j log softmax_j(p') - rank_l2 / 2 |p'|^2`` (the fold-in's problem; a trained user's factors are its
  centre in the events update). Its Hessian at the solution is ``H = (sum_j w_j) Cov(p') + rank_l2 I`` (``Cov`` the
  item factors' covariance under the user's softmax, over its :data:`HESSIAN_TOP` most probable movies, taken in the
  factors' :data:`HESSIAN_DIMS` principal directions and as ``rank_l2 I`` outside them), and rating
  ``j``'s gradient term is ``g_j = w_j (q'_j - E[q'])`` (``E[q']`` exact over those movies, the rest of the
  probability mass taken at the other movies' plain mean). Removing ``j`` moves ``p'``
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
shares and the baseline add up to the score exactly. Each item carries :data:`REASONS` ``reasons`` (the rated
movie, the user's rating, the signed share), the rest of the rated movies' shares as ``share_other_ratings`` and the
baseline as ``share_baseline``.

Which ratings are the reasons: a movie's place in the list is its score against the movies around it, and a rating
that lifts a movie often lifts its neighbours as much (a largest share then names a rating whose removal moves the
movie nowhere). Taking rating ``j`` away lowers every ranked movie's score by its removal effect (:meth:`tables`:
first order for the interaction head, exact for the rating head), so the effects over the first
:data:`~lambdas.engine.ranking.COMPETITORS` ranked movies say where the movie would land:
the reasons are the ratings that would move it furthest down the list, and among those that move it equally (often:
not at all) the largest shares of its score (:meth:`Explain.reason_rows`).

Cost per request, beyond ranking: the catalogue graph returns the user's logits beside the stage-1 scores (the
same work), then one exponential and one selection over the catalogue, one gather of the movies' factors and one of
:attr:`Explain.explain_rows` for the most probable, listed and rated movies, the covariance over ``HESSIAN_TOP``
movies in ``HESSIAN_DIMS`` directions, an r x r solve and a (D + 1) x (D + 1) inverse, two [n_rated, COMPETITORS]
products and a [REASON_POOL, k, COMPETITORS] comparison (``make bench`` measures what it adds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lambdas.engine.fold_in import FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING, FoldIn

REASONS = 3
# The Hessian's movies: the user's 256 most probable. The reasons weigh a movie's score change against its
# neighbours', so the relative changes must be right, and they are not with fewer: on 39 seeded u1 test users (not
# the benchmark's), the first reason beat a random rating in 78.7% of cases with 64 movies, 81.1% with 128, 82.1%
# with 256, 82.6% with 512 and 82.7% with 1,000 (docs/serving.md).
HESSIAN_TOP = 256
# The ratings weighed for each listed movie's reasons (:meth:`Explain.reason_rows`): the 16 whose removal lowers its
# score most. On the same users, 8, 16, 32 and all of them give the same faithfulness within a point.
REASON_POOL = 16
# The dimensions the Hessian is taken in: the item factors' 64 principal directions (outside them it is the prior's
# rank_l2 I), a 64 x 64 system instead of the 128 x 128 one. On ml-latest-small's served model they hold 98.6% of
# the factors' variance, and the score-change differences that order the reasons were as close to the 2,000-movie
# Hessian's as with all 128 (docs/serving.md, "Why a movie is listed").
HESSIAN_DIMS = 64


def principal_directions(factors: np.ndarray, r: int) -> np.ndarray:
    """The ``r`` principal directions of ``factors`` [N, R] (orthonormal columns, float32 [R, min(r, R)]): the
    eigenvectors of their covariance with the largest eigenvalues."""
    mean = factors.mean(axis=0, dtype=np.float64)
    cov = (factors.T @ factors).astype(np.float64) - len(factors) * np.outer(mean, mean)
    _, vectors = np.linalg.eigh(cov)  # ascending
    return np.ascontiguousarray(vectors[:, ::-1][:, : min(r, factors.shape[1])], dtype=np.float32)


@dataclass
class RatedUser:
    """What a user's list was ranked from: their interaction factors and the ratings that made them."""

    user_rank: np.ndarray  # p' [R]
    user_mf: np.ndarray  # p [D]
    items: np.ndarray  # rated movie indices [n]
    ratings: np.ndarray  # their ratings [n]
    rank_l2: float  # the interaction head's prior precision for this user


class Explain(FoldIn):
    """Reasons for personalised lists (:func:`shares`), and the words for similar and popular ones."""

    def rated_user(self, u: int) -> RatedUser:
        """A trained user, explained from their training ratings at their trained factors (the events update's
        prior: precision ``FOLD_IN_RANK_L2_MIN``)."""
        lo, hi = self.h_indptr[u], self.h_indptr[u + 1]
        w = self.w
        items, ratings = self.h_items[lo:hi].astype(np.int64), self.h_ratings[lo:hi]
        return RatedUser(w["user_rank"][u], w["user_mf"][u], items, ratings, FOLD_IN_RANK_L2_MIN)

    def events_user(self, u: int, pr: np.ndarray, p: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> RatedUser:
        """A trained user with events folded in: their training ratings (a re-rated movie as its event) and events,
        at the updated factors."""
        lo, hi = self.h_indptr[u], self.h_indptr[u + 1]
        hist_items, hist_ratings = self.h_items[lo:hi].astype(np.int64), self.h_ratings[lo:hi]
        keep = ~np.isin(hist_items, items, assume_unique=False)
        return RatedUser(
            pr,
            p,
            np.concatenate([hist_items[keep], items]),
            np.concatenate([hist_ratings[keep], ratings]),
            FOLD_IN_RANK_L2_MIN,
        )

    def new_user(self, pr: np.ndarray, p: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> RatedUser:
        """A new user (cold start), at the fold-in's solution and with its prior."""
        rank_l2 = self.fold_in_defaults["rank_l2"]
        if rank_l2 is None:
            rank_l2 = max(FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING * len(items))
        return RatedUser(pr, p, np.asarray(items, np.int64), np.asarray(ratings, np.float64), float(rank_l2))

    def use_basis(self, basis: np.ndarray) -> None:
        """Takes the Hessian in ``basis`` (float32 [R, r], orthonormal columns) and keeps, per movie, what the reasons
        gather: :attr:`explain_rows` float32 [N, r + D + 2] = [q' B, w_mf q, 1, b_i] (the interaction factors in the
        basis, then the rating head's ridge row and the movie's bias), one gather per request instead of four."""
        w = self.w
        r, dim = basis.shape[1], w["item_mf"].shape[1]
        rows = np.empty((len(w["item_rank"]), r + dim + 2), np.float32)
        rows[:, :r] = w["item_rank"] @ basis
        rows[:, r : r + dim] = w["item_mf"] * np.float32(self.mf_weight)
        rows[:, r + dim] = 1.0
        rows[:, r + dim + 1] = w["item_bias"]
        self.rank_basis, self.explain_rows, self.proj_sum = basis, rows, rows[:, :r].sum(axis=0)

    def shares(self, user: RatedUser, items: np.ndarray, logits: np.ndarray | None = None) -> np.ndarray:
        """Each rated movie's share of each listed movie's ranking score: float64 [n_rated, len(items)].

        ``logits``: the user's interaction logits over the catalogue from the ranking call (the catalogue graph's
        ``logits``); computed from the factors (one [N, R] product) when not given.
        """
        return self.tables(user, items, logits)[0]

    def tables(
        self, user: RatedUser, items: np.ndarray, logits: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`shares` and, beside them, how much taking each rating away would lower each movie's score
        (float64 [n_rated, len(items)] each).

        The two differ in the rating head only: a rating's share of the ridge solution is ``M^-1 a_j y_j``, while
        taking it away moves the solution by ``M^-1 a_j r_j / (1 - h_j)`` (Sherman-Morrison; ``r_j`` its residual at
        the solution, ``h_j = a_j^T M^-1 a_j`` its leverage), exact for the ridge: a rating the rest already
        predicts well changes little when it goes. The interaction head's first-order share is already the
        removal's effect.
        """
        w, d = self.w, self.fold_in_defaults
        rated, ratings = user.items, np.asarray(user.ratings, np.float64)
        n, k = len(rated), len(items)
        if n == 0 or k == 0:
            return np.zeros((n, k)), np.zeros((n, k))
        weights = np.where(ratings >= d["liked_threshold"], np.float32(d["liked_weight"]), np.float32(1.0))
        weights *= np.float32(n / weights.sum())  # mean weight 1, as the fold-in and the events update take them
        # Interaction head: the softmax at p' and its Hessian over the most probable movies.
        s = logits if logits is not None else w["item_rank"] @ user.user_rank + w["item_rank_bias"]
        n_all = len(s)
        n_top = min(HESSIAN_TOP, n_all)
        top = np.sort(np.argpartition(s, n_all - n_top)[n_all - n_top :])  # in memory order, for the gathers
        e = np.exp(s - s[top].max())
        p_top = e[top] / e.sum()
        # One gather of each table for the three sets of movies: the most probable, the listed and the rated.
        idx = np.concatenate([top, items, rated])
        q, x = w["item_rank"][idx], self.explain_rows[idx]
        r, dim = self.rank_basis.shape[1], w["item_mf"].shape[1]
        listed, of_rated = slice(n_top, n_top + k), slice(n_top + k, None)
        # E[q'] under the softmax: exact over the most probable movies, the rest's mass at their plain mean (the
        # tail's probabilities are small and near equal; one pass over the catalogue's factors saved, 4.8 ms at
        # 100,000 movies).
        # With the tail's probability t per movie: E[q'] = sum_top (p - t) q' + t sum_all q'.
        q_top, xb_top = q[:n_top], x[:n_top, :r]
        tail = (1.0 - p_top.sum()) / (n_all - n_top) if n_all > n_top else 0.0
        p_less = p_top - np.float32(tail)
        mean = p_less @ q_top + np.float32(tail) * self.rank_sum  # E[q']
        mean_b = p_less @ xb_top + np.float32(tail) * self.proj_sum  # B^T E[q']
        # H = Qt^T Qt + rank_l2 I with Qt = sqrt(W p) (q' - E[q']) over the top movies, taken in the item factors'
        # HESSIAN_DIMS principal directions B (and as the prior alone outside them):
        # H^-1 = B (B^T H B)^-1 B^T + (I - B B^T) / rank_l2, an r x r system instead of R x R. Rating j's share of
        # listed movie i's logit is g_j^T H^-1 q'_i with g_j = w_j (q'_j - E[q']), that is
        # g_j.q'_i / rank_l2 + (B^T g_j)^T ((B^T H B)^-1 - I / rank_l2) B^T q'_i.
        qb = (xb_top - mean_b) * np.sqrt(p_top * np.float32(n))[:, None]  # Qt B [n_top, r]
        hess = (qb.T @ qb).astype(np.float64)
        hess.flat[:: r + 1] += user.rank_l2
        tb = x[listed, :r].T.astype(np.float64)  # B^T q'_i [r, k]
        inv_l2 = 1.0 / user.rank_l2
        inside = (np.linalg.solve(hess, tb) - tb * inv_l2).astype(np.float32)
        wcol = weights[:, None]
        interaction = ((q[of_rated] - mean) * wcol) @ (q[listed].T * np.float32(inv_l2))
        interaction += ((x[of_rated, :r] - mean_b) * wcol) @ inside
        # Rating head: the ridge solution's rows a_j = [w_mf q_j, 1] (float64: a D + 1 system).
        a = x[of_rated, r : r + dim + 1].astype(np.float64)
        y = ratings - self.mu - x[of_rated, r + dim + 1]
        m = a.T @ a
        m.flat[:: dim + 2] += d["l2"]
        am = a @ np.linalg.inv(m)  # rows a_j^T M^-1
        # Only the factors' part: the user's bias moves every movie alike, so it explains no movie (it is baseline).
        z = (am[:, :dim] @ x[listed, r : r + dim].T) * self.gamma  # gamma a_j^T M^-1 [w_mf q_i, 0]
        residual = y - am @ (a.T @ y)
        leverage = np.einsum("ij,ij->i", am, a)
        interaction = interaction.astype(np.float64)
        shares = interaction + y[:, None] * z
        removal = interaction + (residual / (1.0 - leverage))[:, None] * z
        return shares, removal

    def add_reasons(
        self, user: RatedUser, records: list[dict], logits: np.ndarray, ranked: tuple[np.ndarray, np.ndarray]
    ) -> list[dict]:
        """``records`` (a ranked list, each with its ``score``) with ``reasons``, ``share_other_ratings`` and
        ``share_baseline`` added; returns ``records``.

        ``logits``: as for :meth:`shares`. ``ranked``: the ranked movies the list was cut from, indices and ranking
        scores, the list's movies first (:meth:`~lambdas.engine.ranking.Extras.ranked`); the reasons weigh each
        listed movie's place against them."""
        if not records:
            return records
        k = len(records)
        table, removal = self.tables(user, ranked[0], logits)  # [n_rated, M] each
        best = self.reason_rows(removal, ranked[1], k, table)
        totals = table[:, :k].sum(axis=0)
        named = user.items[best]  # [n, k] the reasons' movie indices
        rated = np.asarray(user.ratings, np.float64)[best].T.tolist()
        shares = table[best, np.arange(k)].T.tolist()
        columns = zip(records, named.T.tolist(), rated, shares, totals.tolist(), strict=True)
        for rec, movies, given, parts, total in columns:
            rec["reasons"] = [self.reason_rated(*reason) for reason in zip(movies, given, parts, strict=True)]
            rec["share_other_ratings"] = round(total - sum(parts), 6)
            rec["share_baseline"] = round(float(rec["score"]) - total, 6)
        return records

    @staticmethod
    def reason_rows(
        removal: np.ndarray, scores: np.ndarray, k: int, shares: np.ndarray | None = None, n: int = REASONS
    ) -> np.ndarray:
        """The reasons of the first ``k`` ranked movies: [min(n, n_rated), k] row indices (rated movies), best first.

        ``removal`` [n_rated, M]: how much taking each rating away lowers each ranked movie's score (:meth:`tables`);
        ``scores`` [M]: their ranking scores, the list's k first; ``shares``: the shares of their scores (``removal``
        when not given). The movies that would rank above listed movie ``c`` without rating ``j`` are those with
        ``score - removal[j]`` above ``c``'s: the reasons are the ratings that would move it furthest down the
        list, and among those that move it equally (most often: not at all) the largest shares of its score. Only
        the :data:`REASON_POOL` ratings whose removal lowers ``c``'s score most are weighed (a rating that barely
        lowers a movie rarely moves it)."""
        n_rated = len(removal)
        if n_rated == 0:
            return np.empty((0, k), np.int64)
        shares = removal if shares is None else shares
        t = min(REASON_POOL, n_rated)
        if t < n_rated:
            pool = np.argpartition(-removal[:, :k], t - 1, axis=0)[:t]  # [t, k]
        else:
            pool = np.broadcast_to(np.arange(n_rated)[:, None], (n_rated, k))
        cols = np.arange(k)
        own = scores[:k] - removal[pool, cols]  # [t, k]: the listed movie's score without the rating
        after = scores - removal[pool]  # [t, k, M]: every ranked movie's
        place = np.count_nonzero(after > own[:, :, None], axis=2)  # [t, k]: movies that would be above it
        order = np.lexsort((-shares[pool, cols], -place), axis=0)[: min(n, n_rated)]
        return pool[order, cols]

    def reason_rated(self, j: int, rating: float, share: float) -> dict[str, Any]:
        return {
            "kind": "rated",
            "movie_id": self._item_keys[j],
            "title": self.title_list[j],
            "rating": rating,
            "share": round(share, 6),
        }
