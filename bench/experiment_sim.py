"""Are the experiment's decisions right? A simulation on real later ratings, with a better and a worse candidate.

``python -m bench.experiment_sim [--dataset ml-100k] [--seeds 20] [--share 0.5]`` (``make bench-experiment``)

The data set's ratings in time order: the first 60% are the old data, the next 20% the newer data, the last 20%
the experiment's window. Three models are trained here (``training.train``, exported, served by the engine):

* **served**: trained on the old data; it serves each user with their newer ratings folded in as stored events
  (what the worker does with the events table);
* **better**: trained on the old and the newer data (the retraining loop's candidate);
* **worse**: trained on a random 20% of the old data's ratings, with the newer ratings folded in like the served one.

Every user who rates in the window gets, at the window's start, the top 10 of the model their variant serves (the
same stable salted assignment as the worker, :func:`contract.serving.assign`; one experiment id per seed). What they
did next is their real ratings in the window: a list is a hit when the user rated one of its movies. The figures
and the decision are the loop's own (:mod:`lambdas.loop.experiment`: one list per user, one-sided non-inferiority on
hit rate, margin and confidence as configured). Each candidate is tried against the served model with ``--seeds``
different experiment ids (user splits). Bar: the better candidate promoted and the worse rolled back, with at most 1
wrong decision in 20 seeds. Also reported: how many users (in order of their first rating in the window) each
decision needed before it stayed the same. The lists are computed by the engine in this process rather than through
the local stack's API (20 seeds x 2 candidates x the window's users would take hours at the local stack's ~20
requests/s); the assignment, the list items and the decision code are the served ones.

Writes ``artifacts/experiment_sim.md`` / ``.json`` and the plot ``docs/experiment_sim.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from contract.serving import CANDIDATE, Experiment, Serving, assign
from infra.config import StackConfig
from lambdas.loop import experiment as judge

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts"
PLOT = ROOT / "docs" / "experiment_sim.png"
K = 10
DAY_S = 86_400
CONFIG = StackConfig()
WRONG = {"better": judge.ROLL_BACK, "worse": judge.PROMOTE}
BAR_WRONG = 1  # of 20 seeds


def _train(ratings: Any, ds: Any, folder: Path, log, reuse: bool = True) -> Path:
    from bench.replay import _train_first, _write_base
    from contract import is_artifact

    if reuse and is_artifact(folder / "artifact"):
        log(f"  {folder.name}: the artifact trained before ({folder / 'artifact'}; --retrain trains again)")
        return folder / "artifact"
    t0 = time.perf_counter()
    ratings_csv, movies_csv = _write_base(ds, ratings, folder / "data")
    artifact = _train_first(ratings_csv, movies_csv, folder)
    log(f"  {folder.name}: {len(ratings):,} ratings, trained and exported in {time.perf_counter() - t0:.0f} s")
    return artifact


def _events(rows: Any) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows.itertuples(index=False):
        event = {"movie_id": int(r.movie_id), "rating": float(r.rating), "received_at": int(r.timestamp) * 1000}
        out.setdefault(str(r.user_id), []).append(event)
    return out


def lists_of(engine: Any, users: list[str], events: dict[str, list[dict]] | None) -> dict[str, tuple[str, ...]]:
    """Each user's top-K from ``engine`` (with their newer ratings folded in when ``events`` is given)."""
    out = {}
    for u in users:
        res = engine.recommend(u, k=K, events=(events or {}).get(u), explain=False)
        out[u] = tuple(str(m["movie_id"]) for m in res["items"])
    return out


