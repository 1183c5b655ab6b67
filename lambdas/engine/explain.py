"""Why a movie is on a user's list, in the model's own terms: each rated movie's share of the item's ranking score.

The ranking score of movie ``i`` (what the list is ordered by) is

    s_i = q'_i . p' + c_i  +  gamma (b_i + w_mf q_i . p + mu + b_u + w_deep f(u, i))

with ``p'`` the user's interaction factors and ``[p, b_u]`` their rating factors and bias. A rated movie ``j``
enters through the two user vectors:

* **interaction head** (first order): ``p'`` maximises the penalised softmax likelihood
  ``sum_j w_j log softmax_j(p') - rank_l2 / 2 |p'|^2`` (the fold-in's problem; a trained user's factors are its
  centre in the events update). Its Hessian at the solution is ``H = (sum_j w_j) Cov(p') + rank_l2 I`` (``Cov`` the
  item factors' covariance under the user's softmax, over its :data:`HESSIAN_TOP` most probable movies), and rating
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

Cost per request, beyond ranking: the user's logits are recovered from the ranking call's stage-1 scores (one
N x D product, D the rating factors' size, instead of the N x R one), then one exponential and one selection over
the catalogue, the covariance over ``HESSIAN_TOP`` movies, an R x R and a D x D solve, an [n_rated, COMPETITORS]
product and a [REASON_POOL, k, COMPETITORS] comparison (``make bench`` measures what it adds).
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
# with 256, 82.6% with 512 and 82.7% with 1,000. Past R movies Woodbury's identity no longer saves anything: 256
# costs an [R, 256] x [256, R] product and an R x R solve where 64 solved a 64 x 64 system (docs/serving.md).
HESSIAN_TOP = 256
# The ratings weighed for each listed movie's reasons (:meth:`Explain.reason_rows`): the 16 whose removal lowers its
# score most. On the same users, 8, 16, 32 and all of them give the same faithfulness within a point.
REASON_POOL = 16


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

    def shares(self, user: RatedUser, items: np.ndarray, stage1: np.ndarray | None = None) -> np.ndarray:
        """Each rated movie's share of each listed movie's ranking score: float64 [n_rated, len(items)].

        ``stage1``: the user's stage-1 scores over the catalogue from the ranking call (the catalogue graph's
        ``scores``), from which the interaction head's logits are recovered with one [N, D] product instead of the
        [N, R] one; computed from the factors when not given.
        """
        return self.tables(user, items, stage1)[0]

    def tables(
        self, user: RatedUser, items: np.ndarray, stage1: np.ndarray | None = None
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
        if len(rated) == 0 or len(items) == 0:
            return np.zeros((len(rated), len(items))), np.zeros((len(rated), len(items)))
        weights = np.where(ratings >= d["liked_threshold"], d["liked_weight"], 1.0)
        weights = weights / weights.mean()  # mean weight 1, as the fold-in and the events update take them
        # Interaction head: the softmax at p' and its Hessian over the most probable movies (float32 throughout: the
        # Hessian holds the prior's rank_l2 on its diagonal, so the solves are well conditioned).
        qr = w["item_rank"]
        if stage1 is not None:  # stage 1 = logits + gamma (w_mf p.q + b_i)
            s = stage1 - np.float32(self.gamma * self.mf_weight) * (w["item_mf"] @ user.user_mf) - self.gamma_item_bias
        else:
            s = qr @ user.user_rank + w["item_rank_bias"]
        prob = np.exp(s - s.max())
        prob /= prob.sum()
        n_top = min(HESSIAN_TOP, len(prob))
        top = np.argpartition(s, len(s) - n_top)[len(s) - n_top :]
        # E[q'] under the softmax: exact over the most probable movies, the rest's mass at their plain mean (the
        # tail's probabilities are small and near equal; one pass over the catalogue's factors saved, 4.8 ms at
        # 100,000 movies).
        q_top, p_top = qr[top], prob[top]
        rest = len(prob) - n_top
        mean = p_top @ q_top
        if rest:
            mean += (1.0 - p_top.sum()) * (self.rank_sum - q_top.sum(axis=0)) / rest
        qt = (q_top - mean) * np.sqrt(p_top)[:, None]
        targets_rank = qr[items].T  # [R, k]
        grads = (qr[rated] - mean) * weights.astype(np.float32)[:, None]  # g_j [n, R]
        if n_top < qr.shape[1]:
            # H^-1 B by Woodbury: H = W Qt^T Qt + rank_l2 I with Qt [n_top, R], so only an n_top-sized system is
            # solved: H^-1 B = (B - Qt^T (rank_l2 / W I + Qt Qt^T)^-1 Qt B) / rank_l2.
            small = qt @ qt.T
            small.flat[:: n_top + 1] += np.float32(user.rank_l2 / weights.sum())
            h_inv_q = (targets_rank - qt.T @ np.linalg.solve(small, qt @ targets_rank)) / np.float32(user.rank_l2)
        else:
            hess = np.float32(weights.sum()) * (qt.T @ qt)
            hess.flat[:: qr.shape[1] + 1] += np.float32(user.rank_l2)
            h_inv_q = np.linalg.solve(hess, targets_rank)
        interaction = (grads @ h_inv_q).astype(np.float64)
        # Rating head: the ridge solution's rows.
        a = np.empty((len(rated), w["item_mf"].shape[1] + 1), np.float32)
        a[:, :-1] = w["item_mf"][rated] * np.float32(self.mf_weight)
        a[:, -1] = 1.0
        y = (ratings - self.mu - w["item_bias"][rated]).astype(np.float32)
        m = a.T @ a + np.float32(d["l2"]) * np.eye(a.shape[1], dtype=np.float32)
        # Only the factors' part: the user's bias moves every movie alike, so it explains no movie (it is baseline).
        targets = np.hstack([w["item_mf"][items] * np.float32(self.mf_weight), np.zeros((len(items), 1), np.float32)])
        solved = np.linalg.solve(m, np.hstack([targets.T, a.T]))  # one factorisation for both right-hand sides
        m_inv_t, m_inv_a = solved[:, : len(items)], solved[:, len(items) :]  # [D + 1, k], [D + 1, n]
        shares = interaction + self.gamma * ((a * y[:, None]) @ m_inv_t)
        residual = y - a @ (m_inv_a @ y)
        leverage = np.einsum("ij,ji->i", a, m_inv_a)
        removal = interaction + self.gamma * ((a * (residual / (1.0 - leverage))[:, None]) @ m_inv_t)
        return shares, removal

    def add_reasons(
        self, user: RatedUser, records: list[dict], stage1: np.ndarray, ranked: tuple[np.ndarray, np.ndarray]
    ) -> list[dict]:
        """``records`` (a ranked list, each with its ``score``) with ``reasons``, ``share_other_ratings`` and
        ``share_baseline`` added; returns ``records``.

        ``stage1``: as for :meth:`shares`. ``ranked``: the ranked movies the list was cut from, indices and ranking
        scores, the list's movies first (:meth:`~lambdas.engine.ranking.Extras.ranked`); the reasons weigh each
        listed movie's place against them."""
        if not records:
            return records
        k = len(records)
        table, removal = self.tables(user, ranked[0], stage1)  # [n_rated, M] each
        best = self.reason_rows(removal, ranked[1], k, table)
        totals = table[:, :k].sum(axis=0)
        items, ratings = user.items.tolist(), np.asarray(user.ratings, np.float64).tolist()
        for col, rec in enumerate(records):
            rows = best[:, col].tolist()
            shares = table[rows, col].tolist()
            rec["reasons"] = [self.reason_rated(items[j], ratings[j], v) for j, v in zip(rows, shares, strict=True)]
            rec["share_other_ratings"] = round(float(totals[col]) - sum(shares), 6)
            rec["share_baseline"] = round(float(rec["score"]) - float(totals[col]), 6)
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
            pool = np.repeat(np.arange(n_rated)[:, None], k, axis=1)
        after = scores[None, None, :] - removal[pool]  # [t, k, M]: every ranked movie's score without the rating
        own = np.take_along_axis(after, np.arange(k)[None, :, None], axis=2)  # the listed movie's own
        place = np.count_nonzero(after > own, axis=2)  # [t, k]: movies that would be above it
        order = np.lexsort((-np.take_along_axis(shares[:, :k], pool, axis=0), -place), axis=0)[: min(n, n_rated)]
        return np.take_along_axis(pool, order, axis=0)

    def reason_rated(self, j: int, rating: float, share: float) -> dict[str, Any]:
        return {
            "kind": "rated",
            "movie_id": self._item_keys[j],
            "title": self.title_list[j],
            "rating": rating,
            "share": round(share, 6),
        }
