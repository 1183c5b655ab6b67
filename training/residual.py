"""Our Keras model family through the common interface (:class:`training.interface.RecommenderModel`).

``ResidualModel(config).fit(train)`` trains with :func:`training.fit.fit` on index-space interactions and answers
in the caller's index space; :meth:`ResidualModel.of` wraps a model already trained (``training.train``'s, or one
loaded from a model directory) in its own index space.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import TrainConfig
from training.interactions import Interactions
from training.interface import RecommenderModel
from training.recommender import Recommender


class ResidualModel(RecommenderModel):
    """The residual MF family (any ``--variant``), trained and scored in the caller's index space."""

    rates = ranks = True

    def __init__(
        self, config: TrainConfig | None = None, movies: pd.DataFrame | None = None, name: str | None = None
    ) -> None:
        self.config = config or TrainConfig()
        self.movies = movies
        self.name = name or self.config.model.kind
        self.rec: Recommender | None = None
        self.summary: dict = {}

    @classmethod
    def of(cls, rec: Recommender, name: str | None = None) -> ResidualModel:
        """A trained recommender as a model of its own index space (``rec.train``'s users and movies)."""
        model = cls(rec.config, name=name)
        model._attach(rec, np.arange(len(rec.users)), np.arange(len(rec.items)))
        return model

    def _attach(self, rec: Recommender, user_map: np.ndarray, item_map: np.ndarray) -> None:
        self.rec, self.config = rec, rec.config
        self._users, self._items = user_map, item_map  # caller's index -> the recommender's (-1: not in training)

    def fit(self, train: Interactions, progress=None) -> ResidualModel:
        from training.fit import fit

        ratings = pd.DataFrame(
            {"user_id": train.users, "movie_id": train.items, "rating": train.ratings, "timestamp": train.timestamps}
        )
        # movie metadata, if any, is keyed by the caller's item index (movie_id == item index)
        rec, self.summary = fit(ratings, self.config, progress=progress, movies=self.movies)
        self._attach(rec, rec.users.lookup(np.arange(train.n_users)), rec.items.lookup(np.arange(train.n_items)))
        return self

    def predict(self, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        u = np.where(users >= 0, self._users[np.maximum(users, 0)], -1)
        i = np.where(items >= 0, self._items[np.maximum(items, 0)], -1)
        out = np.full(len(u), float(np.mean(self.rec.train.ratings)))
        known = (u >= 0) & (i >= 0)
        if known.any():
            out[known] = self.rec.predict(u[known], i[known], None if times is None else np.asarray(times)[known])
        return out

    def score(self, users: np.ndarray) -> np.ndarray:
        inner = self._users[np.asarray(users)]
        if (inner < 0).any():
            raise ValueError("score() takes users known to training")
        scores = self.rec.rank_scores(inner)
        out = np.full((len(inner), len(self._items)), -np.inf)
        present = self._items >= 0
        out[:, present] = scores[:, self._items[present]]
        return out

    def save(self, path: str | Path) -> None:
        from training.recommender import save

        path = Path(path)
        meta = {"train_config": self.rec.config.to_dict(), "dataset": {"rating_scale": [0.5, 5.0]}}
        save(self.rec, path, meta, None, pd.DataFrame(columns=["movie_id", "title", "year", "genres"]))
        np.savez(path / "index_maps.npz", users=self._users, items=self._items)
        (path / "interface.json").write_text(json.dumps({"name": self.name}) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ResidualModel:
        from training.recommender import load

        path = Path(path)
        rec, _ = load(path)
        maps = np.load(path / "index_maps.npz")
        model = cls(rec.config, name=json.loads((path / "interface.json").read_text())["name"])
        model._attach(rec, maps["users"], maps["items"])
        return model