def simulate(
    served: dict[str, tuple[str, ...]],
    candidate: dict[str, tuple[str, ...]],
    window: list[judge.Rating],
    order: list[str],
    start_ms: int,
    seed: int,
    share: float,
    margin: float,
    confidence: float,
) -> dict[str, Any]:
    """One experiment: the decision on every user, and the fewest users (in arrival order) it needed."""
    experiment = Experiment("s" * 16, "c" * 16, share, f"sim-{seed}", 0, window_days=0, min_users=10**9)
    serving = Serving(experiment.served, experiment)
    shown = []
    for u in order:
        variant = assign(serving, u)
        movies = candidate[u] if variant == CANDIDATE else served[u]
        shown.append(judge.Shown(u, f"r-{u}", variant, experiment.experiment, movies, start_ms))
    over = 10**12  # far after the window: every list followed through its horizon
    horizon_days = (over - start_ms) / 86_400_000

    def decision(n: int) -> judge.Decision:
        counts = judge.figures(shown[:n], window, experiment.experiment, horizon_days, over)
        return judge.decide(experiment, counts, over / 1000, confidence, margin, horizon_days=0)

    final = decision(len(shown))
    # A promotion: the fewest users (arrival order, steps of 10) from which every decision was to promote. A roll
    # back is also what too few users give (nothing shows the candidate is not worse), so it has no such count.
    needed = None
    if final.action == judge.PROMOTE:
        needed = len(shown)
        for n in range(len(shown) - 10, 0, -10):  # from the end: where the decision last differed
            if decision(n).action != final.action:
                break
            needed = n
    return {
        "seed": seed,
        "action": final.action,
        "difference": final.difference,
        "lower_bound": final.lower_bound,
        "users": {v: f["users"] for v, f in final.figures.items()},
        "hit_rate": {v: f["hit_rate"] for v, f in final.figures.items()},
        "users_needed": needed,
    }


