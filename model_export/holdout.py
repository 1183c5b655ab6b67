"""The gate's figures: a candidate artifact and the served one judged on the same held-out events
(:mod:`lambdas.loop.plan`), each user's other events folded in by the engine as users get them.

* NDCG@10 and recall@10 (``training.metrics``'s definitions) over the held-out users with a held-out rating >= 4,
  from :meth:`Engine.recommend` with the user's events (a user a model does not know gets its cold start from
  them, or the popular list, as in production);
* RMSE over the held-out (user, movie) pairs both models can predict (a user and movie each knows), from
  :meth:`Engine.predict` with the same events.

Runs in the training job (``model_export.sagemaker_job``), where both artifacts are, and locally in
``python -m infra.retrain``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from contract import canonical_id
from contract.events_file import read_rows
from lambdas.engine import Engine
from training.metrics import ranking_from_lists

K = 10
LIKED = 4.0  # a held-out rating at or above this is a movie the user liked (training.metrics's threshold)


def compare(candidate: Path, served: Path | None, events_csv: Path, heldout_csv: Path, log=print) -> dict[str, Any]:
    """Both models' figures on the held-out events: ``{"candidate": {...}, "served": {...} or None, "users",
    "pairs", "served_version", "seconds"}``."""
    t0 = time.perf_counter()
    engines = {"candidate": Engine(candidate)}
    if served is not None:
        engines["served"] = Engine(served)
    history: dict[str, list[dict]] = defaultdict(list)
    for u, m, r, t, at in read_rows(events_csv):
        history[u].append({"movie_id": m, "rating": r, "timestamp": t, "received_at": at})
    held: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for u, m, r, _, _ in read_rows(heldout_csv):
        held[u].append((canonical_id(m), r))
    index: dict[str, int] = {}
    lists: dict[str, list[np.ndarray]] = {name: [] for name in engines}
    relevant: list[set[int]] = []
    truth: list[float] = []
    predicted: dict[str, list[float]] = {name: [] for name in engines}
    for n, (user, ratings) in enumerate(sorted(held.items())):
        evs = sorted(history.get(user, []), key=lambda e: (e["timestamp"], e["received_at"]))
        latest = dict(ratings)  # a movie rated twice in the window: the later rating
        liked = {index.setdefault(m, len(index)) for m, r in latest.items() if r >= LIKED}
        if liked:
            relevant.append(liked)
            for name, engine in engines.items():
                got = engine.recommend(user, k=K, events=evs, explain=False)["items"]
                ids = [index.setdefault(canonical_id(it["movie_id"]), len(index)) for it in got]
                lists[name].append(np.array(ids, dtype=np.int64))
        movies = list(latest)
        preds = {name: engine.predict(user, movies, events=evs) for name, engine in engines.items()}
        ok = np.all([np.isfinite(p) for p in preds.values()], axis=0)
        truth += [latest[m] for m, good in zip(movies, ok, strict=True) if good]
        for name, p in preds.items():
            predicted[name] += p[ok].tolist()
        if log and (n + 1) % 500 == 0:
            log(f"  judged {n + 1:,} of {len(held):,} held-out users ({time.perf_counter() - t0:.0f} s)")
    out: dict[str, Any] = {"users": len(relevant), "pairs": len(truth), "heldout_users": len(held)}
    for name in engines:
        figures = ranking_from_lists(lists[name], relevant, K) if relevant else {}
        err = np.asarray(predicted[name]) - np.asarray(truth)
        out[name] = {
            f"ndcg@{K}": float(figures.get(f"ndcg@{K}", float("nan"))),
            f"recall@{K}": float(figures.get(f"recall@{K}", float("nan"))),
            "rmse": float(np.sqrt(np.mean(err * err))) if len(err) else float("nan"),
            "model_version": engines[name].model_version,
        }
    out.setdefault("served", None)
    out["served_version"] = out["served"]["model_version"] if out["served"] else None
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
