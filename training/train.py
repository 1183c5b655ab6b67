"""Train a model of the residual MF family and save it with everything needed to repeat it.

``python -m training.train [--dataset NAME | --ratings FILE [--movies FILE]] --out DIR [options]``

With no options it trains the model the product serves (``residual`` with its interaction head)
on ml-latest-small with the seeded 90/10 random split, and writes to ``DIR``:

* ``model.keras``: the Keras model;
* ``metadata.json``: data set and file checksums, split, seed, hyperparameters, metrics, history;
* ``ids.npz``: the id maps (raw user and movie ids, in index order);
* ``train.npz``: the training interactions in index space (for exclude-seen, histories, popularity);
* ``test.csv``: the held-out ratings, so ``python -m training.evaluate --model DIR --test DIR/test.csv``
  reproduces the reported metrics;
* ``movies.csv``: movie metadata (title, year, ``|``-joined genres).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ notices (oneDNN, tf.data) are noise here

import numpy as np
import pandas as pd

from training import scoring
from training.data import DataError, Dataset, load_100k_split, load_dataset, load_ratings_file
from training.features import scale_time
from training.metrics import RankingTask, evaluate_ranking, rmse
from training.models import MODEL_KINDS, ModelConfig
from training.scoring import ServingWeights
from training.splits import SPLIT_KINDS, SplitSpec, train_mask

log = logging.getLogger("training")

LR_SCHEDULES = ("exponential", "cosine", "plateau", "constant")


@dataclass
class TrainConfig:
    """Optimisation hyperparameters; saved verbatim in the model metadata."""

    epochs: int = 40
    batch_size: int = 1024
    lr: float = 3e-3
    lr_schedule: str = "exponential"
    lr_decay: float = 0.97  # per epoch, for "exponential"
    rank_weight: float = 1.0
    liked_weight: float = 3.0  # softmax weight of ratings >= liked_threshold relative to the others
    liked_threshold: float = 4.0
    # Softmax weight of each of a user's ratings scaled by n_u ** -user_balance (n_u: the user's training ratings),
    # so a few very active users do not dominate the ranking loss (0: every rating counts the same; 1: every user).
    user_balance: float = 0.35
    rank_blend: float | None = None  # ranking score = logit + rank_blend * (b_i + p.q); None: chosen on validation
    val_fraction: float = 0.05
    patience: int = 6
    seed: int = 42
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if self.epochs < 1 or self.batch_size < 1 or not 0 <= self.val_fraction < 0.5:
            raise ValueError("need epochs >= 1, batch_size >= 1 and 0 <= val_fraction < 0.5")
        if not 0 <= self.user_balance <= 1:
            raise ValueError("user_balance must be between 0 and 1")

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- index space


@dataclass
class Interactions:
    """Ratings in index space (users 0..n_users-1, items 0..n_items-1)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    n_users: int
    n_items: int


class IdMap:
    """Raw ids <-> contiguous indices; raw ids are int64 or str, and lookups accept either spelling."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids)
        self._index = pd.Index(self.ids)
        self.numeric = self.ids.dtype.kind in "iu"

    def __len__(self) -> int:
        return len(self.ids)

    def normalise(self, raw) -> object:
        """A raw id in this map's type (``"19"`` -> 19 for integer maps); unparseable -> None."""
        if self.numeric:
            try:
                value = int(str(raw).strip())
            except ValueError:
                return None
            return value
        return str(raw)

    def lookup(self, raw_ids) -> np.ndarray:
        """Indices of ``raw_ids``; -1 where unknown."""
        values = [self.normalise(r) for r in np.atleast_1d(np.asarray(raw_ids, dtype=object))]
        idx = self._index.get_indexer(
            pd.Index(values, dtype=self.ids.dtype if self.numeric and None not in values else object)
        )
        return idx.astype(np.int64)


def to_interactions(ratings: pd.DataFrame, users: IdMap, items: IdMap) -> Interactions:
    return Interactions(
        users.lookup(ratings["user_id"].to_numpy()),
        items.lookup(ratings["movie_id"].to_numpy()),
        ratings["rating"].to_numpy(np.float32),
        ratings["timestamp"].to_numpy(np.int64),
        len(users),
        len(items),
    )


