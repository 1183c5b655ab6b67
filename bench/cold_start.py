"""How good is cold start? Fold held-out users in from a few of their ratings and score their held-out movies.

``python -m bench.cold_start [--artifact artifacts/artifact] [--model artifacts/model] [--n 5 20]``

Protocol: every user of the model's test split with at least one held-out movie rated >= 4 and at least ``n``
training ratings is treated as a new user who tells us ``n`` of their training ratings (a seeded sample). The
engine folds them in (:meth:`lambdas.engine.Engine.fold_in`) and ranks the catalogue; candidates and relevance
follow the training protocol (every movie the user did not rate in training; relevant = held-out rating >= 4),
so the figures compare with ``training.evaluate``'s, and with the popularity ranking on the same users.
The item factors were trained with these users' other ratings, so the figures are a little optimistic in
absolute terms; the comparison between fold-in settings is what they are for.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from lambdas.engine import Engine
from training.metrics import ranking_from_lists

ROOT = Path(__file__).resolve().parents[1]


def test_users(engine: Engine, test_csv: Path, n: int) -> list[tuple[int, set[int]]]:
    """(user index, relevant held-out item indices) of the users the protocol keeps."""
    raw = np.genfromtxt(test_csv, delimiter=",", names=True, dtype=None, encoding="utf-8")
    relevant: dict[int, set[int]] = {}
    for user_id, movie_id, rating in zip(raw["user_id"], raw["movie_id"], raw["rating"], strict=True):
        u, i = engine.user_index(user_id), engine.item_index(movie_id)
        if u >= 0 and i >= 0 and rating >= 4.0:
            relevant.setdefault(u, set()).add(i)
    return [(u, rel) for u, rel in sorted(relevant.items()) if len(engine._seen(u)) >= n]


def evaluate(
    engine: Engine,
    users: list[tuple[int, set[int]]],
    n: int,
    seed: int = 0,
    k: int = 10,
    popular: bool = False,
    **fold_in: float,
) -> dict[str, float]:
    """NDCG/Recall@k of cold start from ``n`` sampled training ratings (or of the popularity ranking)."""
    rng = np.random.default_rng(seed)
    lists, rels = [], []
    for u, rel in users:
        lo, hi = engine.h_indptr[u], engine.h_indptr[u + 1]
        exclude = np.zeros((1, engine.n_items), dtype=bool)
        exclude[0, engine.h_items[lo:hi]] = True
        if popular:
            order = engine.popularity[~exclude[0, engine.popularity]][:k]
            lists.append(order)
        else:
            pick = rng.choice(hi - lo, size=n, replace=False)
            items, ratings = engine.h_items[lo:hi][pick], engine.h_ratings[lo:hi][pick].astype(np.float64)
            pr, p, b = engine.fold_in(items, ratings, **fold_in)
            deep = engine.deep_inputs(pr[None, :], p[None, :])
            _, top, _, _ = engine._run(pr[None, :], p[None, :], np.array([b]), deep, exclude, k)
            lists.append(top[0])
        rels.append(rel)
    out = ranking_from_lists(lists, rels, k)
    return {"users": len(users), **{m: out[m] for m in (f"ndcg@{k}", f"recall@{k}")}}


def _prior(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n")[0])
    p.add_argument("--artifact", type=Path, default=ROOT / "artifacts" / "artifact")
    p.add_argument("--model", type=Path, default=ROOT / "artifacts" / "model", help="for its test.csv")
    p.add_argument("--n", type=int, nargs="+", default=[5, 20], help="ratings the new user gives")
    p.add_argument("--l2", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0], help="rating-head ridge")
    p.add_argument(
        "--rank-l2",
        type=_prior,
        nargs="+",
        default=["auto", 3.0, 10.0, 30.0],
        help="interaction-head prior: numbers, or auto (the engine's rule from the number of ratings)",
    )
    p.add_argument("--liked-weight", type=float, nargs="+", default=[1.0, 3.0])
    a = p.parse_args(argv)
    engine = Engine(a.artifact)
    print(f"model {engine.model_version}; defaults: {engine.fold_in_defaults}")
    print(f"{'n':>3} {'l2':>5} {'rank_l2':>7} {'liked_w':>7} {'users':>5} {'ndcg@10':>8} {'recall@10':>9}")
    for n in a.n:
        users = test_users(engine, a.model / "test.csv", n)
        pop = evaluate(engine, users, n, popular=True)
        print(f"{n:>3} {'popularity':>21} {pop['users']:>5} {pop['ndcg@10']:>8.4f} {pop['recall@10']:>9.4f}")
        for l2, rank_l2, lw in itertools.product(a.l2, a.rank_l2, a.liked_weight):
            prior = None if rank_l2 == "auto" else rank_l2
            r = evaluate(engine, users, n, l2=l2, rank_l2=prior, liked_weight=lw)
            row = f"{n:>3} {l2:>5g} {rank_l2!s:>7} {lw:>7g} {r['users']:>5}"
            print(f"{row} {r['ndcg@10']:>8.4f} {r['recall@10']:>9.4f}")
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
