"""The one interface every model here honours: our Keras family, the baselines and the peer libraries.

In the spirit of ``implicit``'s ``RecommenderBase``: ``fit`` on training interactions in index space, ``predict``
explicit ratings for (user, item) pairs and/or ``score`` the whole catalogue for users, ``save`` and ``load``.
What a model can do is declared (``rates``, ``ranks``), so :mod:`training.evaluate` and
:mod:`bench.quality` treat every model the same way, with no per-model glue.

Index space: users ``0..train.n_users-1`` and items ``0..train.n_items-1`` of the :class:`Interactions` given
to ``fit``. ``predict`` accepts ``-1`` for a user or item unknown to training (the model's own fallback, usually
the training mean); ``score`` takes known users only and returns ``(len(users), n_items)``.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from training.interactions import Interactions


class RecommenderModel(ABC):
    """A model trained on :class:`Interactions` that predicts ratings, ranks the catalogue, or both."""

    name: str = "model"
    rates: ClassVar[bool] = False  # predict() gives explicit ratings
    ranks: ClassVar[bool] = False  # score() gives catalogue scores

    @abstractmethod
    def fit(self, train: Interactions) -> RecommenderModel:
        """Train on ``train``; returns ``self``."""

    def predict(self, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """Predicted ratings of (user, item) index pairs (``-1``: unknown to training); ``times`` (unix seconds)
        matter only to a model that reads the rating's time."""
        raise NotImplementedError(f"{self.name} does not predict ratings")

    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) scores of every training item for each user; higher ranks first."""
        raise NotImplementedError(f"{self.name} does not rank")

    def save(self, path: str | Path) -> None:
        """Write the fitted model to ``path`` (a file; models with their own format may use a directory)."""
        Path(path).write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: str | Path) -> RecommenderModel:
        """A model written by :meth:`save`."""
        model = pickle.loads(Path(path).read_bytes())
        if not isinstance(model, cls):
            raise TypeError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model
