"""The fit loop's Keras callbacks: per-head early stopping, the learning-rate schedule, the epoch progress bar.

Built lazily (inside functions) so that importing :mod:`training.train` does not import Keras.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from training.console import bar
from training.metrics import evaluate_ranking, rmse

if TYPE_CHECKING:  # pragma: no cover
    from training.config import TrainConfig
    from training.interactions import Interactions


def _keras():
    import keras

    return keras


def lr_callback(cfg: TrainConfig):
    """The Keras callback for ``cfg.lr_schedule`` (None for a constant rate)."""
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
            def __init__(
                self, pairwise, rec_factory, val: Interactions | None, task, patience: int, progress, on_epoch
            ) -> None:
                super().__init__()
                self.pairwise = pairwise  # the saved model; self.model is whatever trains it
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
                return [lyr for lyr in self.pairwise.layers if lyr.weights and (lyr.name.startswith("rank_") == rank)]

            def on_train_begin(self, logs=None) -> None:
                sync_implicit_copies(self.pairwise)

            def on_epoch_end(self, epoch, logs=None) -> None:
                logs = logs if logs is not None else {}
                train_s = time.perf_counter() - self.t0
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
                    logs["val_ndcg@10"] = evaluate_ranking(
                        rec.rank_scores, self.task, k=10, progress=bool(self.progress)
                    )["ndcg@10"]
                    if logs["val_ndcg@10"] > self.best_ndcg + 1e-5:
                        self.best_ndcg, improved = logs["val_ndcg@10"], True
                        self.rank_weights = [lyr.get_weights() for lyr in self._head_layers(True)]
                        self.best_epochs["ranking"] = epoch + 1
                self.wait = 0 if improved else self.wait + 1
                lr = float(_keras().ops.convert_to_numpy(self.model.optimizer.learning_rate))
                row = {"epoch": epoch + 1, "lr": lr, **{k: float(v) for k, v in logs.items()}}
                row["train_s"] = round(train_s, 2)
                row["val_s"] = round(time.perf_counter() - self.t0 - train_s, 2)
                self.history.append(row)
                if self.progress:
                    skip = ("epoch", "lr", "train_s", "val_s")
                    parts = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k not in skip)
                    took = f"({row['train_s']:.1f}s + {row['val_s']:.1f}s validation)"
                    self.progress(f"epoch {epoch + 1:3d}  lr={lr:.2e}  {parts}  {took}")
                self.t0 = time.perf_counter()
                if self.on_epoch is not None:
                    self.on_epoch(row)  # may raise (a pruned tuning trial): training stops there
                if self.wait >= self.patience:
                    self.model.stop_training = True
                sync_implicit_copies(self.pairwise)

            def on_epoch_begin(self, epoch, logs=None) -> None:
                self.t0 = time.perf_counter()

            def restore(self) -> None:
                for weights, layers in ((self.rating_weights, False), (self.rank_weights, True)):
                    if weights is not None:
                        for lyr, w in zip(self._head_layers(layers), weights, strict=True):
                            lyr.set_weights(w)

        return _Impl(*args, **kwargs)


def sync_implicit_copies(model) -> None:
    """Copy the interaction head's factors into the deep branch's frozen inputs (if the model has them)."""
    names = {lyr.name for lyr in model.layers}
    if "implicit_user" in names:
        model.get_layer("implicit_user").set_weights(model.get_layer("rank_user_embedding").get_weights())
        model.get_layer("implicit_item").set_weights([model.get_layer("rank_items").get_weights()[0]])


def epoch_bar(n_ratings: int, batch_size: int):
    """A Keras callback drawing one progress bar per epoch: ratings done, ratings/s and the epoch's ETA."""
    keras = _keras()

    class _EpochBar(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.bar = bar(total=n_ratings, unit=" ratings", unit_scale=True, desc=f"epoch {epoch + 1}")
            self.done = 0

        def on_train_batch_end(self, batch, logs=None) -> None:
            step = min(batch_size, n_ratings - self.done)
            self.done += step
            self.bar.update(step)

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.bar.close()

    return _EpochBar()