# --------------------------------------------------------------------------- batches


def _keras():
    import keras

    return keras


def make_batches(train: Interactions, cfg: TrainConfig, with_head: bool):
    """A Keras ``PyDataset`` over the observed ratings, reshuffled with the run's seed every epoch.

    Targets: the rating for the rating head and the item index for the catalogue softmax.
    """
    keras = _keras()

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(cfg.seed)
            self.u = train.users.astype(np.int32)
            self.i = train.items.astype(np.int32)
            self.t = scale_time(train.timestamps) if cfg.model.time_feature and cfg.model.kind != "mf" else None
            self.w = softmax_weights(train, cfg)
            self.on_epoch_end()

        def on_epoch_end(self) -> None:
            self.perm = self.rng.permutation(len(self.u))

        def __len__(self) -> int:
            return int(np.ceil(len(self.perm) / cfg.batch_size))

        def __getitem__(self, k: int):
            sel = self.perm[k * cfg.batch_size : (k + 1) * cfg.batch_size]
            x = {"user": self.u[sel], "item": self.i[sel]}
            if self.t is not None:
                x["time"] = self.t[sel]
            y = {"rating": train.ratings[sel]}
            if not with_head:
                return x, y
            y["interaction"] = self.i[sel]
            return x, y, {"rating": np.ones(len(sel), np.float32), "interaction": self.w[sel]}

    return Batches()


def softmax_weights(train: Interactions, cfg: TrainConfig) -> np.ndarray:
    """Per-rating weights of the interaction head's softmax loss, mean 1.

    Well-rated movies count ``liked_weight`` times more as "chosen", and each rating of a user with ``n_u``
    training ratings is scaled by ``n_u ** -user_balance``: ranking quality is averaged over users, and without
    it the heaviest raters (ml-latest-small: 10% of the users give nearly half of the ratings) dominate the loss.
    """
    liked = np.where(train.ratings >= cfg.liked_threshold, cfg.liked_weight, 1.0)
    if cfg.user_balance <= 0 or not len(liked):
        w = liked.astype(np.float32)  # float32 throughout, as before user balancing existed (same numbers)
        return w / w.mean() if len(w) else w
    counts = np.bincount(train.users, minlength=train.n_users).astype(np.float64)
    w = liked.astype(np.float64) * counts[train.users] ** -cfg.user_balance
    return (w / w.mean()).astype(np.float32)


