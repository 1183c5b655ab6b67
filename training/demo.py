"""``make demo``: train the served model on ml-latest-small, evaluate it next to the baselines,
and print the top-10 movies for two users.

``python -m training.demo [--out artifacts/model] [--users 19 414] [--reuse]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from training.data import DataError


def top_movies(rec, movies: pd.DataFrame, user_id, k: int = 10) -> pd.DataFrame:
    """The user's top-k unrated movies by the served ranking score, with predicted ratings."""
    u = int(rec.users.lookup([user_id])[0])
    if u < 0:
        raise DataError(f"user {user_id} is not in the training data")
    scores = rec.rank_scores(np.array([u]))[0]
    t = rec.train
    scores[t.items[t.users == u]] = -np.inf
    best = np.argsort(-scores)[:k]
    meta = movies.set_index("movie_id")
    ids = rec.items.ids[best]
    return pd.DataFrame(
        {
            "movie": [f"{meta.loc[m, 'title']}" if m in meta.index else str(m) for m in ids],
            "genres": [", ".join(str(meta.loc[m, "genres"]).split("|")[:3]) if m in meta.index else "" for m in ids],
            "predicted rating": np.clip(rec.predict(np.full(k, u), best), 0.5, 5.0).round(2),
        },
        index=range(1, len(best) + 1),
    )


def main(argv: list[str] | None = None) -> int:
    from training.cli import add_data_args, add_train_args
    from training.evaluate import evaluate, format_table, report_rows
    from training.recommender import load
    from training.train import run

    p = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("artifacts/model"))
    p.add_argument("--users", nargs="+", default=["19", "414"])
    p.add_argument("--reuse", action="store_true", help="reuse the model in --out if it exists")
    add_data_args(p)
    add_train_args(p)
    a = p.parse_args(argv)
    try:
        if a.reuse and (a.out / "metadata.json").exists():
            print(f"reusing {a.out}")
            rec, meta = load(a.out)
        else:
            print(f"== training the served model ({a.kind}) on {a.dataset or 'ml-latest-small'} -> {a.out}")
            run(a, a.out, progress=lambda s: print("  " + s, flush=True))
            rec, meta = load(a.out)
        scale = tuple(meta["dataset"]["rating_scale"])
        test = pd.read_csv(a.out / "test.csv")
        report = evaluate(rec, test, scale)
        t = report["test"]
        print(
            f"\n== held-out evaluation: {t['ratings']:,} ratings, {t['ranked_users']:,} users ranked over every "
            f"movie they did not rate in training (relevant = held-out rating >= 4)"
        )
        print(format_table(report_rows(report, f"{meta['train_config']['model']['kind']} (ours)")))
        movies = pd.read_csv(a.out / "movies.csv", keep_default_na=False)
        if rec.users.numeric:
            movies["movie_id"] = pd.to_numeric(movies["movie_id"])
        for user in a.users:
            print(f"\n== top-10 for user {user}")
            print(top_movies(rec, movies, user).to_string())
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
