"""Training cost against data size: epoch time and peak memory of the served configuration on synthetic data.

``python -m training.bench_train [--sizes 0.1M 1M 10M 25M] [--skip-largest] [--out artifacts]``

Each run is its own process (so its peak memory is its own), training the served configuration without movie
features (synthetic data has none) on ``training.synthetic.catalogue`` data shaped like a MovieLens release:

* 0.1M: ml-latest-small (610 users, 9,700 movies); 1M: ml-1m (6,040 users, 3,700 movies);
* 10M: ml-10m (70,000 users, 10,700 movies); 25M: ml-25m (162,000 users, 62,000 movies).

The per-user softmax runs at every size; the per-rating one (the original formulation) where it ends in
reasonable time (``--per-rating-max``, default 1M ratings); and at the 1M size a third run without the
interaction head (``rank_dim 0``) shows what the rating head and the deep branch cost on their own. Writes
``bench_train.md`` and ``bench_train.json`` to ``--out`` and the log-log plot ``docs/bench_train.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SIZES = {  # name: (users, movies, ratings per user), MovieLens-shaped
    "0.1M": (610, 9_700, 165),
    "1M": (6_040, 3_700, 166),
    "10M": (70_000, 10_700, 143),
    "25M": (162_000, 62_000, 154),
}
BARS_S = {"10M": 300.0, "25M": 900.0}  # the bars for one epoch (seconds) on this 2-core machine
MEMORY_BAR_GB = 16.0


def one(size: str, softmax: str, rank_dim: int, epochs: int) -> dict:
    """Train ``epochs`` epochs at ``size`` in this process; returns the timings and the peak memory."""
    import numpy as np

    from training.config import ModelConfig, TrainConfig
    from training.fit import fit
    from training.synthetic import catalogue

    n_users, n_items, per_user = SIZES[size]
    t0 = time.perf_counter()
    data = catalogue(n_users, n_items, per_user, seed=0)
    gen_s = time.perf_counter() - t0
    cfg = TrainConfig(
        epochs=epochs, patience=epochs, softmax=softmax, model=ModelConfig(item_features=False, rank_dim=rank_dim)
    )
    _, summary = fit(data, cfg, progress=None)
    hist = summary["history"]
    batches_s = _batches_seconds(data, cfg)
    return {
        "size": size,
        "softmax": softmax if rank_dim else "none (rating head only)",
        "ratings": len(data),
        "users": int(data["user_id"].nunique()),
        "movies": int(data["movie_id"].nunique()),
        "epochs": len(hist),
        "epoch_s": float(np.min([h["train_s"] for h in hist])),
        "first_epoch_s": float(hist[0]["train_s"]),
        "val_s": float(np.mean([h["val_s"] for h in hist])),
        "generate_s": gen_s,
        "batches_s": batches_s,
        "softmax_plan": summary.get("softmax"),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def _batches_seconds(data, cfg) -> float:
    """Seconds to build one epoch's batches in Python (the input side of an epoch, without training)."""
    import pandas as pd

    from training.batches import make_batches
    from training.interactions import IdMap, to_interactions

    inter = to_interactions(data, IdMap(pd.unique(data["user_id"])), IdMap(pd.unique(data["movie_id"])))
    batches = make_batches(inter, cfg, cfg.model.rank_dim > 0)
    t0 = time.perf_counter()
    for k in range(len(batches)):
        batches[k]
    return time.perf_counter() - t0


def run_child(size: str, softmax: str, rank_dim: int, epochs: int, timeout_s: float) -> dict:
    cmd = [sys.executable, "-m", "training.bench_train", "--child", size, softmax, str(rank_dim), str(epochs)]
    print(f"== {size}: softmax {softmax if rank_dim else 'off'}, {epochs} epoch(s)", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"size": size, "softmax": softmax, "error": f"stopped after {timeout_s:.0f} s"}
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"size": size, "softmax": softmax, "error": " / ".join(tail) or f"exit {proc.returncode}"}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["wall_s"] = time.perf_counter() - t0
    print(
        f"   {row['ratings']:,} ratings: epoch {row['epoch_s']:.1f} s, validation {row['val_s']:.1f} s, "
        f"peak {row['peak_rss_gb']:.2f} GB",
        flush=True,
    )
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| size | ratings | users | movies | softmax | epoch (s) | of which batches (s) | first epoch (s) "
        "| validation (s) | peak (GB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | | | | {r['softmax']} | {r['error']} | | | | |")
            continue
        lines.append(
            f"| {r['size']} | {r['ratings']:,} | {r['users']:,} | {r['movies']:,} | {r['softmax']} | "
            f"{r['epoch_s']:.1f} | {r['batches_s']:.1f} | {r['first_epoch_s']:.1f} | {r['val_s']:.1f} | "
            f"{r['peak_rss_gb']:.2f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, style in (("per-user", "o-"), ("per-rating", "s--")):
        pts = sorted((r["ratings"], r["epoch_s"], r["peak_rss_gb"]) for r in rows if r.get("softmax") == kind)
        if pts:
            x, t, m = zip(*pts, strict=True)
            ax_t.plot(x, t, style, label=f"{kind} softmax")
            ax_m.plot(x, m, style, label=f"{kind} softmax")
    for size, bar_s in BARS_S.items():
        match = [r for r in rows if r.get("size") == size and "ratings" in r]
        if match:
            ax_t.plot([match[0]["ratings"]], [bar_s], "r_", markersize=18, label=f"bar at {size}: {bar_s:.0f} s")
    ax_m.axhline(MEMORY_BAR_GB, color="r", lw=0.8, ls=":", label="16 GB")
    for ax, label in ((ax_t, "one epoch (s)"), (ax_m, "peak memory (GB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training ratings (synthetic, MovieLens-shaped)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("make bench-train: the served configuration on 2 CPU cores")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.bench_train", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    p.add_argument("--skip-largest", action="store_true", help="leave out 25M (about 20 minutes here)")
    p.add_argument("--per-rating-max", type=float, default=1.5e6, help="run the per-rating softmax up to this size")
    p.add_argument("--epochs", type=int, default=2, help="epochs below 10M ratings (1 from there)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed to one run")
    p.add_argument("--out", type=Path, default=Path("artifacts"))
    p.add_argument("--plot", type=Path, default=Path("docs/bench_train.png"))
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        size, softmax, rank_dim, epochs = a.child
        print(json.dumps(one(size, softmax, int(rank_dim), int(epochs))))
        return 0
    sizes = [s for s in a.sizes if not (a.skip_largest and s == "25M")]
    rows: list[dict] = []
    for size in sizes:
        n = SIZES[size][0] * SIZES[size][2]
        epochs = a.epochs if n < 5e6 else 1
        rows.append(run_child(size, "per-user", 128, epochs, a.timeout))
        if n <= a.per_rating_max:
            rows.append(run_child(size, "per-rating", 128, epochs, a.timeout))
        if size == "1M":
            rows.append(run_child(size, "per-user", 0, epochs, a.timeout))
    a.out.mkdir(parents=True, exist_ok=True)
    md = table(rows)
    (a.out / "bench_train.md").write_text(md + "\n")
    (a.out / "bench_train.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot([r for r in rows if "error" not in r], a.plot)
    print(md)
    print(f"wrote {a.out / 'bench_train.md'} and {a.plot}")
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
