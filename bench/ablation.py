"""``make ablation``: what each model improvement is worth, added one at a time, on ml-100k u1 and ml-latest-small.

``python -m bench.ablation [--datasets u1 ml-latest-small] [--tuned u1=FILE ml-latest-small=FILE] [--steps N ...]``

Steps are cumulative, each adding one thing to the previous configuration:

1. ``base residual``: the model served before this step list existed: no movie features, L2 1e-5 on the
   interaction head;
2. ``+ ranking-head L2 5e-5`` (``--rank-l2``);
3. ``+ genre/year features`` (``--item-features``);
4. ``+ user-balanced ranking loss``: each user's softmax weights scaled by (their ratings) ** -0.35, with the
   ranking-head L2 at 7e-5 (``--user-balance``, ``--rank-l2``); steps 1-4 are the served defaults;
5. ``+ time feature`` (``--time-feature``: the rating's time, hence with the year the movie's age);
6. ``+ capacity``: 64-dimensional embeddings, deep branch 800-200;
7. ``+ regularisation``: L2 1e-5 on the deep kernels, L1 1e-7 on the embeddings, dropout 0.4;
8. ``+ cosine schedule`` (instead of exponential decay);
9. ``tuned``: a ``bench.tune`` best_config.json per data set, when ``--tuned`` names one; this step replaces
   the configuration instead of adding to it (defaults + the file).

``--steps`` runs only the steps with those numbers (to add a row, e.g. ``--steps 9`` for a new tuned
configuration); the configuration of a step is the same whether or not the steps before it ran.

Same splits as ``make bench-quality`` (u1.base/u1.test; ml-latest-small's seeded 90/10 rule). Besides RMSE,
MAE, NDCG@10, Recall@10 and fit time, the *rare-movie* columns look at held-out ratings of movies with fewer
than 5 training ratings, where genre and year have the most to add: their RMSE, and the mean percentile at
which each such movie rated >= 4 sits among the user's candidates ranked by predicted rating (0 = top).
Writes ``artifacts/ablation.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench.quality import split, write_results
from training.config import ModelConfig, TrainConfig
from training.evaluate import evaluate, format_table
from training.fit import fit
from training.interactions import to_interactions

RARE = 5  # training ratings below which a movie counts as rare

STEPS: list[tuple[str, dict, dict]] = [
    ("base residual", {"item_features": False, "rank_l2": 1e-5}, {"user_balance": 0.0}),
    ("+ ranking-head L2 5e-5", {"rank_l2": 5e-5}, {}),
    ("+ genre/year features", {"item_features": True}, {}),
    ("+ user-balanced ranking loss", {"rank_l2": 7e-5}, {"user_balance": 0.35}),
    ("+ time feature", {"time_feature": True}, {}),
    ("+ capacity", {"dim": 64, "hidden": (800, 200)}, {}),
    ("+ regularisation", {"dense_l2": 1e-5, "l1": 1e-7, "dropout": 0.4}, {}),
    ("+ cosine schedule", {}, {"lr_schedule": "cosine"}),
]
MODEL_KEYS = set(ModelConfig.model_fields) - {"extra", "global_mean", "time_now", "reg_scale"}
COLUMNS = ("rmse", "mae", "ndcg@10", "recall@10", "rare_rmse", "rare_pctile", "fit_s")


def rare_movie_metrics(rec, test, scale: tuple[float, float]) -> dict:
    """RMSE on held-out ratings of rare movies, and the mean percentile rank of the liked ones (0 = top)."""
    counts = np.bincount(rec.train.items, minlength=len(rec.items))
    te = to_interactions(test, rec.users, rec.items)
    known = (te.users >= 0) & (te.items >= 0)
    rare = known & (counts[np.maximum(te.items, 0)] < RARE)
    if not rare.any():
        return {}
    pred = np.clip(rec.predict(te.users[rare], te.items[rare], te.timestamps[rare]), *scale)
    out = {"rare_rmse": float(np.sqrt(np.mean((pred - te.ratings[rare]) ** 2))), "rare_ratings": int(rare.sum())}
    liked = rare & (te.ratings >= 4.0)
    pct = []
    for u in np.unique(te.users[liked]):
        scores = rec.rating_scores(np.array([u]))[0]
        scores[rec.train.items[rec.train.users == u]] = -np.inf  # candidates: not rated in training
        n_candidates = np.isfinite(scores).sum()
        for i in te.items[liked & (te.users == u)]:
            pct.append(float((scores > scores[i]).sum()) / max(1, n_candidates - 1))
    out["rare_pctile"] = float(np.mean(pct)) if pct else float("nan")
    return out


def run_step(train, test, ds, model_kw: dict, train_kw: dict) -> dict:
    cfg = TrainConfig(model=ModelConfig(**model_kw), **train_kw)
    rec, summary = fit(train, cfg, progress=None, movies=ds.movies)
    row = evaluate(rec, test, ds.rating_scale, baselines=False)["model"]
    rare = rare_movie_metrics(rec, test, ds.rating_scale)
    return {**row, **rare, "fit_s": summary["fit_seconds"], "epochs": summary["epochs_run"]}


def tuned_step(path: Path) -> tuple[dict, dict]:
    """A best_config.json as (ModelConfig, TrainConfig) keyword arguments."""
    raw = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    model_kw = {k: tuple(v) if k == "hidden" else v for k, v in raw.items() if k in MODEL_KEYS}
    train_kw = {k: v for k, v in raw.items() if k not in MODEL_KEYS and k in TrainConfig.model_fields}
    return model_kw, train_kw


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ablation", description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["u1", "ml-latest-small"])
    p.add_argument("--tuned", nargs="*", default=[], metavar="DATASET=FILE", help="best_config.json per data set")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", type=Path, default=Path("artifacts"))
    p.add_argument("--steps", nargs="+", type=int, metavar="N", help="run only these steps (numbered from 1)")
    a = p.parse_args(argv)
    n_steps = len(STEPS) + 1
    if a.steps and not all(1 <= n <= n_steps for n in a.steps):
        p.error(f"--steps: numbers from 1 to {n_steps} ({n_steps} = tuned)")
    tuned = dict(t.split("=", 1) for t in a.tuned)
    args = argv if argv is not None else sys.argv[1:]
    md = [f"Command: `{shlex.join(['python', '-m', 'bench.ablation', *args])}`"]
    results: dict[str, dict] = {}
    for name in a.datasets:
        ds, train, test = split(name, a.data_dir)
        rows: dict[str, dict] = {}
        model_kw: dict = {}
        train_kw: dict = {}
        steps = list(STEPS)
        if name in tuned:
            steps.append(("tuned (" + Path(tuned[name]).name + ")", *tuned_step(Path(tuned[name]))))
        for number, (step, m_kw, t_kw) in enumerate(steps, start=1):
            if step.startswith("tuned"):
                model_kw, train_kw = dict(m_kw), dict(t_kw)
            else:
                model_kw, train_kw = {**model_kw, **m_kw}, {**train_kw, **t_kw}
            if a.steps and number not in a.steps:
                continue
            t0 = time.perf_counter()
            print(f"[{name}] {step} ...", flush=True)
            rows[step] = run_step(train, test, ds, model_kw, train_kw)
            print(f"    {time.perf_counter() - t0:.0f} s: " + format_table({step: rows[step]}, COLUMNS).splitlines()[1])
        results[name] = rows
        table = format_table(rows, COLUMNS)
        rare = next((r["rare_ratings"] for r in rows.values() if "rare_ratings" in r), 0)
        print(f"\n{name}: {len(train):,} training / {len(test):,} test ratings ({rare} of rare movies)\n{table}\n")
        md += [f"\n**{name}** ({len(train):,} training / {len(test):,} test ratings; {rare} of rare movies)\n"]
        md += ["```", table, "```"]
    write_results(a.out, "ablation", results, md)
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
