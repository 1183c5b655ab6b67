"""Is the retraining loop worth it? A replay of real ratings, in time order, through the local stack.

``python -m bench.replay [--datasets ml-100k ml-latest-small] [--windows 4]`` (``make bench-replay``)

Per data set: the first model is trained on the ratings before the last 20% by timestamp (the base data); the rest
is cut into ``--windows`` windows of equal size in time order and replayed through ``POST /events`` on the local
stack (each user's consecutive ratings in one call, at most 100). Before each window, every user who rates in it is
asked for a top-10, scored against the ratings they give in the window (relevant: 4 or more; NDCG@10 and
recall@10, and separately for users first seen in the window), three ways, on the same users:

* **(a) frozen**: the first model, no events;
* **(b) fold-in**: the first model with every event the user stored since its cutoff folded in (what the worker
  does, reading the events table);
* **(c) loop**: the model the loop serves (``infra.retrain.run`` after each window: gather, hold out, train and
  export in a subprocess, the gate, publish), with the events since its own cutoff folded in.

Each list is what the worker computes (``Engine.recommend`` with the user's events from the table). Also reported:
the share of each window's liked movies first rated after the first model's cutoff ("new movies"), how often each
way recommends such movies and hits them, and how long each retraining took here. Writes ``replay.md`` and
``replay.json`` to ``--out`` and the plot ``docs/replay.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
K = 10
LIKED = 4.0
WAYS = ("frozen", "fold-in", "loop")


def _write_base(ds: Any, ratings: Any, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    r = ratings.rename(columns={"user_id": "userId", "movie_id": "movieId"})[
        ["userId", "movieId", "rating", "timestamp"]
    ]
    r.to_csv(folder / "ratings.csv", index=False)
    movies = ds.movies.assign(genres=ds.movies["genres"].map(lambda g: "|".join(g) or "(no genres listed)"))
    movies.rename(columns={"movie_id": "movieId"})[["movieId", "title", "genres"]].to_csv(
        folder / "movies.csv", index=False
    )
    return folder / "ratings.csv", folder / "movies.csv"


def _train_first(ratings: Path, movies: Path, out: Path) -> Path:
    from model_export.export import export
    from training import train as train_cli

    if train_cli.main(["--ratings", str(ratings), "--movies", str(movies), "--out", str(out / "model"), "--quiet"]):
        raise RuntimeError("training the first model failed")
    export(out / "model", out / "artifact", log=lambda *_: None)
    return out / "artifact"


def _calls(window: Any) -> list[tuple[str, list[dict]]]:
    """The window's ratings as POST /events calls: each user's consecutive ratings together, at most 100."""
    calls: list[tuple[str, list[dict]]] = []
    for row in window.itertuples(index=False):
        event = {"movie_id": int(row.movie_id), "rating": float(row.rating), "timestamp": int(row.timestamp)}
        if calls and calls[-1][0] == str(row.user_id) and len(calls[-1][1]) < 100:
            calls[-1][1].append(event)
        else:
            calls.append((str(row.user_id), [event]))
    return calls


def _served_engine(aws: Any, cache: Path) -> Any:
    """The engine of the version the local stack serves (downloaded once per version)."""
    from contract.serving import parse
    from lambdas.engine import Engine

    s = aws.settings
    version = parse(aws.ssm.get_parameter(Name=s.model_version_parameter)["Parameter"]["Value"]).served
    folder = cache / version
    if not folder.exists():
        prefix = f"{s.model_prefix}{version}/"
        staging = cache / f".{version}"
        staging.mkdir(parents=True, exist_ok=True)
        listed = aws.s3.list_objects_v2(Bucket=s.bucket_name, Prefix=prefix)["Contents"]
        for obj in listed:
            aws.s3.download_file(s.bucket_name, obj["Key"], str(staging / obj["Key"][len(prefix) :]))
        staging.rename(folder)
    return Engine(folder)


def score(engines: dict[str, Any], services: Any, window: Any, first_seen: set[str], new_movies: set[str]) -> dict:
    """The three ways' lists for the window's users, scored against what they rate in it."""
    from contract import canonical_id
    from lambdas.service import events as stored
    from training.metrics import ranking_from_lists

    liked = window[window["rating"] >= LIKED]
    relevant = {str(u): {canonical_id(m) for m in g["movie_id"]} for u, g in liked.groupby("user_id")}
    users = sorted(relevant)
    index: dict[str, int] = {}
    lists: dict[str, list[np.ndarray]] = {w: [] for w in engines}
    new_recs = {w: 0 for w in engines}
    new_hits = {w: 0 for w in engines}
    for user in users:
        for way, engine in engines.items():
            if way == "frozen":
                evs = None
            else:
                known = engine.user_index(user) >= 0
                evs = stored.for_user(services, user, engine.events_through if known else None)
            got = [
                canonical_id(it["movie_id"]) for it in engine.recommend(user, k=K, events=evs, explain=False)["items"]
            ]
            lists[way].append(np.array([index.setdefault(m, len(index)) for m in got], dtype=np.int64))
            new_recs[way] += sum(m in new_movies for m in got)
            new_hits[way] += sum(m in new_movies and m in relevant[user] for m in got)
    rel = [{index.setdefault(m, len(index)) for m in relevant[u]} for u in users]
    out: dict[str, Any] = {"users": len(users), "first_seen_users": sum(u in first_seen for u in users)}
    liked_total = sum(len(r) for r in relevant.values())
    out["liked_new_share"] = sum(m in new_movies for r in relevant.values() for m in r) / max(liked_total, 1)
    fresh = [i for i, u in enumerate(users) if u in first_seen]
    for way in engines:
        m = ranking_from_lists(lists[way], rel, K)
        out[way] = {
            f"ndcg@{K}": m[f"ndcg@{K}"],
            f"recall@{K}": m[f"recall@{K}"],
            "new_movie_share_of_recs": new_recs[way] / max(len(users) * K, 1),
            "new_movie_hits": new_hits[way],
        }
        if fresh:
            mf = ranking_from_lists([lists[way][i] for i in fresh], [rel[i] for i in fresh], K)
            out[way][f"first_seen_ndcg@{K}"] = mf[f"ndcg@{K}"]
    return out


def replay(
    dataset: str, windows: int, out: Path, data_dir: Path | None, min_users: int | None = None, log=print
) -> dict[str, Any]:
    from infra.client import Client
    from infra.local.connection import local_aws, stack_connection
    from infra.local.stack import LocalStack
    from infra.retrain import run as retrain
    from lambdas.engine import Engine
    from lambdas.loop import base_data
    from lambdas.loop.layout import Layout
    from lambdas.loop.settings import LoopSettings
    from training.data import load_dataset

    ds = load_dataset(dataset, data_dir)
    r = ds.ratings.sort_values(["timestamp", "user_id", "movie_id"], kind="stable").reset_index(drop=True)
    cut = int(len(r) * 0.8)
    base, rest = r.iloc[:cut], r.iloc[cut:]
    cutoff = int(base["timestamp"].max())
    folder = out / dataset
    ratings_csv, movies_csv = _write_base(ds, base, folder / "base")
    log(
        f"{dataset}: {len(base):,} base ratings (to {time.strftime('%Y-%m-%d', time.gmtime(cutoff))}), "
        f"{len(rest):,} replayed in {windows} windows"
    )
    t0 = time.perf_counter()
    first = _train_first(ratings_csv, movies_csv, folder / "first")
    first_s = time.perf_counter() - t0
    log(f"  first model trained and exported in {first_s:.0f} s")
    seen_movies = {str(m) for m in base["movie_id"]}
    new_movies = {str(m) for m in rest["movie_id"]} - seen_movies
    seen_users = {str(u) for u in base["user_id"]}
    bounds = np.linspace(0, len(rest), windows + 1).astype(int)
    results: dict[str, Any] = {
        "dataset": dataset,
        "base_ratings": len(base),
        "replayed": len(rest),
        "first_model_s": round(first_s, 1),
        "windows": [],
    }
    frozen = Engine(first)
    with (
        LocalStack(first, workers=1, api_processes=1, api_key=None, limits=None) as stack,
        tempfile.TemporaryDirectory() as tmp,
    ):
        aws = local_aws(stack_connection(stack))
        loop = LoopSettings(data_bucket=aws.settings.bucket_name)
        if min_users is not None:
            loop = LoopSettings(data_bucket=aws.settings.bucket_name, min_users=min_users)
        results["gate"] = {
            "min_users": loop.min_users,
            "ndcg_margin": loop.ndcg_margin,
            "rmse_margin": loop.rmse_margin,
        }
        base_data.upload(aws.s3, loop.data_bucket, Layout(), ratings_csv, movies_csv)
        client = Client(stack.url, timeout_s=30)
        for w in range(windows):
            window = rest.iloc[bounds[w] : bounds[w + 1]]
            engines = {"frozen": frozen, "fold-in": frozen, "loop": _served_engine(aws, Path(tmp))}
            figures = score(
                engines, stack.services, window, {str(u) for u in window["user_id"]} - seen_users, new_movies
            )
            figures["window"] = w + 1
            figures["ratings"] = len(window)
            figures["loop_version"] = engines["loop"].model_version
            t1 = time.perf_counter()
            calls = _calls(window)
            for user, events in calls:
                client.post_events(user, events)
            figures["replay_s"] = round(time.perf_counter() - t1, 1)
            figures["calls"] = len(calls)
            seen_users |= {str(u) for u in window["user_id"]}
            log(
                f"  window {w + 1}: {figures['users']} users, NDCG@10 frozen {figures['frozen'][f'ndcg@{K}']:.4f}, "
                f"fold-in {figures['fold-in'][f'ndcg@{K}']:.4f}, loop {figures['loop'][f'ndcg@{K}']:.4f}; "
                f"{len(window):,} ratings posted in {len(calls):,} calls ({figures['replay_s']:.0f} s)"
            )
            if w + 1 < windows:  # the loop runs after each window but the last (nothing is scored after it)
                t2 = time.perf_counter()
                outcome = retrain(aws, loop, settle_ms=0, log=lambda *_: None)
                figures["retrain"] = {
                    "action": outcome["action"],
                    "seconds": round(time.perf_counter() - t2, 1),
                    "steps_s": outcome.get("seconds"),
                    "reason": (outcome.get("gate") or {}).get("reason", outcome.get("reason", "")),
                    "gate": {k: (outcome.get("gate") or {}).get(k) for k in ("candidate", "served", "users")},
                }
                log(
                    f"  retrained after window {w + 1}: {outcome['action']} in {figures['retrain']['seconds']:.0f} s"
                    f" ({figures['retrain']['reason']})"
                )
            results["windows"].append(figures)
    for way in WAYS:
        results[f"mean_{way}_ndcg@{K}"] = float(np.mean([f[way][f"ndcg@{K}"] for f in results["windows"]]))
    results["loop_beats_frozen_every_window"] = all(
        f["loop"][f"ndcg@{K}"] > f["frozen"][f"ndcg@{K}"] for f in results["windows"]
    )
    results["loop_not_worse_than_fold_in_on_average"] = (
        results[f"mean_loop_ndcg@{K}"] >= results[f"mean_fold-in_ndcg@{K}"]
    )
    return results


def table(res: dict[str, Any]) -> list[str]:
    lines = [
        f"### {res['dataset']}",
        "",
        f"{res['base_ratings']:,} base ratings (the first 80% by timestamp), {res['replayed']:,} replayed; the first "
        f"model took {res['first_model_s']:.0f} s to train and export.",
        "",
        "| window | users (first seen) | NDCG@10 frozen / fold-in / loop | recall@10 frozen / fold-in / loop | "
        "first seen NDCG@10 f / fi / l | liked new movies | new movies in lists f / fi / l (hits) | "
        "retraining after it |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in res["windows"]:
        n = f"ndcg@{K}"
        ndcg = " / ".join(f"{f[w][n]:.4f}" for w in WAYS)
        recall = " / ".join(f"{f[w][f'recall@{K}']:.4f}" for w in WAYS)
        fresh = " / ".join(f"{f[w].get(f'first_seen_{n}', float('nan')):.4f}" for w in WAYS)
        new = " / ".join(f"{100 * f[w]['new_movie_share_of_recs']:.1f}% ({f[w]['new_movie_hits']})" for w in WAYS)
        rt = f.get("retrain")
        after = f"{rt['action']}, {rt['seconds']:.0f} s" if rt else "-"
        lines.append(
            f"| {f['window']} | {f['users']} ({f['first_seen_users']}) | {ndcg} | {recall} | {fresh} | "
            f"{100 * f['liked_new_share']:.1f}% | {new} | {after} |"
        )
    lines += [
        "",
        f"Mean NDCG@10 over the windows: frozen {res[f'mean_frozen_ndcg@{K}']:.4f}, fold-in "
        f"{res[f'mean_fold-in_ndcg@{K}']:.4f}, loop {res[f'mean_loop_ndcg@{K}']:.4f}. The loop beats frozen in every "
        f"window: {res['loop_beats_frozen_every_window']}; not worse than fold-in on average: "
        f"{res['loop_not_worse_than_fold_in_on_average']}.",
        "",
    ]
    for f in res["windows"]:
        if f.get("retrain"):
            lines.append(f"- After window {f['window']}: {f['retrain']['action']} ({f['retrain']['reason']}).")
    return lines


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        xs = [f["window"] for f in res["windows"]]
        for way, marker in zip(WAYS, ("o", "s", "^"), strict=True):
            ax.plot(xs, [f[way][f"ndcg@{K}"] for f in res["windows"]], marker=marker, label=way)
        ax.set_title(f"{res['dataset']}: replayed in time order")
        ax.set_xlabel("window (each scored before its ratings are posted)")
        ax.set_ylabel("NDCG@10 of the window's liked movies")
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small"])
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--data-dir", type=Path, default=None, help="default: $RECSYS_DATA_DIR, else ./data")
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "replay")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "replay.png")
    p.add_argument("--min-users", type=int, help="the gate's min_users (default: the deployed default)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    results = [replay(d, a.windows, a.out, a.data_dir, a.min_users) for d in a.datasets]
    date = time.strftime("%Y-%m-%d")
    lines = [
        f"Command: `python -m bench.replay --datasets {' '.join(a.datasets)} --windows {a.windows}` ({date}, "
        f"{time.perf_counter() - t0:.0f} s in all)",
        "",
    ]
    for res in results:
        lines += table(res)
    text = "\n".join(lines)
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "replay.md").write_text(text + "\n")
    (a.out / "replay.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, a.plot)
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
