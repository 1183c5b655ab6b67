"""Non-learned and closed-form baselines that every report shows next to our models."""

from __future__ import annotations

import numpy as np

from training.interactions import Interactions
from training.interface import RecommenderModel


class GlobalMean(RecommenderModel):
    """Predicts the training mean for every pair; ranks nothing (all candidates tie)."""

    name = "global mean"
    rates = True

    def fit(self, train: Interactions) -> GlobalMean:
        self.mu = float(np.mean(train.ratings))
        self.n_items = train.n_items
        return self

    def predict(self, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        return np.full(len(users), self.mu)


class BiasBaseline(RecommenderModel):
    """mu + b_u + b_i fitted by regularised alternating least squares (Koren 2008 baseline predictor)."""

    name = "user+item bias"
    rates = ranks = True

    def __init__(self, reg_user: float = 15.0, reg_item: float = 10.0, iterations: int = 10) -> None:
        self.reg_user, self.reg_item, self.iterations = reg_user, reg_item, iterations

    def fit(self, train: Interactions) -> BiasBaseline:
        users, items, ratings, n_users, n_items = train.users, train.items, train.ratings, train.n_users, train.n_items
        self.mu = float(np.mean(ratings))
        self.b_u, self.b_i = np.zeros(n_users), np.zeros(n_items)
        n_u = np.bincount(users, minlength=n_users)
        n_i = np.bincount(items, minlength=n_items)
        for _ in range(self.iterations):
            resid = ratings - self.mu - self.b_u[users]
            self.b_i = np.bincount(items, weights=resid, minlength=n_items) / (n_i + self.reg_item)
            resid = ratings - self.mu - self.b_i[items]
            self.b_u = np.bincount(users, weights=resid, minlength=n_users) / (n_u + self.reg_user)
        return self

    def predict(self, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        u_known, i_known = users >= 0, items >= 0
        return (
            self.mu
            + np.where(u_known, self.b_u[np.maximum(users, 0)], 0.0)
            + np.where(i_known, self.b_i[np.maximum(items, 0)], 0.0)
        )

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.mu + self.b_u[users][:, None] + self.b_i[None, :]


class Popularity(RecommenderModel):
    """Ranks items by their number of training ratings; predicts no ratings."""

    name = "popularity"
    ranks = True

    def fit(self, train: Interactions) -> Popularity:
        self.counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))
