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
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ notices (oneDNN, tf.data) are noise here

from training.cli import add_data_args, add_train_args, config_from_args, load_data, parse_with_config
from training.data import DataError
from training.fit import fit
from training.recommender import Recommender, save, versions


def run(a: argparse.Namespace, out: Path | None, progress=print) -> tuple[Recommender, dict]:
    """Load data, train, evaluate on the held-out part and (with ``out``) save; returns the metadata."""
    from training.evaluate import evaluate

    cfg = config_from_args(a)
    clock = {"start": time.perf_counter()}
    ds, spec, train_df, test_df = load_data(a)
    clock["data"] = time.perf_counter()
    rec, summary = fit(train_df, cfg, progress, movies=ds.movies)
    clock["fit"] = time.perf_counter()
    metrics = {}
    if test_df is not None and len(test_df):
        metrics = evaluate(rec, test_df, ds.rating_scale, baselines=False, progress=progress is not None)
    clock["evaluate"] = time.perf_counter()
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {
            "name": ds.name,
            "files": ds.files,
            "rating_scale": ds.rating_scale,
            "duplicates_dropped": ds.duplicates_dropped,
            "n_ratings": len(ds.ratings),
            "events_through": ds.events_through,
        },
        "split": spec.to_dict(),
        "seed": rec.config.seed,
        "train_config": rec.config.to_dict(),  # as trained: the means, features and blend weight fit resolved
        "training": summary,
        "metrics": metrics.get("model", {}),
        "n_users": len(rec.users),
        "n_items": len(rec.items),
        "versions": versions(),
        "timings_s": {
            "load_and_split": round(clock["data"] - clock["start"], 2),
            "fit": round(clock["fit"] - clock["data"], 2),
            "evaluate": round(clock["evaluate"] - clock["fit"], 2),
        },
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
        "--config", type=Path, help="JSON file of hyperparameters (e.g. bench.tune's best_config.json); flags win"
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
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
