"""Learning-rate range test: ``python -m bench.lr_find [data and model options] [--out DIR]``.

Trains the configured model from scratch for at most ``--steps`` batches while the learning rate grows
geometrically from ``--min-lr`` to ``--max-lr``, recording the (exponentially smoothed) training loss after each
batch; it stops early once the loss exceeds 4x its minimum (diverged). The suggestion is the learning rate where
the smoothed loss fell fastest (steepest negative slope against log(lr)), a usual starting point for ``--lr``.
Writes ``lr_find.json`` (every step and the suggestion) and ``lr_find.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from training.batches import make_batches
from training.cli import add_data_args, add_train_args, config_from_args, load_data, parse_with_config
from training.config import TrainConfig
from training.data import DataError
from training.fit import _keras, compiled_models, item_feature_matrix, reg_scale
from training.interactions import IdMap, to_interactions

SMOOTHING = 0.95  # exponential smoothing of the per-batch loss
DIVERGED = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum


def range_test(
    train_ratings, cfg: TrainConfig, min_lr: float = 1e-5, max_lr: float = 1e-1, steps: int = 200, movies=None
) -> dict:
    """The smoothed loss per learning rate, and the suggested learning rate (steepest descent)."""
    if not 0 < min_lr < max_lr:
        raise ValueError("need 0 < --min-lr < --max-lr")
    if steps < 10:
        raise ValueError("--steps must be at least 10")
    keras = _keras()
    keras.utils.set_random_seed(cfg.seed)
    import pandas as pd

    users, items = IdMap(pd.unique(train_ratings["user_id"])), IdMap(pd.unique(train_ratings["movie_id"]))
    data = to_interactions(train_ratings, users, items)
    cfg.model.global_mean = float(data.ratings.mean())
    cfg.model.reg_scale = reg_scale(len(data.users), cfg)  # the objective fit would train at this size
    _, trainer = compiled_models(len(users), len(items), cfg, item_feature_matrix(cfg, movies, items)[0])
    batches = make_batches(data, cfg, cfg.model.rank_dim > 0)
    factor = (max_lr / min_lr) ** (1.0 / (steps - 1))
    rows: list[dict] = []

    class Sweep(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.step, self.avg, self.best = 0, 0.0, math.inf
            self.seen, self.epoch_mean = 0, 0.0

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.seen, self.epoch_mean = 0, 0.0

        def on_train_batch_begin(self, batch, logs=None) -> None:
            self.model.optimizer.learning_rate.assign(min_lr * factor**self.step)

        def on_train_batch_end(self, batch, logs=None) -> None:
            # Keras reports the mean loss since the epoch began; recover this batch's own loss from it.
            mean = float(logs["loss"])
            loss = (self.seen + 1) * mean - self.seen * self.epoch_mean
            self.seen, self.epoch_mean = self.seen + 1, mean
            lr = min_lr * factor**self.step
            self.step += 1
            self.avg = SMOOTHING * self.avg + (1 - SMOOTHING) * loss
            smooth = self.avg / (1 - SMOOTHING**self.step)  # bias-corrected
            rows.append({"step": self.step, "lr": lr, "loss": loss, "smoothed_loss": smooth})
            self.best = min(self.best, smooth)
            if not math.isfinite(loss) or smooth > DIVERGED * self.best or self.step >= steps:
                self.model.stop_training = True

    epochs = math.ceil(steps / max(1, len(batches)))
    trainer.fit(batches, epochs=epochs, callbacks=[Sweep()], verbose=0)
    lrs = np.array([r["lr"] for r in rows])
    smooth = np.array([r["smoothed_loss"] for r in rows])
    skip = max(1, len(rows) // 10)  # the first steps are dominated by the smoothing's start
    slope = np.gradient(smooth, np.log(lrs))
    best = skip + int(np.argmin(slope[skip:])) if len(rows) > skip + 1 else 0
    return {
        "suggested_lr": float(lrs[best]),
        "min_loss_lr": float(lrs[int(np.argmin(smooth))]),
        "steps_run": len(rows),
        "diverged": bool(len(rows) < steps),
        "min_lr": min_lr,
        "max_lr": max_lr,
        "history": rows,
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot([r["lr"] for r in result["history"]], [r["smoothed_loss"] for r in result["history"]])
    ax.axvline(result["suggested_lr"], color="tab:red", linestyle="--", label=f"suggested {result['suggested_lr']:.2e}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss (smoothed)", title="learning-rate range test")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lr_find", description=__doc__.split("\n")[0])
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--min-lr", type=float, default=1e-5)
    p.add_argument("--max-lr", type=float, default=1e-1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", type=Path, default=Path("artifacts/lr_find"))
    p.add_argument("--config", type=Path, help="JSON hyperparameters (training.train --config)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        a = parse_with_config(p, argv)
        ds, _, train_df, _ = load_data(a)
        result = range_test(train_df, config_from_args(a), a.min_lr, a.max_lr, a.steps, ds.movies)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "lr_find.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, a.out / "lr_find.png")
    print(
        f"{result['steps_run']} steps from {a.min_lr:g} to {a.max_lr:g}"
        f"{' (stopped: loss diverged)' if result['diverged'] else ''}; "
        f"steepest descent at lr={result['suggested_lr']:.2e}, "
        f"lowest loss at lr={result['min_loss_lr']:.2e}; wrote {a.out / 'lr_find.json'} and {a.out / 'lr_find.png'}"
    )
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
