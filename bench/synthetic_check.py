"""``make bench-synthetic``: does synthetic MovieLens-shaped data behave like the real sets, and how far is each
method from the best it could do there?

``python -m bench.synthetic_check [--pairs ml-latest-small ml-100k] [--methods served ease als popularity bias]
[--quick | --epochs N] [--seed S] [--ml100k-split u1|random]``

Each pair is a real set and :func:`training.synthetic.movielens_like` data of its shape, split the same way:

* ``ml-latest-small``: the seeded 90/10 rule of ``make bench-quality`` (row in training when
  ``default_rng(42).random(n)[row] < 0.9``) on both;
* ``ml-100k``: the real u1.base/u1.test; the synthetic set split 80/20 the way u1 is (``--ml100k-split u1``, the
  default: 20,000 ratings, a seeded random 20% of all, held out from the first 462 of the 943 users, about 40% of
  theirs, as ml-100k's ``mksplit`` made u1) or by the seeded rule at 80/20 (``random``).

On each side the served model (``bench.quality``'s "residual (served)"; movie features only where the real set has
them), EASE (lambda 400), implicit ALS, popularity and the user+item bias baseline are trained and scored with
:mod:`training.metrics` (NDCG@10, recall@10; RMSE where the method rates); on the synthetic side the true model's
figures (:func:`training.ceiling.ceiling`) are the ceiling. Writes ``artifacts/synthetic_check.{md,json}`` (the
tables, and the summary statistics of each real and synthetic set) and the bar chart ``docs/synthetic_check.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ notices (oneDNN, tf.data) are noise here

import numpy as np
import pandas as pd

from bench.quality import ours
from bench.quality import split as real_split
from training.baselines import BiasBaseline, Popularity
from training.ceiling import CEILING, ceiling
from training.evaluate import HeldOut, compare
from training.interface import RecommenderModel
from training.splits import random_holdout
from training.synthetic import SHAPES, movielens_like, ratings_summary

SERVED = "residual (served)"
EASE_LAMBDA = 400.0  # bench.quality's, the best on u1
# --methods name -> the row name in the tables
METHODS = {
    "served": SERVED,
    "ease": f"EASE (lambda {EASE_LAMBDA:g})",
    "als": "implicit ALS",
    "popularity": "popularity",
    "bias": "user+item bias",
}
# pair -> (the real set as bench.quality names it, the synthetic shape, the synthetic set's test share)
PAIRS = {"ml-latest-small": ("ml-latest-small", "ml-latest-small", 0.1), "ml-100k": ("u1", "ml-100k", 0.2)}
U1_TEST_USERS = 462 / 943  # u1.test holds ratings of users 1-462 only
QUICK_EPOCHS = 2


def u1_like(ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 42) -> np.ndarray:
    """Train mask holding out a seeded ``test_fraction`` of all rows from the ratings of the lowest-numbered 462/943
    of the users, as ml-100k's u1 split does (which leaves about 60% of those users' ratings in training)."""
    users = np.sort(pd.unique(ratings["user_id"]))
    first = ratings["user_id"].isin(users[: round(len(users) * U1_TEST_USERS)]).to_numpy()
    held = np.random.default_rng(seed).choice(np.flatnonzero(first), round(test_fraction * len(ratings)), replace=False)
    mask = np.ones(len(ratings), dtype=bool)
    mask[held] = False
    return mask


def synthetic_split(pair: str, seed: int, ml100k_split: str) -> tuple[pd.DataFrame, pd.DataFrame, object, str]:
    """The synthetic side of ``pair``: train and test frames, the ground truth, and how it was split."""
    _, shape, test_fraction = PAIRS[pair]
    ratings, truth = movielens_like(shape, seed)
    if pair == "ml-100k" and ml100k_split == "u1":
        mask, how = u1_like(ratings, test_fraction), "80/20 as u1 (20% of all rows, from the first 462/943 users)"
    else:
        mask = random_holdout(len(ratings), test_fraction, 42)
        how = f"seeded {round(100 * (1 - test_fraction))}/{round(100 * test_fraction)}"
    return ratings[mask].reset_index(drop=True), ratings[~mask].reset_index(drop=True), truth, how


def peer_models(methods: list[str]) -> list[RecommenderModel]:
    """The chosen peers and baselines, in table order (implicit is imported only when ALS is asked for)."""
    from bench.peers import EASE, ImplicitPeer

    made: dict[str, RecommenderModel] = {}
    if "ease" in methods:
        made["ease"] = EASE(EASE_LAMBDA)
    if "als" in methods:
        made["als"] = ImplicitPeer("als", random_state=0)
    if "popularity" in methods:
        made["popularity"] = Popularity()
    if "bias" in methods:
        made["bias"] = BiasBaseline()
    return [made[m] for m in methods if m in made]


def run_side(
    label: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    scale: tuple[float, float],
    methods: list[str],
    epochs: int | None,
    movies: pd.DataFrame | None = None,
    truth=None,
) -> dict[str, dict]:
    """Every chosen method (and, given ``truth``, the ceiling) on one split; one row per method."""
    rows: dict[str, dict] = {}
    if "served" in methods:
        print(f"[{label}] training the served model ({epochs or 'up to 40'} epochs) ...", flush=True)
        rows[SERVED], _ = ours(SERVED, train, test, scale, movies, epochs=epochs, progress=print)
    peers = peer_models(methods)
    if peers:
        print(f"[{label}] {', '.join(m.name for m in peers)} ...", flush=True)
        split = HeldOut.of(train, test)
        rows.update(compare(peers, split.train, split.test, split.task, scale))
    if truth is not None:
        print(f"[{label}] the true model ...", flush=True)
        rows.update(ceiling(truth, train, test, scale))
    return rows


def check_pair(pair: str, methods: list[str], epochs: int | None, seed: int, ml100k_split: str, data_dir) -> dict:
    real_name, shape, _ = PAIRS[pair]
    ds, real_train, real_test = real_split(real_name, data_dir)
    t0 = time.perf_counter()
    syn_train, syn_test, truth, how = synthetic_split(pair, seed, ml100k_split)
    generated_s = time.perf_counter() - t0
    real_how = "u1.base / u1.test" if real_name == "u1" else "seeded 90/10"
    out = {
        "real": {
            "data": f"{ds.name}, {real_how}",
            "train": len(real_train),
            "test": len(real_test),
            "summary": ratings_summary(pd.concat([real_train, real_test], ignore_index=True)),
            "rows": run_side(f"{pair} real", real_train, real_test, ds.rating_scale, methods, epochs, ds.movies),
        },
        "synthetic": {
            "data": f"movielens_like({shape!r}, seed={seed}), {how}; generated in {generated_s:.1f} s",
            "train": len(syn_train),
            "test": len(syn_test),
            "summary": ratings_summary(pd.concat([syn_train, syn_test], ignore_index=True)),
            "rows": run_side(
                f"{pair} synthetic", syn_train, syn_test, SHAPES[shape].scale, methods, epochs, None, truth
            ),
        },
    }
    return out


def _cell(row: dict | None, metric: str) -> str:
    v = None if row is None else row.get(metric)
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def pair_table(result: dict) -> list[str]:
    """Markdown: one row per method, real and synthetic side by side for NDCG@10, recall@10 and RMSE."""
    real, syn = result["real"]["rows"], result["synthetic"]["rows"]
    names = list(dict.fromkeys([*real, *syn]))
    lines = [
        "| method | NDCG@10 real | synthetic | recall@10 real | synthetic | RMSE real | synthetic |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        r, s = real.get(name), syn.get(name)
        cells = [_cell(side, m) for m in ("ndcg@10", "recall@10", "rmse") for side in (r, s)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def summary_table(results: dict) -> list[str]:
    """Markdown: the summary statistics of every real and synthetic set, one column each."""
    cols = [(pair, side) for pair in results for side in ("real", "synthetic")]
    keys = list(next(iter(results.values()))["real"]["summary"])
    lines = ["| statistic | " + " | ".join(f"{p} {s}" for p, s in cols) + " |", "|---|" + "---:|" * len(cols)]
    for key in keys:
        vals = [results[p][s]["summary"][key] for p, s in cols]
        cells = [f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3f}" for v in vals]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def plot(results: dict, path: Path, title: str) -> None:
    """NDCG@10 per method, real next to synthetic, one panel per pair; the synthetic ceiling as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False)
    for ax, (pair, res) in zip(axes[0], results.items(), strict=True):
        real, syn = res["real"]["rows"], res["synthetic"]["rows"]
        names = [n for n in dict.fromkeys([*real, *syn]) if not n.startswith("true model")]
        x = np.arange(len(names))
        top = 0.0
        for offset, rows, label in ((-0.2, real, "real"), (0.2, syn, "synthetic")):
            values = [rows.get(n, {}).get("ndcg@10", np.nan) for n in names]
            ax.bar(x + offset, values, width=0.4, label=label)
            top = max([top, *(v for v in values if v == v)])
        if CEILING in syn:
            best = syn[CEILING]["ndcg@10"]
            ax.axhline(best, color="k", ls="--", lw=1, label=f"synthetic ceiling (true model) {best:.3f}")
            top = max(top, best)
        ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
        ax.set_xticks(x, [n.replace(" (", "\n(") for n in names], fontsize=8)
        ax.set_ylabel("NDCG@10")
        ax.set_title(pair)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.synthetic_check", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--quick", action="store_true", help=f"train the served model {QUICK_EPOCHS} epochs only")
    p.add_argument("--epochs", type=int, default=None, help="most epochs of the served model (default: its own, 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--ml100k-split", choices=("u1", "random"), default="u1", help="how synthetic ml-100k is split")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", type=Path, default=Path("artifacts"))
    p.add_argument("--plot", type=Path, default=Path("docs/synthetic_check.png"))
    a = p.parse_args(argv)
    epochs = a.epochs if a.epochs is not None else (QUICK_EPOCHS if a.quick else None)
    args = argv if argv is not None else sys.argv[1:]
    command = shlex.join(["python", "-m", "bench.synthetic_check", *args])

    results = {pair: check_pair(pair, a.methods, epochs, a.seed, a.ml100k_split, a.data_dir) for pair in a.pairs}
    md = [f"Command: `{command}`"]
    for pair, res in results.items():
        md += [
            f"\n**{pair}**: real {res['real']['data']} ({res['real']['train']:,} training / {res['real']['test']:,} "
            f"test ratings); synthetic {res['synthetic']['data']} ({res['synthetic']['train']:,} / "
            f"{res['synthetic']['test']:,})\n",
            *pair_table(res),
        ]
    md += ["\nSummary statistics (all ratings of each set)\n", *summary_table(results)]
    print("\n" + "\n".join(md) + "\n", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "synthetic_check.json").write_text(
        json.dumps({"command": command, "pairs": results}, indent=2, default=float) + "\n"
    )
    (a.out / "synthetic_check.md").write_text("\n".join(md) + "\n")
    plot(results, a.plot, "NDCG@10, real vs synthetic" + (f" ({epochs} epochs of the served model)" if epochs else ""))
    print(f"wrote {a.out / 'synthetic_check.md'}, {a.out / 'synthetic_check.json'} and {a.plot}")
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
