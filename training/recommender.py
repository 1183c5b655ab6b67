"""A trained model with its id maps: scoring in index space, and the model directory it is saved to and loaded from.

A model directory holds ``model.keras``, ``metadata.json``, ``ids.npz``, ``train.npz``, ``test.csv`` and
``movies.csv`` (see :mod:`training.train`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from training import scoring
from training.config import ModelConfig, TrainConfig
from training.data import DataError
from training.features import scale_time
from training.interactions import IdMap, Interactions, slice_positions
from training.scoring import ServingWeights


class Recommender:
    """A trained Keras model with its id maps; scores in index space with numpy where it can."""

    def __init__(self, model, users: IdMap, items: IdMap, config: TrainConfig) -> None:
        self.model = model
        self.users = users
        self.items = items
        self.config = config
        self.train: Interactions | None = None
        self._weights_cache: ServingWeights | None = None
        self._item_part: np.ndarray | None = None
        self._seen: tuple | None = None
        self.refresh()

    def refresh(self) -> None:
        """Forget cached serving weights (after training or a new blend weight changed them)."""
        self._weights_cache = None
        self._item_part = None
        self.has_head = any(layer.name == "rank_items" for layer in self.model.layers)
        self.has_time = any(t.name == "time" for t in self.model.inputs)

    def predict(
        self, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None, batch_size: int = 65536
    ) -> np.ndarray:
        """Predicted ratings for index pairs (clipped to nothing: callers clip to their scale).

        ``times`` (unix seconds) matter only to a model with the time feature; by default it is scored at the
        time serving uses, the last training rating's.
        """
        x = {"user": np.asarray(users, np.int32), "item": np.asarray(items, np.int32)}
        if self.has_time:
            x["time"] = (
                np.full(len(x["user"]), self.config.model.time_now, np.float32) if times is None else scale_time(times)
            )
        out = self.model.predict(x, batch_size=batch_size, verbose=0)
        return np.asarray(out["rating"] if isinstance(out, dict) else out)[:, 0]

    def serving_weights(self) -> ServingWeights:
        """The numbers the served score uses (see :mod:`training.scoring`)."""
        m = self.config.model
        return scoring.from_keras(self.model, m.kind, m.global_mean, self.config.rank_blend or 0.0, m.time_now)

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) served scores, exactly as serving computes them with exclude-seen on.

        Movies the user rated in training are excluded before candidates are chosen; they and the
        movies outside the candidates score -inf.
        """
        users = np.asarray(users)
        if self._weights_cache is None:
            self._weights_cache = self.serving_weights()
            self._item_part = self._weights_cache.item_deep_part() if self._weights_cache.has_deep else None
        seen = np.zeros((len(users), len(self.items)), dtype=bool)
        if self.train is not None:
            indptr, items = self._seen_index()
            lengths = indptr[users + 1] - indptr[users]
            rows = np.repeat(np.arange(len(users)), lengths)
            seen[rows, items[slice_positions(indptr[users], lengths)]] = True
        return scoring.two_stage_scores(self._weights_cache, users, seen, item_part=self._item_part)

    def _seen_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Each user's training movies as CSR (indptr over users, movie indices), built once per training set."""
        if self._seen is None or self._seen[0] is not self.train:
            t = self.train
            order = np.argsort(t.users, kind="stable")
            indptr = np.concatenate([[0], np.cumsum(np.bincount(t.users, minlength=t.n_users))])
            self._seen = (t, indptr, t.items[order])
        return self._seen[1], self._seen[2]

    def rating_scores(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) full predicted ratings (deep branch included) via Keras."""
        users = np.asarray(users)
        uu = np.repeat(users, len(self.items))
        ii = np.tile(np.arange(len(self.items)), len(users))
        return self.predict(uu, ii).reshape(len(users), len(self.items))


def versions() -> dict:
    import keras
    import tensorflow as tf

    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }


def save(rec: Recommender, out: Path, metadata: dict, test: pd.DataFrame | None, movies: pd.DataFrame) -> None:
    """Write the model directory; files are written under temporary names and renamed at the end."""
    out.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []

    def stage(name: str) -> Path:
        tmp = out / f".{name}.tmp"
        staged.append((tmp, out / name))
        return tmp

    rec.model.save(stage("model.keras").with_suffix(".keras"))
    staged[-1] = (staged[-1][0].with_suffix(".keras"), staged[-1][1])
    with open(stage("ids.npz"), "wb") as f:
        np.savez(f, user_ids=_savable(rec.users.ids), item_ids=_savable(rec.items.ids))
    t = rec.train
    with open(stage("train.npz"), "wb") as f:
        np.savez(f, users=t.users, items=t.items, ratings=t.ratings, timestamps=t.timestamps)
    if test is not None:
        test.to_csv(stage("test.csv"), index=False)
    m = movies[movies["movie_id"].isin(pd.Index(rec.items.ids))].copy()
    m["genres"] = m["genres"].map("|".join)
    m.to_csv(stage("movies.csv"), index=False)
    stage("metadata.json").write_text(json.dumps(metadata, indent=2, default=_json_default) + "\n")
    for tmp, final in staged:
        tmp.replace(final)


def _savable(ids: np.ndarray) -> np.ndarray:
    return ids.astype(np.int64) if ids.dtype.kind in "iu" else ids.astype(str)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load(model_dir: str | os.PathLike) -> tuple[Recommender, dict]:
    """Load a model directory written by :func:`save`; returns the recommender and its metadata."""
    import keras

    import training.models  # noqa: F401  (registers the custom layers)

    model_dir = Path(model_dir)
    for name in ("model.keras", "metadata.json", "ids.npz", "train.npz"):
        if not (model_dir / name).exists():
            raise DataError(f"{model_dir}: not a model directory ({name} missing)")
    meta = json.loads((model_dir / "metadata.json").read_text())
    ids = np.load(model_dir / "ids.npz", allow_pickle=False)
    users, items = IdMap(ids["user_ids"]), IdMap(ids["item_ids"])
    tc = dict(meta["train_config"])
    tc["model"] = ModelConfig(**tc["model"])
    cfg = TrainConfig(**tc)
    rec = Recommender(keras.models.load_model(model_dir / "model.keras"), users, items, cfg)
    t = np.load(model_dir / "train.npz", allow_pickle=False)
    rec.train = Interactions(t["users"], t["items"], t["ratings"], t["timestamps"], len(users), len(items))
    return rec, meta