# --------------------------------------------------------------------------- the trained model


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
            order = np.argsort(self.train.users, kind="stable")
            bounds = np.searchsorted(self.train.users[order], np.stack([users, users + 1]))
            for row, (lo, hi) in enumerate(bounds.T):
                seen[row, self.train.items[order[lo:hi]]] = True
        return scoring.two_stage_scores(self._weights_cache, users, seen, item_part=self._item_part)

    def rating_scores(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) full predicted ratings (deep branch included) via Keras."""
        users = np.asarray(users)
        uu = np.repeat(users, len(self.items))
        ii = np.tile(np.arange(len(self.items)), len(users))
        return self.predict(uu, ii).reshape(len(users), len(self.items))


# --------------------------------------------------------------------------- training


def _lr_callback(cfg: TrainConfig):
    keras = _keras()
    if cfg.lr_schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(monitor="val_rmse", mode="min", factor=0.5, patience=1, verbose=0)
    if cfg.lr_schedule == "constant":
        return None

    def schedule(epoch: int, lr: float) -> float:
        if cfg.lr_schedule == "exponential":
            return cfg.lr * cfg.lr_decay**epoch
        return cfg.lr * 0.5 * (1 + np.cos(np.pi * epoch / cfg.epochs))

    return keras.callbacks.LearningRateScheduler(schedule)


class HeadwiseEarlyStopping:
    """Keeps the best rating weights (by val RMSE) and the best ranking weights (by val NDCG@10).

    The two heads share no parameters, so each is restored to its own best epoch; training stops
    when neither improved for ``patience`` epochs.
    """

    def __new__(cls, *args, **kwargs):  # built lazily so importing this module does not import Keras
        keras = _keras()

        class _Impl(keras.callbacks.Callback):
            def __init__(self, rec_factory, val: Interactions | None, task, patience: int, progress, on_epoch) -> None:
                super().__init__()
                self.rec_factory, self.val, self.task, self.patience, self.progress = (
                    rec_factory,
                    val,
                    task,
                    patience,
                    progress,
                )
                self.on_epoch = on_epoch
                self.best_rmse, self.best_ndcg = np.inf, -np.inf
                self.rating_weights = self.rank_weights = None
                self.best_epochs = {"rating": 0, "ranking": 0}
                self.wait = 0
                self.history: list[dict] = []

            def _head_layers(self, rank: bool):
                return [lyr for lyr in self.model.layers if lyr.weights and (lyr.name.startswith("rank_") == rank)]

            def on_train_begin(self, logs=None) -> None:
                sync_implicit_copies(self.model)

            def on_epoch_end(self, epoch, logs=None) -> None:
                logs = logs if logs is not None else {}
                rec = self.rec_factory()
                improved = False
                if self.val is not None and len(self.val.users):
                    pred = rec.predict(self.val.users, self.val.items, self.val.timestamps)
                    logs["val_rmse"] = rmse(self.val.ratings, pred)
                    if logs["val_rmse"] < self.best_rmse - 1e-5:
                        self.best_rmse, improved = logs["val_rmse"], True
                        self.rating_weights = [lyr.get_weights() for lyr in self._head_layers(False)]
                        self.best_epochs["rating"] = epoch + 1
                if self.task is not None and len(self.task.users):
                    logs["val_ndcg@10"] = evaluate_ranking(rec.rank_scores, self.task, k=10)["ndcg@10"]
                    if logs["val_ndcg@10"] > self.best_ndcg + 1e-5:
                        self.best_ndcg, improved = logs["val_ndcg@10"], True
                        self.rank_weights = [lyr.get_weights() for lyr in self._head_layers(True)]
                        self.best_epochs["ranking"] = epoch + 1
                self.wait = 0 if improved else self.wait + 1
                lr = float(_keras().ops.convert_to_numpy(self.model.optimizer.learning_rate))
                row = {"epoch": epoch + 1, "lr": lr, **{k: float(v) for k, v in logs.items()}}
                self.history.append(row)
                if self.progress:
                    parts = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k not in ("epoch", "lr"))
                    self.progress(f"epoch {epoch + 1:3d}  lr={lr:.2e}  {parts}  ({time.perf_counter() - self.t0:.1f}s)")
                self.t0 = time.perf_counter()
                if self.on_epoch is not None:
                    self.on_epoch(row)  # may raise (a pruned tuning trial): training stops there
                if self.wait >= self.patience:
                    self.model.stop_training = True
                sync_implicit_copies(self.model)

            def on_epoch_begin(self, epoch, logs=None) -> None:
                self.t0 = time.perf_counter()

            def restore(self) -> None:
                for weights, layers in ((self.rating_weights, False), (self.rank_weights, True)):
                    if weights is not None:
                        for lyr, w in zip(self._head_layers(layers), weights, strict=True):
                            lyr.set_weights(w)

        return _Impl(*args, **kwargs)


BLEND_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def choose_blend(rec: Recommender, task: RankingTask | None) -> tuple[float, dict]:
    """The weight of the MF rating in the ranking score with the best validation NDCG@10."""
    if task is None or not len(task.users) or not rec.has_head:
        return 0.0, {}
    found = {}
    for gamma in BLEND_GRID:
        rec.config.rank_blend = gamma
        rec.refresh()
        found[str(gamma)] = evaluate_ranking(rec.rank_scores, task, k=10)["ndcg@10"]
    best = max(BLEND_GRID, key=lambda g: (found[str(g)], -g))
    rec.config.rank_blend = best
    rec.refresh()
    return best, found


def item_feature_matrix(cfg: TrainConfig, movies: pd.DataFrame | None, items: IdMap):
    """The deep branch's movie features in model item order (``(None, [])`` when the config does not use them).

    ``item_features=None`` (auto) is resolved here, in ``cfg``: on when ``movies`` has genres or years to encode.
    """
    if cfg.model.item_features is None:
        from training.features import has_metadata

        cfg.model.item_features = cfg.model.kind != "mf" and has_metadata(movies)
    if not cfg.model.item_features or cfg.model.kind == "mf":
        return None, []
    from training.features import encode_items

    matrix, names = (None, []) if movies is None or movies.empty else encode_items(movies, list(items.ids))
    if matrix is None or not (matrix[:, :-2].any() or not matrix[:, -1].all()):  # no genre nor year anywhere
        raise ValueError("--item-features needs movie metadata with genres or years (a MovieLens data set or --movies)")
    return matrix, names


def compiled_models(n_users: int, n_items: int, cfg: TrainConfig, item_features: np.ndarray | None = None):
    """The pairwise model and its catalogue-wide training twin (same layers), compiled with Adam at ``cfg.lr``."""
    keras = _keras()
    from training.models import build_model, training_model

    model = build_model(n_users, n_items, cfg.model, item_features)
    losses = {"rating": "mse"}
    weights = {"rating": 1.0}
    if cfg.model.rank_dim > 0:
        losses["interaction"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        weights["interaction"] = cfg.rank_weight
    trainer = training_model(model)
    trainer.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=losses, loss_weights=weights)
    return model, trainer


def sync_implicit_copies(model) -> None:
    """Copy the interaction head's factors into the deep branch's frozen inputs (if the model has them)."""
    names = {lyr.name for lyr in model.layers}
    if "implicit_user" in names:
        model.get_layer("implicit_user").set_weights(model.get_layer("rank_user_embedding").get_weights())
        model.get_layer("implicit_item").set_weights([model.get_layer("rank_items").get_weights()[0]])


def fit(
    train_ratings: pd.DataFrame,
    cfg: TrainConfig | None = None,
    progress=print,
    on_epoch: Callable[[dict], None] | None = None,
    movies: pd.DataFrame | None = None,
) -> tuple[Recommender, dict]:
    """Train on ``train_ratings`` (normalised table); returns the model and a training summary.

    A seeded ``val_fraction`` of the rows is held out for early stopping and never trained on.
    ``on_epoch`` gets each epoch's row (``epoch``, ``lr``, losses, ``val_rmse``, ``val_ndcg@10``); an
    exception it raises stops training and propagates (``training.tune`` prunes trials that way).
    ``movies`` (the data set's movies table) is needed when ``cfg.model.item_features`` is on.
    """
    cfg = cfg or TrainConfig()
    keras = _keras()
    keras.utils.set_random_seed(cfg.seed)
    try:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - other backends
        pass

    users = IdMap(pd.unique(train_ratings["user_id"]))
    items = IdMap(pd.unique(train_ratings["movie_id"]))
    data = to_interactions(train_ratings, users, items)
    val_mask = np.random.default_rng(cfg.seed + 1).random(len(data.users)) < cfg.val_fraction
    fit_part = Interactions(
        *(a[~val_mask] for a in (data.users, data.items, data.ratings, data.timestamps)), len(users), len(items)
    )
    val = Interactions(
        *(a[val_mask] for a in (data.users, data.items, data.ratings, data.timestamps)), len(users), len(items)
    )

    model_cfg = cfg.model
    model_cfg.global_mean = float(fit_part.ratings.mean())
    if model_cfg.time_feature:
        if not (fit_part.timestamps > 0).any():
            raise ValueError("--time-feature needs rating timestamps, and this data has none")
        model_cfg.time_now = float(scale_time(fit_part.timestamps.max()))
    features, feature_names = item_feature_matrix(cfg, movies, items)
    model, trainer = compiled_models(len(users), len(items), cfg, features)
    with_head = model_cfg.rank_dim > 0

    rec = Recommender(model, users, items, cfg)
    rec.train = fit_part

    def current() -> Recommender:
        rec.refresh()
        return rec

    task = None
    if len(val.users):
        task = RankingTask.build(
            fit_part.users, fit_part.items, val.users, val.items, val.ratings, len(users), len(items)
        )
    stopper = HeadwiseEarlyStopping(current, val, task, cfg.patience, progress, on_epoch)
    callbacks = [stopper] + [c for c in [_lr_callback(cfg)] if c is not None]
    if progress:
        progress(
            f"training {model_cfg.kind} on {len(fit_part.users):,} ratings ({len(users):,} users, "
            f"{len(items):,} movies), validating on {len(val.users):,}"
        )
    t0 = time.perf_counter()
    trainer.fit(make_batches(fit_part, cfg, with_head), epochs=cfg.epochs, callbacks=callbacks, verbose=0)
    fit_seconds = time.perf_counter() - t0
    stopper.restore()
    rec.refresh()
    blend_search = {}
    if cfg.rank_blend is None:
        cfg.rank_blend, blend_search = choose_blend(rec, task)
        if progress:
            progress(f"ranking score = interaction logit + {cfg.rank_blend:g} x MF rating (chosen on validation)")
    summary = {
        "fit_seconds": round(fit_seconds, 2),
        "epochs_run": len(stopper.history),
        "best_epochs": stopper.best_epochs,
        "val_rmse": None if stopper.best_rmse == np.inf else stopper.best_rmse,
        "val_ndcg@10": None if stopper.best_ndcg == -np.inf else stopper.best_ndcg,
        "history": stopper.history,
        "rank_blend_search": blend_search,
        "item_features": feature_names,
        "n_train": len(fit_part.users),
        "n_val": len(val.users),
    }
    # Every rating the user gave counts as seen from here on (exclude-seen, histories, popularity, evaluation):
    # the validation part was only held out of the fit, and recommending a movie already rated wastes a slot.
    rec.train = data
    return rec, summary


# --------------------------------------------------------------------------- saving and loading


def _versions() -> dict:
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


# --------------------------------------------------------------------------- CLI


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=None, help="MovieLens data set name (default ml-latest-small)")
    g.add_argument("--ratings", type=Path, help="a ratings file (CSV, ml-100k TSV, .dat, Amazon JSON lines[.gz])")
    g.add_argument("--movies", type=Path, help="movie metadata for --ratings (movies.csv, movies.dat or u.item)")
    g.add_argument("--data-dir", type=Path, help="where data sets live (default: $RECSYS_DATA_DIR, else ./data)")
    g.add_argument(
        "--rating-scale", type=float, nargs=2, metavar=("MIN", "MAX"), help="valid rating range for --ratings"
    )
    s = p.add_argument_group("split")
    s.add_argument("--split", choices=SPLIT_KINDS, default=None, help="random (default), temporal, kfold, or files")
    s.add_argument("--test-fraction", type=float, default=0.1)
    s.add_argument("--leave-last", type=int, default=1, help="temporal: ratings held out per user")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--fold", type=int, default=0)
    s.add_argument("--test-file", help="files split: ml-100k fold name (u1..u5, ua, ub) or a ratings file")


def add_train_args(p: argparse.ArgumentParser) -> None:
    d, m = TrainConfig(), ModelConfig()
    g = p.add_argument_group("model")
    g.add_argument("--variant", dest="kind", choices=MODEL_KINDS, default=m.kind, help="model variant")
    g.add_argument("--dim", type=int, default=m.dim, help="embedding size")
    g.add_argument("--hidden", type=int, nargs="+", default=list(m.hidden), help="deep branch widths")
    g.add_argument("--dropout", type=float, default=m.dropout)
    g.add_argument("--l2", type=float, default=m.l2, help="L2 on the user/movie embedding tables")
    g.add_argument("--bias-l2", type=float, default=m.bias_l2, help="L2 on the user/movie bias tables")
    g.add_argument("--dense-l2", type=float, default=m.dense_l2, help="L2 on the deep branch's kernels")
    g.add_argument("--l1", type=float, default=m.l1, help="L1 on the user/movie embedding tables")
    g.add_argument("--dense-l1", type=float, default=m.dense_l1, help="L1 on the deep branch's kernels")
    g.add_argument("--no-batchnorm", dest="batchnorm", action="store_false")
    g.add_argument("--alpha", type=float, default=None, help="hybrid: fixed MF weight (default: learned)")
    g.add_argument("--rank-dim", type=int, default=m.rank_dim, help="interaction head size (0: MSE only)")
    g.add_argument("--rank-l2", type=float, default=m.rank_l2)
    g.add_argument(
        "--implicit-inputs",
        action=argparse.BooleanOptionalAction,
        default=m.implicit_inputs,
        help="feed the interaction head's factors to the deep branch",
    )
    g.add_argument(
        "--time-feature",
        action=argparse.BooleanOptionalAction,
        default=m.time_feature,
        help="feed the rating's time to the deep branch (serving: the last training rating's time)",
    )
    g.add_argument(
        "--item-features",
        action=argparse.BooleanOptionalAction,
        default=m.item_features,
        help="feed each movie's genres and release year to the deep branch (default: when the movie metadata has them)",
    )
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=d.epochs)
    o.add_argument("--batch-size", type=int, default=d.batch_size)
    o.add_argument("--lr", type=float, default=d.lr)
    o.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule)
    o.add_argument("--lr-decay", type=float, default=d.lr_decay)
    o.add_argument("--rank-weight", type=float, default=d.rank_weight)
    o.add_argument(
        "--liked-weight", type=float, default=d.liked_weight, help="softmax weight of ratings >= 4 vs the others"
    )
    o.add_argument(
        "--user-balance",
        type=float,
        default=d.user_balance,
        help="softmax weight of a user's ratings scaled by (their number of ratings) ** -this (0: none)",
    )
    o.add_argument(
        "--rank-blend", type=float, default=d.rank_blend, help="MF rating weight in the ranking score (default: tuned)"
    )
    o.add_argument("--val-fraction", type=float, default=d.val_fraction)
    o.add_argument("--patience", type=int, default=d.patience)
    o.add_argument("--seed", type=int, default=d.seed)


# Options a --config file may not set: where data and outputs go are the command line's business.
NOT_IN_CONFIG = {"help", "config", "out", "quiet", "data_dir", "ratings", "movies", "dataset"}
CONFIG_ALIASES = {"variant": "kind"}


def read_config_file(path: Path, parser: argparse.ArgumentParser) -> dict:
    """Hyperparameters from a JSON object of option names (``"dim": 64``, ``"lr-schedule": "cosine"``).

    Keys starting with ``_`` are comments (``training.tune`` records its study there). Values are converted
    with the option's own type; an unknown option or a bad value is a :class:`DataError` naming the file.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise DataError(f"{path}: cannot read the config file ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: a config file is a JSON object of option names and values")
    actions = {a.dest: a for a in parser._actions if a.dest not in NOT_IN_CONFIG}
    values: dict = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        dest = key.lstrip("-").replace("-", "_")
        dest = CONFIG_ALIASES.get(dest, dest)
        action = actions.get(dest)
        if action is None:
            known = ", ".join([*sorted(d for d in actions if d != "kind"), "variant"])
            raise DataError(f"{path}: unknown option {key!r}; known: {known}")
        try:
            if isinstance(action, argparse.BooleanOptionalAction) or (action.const is not None and action.nargs == 0):
                if not isinstance(value, bool):
                    raise ValueError(f"expected true or false, got {value!r}")
            elif value is None:
                if action.default is not None:
                    raise ValueError("null is not allowed here")
            elif action.type is not None:
                if action.nargs not in (None, "?"):
                    items = value if isinstance(value, list) else [value]
                    if isinstance(action.nargs, int) and len(items) != action.nargs:
                        raise ValueError(f"expected {action.nargs} values, got {len(items)}")
                    value = [_convert(action.type, v) for v in items]
                else:
                    value = _convert(action.type, value)
            if action.choices is not None and value not in action.choices:
                raise ValueError(f"{value!r} is not one of {', '.join(map(str, action.choices))}")
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: option {key!r}: {exc}") from exc
        values[dest] = value
    return values


def _convert(kind, value):
    """A JSON value as an option's type; booleans and fractional numbers are not integers."""
    if isinstance(value, (bool, list, dict)):
        raise ValueError(f"expected a single {kind.__name__}, got {value!r}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return kind(value)


def parse_with_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; a ``--config FILE`` supplies defaults that explicit flags still override."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        parser.set_defaults(**read_config_file(known.config, parser))
    return parser.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    model = ModelConfig(
        kind=a.kind,
        dim=a.dim,
        hidden=tuple(a.hidden),
        dropout=a.dropout,
        l2=a.l2,
        bias_l2=a.bias_l2,
        dense_l2=a.dense_l2,
        l1=a.l1,
        dense_l1=a.dense_l1,
        batchnorm=a.batchnorm,
        alpha=a.alpha,
        rank_dim=a.rank_dim,
        rank_l2=a.rank_l2,
        implicit_inputs=a.implicit_inputs,
        item_features=a.item_features,
        time_feature=a.time_feature,
    )
    return TrainConfig(
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        lr_schedule=a.lr_schedule,
        lr_decay=a.lr_decay,
        rank_weight=a.rank_weight,
        liked_weight=a.liked_weight,
        user_balance=a.user_balance,
        rank_blend=a.rank_blend,
        val_fraction=a.val_fraction,
        patience=a.patience,
        seed=a.seed,
        model=model,
    )


def load_data(a: argparse.Namespace) -> tuple[Dataset, SplitSpec, pd.DataFrame, pd.DataFrame | None]:
    """The data set, the split and the (train, test) ratings the arguments describe."""
    if a.ratings and a.dataset:
        raise DataError("give either --dataset or --ratings, not both")
    kind = a.split or ("files" if a.test_file else "random")
    if kind == "files":
        if not a.test_file:
            raise DataError("--split files needs --test-file (u1..u5/ua/ub, or a ratings file)")
        if a.test_file in {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}:
            ds, test = load_100k_split(a.test_file, a.data_dir)
        else:
            ds = (
                load_ratings_file(a.ratings, a.movies, a.rating_scale)
                if a.ratings
                else load_dataset(a.dataset or "ml-latest-small", a.data_dir)
            )
            from training.data import read_ratings_file

            test = read_ratings_file(a.test_file, ds.rating_scale)
        spec = SplitSpec(kind="files", seed=a.seed, test_file=a.test_file)
        return ds, spec, ds.ratings, test
    ds = (
        load_ratings_file(a.ratings, a.movies, a.rating_scale)
        if a.ratings
        else load_dataset(a.dataset or "ml-latest-small", a.data_dir)
    )
    spec = SplitSpec(
        kind=kind,
        seed=42 if kind == "random" and a.seed == TrainConfig().seed else a.seed,
        test_fraction=a.test_fraction,
        leave_last=a.leave_last,
        folds=a.folds,
        fold=a.fold,
    )
    mask = train_mask(ds.ratings, spec)
    return ds, spec, ds.ratings[mask].reset_index(drop=True), ds.ratings[~mask].reset_index(drop=True)


def run(a: argparse.Namespace, out: Path | None, progress=print) -> tuple[Recommender, dict]:
    """Load data, train, evaluate on the held-out part and (with ``out``) save; returns the metadata."""
    from training.evaluate import evaluate

    cfg = config_from_args(a)
    ds, spec, train_df, test_df = load_data(a)
    rec, summary = fit(train_df, cfg, progress, movies=ds.movies)
    metrics = evaluate(rec, test_df, ds.rating_scale, baselines=False) if test_df is not None and len(test_df) else {}
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {
            "name": ds.name,
            "files": ds.files,
            "rating_scale": ds.rating_scale,
            "duplicates_dropped": ds.duplicates_dropped,
            "n_ratings": len(ds.ratings),
        },
        "split": spec.to_dict(),
        "seed": cfg.seed,
        "train_config": cfg.to_dict(),
        "training": summary,
        "metrics": metrics.get("model", {}),
        "n_users": len(rec.users),
        "n_items": len(rec.items),
        "versions": _versions(),
    }
    if out is not None:
        save(rec, out, meta, test_df, ds.movies)
    return rec, meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--out", type=Path, required=True, help="output model directory")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.add_argument(
        "--config", type=Path, help="JSON file of hyperparameters (e.g. training.tune's best_config.json); flags win"
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        a = parse_with_config(p, argv)
        _, meta = run(a, a.out, progress=None if a.quiet else lambda s: print(s, flush=True))
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = meta["metrics"]
    if m:
        print("held-out: " + "  ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)))
    print(f"saved to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
