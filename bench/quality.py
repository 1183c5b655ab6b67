"""``make bench-quality``: our variants next to baselines and peer libraries, same split, same run.

``python -m bench.quality [--datasets ...] [--variants ...] [--no-peers] [--ease-lambdas L ...]``

Data sets: ``u1`` is ml-100k's canonical u1.base/u1.test; ``ml-latest-small`` uses the seeded
90/10 rule (row in training when ``default_rng(42).random(n)[row] < 0.9``). Every method is scored
with :mod:`training.metrics` on the same candidates. Writes ``artifacts/bench_quality.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ notices (oneDNN, tf.data) are noise here

from training.config import ModelConfig, TrainConfig
from training.data import load_100k_split, load_dataset
from training.evaluate import HeldOut, compare, evaluate, format_table
from training.fit import fit
from training.recommender import Recommender
from training.splits import random_holdout

# name -> (ModelConfig overrides, TrainConfig overrides)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "residual (served)": ({}, {}),
    "residual, MSE only": ({"rank_dim": 0}, {}),
    "hybrid (learned alpha)": ({"kind": "hybrid"}, {}),
    "mf": ({"kind": "mf"}, {}),
    "ncf": ({"kind": "ncf"}, {}),
    # ablations of the served model's choices
    "residual, no implicit inputs": ({"implicit_inputs": False}, {}),
    "residual, no liked weighting": ({}, {"liked_weight": 1.0}),
    "residual, no user balance": ({"rank_l2": 5e-5}, {"user_balance": 0.0}),
    "residual, logit only (gamma 0)": ({}, {"rank_blend": 0.0}),
}
DEFAULT_VARIANTS = ["residual (served)", "residual, MSE only", "hybrid (learned alpha)", "mf", "ncf"]


def split(name: str, data_dir: str | None):
    if name == "u1":
        ds, test = load_100k_split("u1", data_dir)
        return ds, ds.ratings, test
    ds = load_dataset(name, data_dir)
    mask = random_holdout(len(ds.ratings), 0.1, 42)
    return ds, ds.ratings[mask].reset_index(drop=True), ds.ratings[~mask].reset_index(drop=True)


def ours(
    variant: str, train, test, scale, movies=None, seed: int | None = None, epochs: int | None = None, progress=None
) -> tuple[dict, Recommender]:
    """Train ``variant`` on ``train`` and score it on ``test``; ``epochs`` caps training (a quick run), ``progress``
    (e.g. ``print``) shows training's progress bar and per-epoch lines."""
    model_kw, train_kw = VARIANTS[variant]
    cfg = TrainConfig(model=ModelConfig(**model_kw), **train_kw)
    if seed is not None:
        cfg.seed = seed  # initialisation, batch order and validation part; the train/test split stays
    if epochs is not None:
        cfg.epochs = epochs
    rec, summary = fit(train, cfg, progress=progress, movies=movies)
    row = evaluate(rec, test, scale, baselines=False)["model"]
    return {
        **row,
        "fit_s": summary["fit_seconds"],
        "epochs": summary["epochs_run"],
        "rank_blend": rec.config.rank_blend,
    }, rec


def peers(train, test, scale, ease_lambdas: tuple[float, ...] = (400.0,)) -> dict[str, dict]:
    """The peer libraries and the baselines, each through the common interface, on the same split and protocol."""
    from bench.peers import EASE, ImplicitPeer, SurprisePeer
    from training.baselines import BiasBaseline, GlobalMean, Popularity

    split = HeldOut.of(train, test)
    models = [
        SurprisePeer("svd", random_state=0, rating_scale=scale),
        SurprisePeer("svdpp", random_state=0, rating_scale=scale),
        ImplicitPeer("als", random_state=0),
        ImplicitPeer("bpr", random_state=0),
        *(EASE(lam) for lam in ease_lambdas),
        GlobalMean(),
        BiasBaseline(),
        Popularity(),
    ]
    return compare(models, split.train, split.test, split.task, scale)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["u1", "ml-latest-small"])
    p.add_argument(
        "--variants",
        nargs="*",
        default=DEFAULT_VARIANTS,
        choices=list(VARIANTS),
        metavar="VARIANT",
        help=", ".join(VARIANTS),
    )
    p.add_argument("--no-peers", action="store_true", help="skip the peer libraries and baselines")
    p.add_argument(
        "--ease-lambdas",
        nargs="+",
        type=float,
        default=[400.0],
        metavar="L",
        help="EASE's L2 weight; several give one EASE row each (400 is best on u1, 100 on ml-latest-small)",
    )
    p.add_argument("--seed", type=int, default=None, help="training seed of our variants (default: theirs, 42)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", type=Path, default=Path("artifacts"))
    a = p.parse_args(argv)
    results: dict[str, dict] = {}
    args = argv if argv is not None else sys.argv[1:]
    md = [f"Command: `{shlex.join(['python', '-m', 'bench.quality', *args])}`"]
    for name in a.datasets:
        ds, train, test = split(name, a.data_dir)
        rows: dict[str, dict] = {}
        for variant in a.variants:
            print(f"[{name}] training {variant} ...", flush=True)
            rows[variant], _ = ours(variant, train, test, ds.rating_scale, ds.movies, a.seed)
        if not a.no_peers:
            print(f"[{name}] peers and baselines ...", flush=True)
            rows.update(peers(train, test, ds.rating_scale, tuple(a.ease_lambdas)))
        results[name] = rows
        table = format_table(rows)
        print(f"\n{name}: {len(train):,} training / {len(test):,} test ratings\n{table}\n", flush=True)
        md += [f"\n**{name}** ({len(train):,} training / {len(test):,} test ratings)\n", "```", table, "```"]
    write_results(a.out, "bench_quality", results, md)
    return 0


def write_results(out: Path, name: str, results: dict, md: list[str]) -> None:
    """``out/name.json`` (every figure) and ``out/name.md`` (the tables as printed, with the command)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    print(f"wrote {out / f'{name}.md'}")


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
