"""The fit loop: build and compile the model, train with per-head early stopping, choose the ranking blend."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from training.batches import make_batches, softmax_plan, softmax_sample_size
from training.callbacks import HeadwiseEarlyStopping, epoch_bar, lr_callback
from training.config import TrainConfig
from training.features import scale_time
from training.interactions import IdMap, Interactions, to_interactions
from training.metrics import RankingTask, evaluate_ranking
from training.recommender import Recommender

# Validation NDCG@10 (early stopping, the blend weight) ranks the whole catalogue for at most this many validation
# users, a seeded sample: every one of ml-latest-small's and ml-100k's, and at 162,000 users (ml-25m) a
# standard error of about 0.004 in a fraction of the time (docs/results.md, "Training at scale").
VAL_RANK_USERS = 10_000


def effective_batch_size(n_ratings: int, cfg: TrainConfig) -> int:
    """``cfg.batch_size``, grown so that an epoch takes at most ``cfg.max_steps`` steps.

    Every step also updates each embedding table whole (Adam and the tables' L2, as Keras does), so an epoch
    costs steps x (users + movies) besides its ratings; at ml-25m's 162,000 users that is most of the epoch.
    """
    if not cfg.max_steps or n_ratings <= cfg.max_steps * cfg.batch_size:
        return cfg.batch_size
    return int(np.ceil(n_ratings / cfg.max_steps))


def reg_scale(n_ratings: int, cfg: TrainConfig) -> float:
    """The factor on every regularisation strength for ``n_ratings`` training ratings: 1 up to
    ``cfg.reg_reference``, ``reg_reference / n_ratings`` past it (see :class:`training.config.TrainConfig`)."""
    if not cfg.reg_reference or n_ratings <= cfg.reg_reference:
        return 1.0
    return cfg.reg_reference / n_ratings


def _keras():
    import keras

    return keras


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


def compiled_models(
    n_users: int, n_items: int, cfg: TrainConfig, item_features: np.ndarray | None = None, user_lr_scale: float = 1.0
):
    """The pairwise model and the model that trains it (same layers), compiled with Adam at ``cfg.lr`` (one fused
    kernel per variable: :class:`training.optim.FusedAdam`).

    Per-rating softmax: a catalogue-wide twin trained by Keras's own losses. Per-user (the default): a
    :class:`training.user_softmax.UserSoftmaxTrainer` with the same losses and weights.
    """
    keras = _keras()
    from training.models import build_model, training_model
    from training.optim import FusedAdam

    model = build_model(n_users, n_items, cfg.model, item_features)
    if cfg.model.rank_dim > 0 and cfg.softmax == "per-user":
        from training.user_softmax import UserSoftmaxTrainer

        trainer = UserSoftmaxTrainer(model, cfg.rank_weight, cfg.batch_size, user_lr_scale)
        trainer.compile(optimizer=FusedAdam(cfg.lr))
        return model, trainer
    losses = {"rating": "mse"}
    weights = {"rating": 1.0}
    if cfg.model.rank_dim > 0:
        losses["interaction"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        weights["interaction"] = cfg.rank_weight
    trainer = training_model(model)
    trainer.compile(optimizer=FusedAdam(cfg.lr), loss=losses, loss_weights=weights)
    return model, trainer


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
    exception it raises stops training and propagates (``bench.tune`` prunes trials that way).
    ``movies`` (the data set's movies table) is needed when ``cfg.model.item_features`` is on.
    """
    cfg = (cfg or TrainConfig()).model_copy(deep=True)  # resolved here (means, features, blend); the caller's stays
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

    asked_batch = cfg.batch_size
    cfg.batch_size = effective_batch_size(len(fit_part.users), cfg)
    model_cfg = cfg.model
    model_cfg.global_mean = float(fit_part.ratings.mean())
    model_cfg.reg_scale = reg_scale(len(fit_part.users), cfg)
    if model_cfg.time_feature:
        if not (fit_part.timestamps > 0).any():
            raise ValueError("--time-feature needs rating timestamps, and this data has none")
        model_cfg.time_now = float(scale_time(fit_part.timestamps.max()))
    features, feature_names = item_feature_matrix(cfg, movies, items)
    with_head = model_cfg.rank_dim > 0
    chunk, user_lr_scale = softmax_plan(fit_part, cfg) if with_head and cfg.softmax == "per-user" else (None, 1.0)
    sample = softmax_sample_size(len(items), cfg) if with_head and cfg.softmax == "per-user" else 0
    model, trainer = compiled_models(len(users), len(items), cfg, features, user_lr_scale)

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
        task = task.sample(VAL_RANK_USERS, cfg.seed + 3)
    stopper = HeadwiseEarlyStopping(model, current, val, task, cfg.patience, progress, on_epoch)
    callbacks = [stopper] + [c for c in [lr_callback(cfg)] if c is not None]
    if progress:
        callbacks.insert(0, epoch_bar(len(fit_part.users), cfg.batch_size))
        progress(
            f"training {model_cfg.kind} on {len(fit_part.users):,} ratings ({len(users):,} users, "
            f"{len(items):,} movies), validating on {len(val.users):,}"
            + (f"; regularisation x {model_cfg.reg_scale:.3g} for its size" if model_cfg.reg_scale != 1 else "")
            + (f"; softmax normaliser from {sample:,} movies a step" if sample else "")
        )
    batches = make_batches(fit_part, cfg, with_head, chunk)
    t0 = time.perf_counter()
    trainer.fit(batches, epochs=cfg.epochs, callbacks=callbacks, verbose=0)
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
        "reg_scale": model_cfg.reg_scale,
        "batch_size": {"asked": asked_batch, "used": cfg.batch_size, "steps_per_epoch": len(batches)},
        "softmax": {
            "kind": cfg.softmax,
            "chunk": chunk,
            "rank_user_lr_scale": user_lr_scale,
            "sample": sample,
        }
        if with_head
        else None,
        "n_train": len(fit_part.users),
        "n_val": len(val.users),
    }
    # Every rating the user gave counts as seen from here on (exclude-seen, histories, popularity, evaluation):
    # the validation part was only held out of the fit, and recommending a movie already rated wastes a slot.
    rec.train = data
    return rec, summary
