"""The best figures a model can reach on data drawn by :func:`training.synthetic.movielens_like`: the model the data
came from, scored with the project's own protocol (:func:`training.evaluate.compare`, :mod:`training.metrics`), so
its figures sit next to any other model's.

:class:`TrueModel` predicts a rating with the true expected rating ``m_ui`` (before noise, rounding and clipping; the
protocol clips it into the scale, and gives the training mean to a pair whose user or movie training never saw) and
ranks a user's candidates (the training movies they did not rate in training) one of two ways:

* ``choice``: by the true choice logit ``l_ui``, the order in which the model has the user choose movies;
* ``relevant``: by the probability that the movie is what the protocol counts as a hit, a held-out movie rated at
  least ``threshold``: P(chosen among the user's held-out movies | their training movies) x P(rating >= threshold).
  Ranking by that probability is what NDCG@k and recall@k reward in expectation, so this is the ceiling to quote;
  the first factor is the inclusion probability of drawing the user's remaining movies from the movies they did not
  rate in training (:meth:`training.synthetic.GroundTruth.inclusion_probability`'s approximation).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from training.evaluate import HeldOut, compare
from training.interactions import IdMap, Interactions
from training.interface import RecommenderModel
from training.synthetic import GroundTruth, gumbel_threshold

RANKINGS = ("choice", "relevant")
CEILING = "true model (P relevant)"  # the row the ceiling is: the ranking by P(held out and rated >= 4)


class TrueModel(RecommenderModel):
    """The ground truth as a model of the index space of ``users`` and ``items`` (the training part's id maps).

    ``fit`` learns nothing: it keeps the training mean (the protocol's fallback) and each user's training movies.
    """

    rates = ranks = True

    def __init__(
        self, truth: GroundTruth, users: IdMap, items: IdMap, ranking: str = "relevant", threshold: float = 4.0
    ) -> None:
        if ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}")
        self.truth, self.ranking, self.threshold = truth, ranking, float(threshold)
        self.name = CEILING if ranking == "relevant" else "true model (choice logit)"
        # The frame's ids are the truth's rows.
        self._user_rows = np.asarray(users.ids, np.int64)
        self._movie_rows = np.asarray(items.ids, np.int64)
        self.mu = float(truth.mean)
        self._seen: list[np.ndarray] = []

    def fit(self, train: Interactions) -> TrueModel:
        self.mu = float(np.mean(train.ratings))
        order = np.argsort(train.users, kind="stable")
        bounds = np.searchsorted(train.users[order], np.arange(train.n_users + 1))
        movies = self._movie_rows[train.items[order]]
        self._seen = [movies[a:b] for a, b in itertools.pairwise(bounds)]
        return self

    def predict(self, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        known = (users >= 0) & (items >= 0)
        out = np.full(len(users), self.mu)
        out[known] = self.truth.expected_ratings(self._user_rows[users[known]], self._movie_rows[items[known]])
        return out

    def score(self, users: np.ndarray) -> np.ndarray:
        rows = self._user_rows[np.asarray(users)]
        if self.ranking == "choice":
            return self.truth.choice_logits(rows)[:, self._movie_rows]
        logits = self.truth.choice_logits(rows)
        left = np.empty(len(rows), np.int64)
        for r, u in enumerate(np.asarray(users)):
            seen = self._seen[u]
            logits[r, seen] = -np.inf  # already drawn
            # At least one movie is left for anybody the protocol ranks (they have a relevant held-out movie).
            left[r] = max(1, min(self.truth.counts[rows[r]] - len(seen), self.truth.n_movies - len(seen) - 1))
        with np.errstate(divide="ignore"):
            chosen = -np.expm1(-np.exp(logits - gumbel_threshold(logits, left)[:, None]))
            score = np.log(chosen) + np.log(self.truth.liked_probability(rows, self.threshold))
        return score[:, self._movie_rows]


def ceiling(
    truth: GroundTruth,
    train: pd.DataFrame,
    test: pd.DataFrame,
    scale: tuple[float, float] | None = None,
    k: int = 10,
) -> dict[str, dict]:
    """The true model's figures on a split of :func:`~training.synthetic.movielens_like`'s frame, one row per
    ranking (``true model (P relevant)``: the ceiling; ``true model (choice logit)``), with the columns and protocol of
    :func:`training.evaluate.compare` (relevant: held-out ratings >= 4)."""
    split = HeldOut.of(train, test)
    models = [TrueModel(truth, split.users, split.items, ranking) for ranking in ("relevant", "choice")]
    return compare(models, split.train, split.test, split.task, scale or truth.scale, k)
