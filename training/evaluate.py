"""Evaluate a trained model on held-out ratings, next to the baselines, with one fixed protocol.

``python -m training.evaluate --model DIR --test FILE [--json]``
``python -m training.evaluate --kfold K [--dataset NAME | --ratings FILE] [training options]``

Rating metrics (RMSE, MAE) cover every held-out rating: pairs whose user or movie is unknown to
training get the training mean (the model's and every baseline's fallback alike). Ranking metrics
follow :mod:`training.metrics`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.baselines import BiasBaseline, GlobalMean, Popularity
from training.data import DataError, read_ratings_file
from training.interactions import IdMap, Interactions, to_interactions
from training.interface import RecommenderModel
from training.metrics import RankingTask, evaluate_ranking, mae, rmse
from training.recommender import Recommender
from training.residual import ResidualModel

METRIC_COLUMNS = ("rmse", "mae", "ndcg@10", "recall@10", "precision@10", "map@10", "coverage", "fit_s")


@dataclass(frozen=True)
class HeldOut:
    """A train/test split in the index space :func:`training.fit.fit` gives the training part (ids numbered in order
    of first appearance), and the ranking task on it: what every model in a comparison is fitted and scored on."""

    users: IdMap
    items: IdMap
    train: Interactions
    test: Interactions
    task: RankingTask

    @classmethod
    def of(cls, train: pd.DataFrame, test: pd.DataFrame) -> HeldOut:
        users, items = IdMap(pd.unique(train["user_id"])), IdMap(pd.unique(train["movie_id"]))
        tr, te = to_interactions(train, users, items), to_interactions(test, users, items)
        task = RankingTask.build(tr.users, tr.items, te.users, te.items, te.ratings, tr.n_users, tr.n_items)
        return cls(users, items, tr, te, task)


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray, scale: tuple[float, float]) -> dict[str, float]:
    pred = np.clip(y_pred, *scale)
    return {"rmse": rmse(y_true, pred), "mae": mae(y_true, pred)}


def model_metrics(
    model: RecommenderModel,
    test: Interactions,
    task: RankingTask,
    scale: tuple[float, float],
    mu: float,
    k: int = 10,
    progress: bool = False,
) -> dict[str, float]:
    """What ``model`` can be measured on (``rates``: RMSE and MAE, ``ranks``: the @k ranking metrics), with the
    same protocol for every model: a held-out pair whose user or movie is unknown to training gets ``mu``."""
    row: dict[str, float] = {}
    if model.rates:
        known = (test.users >= 0) & (test.items >= 0)
        pred = np.full(len(test.users), mu)
        if known.any():
            pred[known] = model.predict(test.users[known], test.items[known], times=test.timestamps[known])
        row.update(rating_metrics(test.ratings, pred, scale))
    if model.ranks:
        ranking = evaluate_ranking(model.score, task, k, progress=progress)
        ranking.pop("users", None)
        row.update(ranking)
    return row


def compare(
    models: list[RecommenderModel],
    train: Interactions,
    test: Interactions,
    task: RankingTask,
    scale: tuple[float, float],
    k: int = 10,
) -> dict[str, dict]:
    """Fit each model on ``train`` and measure it on ``test``: one row per model, with its fit time."""
    mu = float(np.mean(train.ratings))
    out: dict[str, dict] = {}
    for model in models:
        t0 = time.perf_counter()
        model.fit(train)
        out[model.name] = {"fit_s": time.perf_counter() - t0, **model_metrics(model, test, task, scale, mu, k)}
    return out


def evaluate(
    rec: Recommender,
    test: pd.DataFrame,
    scale: tuple[float, float],
    k: int = 10,
    baselines: bool = True,
    progress: bool = False,
) -> dict:
    """Metrics of a trained recommender and, optionally, the baselines on the held-out ratings ``test``."""
    train = rec.train
    te = to_interactions(test, rec.users, rec.items)
    known = (te.users >= 0) & (te.items >= 0)
    task = RankingTask.build(train.users, train.items, te.users, te.items, te.ratings, train.n_users, train.n_items)
    mu = float(np.mean(train.ratings))
    report = {
        "test": {
            "ratings": len(te.users),
            "unknown_pairs": int((~known).sum()),
            "ranked_users": len(task.users),
            "k": k,
        },
        "model": model_metrics(ResidualModel.of(rec), te, task, scale, mu, k, progress),
    }
    if baselines:
        report["baselines"] = baseline_metrics(train, te, task, scale, k)
    return report


def baseline_metrics(train, te, task: RankingTask, scale: tuple[float, float], k: int = 10) -> dict[str, dict]:
    """Global mean, user+item bias and popularity on the same split and protocol."""
    return compare([GlobalMean(), BiasBaseline(), Popularity()], train, te, task, scale, k)


def format_table(rows: dict[str, dict], columns=METRIC_COLUMNS) -> str:
    """A fixed-width table; missing metrics print as '-'."""
    cols = [c for c in columns if any(c in r for r in rows.values())]
    width = max(len(n) for n in rows) + 2
    lines = [f"{'method':<{width}}" + "".join(f"{c:>13}" for c in cols)]
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, str):
                cells.append(f"{v:>13}")
            elif v is None or (isinstance(v, float) and np.isnan(v)):
                cells.append(f"{'-':>13}")
            else:
                cells.append(f"{v:>13.4f}" if c != "fit_s" else f"{v:>13.1f}")
        lines.append(f"{name:<{width}}" + "".join(cells))
    return "\n".join(lines)


def report_rows(report: dict, model_name: str) -> dict[str, dict]:
    rows = {model_name: report["model"]}
    rows.update(report.get("baselines", {}))
    return rows


def kfold(a: argparse.Namespace) -> dict:
    """Train and evaluate on each fold of a seeded k-fold split; mean and std per metric."""
    from training.cli import config_from_args, load_data
    from training.fit import fit

    per_fold: list[dict[str, float]] = []
    for fold in range(a.kfold):
        a.split, a.folds, a.fold = "kfold", a.kfold, fold
        ds, _, train_df, test_df = load_data(a)
        rec, summary = fit(train_df, config_from_args(a), progress=None)
        rep = evaluate(rec, test_df, ds.rating_scale, baselines=False)
        row = {**rep["model"], "fit_s": summary["fit_seconds"]}
        per_fold.append(row)
        print(f"fold {fold + 1}/{a.kfold}: " + "  ".join(f"{k}={v:.4f}" for k, v in row.items()), flush=True)
    keys = per_fold[0].keys()
    return {
        "folds": per_fold,
        "mean": {k: float(np.mean([f[k] for f in per_fold])) for k in keys},
        "std": {k: float(np.std([f[k] for f in per_fold])) for k in keys},
    }


def main(argv: list[str] | None = None) -> int:
    from training.cli import add_data_args, add_train_args
    from training.recommender import load

    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", "--model", dest="model_dir", type=Path, help="a model directory from training.train")
    p.add_argument("--test", type=Path, help="held-out ratings file (e.g. MODEL/test.csv or ml-100k/u1.test)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--kfold", type=int, default=0, help="train and evaluate K folds; prints mean +- std")
    add_data_args(p)
    add_train_args(p)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if a.kfold:
            if a.kfold < 2:
                raise DataError("--kfold needs K >= 2")
            res = kfold(a)
            if a.json:
                print(json.dumps(res, indent=2))
            else:
                print("\n".join(f"{k:>13}: {res['mean'][k]:.4f} +- {res['std'][k]:.4f}" for k in res["mean"]))
            return 0
        if not a.model_dir or not a.test:
            p.error("--model and --test are required (or use --kfold)")
        rec, meta = load(a.model_dir)
        scale = tuple(meta["dataset"]["rating_scale"])
        report = evaluate(rec, read_ratings_file(a.test, scale), scale, k=a.k)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        t = report["test"]
        print(
            f"{t['ratings']:,} held-out ratings ({t['unknown_pairs']:,} with an unknown user or movie), "
            f"{t['ranked_users']:,} users ranked over all unrated training movies"
        )
        print(format_table(report_rows(report, meta["train_config"]["model"]["kind"])))
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