def run(
    dataset: str, seeds: int, share: float, out: Path, data_dir: Path | None, log=print, reuse: bool = True
) -> dict[str, Any]:
    from lambdas.engine import Engine
    from training.data import load_dataset

    ds = load_dataset(dataset, data_dir)
    r = ds.ratings.sort_values(["timestamp", "user_id", "movie_id"], kind="stable").reset_index(drop=True)
    a, b = int(len(r) * 0.6), int(len(r) * 0.8)
    old, newer, window = r.iloc[:a], r.iloc[a:b], r.iloc[b:]
    log(f"{dataset}: {len(old):,} old ratings, {len(newer):,} newer, {len(window):,} in the window")
    folder = out / "experiment_sim" / dataset
    rng = np.random.default_rng(0)
    sample = old.iloc[np.sort(rng.choice(len(old), size=len(old) // 5, replace=False))]
    engines = {
        "served": Engine(_train(old, ds, folder / "served", log, reuse)),
        "better": Engine(_train(r.iloc[:b], ds, folder / "better", log, reuse)),
        "worse": Engine(_train(sample, ds, folder / "worse", log, reuse)),
    }
    first = window.groupby("user_id")["timestamp"].min().sort_values(kind="stable")
    order = [str(u) for u in first.index]
    start_ms = int(window["timestamp"].min()) * 1000
    events = _events(newer)
    t0 = time.perf_counter()
    lists = {
        "served": lists_of(engines["served"], order, events),
        "better": lists_of(engines["better"], order, None),  # trained on the newer ratings already
        "worse": lists_of(engines["worse"], order, events),
    }
    log(f"  lists for {len(order):,} users x 3 models in {time.perf_counter() - t0:.0f} s")
    rated = [
        judge.Rating(str(x.user_id), str(x.movie_id), float(x.rating), int(x.timestamp) * 1000)
        for x in window.itertuples(index=False)
    ]
    results: dict[str, Any] = {
        "dataset": dataset,
        "users": len(order),
        "share": share,
        "margin": CONFIG.experiment_margin,
        "confidence": CONFIG.experiment_confidence,
        "candidates": {},
    }
    for name in ("better", "worse"):
        runs = [
            simulate(
                lists["served"],
                lists[name],
                rated,
                order,
                start_ms,
                seed,
                share,
                CONFIG.experiment_margin,
                CONFIG.experiment_confidence,
            )
            for seed in range(seeds)
        ]
        wrong = sum(1 for x in runs if x["action"] == WRONG[name])
        results["candidates"][name] = {"runs": runs, "wrong": wrong}
        log(f"  {name}: {wrong} wrong of {seeds}")
    return results


def render(results: dict[str, Any], cmd: str) -> str:
    lines = [
        f"Experiment decisions on {results['dataset']}'s later ratings: `{cmd}` ({time.strftime('%Y-%m-%d')}, this "
        f"machine). {results['users']:,} users rate in the window; the candidate's share {results['share']:.0%}; "
        f"one-sided non-inferiority on hit rate, margin {results['margin']:g}, confidence {results['confidence']:g}.",
        "",
        "| candidate | seeds | promoted | rolled back | wrong | hit rate served / candidate (mean) "
        "| difference, lower bound (mean) | users a promotion needed (median, max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in results["candidates"].items():
        runs = c["runs"]
        promoted = sum(1 for x in runs if x["action"] == judge.PROMOTE)
        hs = np.mean([x["hit_rate"]["served"] for x in runs])
        hc = np.mean([x["hit_rate"]["candidate"] for x in runs])
        diff = np.mean([x["difference"] for x in runs])
        low = np.mean([x["lower_bound"] for x in runs])
        needed = [x["users_needed"] for x in runs if x["users_needed"] is not None]
        shown = f"{np.median(needed):.0f}, {max(needed)}" if needed else "- (none promoted)"
        lines.append(
            f"| {name} | {len(runs)} | {promoted} | {len(runs) - promoted} | {c['wrong']} | {hs:.3f} / {hc:.3f} "
            f"| {diff:+.3f}, {low:+.3f} | {shown} |"
        )
    ok = all(c["wrong"] <= BAR_WRONG * len(c["runs"]) / 20 for c in results["candidates"].values())
    p = float(np.mean([x["hit_rate"]["served"] for c in results["candidates"].values() for x in c["runs"]]))
    z = NormalDist().inv_cdf(results["confidence"])
    per_arm = 2 * p * (1 - p) * (z / results["margin"]) ** 2
    lines += [
        "",
        f"Users the test needs: with hit rates near {p:.2f}, showing an equal candidate no worse than "
        f"{results['margin']:g} needs about {per_arm:,.0f} users per variant (2 p (1-p) (z / margin)^2), "
        f"{per_arm / results['share']:,.0f} in the window at this share; this window has {results['users']:,}.",
        "",
        f"Bar (better promoted, worse rolled back, at most 1 wrong in 20): {'met' if ok else 'NOT met'}.",
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, (name, c) in enumerate(results["candidates"].items()):
        runs = c["runs"]
        x = [r["seed"] + (0.15 if i else -0.15) for r in runs]
        ax.errorbar(
            x,
            [r["difference"] for r in runs],
            yerr=[[r["difference"] - r["lower_bound"] for r in runs], [0] * len(runs)],
            fmt="o",
            capsize=2,
            label=f"{name} candidate",
        )
    ax.axhline(-results["margin"], color="grey", ls="--", lw=1, label=f"-margin ({results['margin']:g})")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("seed (experiment id: the user split)")
    ax.set_ylabel("hit rate, candidate - served")
    ax.set_title(f"{results['dataset']}: each decision's difference and its one-sided lower bound")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--share", type=float, default=0.5)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--plot", type=Path, default=PLOT)
    p.add_argument("--retrain", action="store_true", help="train the three models again even if trained before")
    a = p.parse_args(argv)
    results = run(a.dataset, a.seeds, a.share, a.out, a.data_dir, reuse=not a.retrain)
    cmd = ("python -m bench.experiment_sim " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    text = render(results, cmd)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "experiment_sim.md").write_text(text)
    (a.out / "experiment_sim.json").write_text(json.dumps(results, indent=1))
    plot(results, a.plot)
    print(text)
    return 0 if "met." in text.splitlines()[-1] and "NOT" not in text.splitlines()[-1] else 1


if __name__ == "__main__":
    sys.exit(main())
