"""Recommendations from an exported artifact with numpy and onnxruntime only.

One :class:`Engine` per process holds one ``InferenceSession`` over ``catalogue.onnx`` (explicit thread
settings, warmed up at load). Every ranking request is one ``session.run`` (:mod:`.ranking`); a user's new ratings
are folded in first (:mod:`.fold_in`); why each movie is listed (:mod:`.explain`), similar movies
(:mod:`.similar`) and the records a response holds (:mod:`.records`) are parts of their own.
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
from lambdas.engine.base import RequestError
from lambdas.engine.explain import HESSIAN_DIMS, Explain, principal_directions
from lambdas.engine.fold_in import FOLD_IN_L2
from lambdas.engine.similar import Similar

__all__ = ["Engine", "RequestError"]


class Engine(Explain, Similar):
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
        self.title_list = [str(t) for t in self.titles]  # Python strings, for the reasons' records
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
        self.rank_sum = rank.sum(axis=0)  # the explanations' softmax mean takes the tail's from it
        self.use_basis(principal_directions(rank, HESSIAN_DIMS))  # the explanations' Hessian is taken in them
        self.gamma_item_bias = (self.gamma * w["item_bias"]).astype(np.float32)  # stage 1's rating-head bias term
        norms = np.linalg.norm(rank, axis=1, keepdims=True)
        self._similar = rank / np.where(norms > 0, norms, 1.0)
        # Each movie's neighbours, computed at export from the training histories (model_export/similarity.py;
        # the method is in manifest["similarity"]); artifacts without them fall back to the factor cosine.
        self._table = (c["similar_items"], c["similar_scores"]) if "similar_items" in c else None
        self.similar_k = self._table[0].shape[1] if self._table is not None else self.n_items
        # Per neighbour, how many users liked both (the similar list's reason; older artifacts lack it).
        self._liked = c.get("similar_liked")

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
        # Artifacts exported before 2026-12-07 have no "logits" output: the reasons recover them from stage 1.
        self.graph_logits = "logits" in {o.name for o in self.session.get_outputs()}
        self.recommend_index(np.array([0]), k=10)  # warm-up
        self.load_seconds = time.perf_counter() - t0

    def recommend(
        self,
        user_id: Any,
        k: int = 10,
        exclude_seen: bool = True,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
        events: Iterable[Mapping[str, Any]] | None = None,
        explain: bool = True,
    ) -> dict:
        """Top-k movies for a user; unknown users get the popularity fallback (``strategy: popular``).

        ``events``: the user's stored ratings (``movie_id``, ``rating``, optional ``received_at`` in epoch ms),
        oldest first. Those the model was not trained on (:meth:`new_ratings`) update a known user's factors
        (:meth:`update`) and count as seen; an unknown user with events gets the cold start from them. The result's
        ``events_used`` says how many were folded in (the latest rating of each known movie). With ``explain``
        every movie carries its reasons (:mod:`.explain`) and personalised ones their ``match``.
        """
        k = self._check_k(k)
        mask = self._genre_mask(genres, exclude_genres) if genres or exclude_genres else None
        u = self.user_index(user_id)
        events = list(events or ())
        latest = self._new_ratings(events, known_user=u >= 0)
        if u < 0 and latest:
            ratings = {(m if v[0] >= 0 else v[2]): v[1] for m, v in latest.items()}
            res = self.cold_start(ratings, k, exclude_seen, genres, exclude_genres, explain)
            res["user_id"] = self._user_key(user_id)
            res["events_used"] = sum(v[0] >= 0 for v in latest.values())
            return res
        if u < 0:
            return self._popular_result(user_id, k, genres, exclude_genres, explain)
        pairs = [v for v in latest.values() if v[0] >= 0]
        if not pairs:
            listed, m, _ = self.ranked_rows(np.array([u]), k, exclude_seen, mask, match=explain)[0]
            if m is not None:
                self.add_reasons(self.rated_user(u), listed, m.logits[0], m.ranked(0))
            out = self._result(user_id, "personalized", listed)
            if events:
                out["events_used"] = 0
            return out
        items = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        values = np.fromiter((r for _, r in pairs), dtype=np.float64, count=len(pairs))
        pr, p, b, implicit = self.update(u, items, values)
        exclude = np.zeros((1, self.n_items), dtype=bool)
        if mask is not None:
            exclude |= mask
        if exclude_seen:
            exclude[0, self._seen(u)] = True
            exclude[0, items] = True
        deep = self.deep_inputs(None if implicit is None else implicit[None, :], p[None, :])
        s, i, r, m = self._run(pr[None, :], p[None, :], np.array([b]), deep, exclude, k, explain)
        listed = self._items(s[0], i[0], r[0], None if m is None else m.match[0])
        if m is not None:
            self.add_reasons(self.events_user(u, pr, p, items, values), listed, m.logits[0], m.ranked(0))
        out = self._result(user_id, "personalized", listed)
        out["events_used"] = len(items)
        return out

    def cold_start(
        self,
        ratings: Mapping[Any, float],
        k: int = 10,
        exclude_seen: bool = True,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
        explain: bool = True,
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
            res = self._popular_result(None, k, genres, exclude_genres, explain)
            res["unknown_movies"] = unknown
            return res
        items = np.array([i for i, _ in known], dtype=np.int64)
        values = np.array([r for _, r in known])
        pr, p, b = self.fold_in(items, values)
        deep = self.deep_inputs(pr[None, :], p[None, :])
        exclude = mask[None, :].copy()
        if exclude_seen:
            exclude[0, items] = True
        s, i, r, m = self._run(pr[None, :], p[None, :], np.array([b]), deep, exclude, k, explain)
        listed = self._items(s[0], i[0], r[0], None if m is None else m.match[0])
        if m is not None:
            self.add_reasons(self.new_user(pr, p, items, values), listed, m.logits[0], m.ranked(0))
        res = self._result(None, "cold_start", listed)
        res["unknown_movies"] = unknown
        return res

    def predict(
        self, user_id: Any, movie_ids: Iterable[Any], events: Iterable[Mapping[str, Any]] | None = None
    ) -> np.ndarray:
        """The ratings a known user would give ``movie_ids`` (float64, NaN for a movie the catalogue lacks, all NaN
        for an unknown user), with their ``events`` folded in as :meth:`recommend` folds them: the ratings the
        recommendations are ranked by. One catalogue call per :data:`~contract.CANDIDATES` movies, every other movie
        excluded, so the graph's top list is exactly these movies."""
        wanted = np.array([self.item_index(m) for m in movie_ids], dtype=np.int64)
        out = np.full(len(wanted), np.nan)
        u = self.user_index(user_id)
        if u < 0 or not (wanted >= 0).any():
            return out
        pairs = [v for v in self._new_ratings(list(events or ()), known_user=True).values() if v[0] >= 0]
        if pairs:
            items = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
            values = np.fromiter((r for _, r in pairs), dtype=np.float64, count=len(pairs))
            pr, p, b, implicit = self.update(u, items, values)
            deep = self.deep_inputs(None if implicit is None else implicit[None, :], p[None, :])
            inputs = (pr[None, :], p[None, :], np.array([b]), deep)
        else:
            inputs = self._user_inputs(np.array([u]))
        unique = np.unique(wanted[wanted >= 0])
        rating: dict[int, float] = {}
        for start in range(0, len(unique), self.candidates):
            chunk = unique[start : start + self.candidates]
            exclude = np.ones((1, self.n_items), dtype=bool)
            exclude[0, chunk] = False
            _, top, ratings, _ = self._run(*inputs, exclude, len(chunk))
            rating.update(zip(top[0].tolist(), ratings[0].astype(np.float64).tolist(), strict=True))
        known = wanted >= 0
        out[known] = [rating[int(i)] for i in wanted[known]]
        return out

    def recommend_batch(
        self,
        user_ids: list,
        k: int = 10,
        exclude_seen: bool = True,
        genres: Iterable[str] | None = None,
        exclude_genres: Iterable[str] | None = None,
        explain: bool = True,
    ) -> list[dict]:
        """Many users in one call: known users are scored together, unknown ones get the fallback."""
        k = self._check_k(k)
        mask = self._genre_mask(genres, exclude_genres) if genres or exclude_genres else None
        idx = np.array([self.user_index(u) for u in user_ids], dtype=np.int64)
        known = np.flatnonzero(idx >= 0)
        scored = self.ranked_rows(idx[known], k, exclude_seen, mask, match=explain) if len(known) else []
        by_row = dict(zip(known.tolist(), scored, strict=True))
        fallback: dict | None = None
        results = []
        for row, user_id in enumerate(user_ids):
            if row in by_row:
                items, m, at = by_row[row]
                if m is not None:
                    self.add_reasons(self.rated_user(int(idx[row])), items, m.logits[at], m.ranked(at))
                results.append(self._result(user_id, "personalized", items))
            else:
                fallback = fallback or self._popular_result(None, k, genres, exclude_genres, explain)
                results.append({**fallback, "user_id": self._user_key(user_id)})
        return results

    def _popular_result(
        self, user_id: Any, k: int, genres: Iterable[str] | None, exclude_genres: Iterable[str] | None, explain: bool
    ) -> dict:
        items = self.popular(k, genres, exclude_genres)
        return self._result(user_id, "popular", self.popular_reasons(items) if explain else items)
