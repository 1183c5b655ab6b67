"""Training cost against data size: epoch time and peak memory of the served configuration on synthetic data.

``python -m bench.train_scale [--sizes 0.1M 1M 10M 25M] [--skip-largest] [--out artifacts]``

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

SIZES = {  # name: (users, movies, ratings), MovieLens-shaped
    "0.1M": (610, 9_700, 100_000),
    "1M": (6_040, 3_700, 1_000_000),
    "10M": (70_000, 10_700, 10_000_000),
    "25M": (162_000, 62_000, 25_000_000),
}


def shaped(size: str):
    """``training.synthetic.catalogue`` data of ``size``'s users and movies with about its number of ratings
    (the generator drops repeated (user, movie) draws, 11-18% at these shapes, so it is asked for more)."""
    from training.synthetic import catalogue

    n_users, n_items, target = SIZES[size]
    per_user = max(1, round(target / n_users))
    data = catalogue(n_users, n_items, per_user, seed=0)
    again = max(1, round(per_user * target / max(1, len(data))))
    return data if again == per_user else catalogue(n_users, n_items, again, seed=0)


BARS_S = {"10M": 300.0, "25M": 900.0}  # the bars for one epoch (seconds) on this 2-core machine
MEMORY_BAR_GB = 16.0


def one(size: str, softmax: str, rank_dim: int, epochs: int, pipeline: Path | None = None) -> dict:
    """Train ``epochs`` epochs at ``size`` in this process; returns the timings and the peak memory.

    With ``pipeline`` (a work directory) the data goes through every step a user's run takes, each timed: written
    as a MovieLens-style CSV, loaded with ``training.data``, split 90/10, trained, evaluated on the held-out part,
    saved, exported with ``model_export.export``, and loaded by the serving engine (in a process of its own).
    """
    import numpy as np

    from training.config import ModelConfig, TrainConfig
    from training.fit import fit

    n_items = SIZES[size][1]
    t0 = time.perf_counter()
    data = shaped(size)
    gen_s = time.perf_counter() - t0
    cfg = TrainConfig(
        epochs=epochs, patience=epochs, softmax=softmax, model=ModelConfig(item_features=False, rank_dim=rank_dim)
    )
    steps: dict[str, float] = {}
    test = ds = None
    if pipeline is not None:
        steps = {"write the CSV (setup)": _write_csv(data, n_items, pipeline)}
        del data  # the generated frame: from here on the process holds what a user's run holds
        data, test, ds, more = _load_and_split(pipeline)
        steps.update(more)
    t0 = time.perf_counter()
    rec, summary = fit(data, cfg, progress=None)
    steps["fit (1 epoch, validation, blend choice)"] = time.perf_counter() - t0
    PEAKS["fit (1 epoch, validation, blend choice)"] = peak_gb()
    hist = summary["history"]
    batches_s = _batches_seconds(data, cfg.model_copy(update={"batch_size": summary["batch_size"]["used"]}))
    if pipeline is not None:
        steps.update(_evaluate_save_export(rec, test, ds, pipeline))
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
        "batch_size": summary["batch_size"],
        "pipeline_s": steps,
        "pipeline_peak_gb": dict(PEAKS),
        "peak_rss_gb": peak_gb(),
    }


PEAKS: dict[str, float] = {}  # --pipeline: this process's peak memory (GB) after each step


def peak_gb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _write_csv(data, n_items: int, work: Path) -> float:
    """Write ``data`` as a MovieLens-style ratings.csv and a movies.csv with genres; returns the seconds."""
    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data.rename(columns={"user_id": "userId", "movie_id": "movieId"}).to_csv(work / "ratings.csv", index=False)
    genres = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Sci-Fi"]
    pd.DataFrame(
        {
            "movieId": range(n_items),
            "title": [f"Movie {i} ({1950 + i % 70})" for i in range(n_items)],
            "genres": [genres[i % 6] + "|" + genres[(i // 6) % 6] for i in range(n_items)],
        }
    ).to_csv(work / "movies.csv", index=False)
    return time.perf_counter() - t0


def _load_and_split(work: Path):
    """Load and split ratings.csv + movies.csv as ``training.train`` does."""
    from training.data import load_ratings_file
    from training.splits import SplitSpec, train_mask

    steps = {}
    t0 = time.perf_counter()
    ds = load_ratings_file(work / "ratings.csv", work / "movies.csv")
    steps[f"load the {len(ds.ratings) / 1e6:.1f}M-row CSV and movies"] = time.perf_counter() - t0
    PEAKS[f"load the {len(ds.ratings) / 1e6:.1f}M-row CSV and movies"] = peak_gb()
    t0 = time.perf_counter()
    mask = train_mask(ds.ratings, SplitSpec(kind="random", seed=42, test_fraction=0.1))
    train, test = ds.ratings[mask].reset_index(drop=True), ds.ratings[~mask].reset_index(drop=True)
    steps["random 90/10 split"] = time.perf_counter() - t0
    PEAKS["random 90/10 split"] = peak_gb()
    return train, test, ds, steps


def _evaluate_save_export(rec, test, ds, work: Path) -> dict[str, float]:
    from model_export.export import export
    from training.evaluate import evaluate
    from training.recommender import save

    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    report = evaluate(rec, test, ds.rating_scale, baselines=False)
    steps[f"evaluate: RMSE and ranking of {report['test']['ranked_users']:,} users"] = time.perf_counter() - t0
    PEAKS[f"evaluate: RMSE and ranking of {report['test']['ranked_users']:,} users"] = peak_gb()
    t0 = time.perf_counter()
    meta = {"train_config": rec.config.to_dict(), "dataset": {"rating_scale": ds.rating_scale}}
    save(rec, work / "model", meta, test, ds.movies)
    steps["save the model directory"] = time.perf_counter() - t0
    PEAKS["save the model directory"] = peak_gb()
    t0 = time.perf_counter()
    export(work / "model", work / "artifact", log=lambda *_: None)
    steps["export (ONNX, histories, neighbours, parity on 16 users)"] = time.perf_counter() - t0
    PEAKS["export (ONNX, histories, neighbours, parity on 16 users)"] = peak_gb()
    probe = subprocess.run(
        [sys.executable, "-c", ENGINE_PROBE, str(work / "artifact")], capture_output=True, text=True, check=True
    )
    engine = json.loads(probe.stdout.strip().splitlines()[-1])
    steps["engine: load the artifact (own process)"] = engine["load_s"]
    steps["engine: one recommendation, p50 of 200 users (ms)"] = engine["p50_s"] * 1000
    steps["engine: peak memory of its process (GB)"] = engine["rss_gb"]
    return steps


ENGINE_PROBE = """
import json, sys, time
import numpy as np
from lambdas.engine.engine import Engine
from bench.train_scale import peak_gb
t0 = time.perf_counter()
engine = Engine(sys.argv[1])
load_s = time.perf_counter() - t0
users = engine.user_ids
times = []
for uid in users[:: max(1, len(users) // 200)][:200].tolist():
    t = time.perf_counter()
    engine.recommend(uid, k=10)
    times.append(time.perf_counter() - t)
print(json.dumps({"load_s": load_s, "p50_s": float(np.median(times)), "rss_gb": peak_gb()}))
"""


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


def run_child(size: str, softmax: str, rank_dim: int, epochs: int, timeout_s: float, work: Path | None = None) -> dict:
    args = [size, softmax, str(rank_dim), str(epochs), str(work) if work else "-"]
    cmd = [sys.executable, "-m", "bench.train_scale", "--child", *args]
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
            f"{r['epoch_s']:.1f} | {r['batches_s']:.2f} | {r['first_epoch_s']:.1f} | {r['val_s']:.1f} | "
            f"{r['peak_rss_gb']:.2f} |"
        )
    return "\n".join(lines)


def report(rows: list[dict]) -> str:
    """The epoch table, and for a ``--pipeline`` run the table of every step."""
    md = table(rows)
    for r in rows:
        if len(r.get("pipeline_s") or {}) > 1:
            md += (
                f"\n\nEvery step at {r['size']} ({r['ratings']:,} training ratings), per-user softmax, one process:\n\n"
            )
            md += "| step | seconds (unless marked) |\n|---|---|\n"
            md += "\n".join(f"| {k} | {v:.2f} |" for k, v in r["pipeline_s"].items())
    return md


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
    p = argparse.ArgumentParser(prog="python -m bench.train_scale", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    p.add_argument("--skip-largest", action="store_true", help="leave out 25M (about 20 minutes here)")
    p.add_argument("--per-rating-max", type=float, default=1.5e6, help="run the per-rating softmax up to this size")
    p.add_argument("--epochs", type=int, default=2, help="epochs below 10M ratings (1 from there)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed to one run")
    p.add_argument("--out", type=Path, default=Path("artifacts"))
    p.add_argument("--plot", type=Path, default=Path("docs/bench_train.png"))
    p.add_argument("--pipeline", action="store_true", help="the largest size through every step, CSV to engine")
    p.add_argument("--work", type=Path, default=Path("artifacts/bench-train-work"), help="--pipeline's files")
    p.add_argument("--replot", action="store_true", help="rewrite the table and plot from --out's bench_train.json")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        size, softmax, rank_dim, epochs, work = a.child
        print(json.dumps(one(size, softmax, int(rank_dim), int(epochs), Path(work) if work != "-" else None)))
        return 0
    if a.replot:
        rows = json.loads((a.out / "bench_train.json").read_text())
        (a.out / "bench_train.md").write_text(report(rows) + "\n")
        plot([r for r in rows if "error" not in r], a.plot)
        print(report(rows))
        return 0
    sizes = [s for s in a.sizes if not (a.skip_largest and s == "25M")]
    rows: list[dict] = []
    for size in sizes:
        n = SIZES[size][2]
        epochs = a.epochs if n < 5e6 else 1
        work = a.work if a.pipeline and size == sizes[-1] else None
        rows.append(run_child(size, "per-user", 128, epochs, a.timeout, work))
        if n <= a.per_rating_max:
            rows.append(run_child(size, "per-rating", 128, epochs, a.timeout))
        if size == "1M":
            rows.append(run_child(size, "per-user", 0, epochs, a.timeout))
    a.out.mkdir(parents=True, exist_ok=True)
    md = report(rows)
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
