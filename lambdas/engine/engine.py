"""Recommendations from an exported artifact with numpy and onnxruntime only.

One :class:`Engine` per process holds one ``InferenceSession`` over ``catalogue.onnx`` (explicit thread
settings, warmed up at load). Every ranking request is one ``session.run``: exact stage-1 scores over
the whole catalogue, TopK, the full model's rating of the candidates, TopK again (see
``model_export/catalogue.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

import contract
from lambdas.engine.artifact import Artifact, load_artifact

# Cold start (fold-in) regularisation, chosen with ``python -m bench.cold_start`` (README, "Cold start").
FOLD_IN_L2 = 3.0  # ridge on the new user's rating factors and bias
# Gaussian prior on the new user's interaction factors: max(MIN, PER_RATING x ratings given). A fixed prior
# over-fits many ratings or wastes a few; the best fixed one was 3 for 1-5 ratings, 10 for 20 and 30 for 50.
FOLD_IN_RANK_L2_MIN = 3.0
FOLD_IN_RANK_L2_PER_RATING = 0.5
BATCH_CHUNK = 64
# A known user's new ratings (events) update their trained factors by one Newton step from them, the trained factors
# being the centre of a Gaussian prior whose precision is that of their training ratings (a Laplace approximation):
# one event nudges a user with many ratings a little and a user with few ratings more. The interaction head's
# Hessian is taken over its 500 most probable movies (the bar of 2 ms for 50 events; README, "Events").
EVENTS_HESSIAN_TOP = 500


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


class RequestError(ValueError):
    """A request the engine cannot serve as asked (bad k, unknown movie or genre); ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Engine:
    """Recommendations, cold start, similar movies, histories and user features for one artifact."""

    def __init__(self, artifact: Artifact | str | Path, threads: int = 1) -> None:
        t0 = time.perf_counter()
        self.artifact = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
        a, w, c = self.artifact, self.artifact.weights, self.artifact.catalogue
        self.model_version = a.model_version
        scalars = contract.scalars(a.manifest, w["scalars"].tolist())
        self.gamma, self.mu, self.mf_weight, self.deep_weight = (scalars[name] for name in contract.SCALARS)
        self.scale = contract.rating_scale(a.manifest)
        self.candidates = contract.candidates(a.manifest)
        # Events stored up to this time (``received_at``, epoch ms) are in the model, which was trained on an export
        # of them (python -m infra.events_export); later ones, all of them for a model trained without events, and all
        # of an unknown user's, are folded in at request time.
        self.events_through = contract.events_through(a.manifest)
        self.w = w
        self.user_ids, self.item_ids = c["user_ids"], c["item_ids"]
        self.n_items = len(self.item_ids)
        self.numeric_ids = self.item_ids.dtype.kind in "iu"
        self.numeric_users = self.user_ids.dtype.kind in "iu"
        self._user_index = {u: i for i, u in enumerate(self.user_ids.tolist())}
        self._item_keys = self.item_ids.tolist()  # each movie's id as a Python value (int or str)
        self._item_index = {m: i for i, m in enumerate(self._item_keys)}
        self.titles, self.years = c["titles"], c["years"]
        self.genre_names = [str(g) for g in c["genre_names"]]
        self._genre_col = {g.lower(): j for j, g in enumerate(self.genre_names)}
        indptr, gids = c["genre_indptr"], c["genre_ids"]
        self.genres = np.zeros((self.n_items, len(self.genre_names)), dtype=bool)
        self.genres[np.repeat(np.arange(self.n_items), np.diff(indptr)), gids] = True
        self.popularity, self.counts = c["popularity"], c["rating_counts"]
        self.h_indptr, self.h_items, self.h_ratings = c["history_indptr"], c["history_items"], c["history_ratings"]
        self.has_deep = "deep_user_kernel" in w
        # The softmax confidence weights the interaction head was trained with (well-rated movies count more).
        train_cfg = a.manifest.get("training", {}).get("train_config", {})
        self.fold_in_defaults = {
            "l2": FOLD_IN_L2,
            "rank_l2": None,  # None: the rule above, from the number of ratings
            "liked_weight": float(train_cfg.get("liked_weight", 1.0)),
            "liked_threshold": float(train_cfg.get("liked_threshold", 4.0)),
        }
        rank = w["item_rank"]
        norms = np.linalg.norm(rank, axis=1, keepdims=True)
        self._similar = rank / np.where(norms > 0, norms, 1.0)
        # Each movie's neighbours, computed at export from the training histories (model_export/similarity.py;
        # the method is in manifest["similarity"]); artifacts without them fall back to the factor cosine.
        self._table = (c["similar_items"], c["similar_scores"]) if "similar_items" in c else None
        self.similar_k = self._table[0].shape[1] if self._table is not None else self.n_items

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(a.directory / contract.CATALOGUE_ONNX), opts, providers=["CPUExecutionProvider"]
        )
        self.recommend_index(np.array([0]), k=10)  # warm-up
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ ids and metadata

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

    def movie(self, i: int, score: float | None = None, rating: float | None = None) -> dict:
        """Display record of movie index ``i``."""
        mid = self.item_ids[i]
        rec = {
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

    # ------------------------------------------------------------------ filters

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

    # ------------------------------------------------------------------ scoring

    def _run(self, user_rank, user_mf, user_bias, user_deep, exclude: np.ndarray, k: int):
        """One catalogue.onnx call; ``exclude`` boolean [B, N]."""
        feeds = catalogue_feeds(user_rank, user_mf, user_bias, user_deep, exclude, k, max(self.candidates, k))
        top_scores, top_items, top_ratings = self.session.run(["top_scores", "top_items", "top_ratings"], feeds)
        return top_scores, top_items, top_ratings

    def _user_inputs(self, users: np.ndarray):
        w = self.w
        rank, mf = w["user_rank"][users], w["user_mf"][users]
        implicit = w["user_implicit"][users] if "user_implicit" in w else None
        return rank, mf, w["user_bias"][users], self.deep_inputs(implicit, mf)

    def deep_inputs(self, implicit: np.ndarray | None, mf: np.ndarray) -> np.ndarray:
        """The deep branch's user input [B, D]: the rating factors, plus the implicit ones when the model has them."""
        if not self.has_deep:
            return np.zeros((len(mf), 0), np.float32)
        return mf if implicit is None or "user_implicit" not in self.w else np.concatenate([mf, implicit], axis=1)

    def _items(self, scores: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> list[dict]:
        keep = np.isfinite(scores)
        return [self.movie(int(i), s, r) for s, i, r in zip(scores[keep], items[keep], ratings[keep], strict=True)]

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

    # ------------------------------------------------------------------ public API

    def popular(self, k: int = 10, genres=None, exclude_genres=None, exclude: Iterable[int] = ()) -> list[dict]:
        """The most-rated movies (the fallback for unknown users), filters applied."""
        k = self._check_k(k)
        blocked = self._genre_mask(genres, exclude_genres)
        blocked[np.fromiter(exclude, dtype=np.int64)] = True
        order = self.popularity[~blocked[self.popularity]][:k]
        return [self.movie(int(i), float(self.counts[i])) for i in order]

    def recommend(
        self,
        user_id: Any,
        k: int = 10,
        exclude_seen: bool = True,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
        events: Iterable[Mapping[str, Any]] | None = None,
    ) -> dict:
        """Top-k movies for a user; unknown users get the popularity fallback (``strategy: popular``).

        ``events``: the user's stored ratings (``movie_id``, ``rating``, optional ``received_at`` in epoch ms),
        oldest first. Those the model was not trained on (:meth:`new_ratings`) update a known user's factors
        (:meth:`update`) and count as seen; an unknown user with events gets the cold start from them. The result's
        ``events_used`` says how many were folded in (the latest rating of each known movie).
        """
        k = self._check_k(k)
        mask = self._genre_mask(genres, exclude_genres) if genres or exclude_genres else None
        u = self.user_index(user_id)
        events = list(events or ())
        latest = self._new_ratings(events, known_user=u >= 0)
        if u < 0 and latest:
            ratings = {(m if v[0] >= 0 else v[2]): v[1] for m, v in latest.items()}
            res = self.cold_start(ratings, k, exclude_seen, genres, exclude_genres)
            res["user_id"] = self._user_key(user_id)
            res["events_used"] = sum(v[0] >= 0 for v in latest.values())
            return res
        if u < 0:
            return self._result(user_id, "popular", self.popular(k, genres, exclude_genres))
        pairs = [v for v in latest.values() if v[0] >= 0]
        if not pairs:
            out = self._result(user_id, "personalized", self.recommend_index(np.array([u]), k, exclude_seen, mask)[0])
            if events:
                out["events_used"] = 0
            return out
        items = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        ratings = np.fromiter((r for _, r in pairs), dtype=np.float64, count=len(pairs))
        pr, p, b, implicit = self.update(u, items, ratings)
        exclude = np.zeros((1, self.n_items), dtype=bool)
        if mask is not None:
            exclude |= mask
        if exclude_seen:
            exclude[0, self._seen(u)] = True
            exclude[0, items] = True
        deep = self.deep_inputs(None if implicit is None else implicit[None, :], p[None, :])
        s, i, r = self._run(pr[None, :], p[None, :], np.array([b]), deep, exclude, k)
        out = self._result(user_id, "personalized", self._items(s[0], i[0], r[0]))
        out["events_used"] = len(items)
        return out

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

    def cold_start(
        self,
        ratings: Mapping[Any, float],
        k: int = 10,
        exclude_seen: bool = True,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
    ) -> dict:
        """Recommendations for a new user from ``{movie_id: rating}``; unknown movie ids are reported back."""
        k = self._check_k(k)
        by_index: dict[int, float] = {}  # "19" and 19 are one movie: the later rating wins
        unknown = []
        for mid, r in ratings.items():
            i = self.item_index(mid)
            if i >= 0:
                by_index.pop(i, None)
                by_index[i] = float(r)
            else:
                unknown.append(mid)
        known = list(by_index.items())
        for _, r in known:
            if not (self.scale[0] <= r <= self.scale[1]):
                raise RequestError("invalid_rating", f"rating {r:g} is outside {self.scale[0]:g}-{self.scale[1]:g}")
        mask = self._genre_mask(genres, exclude_genres)
        if not known:
            res = self._result(None, "popular", self.popular(k, genres, exclude_genres))
            res["unknown_movies"] = unknown
            return res
        items = np.array([i for i, _ in known], dtype=np.int64)
        pr, p, b = self.fold_in(items, np.array([r for _, r in known]))
        deep = self.deep_inputs(pr[None, :], p[None, :])
        exclude = mask[None, :].copy()
        if exclude_seen:
            exclude[0, items] = True
        s, i, r = self._run(pr[None, :], p[None, :], np.array([b]), deep, exclude, k)
        res = self._result(None, "cold_start", self._items(s[0], i[0], r[0]))
        res["unknown_movies"] = unknown
        return res

    def similar_movies(
        self,
        movie_id: Any,
        k: int = 10,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
    ) -> dict:
        """The movie's k nearest neighbours, the movie itself excluded, best first.

        From the artifact's neighbour table when it has one (``similar_k`` per movie, by co-occurrence in the
        training ratings; the method is in ``manifest["similarity"]``), else by the cosine of the interaction
        factors. Past the table's neighbours (k above ``similar_k``, or a movie with fewer) the list continues in
        factor-cosine order with score 0 (the table holds no score for them), so any k gets min(k, catalogue - 1)
        movies. Genre filters (the same rule as every other request's) apply within the ``similar_k`` nearest
        neighbours, then the list is cut to k, so a narrow filter can return fewer than k movies.
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
        return {
            "strategy": "similar",
            "movie": self.movie(i),
            "items": [self.movie(int(j), float(s)) for j, s in zip(top, scores, strict=True)],
            "model_version": self.model_version,
        }

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
        liked = (ratings >= 4.0) @ has
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

    def popular_for(
        self, user_id: Any, k: int = 10, exclude_seen: bool = True, genres=None, exclude_genres=None
    ) -> list[dict]:
        """The popularity ranking as ``user_id`` would get it: same filters, their rated movies left out."""
        u = self.user_index(user_id)
        seen = self._seen(u).tolist() if u >= 0 and exclude_seen else []
        return self.popular(k, genres, exclude_genres, exclude=seen)

    def _result(self, user_id: Any, strategy: str, items: list[dict]) -> dict:
        out = {"strategy": strategy, "items": items, "model_version": self.model_version}
        if user_id is not None:
            out["user_id"] = self._user_key(user_id)
        return out

    def _user_key(self, user_id: Any) -> Any:
        key = self._key(user_id, self.numeric_users)
        return key if key is not None else str(user_id)
