"""A user's factors from ratings the model was not trained on: a known user's events folded in (one Newton step from
the trained factors), and a new user's cold start (the factors fitted from scratch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import contract
from lambdas.engine.ranking import Ranking

# Cold start (fold-in) regularisation, chosen with ``python -m bench.cold_start`` (docs/serving.md, "Cold start
# quality").
FOLD_IN_L2 = 3.0  # ridge on the new user's rating factors and bias
# Gaussian prior on the new user's interaction factors: max(MIN, PER_RATING x ratings given). A fixed prior
# over-fits many ratings or wastes a few; the best fixed one was 3 for 1-5 ratings, 10 for 20 and 30 for 50.
FOLD_IN_RANK_L2_MIN = 3.0
FOLD_IN_RANK_L2_PER_RATING = 0.5
# A known user's new ratings (events) update their trained factors by one Newton step from them, the trained factors
# being the centre of a Gaussian prior whose precision is that of their training ratings (a Laplace approximation):
# one event nudges a user with many ratings a little and a user with few ratings more. The interaction head's
# Hessian is taken over its 500 most probable movies (the bar of 2 ms for 50 events; docs/serving.md, "Events folded
# in").
EVENTS_HESSIAN_TOP = 500


class FoldIn(Ranking):
    """Events and cold start: factors for ratings the model has not learnt."""

    def new_ratings(self, events: Iterable[Mapping[str, Any]], known_user: bool = True) -> dict[Any, float]:
        """``{movie_id: rating}`` of the events the model has not learnt, the last rating of each movie winning.

        A known user's events stored up to the model's ``events_through`` are in the model and left out; an unknown
        user's never are (the model has no factors of theirs to hold them). Ids follow ``contract.canonical_id``, so
        ``19`` and ``"19"`` are one movie (keyed by the catalogue's id). Ratings outside the model's scale are left
        out (the API refuses them against the served model's scale).
        """
        return {m: v[1] for m, v in self._new_ratings(events, known_user).items()}

    def _new_ratings(self, events: Iterable[Mapping[str, Any]], known_user: bool) -> dict[Any, tuple]:
        """:meth:`new_ratings` with each movie's index: ``{movie_id: (index, rating)}``, or ``(-1, rating, id as
        sent)`` for a movie the catalogue lacks."""
        latest: dict[Any, tuple] = {}
        through = self.events_through if known_user else None
        lo, hi = self.scale
        for e in events:
            stored = e.get("received_at")
            if through is not None and stored is not None and stored <= through:
                continue
            r = float(e["rating"])
            if not lo <= r <= hi:
                continue
            i = self.item_index(e["movie_id"])
            key = self._item_keys[i] if i >= 0 else contract.canonical_id(e["movie_id"])
            latest.pop(key, None)
            latest[key] = (i, r) if i >= 0 else (i, r, e["movie_id"])  # an unknown id reported as it was sent
        return latest

    def update(self, u: int, items: np.ndarray, ratings: np.ndarray):
        """Known user ``u``'s factors with new ratings folded in: (interaction, rating factors, bias, implicit).

        One Newton step from the trained factors on the new ratings' likelihood plus a Gaussian prior centred on
        the trained factors, with the precision of the user's training ratings (a Laplace approximation):

        * rating head: the prior precision is ``A^T A + l2 I`` over the user's training ratings, ``A = [w_mf q_i, 1]``;
          the step fits the new ratings' residuals ``r - (mu + b_u + b_i + w_mf p.q)``;
        * interaction head: the prior precision is ``W_train Cov + rank_l2 I``, with ``Cov`` the covariance of the
          movie factors under the user's softmax (over its ``EVENTS_HESSIAN_TOP`` most probable movies) and
          ``W_train`` the user's training weight (``liked_weight`` for ratings >= ``liked_threshold``); the step
          follows the new ratings' softmax gradient.

        The implicit (deep-branch) factors, copies of the interaction factors, move by the same step. A movie the
        user rated in training and again as an event counts once, as the event (its training rating leaves the
        prior's precision). Approximations, as in :meth:`fold_in`: the rating head's residual leaves out the deep
        branch's term (it is held at its trained value), and the prior's centre still holds a re-rated movie's
        training rating.
        """
        w, d = self.w, self.fold_in_defaults
        lo, hi = self.h_indptr[u], self.h_indptr[u + 1]
        hist_items, hist_ratings = self.h_items[lo:hi], self.h_ratings[lo:hi]
        new = np.zeros(self.n_items, dtype=bool)
        new[items] = True
        again = new[hist_items]
        if again.any():
            hist_items, hist_ratings = hist_items[~again], hist_ratings[~again]
        # Rating head.
        p0, b0 = w["user_mf"][u].astype(np.float64), float(w["user_bias"][u])
        q_e = w["item_mf"][items].astype(np.float64) * self.mf_weight
        a_e = np.hstack([q_e, np.ones((len(items), 1))])
        a_h = np.hstack([w["item_mf"][hist_items].astype(np.float64) * self.mf_weight, np.ones((len(hist_items), 1))])
        x0 = np.append(p0, b0)
        resid = ratings - self.mu - w["item_bias"][items] - a_e @ x0
        hess = a_h.T @ a_h + a_e.T @ a_e + d["l2"] * np.eye(len(x0))
        x = x0 + np.linalg.solve(hess, a_e.T @ resid)
        # Interaction head (float32 over the catalogue; the small solve in float64).
        qr, c = w["item_rank"], w["item_rank_bias"]
        pr0 = w["user_rank"][u]
        s = qr @ pr0 + c
        prob = np.exp(s - s.max())
        prob /= prob.sum()
        mean = prob @ qr
        n_top = min(EVENTS_HESSIAN_TOP, len(c))
        top = np.argpartition(-prob, n_top - 1)[:n_top]
        qt = (qr[top] - mean) * np.sqrt(prob[top])[:, None]
        cov = (qt.T @ qt).astype(np.float64)  # X^T X: one symmetric rank-k update (BLAS syrk)
        thr, liked = d["liked_threshold"], d["liked_weight"]
        w_hist = np.where(hist_ratings >= thr, liked, 1.0)
        w_new = np.where(ratings >= thr, liked, 1.0)
        scale = 1.0 / np.concatenate([w_hist, w_new]).mean()  # mean weight 1 over the user's ratings, as in fold_in
        w_hist, w_new = w_hist.sum() * scale, w_new * scale
        grad = w_new @ qr[items] - w_new.sum() * mean.astype(np.float64)
        rank_l2 = d["rank_l2"] if d["rank_l2"] is not None else FOLD_IN_RANK_L2_MIN
        step = np.linalg.solve((w_hist + w_new.sum()) * cov + rank_l2 * np.eye(len(pr0)), grad)
        pr = pr0 + step
        implicit = None
        if "user_implicit" in w:
            implicit = (w["user_implicit"][u].astype(np.float64) + step).astype(np.float32)
        return pr.astype(np.float32), x[:-1].astype(np.float32), np.float32(x[-1]), implicit

    def fold_in(
        self,
        items: np.ndarray,
        ratings: np.ndarray,
        l2: float | None = None,
        rank_l2: float | None = None,
        liked_weight: float | None = None,
        liked_threshold: float | None = None,
    ):
        """A new user's factors against the frozen item factors; unset arguments take ``fold_in_defaults``.

        Rating head: ridge regression of ``r - mu - b_i`` on ``[q_i, 1]`` (factors and bias), penalty ``l2``.
        Interaction head: the softmax maximum-likelihood user vector over the whole catalogue with a Gaussian
        prior (``rank_l2``; by default ``max(FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING * len(items))``),
        each rated movie weighted as in training (``liked_weight`` for ratings >= ``liked_threshold``, mean
        weight 1); Newton steps, the Hessian over the 2,000 most probable movies.
        """
        d = self.fold_in_defaults
        l2 = d["l2"] if l2 is None else l2
        rank_l2 = d["rank_l2"] if rank_l2 is None else rank_l2
        if rank_l2 is None:
            rank_l2 = max(FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING * len(items))
        liked_weight = d["liked_weight"] if liked_weight is None else liked_weight
        liked_threshold = d["liked_threshold"] if liked_threshold is None else liked_threshold
        w = self.w
        q = w["item_mf"][items].astype(np.float64)
        a = np.hstack([q, np.ones((len(items), 1))])
        y = ratings - self.mu - w["item_bias"][items]
        sol = np.linalg.solve(a.T @ a + l2 * np.eye(a.shape[1]), a.T @ y)
        p, b = sol[:-1], sol[-1]
        qr, c = w["item_rank"].astype(np.float64), w["item_rank_bias"].astype(np.float64)
        weights = np.where(ratings >= liked_threshold, liked_weight, 1.0)
        weights /= weights.mean()
        pr = np.zeros(qr.shape[1])
        target = weights @ qr[items]
        n = len(items)
        n_top = min(2000, len(c))
        for _ in range(12):
            s = qr @ pr + c
            prob = np.exp(s - s.max())
            prob /= prob.sum()
            mean = prob @ qr
            grad = target - n * mean - rank_l2 * pr
            top = np.argpartition(-prob, n_top - 1)[:n_top]
            qt = qr[top] - mean
            hess = n * (qt.T * prob[top]) @ qt + rank_l2 * np.eye(len(pr))
            step = np.linalg.solve(hess, grad)
            pr += step
            if np.abs(step).max() < 1e-5:
                break
        return pr.astype(np.float32), p.astype(np.float32), np.float32(b)
