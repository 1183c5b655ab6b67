"""``make bench``: Keras ``predict`` vs the serving engine on the same top-10 request, side by side.

``python -m bench.serving [--model artifacts/model] [--items 100000] [--out artifacts]``

For ml-latest-small (the model in ``--model``, trained by ``make demo`` or trained here if missing)
and for a seeded synthetic catalogue of ``--items`` movies (untrained weights: speed does not depend on
their values), both single-threaded:

* Keras: ``model.predict`` over (user, every movie), score = interaction + gamma * rating, seen movies
  excluded, top 10 by ``argpartition``; this is the exact served score;
* engine: ``Engine.recommend(user, k=10, explain=False)`` (one onnxruntime call, two-stage score);
* p50 / p99 latency and their ratio, the engine's top-10 overlap with the exact Keras top-10, the p50 of the same
  request with its reasons (``explain=True``) and what they add (p50 of paired runs), the p50 of a request with 50
  events folded in and what they add to the same user's plain request (p50 of paired runs), the
  engine's cold start (import + artifact verification + load + warm-up, fresh interpreter) and its peak
  memory, and the worker's deployment package size (dependencies + code + artifact, unzipped).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the worker runs the engine (lambdas/worker/handler.py)

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Peak memory is VmHWM: ru_maxrss survives execve, so a child of this (TensorFlow-sized) process would report ours.
COLD_START = """
import sys, time
t0 = time.perf_counter()
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "pandas"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
from lambdas.engine import Engine
e = Engine(sys.argv[1])
ready = time.perf_counter() - t0
for u in range(50):
    e.recommend(int(e.user_ids[u % len(e.user_ids)]), k=10)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1]
print(ready, int(hwm) / 1024)
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.array(samples) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def synthetic_model_dir(path: Path, n_items: int, n_users: int = 2000, seed: int = 0) -> Path:
    """A saved model directory over a synthetic catalogue, with random (untrained) weights."""
    import keras
    import pandas as pd

    from training.config import TrainConfig
    from training.data import placeholder_movies
    from training.interactions import IdMap, Interactions
    from training.models import ModelConfig, build_model
    from training.recommender import Recommender, save
    from training.synthetic import catalogue

    keras.utils.set_random_seed(seed)
    ratings = catalogue(n_users, n_items, ratings_per_user=20, seed=seed)
    cfg = TrainConfig(rank_blend=1.0, model=ModelConfig(global_mean=3.5))
    model = build_model(n_users, n_items, cfg.model)
    rng = np.random.default_rng(seed)
    out = model.get_layer("deep_out")  # zero-initialised in training; give the branch a voice
    out.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in out.get_weights()])
    rec = Recommender(model, IdMap(np.arange(n_users)), IdMap(np.arange(n_items)), cfg)
    rec.train = Interactions(
        ratings["user_id"].to_numpy(),
        ratings["movie_id"].to_numpy(),
        ratings["rating"].to_numpy(np.float32),
        ratings["timestamp"].to_numpy(),
        n_users,
        n_items,
    )
    meta = {
        "dataset": {"name": f"synthetic-{n_items}", "rating_scale": [0.5, 5.0], "files": {}},
        "split": {"kind": "none"},
        "seed": seed,
        "train_config": cfg.to_dict(),
        "metrics": {},
        "n_users": n_users,
        "n_items": n_items,
    }
    save(rec, path, meta, None, placeholder_movies(pd.Series(np.arange(n_items))))
    return path


def keras_request(rec, w, u: int, seen: np.ndarray, k: int = 10) -> np.ndarray:
    """The exact served score through Keras predict, top k."""
    n = len(rec.items)
    x = {"user": np.full(n, u, np.int32), "item": np.arange(n, dtype=np.int32)}
    if rec.has_time:  # the serving time (see training.features.scale_time)
        x["time"] = np.full(n, rec.config.model.time_now, np.float32)
    out = rec.model.predict(x, batch_size=n, verbose=0)
    score = out["interaction"][:, 0] + w.gamma * out["rating"][:, 0]
    score[seen] = -np.inf
    top = np.argpartition(-score, k - 1)[:k]
    return top[np.argsort(-score[top])]


def measure(model_dir: Path, artifact: Path, keras_reps: int, engine_reps: int, overlap_users: int) -> dict:
    from lambdas.engine import Engine
    from training.recommender import load

    rec, _ = load(model_dir)
    w = rec.serving_weights()
    engine = Engine(artifact, threads=1)
    t = rec.train
    rng = np.random.default_rng(0)
    users = rng.choice(len(rec.users), size=max(keras_reps, overlap_users), replace=len(rec.users) < overlap_users)

    def seen_of(u: int) -> np.ndarray:
        return t.items[t.users == u]

    keras_request(rec, w, int(users[0]), seen_of(int(users[0])))  # warm-up (tracing)
    k_times, overlaps = [], []
    for i, u in enumerate(users[: max(keras_reps, overlap_users)]):
        seen = seen_of(int(u))
        t0 = time.perf_counter()
        exact = keras_request(rec, w, int(u), seen)
        if i < keras_reps:
            k_times.append(time.perf_counter() - t0)
        if i < overlap_users:
            got = engine.recommend(rec.users.ids[u], k=10, explain=False)["items"]
            overlaps.append(len({engine.item_index(m["movie_id"]) for m in got} & set(exact.tolist())) / 10)
    e_times = []
    for i in range(engine_reps):
        u = rec.users.ids[users[i % len(users)]]
        t0 = time.perf_counter()
        engine.recommend(u, k=10, explain=False)
        e_times.append(time.perf_counter() - t0)
    # Reasons (explain=True: reasons, shares and the match figure) against the same request without, alternating.
    bare_times, explained_times = [], []
    for i in range(engine_reps):
        u = rec.users.ids[users[i % len(users)]]
        t0 = time.perf_counter()
        engine.recommend(u, k=10, explain=False)
        t1 = time.perf_counter()
        engine.recommend(u, k=10, explain=True)
        explained_times.append(time.perf_counter() - t1)
        bare_times.append(t1 - t0)
    # 50 new ratings (events) folded in, against the same user's plain request, alternating (paired differences).
    plain_times, event_times = [], []
    for i in range(engine_reps):
        u = rec.users.ids[users[i % len(users)]]
        picked = rng.choice(engine.n_items, size=min(50, engine.n_items), replace=False)
        events = [{"movie_id": engine.item_ids[j].item(), "rating": float(rng.integers(1, 6))} for j in picked]
        t0 = time.perf_counter()
        engine.recommend(u, k=10, explain=False)
        t1 = time.perf_counter()
        engine.recommend(u, k=10, events=events, explain=False)
        event_times.append(time.perf_counter() - t1)
        plain_times.append(t1 - t0)
    cold, rss = [], []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", COLD_START, str(artifact)], cwd=ROOT, capture_output=True, text=True, check=True
        )
        s, m = done.stdout.split()
        cold.append(float(s))
        rss.append(float(m))
    kp50, kp99 = percentiles(k_times)
    ep50, ep99 = percentiles(e_times)
    return {
        "movies": len(rec.items),
        "keras_p50_ms": kp50,
        "keras_p99_ms": kp99,
        "engine_p50_ms": ep50,
        "engine_p99_ms": ep99,
        "speedup_p50": kp50 / ep50,
        "top10_overlap_with_exact": float(np.mean(overlaps)),
        "reasons_p50_ms": percentiles(explained_times)[0],
        "reasons_added_p50_ms": float(np.median(np.array(explained_times) - np.array(bare_times)) * 1e3),
        "events50_p50_ms": percentiles(event_times)[0],
        "events50_added_p50_ms": float(np.median(np.array(event_times) - np.array(plain_times)) * 1e3),
        "engine_cold_start_s": float(np.median(cold)),
        "engine_peak_rss_mb": float(np.max(rss)),
        "keras_requests": len(k_times),
        "engine_requests": len(e_times),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=Path("artifacts/model"), help="trained ml-latest-small model dir")
    p.add_argument("--items", type=int, default=100_000, help="synthetic catalogue size")
    p.add_argument("--out", type=Path, default=Path("artifacts"))
    a = p.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from model_export.export import export
    from model_export.package import build

    a.out.mkdir(parents=True, exist_ok=True)
    if not (a.model / "metadata.json").exists():
        from training import train as train_cli

        print(f"{a.model} missing: training the served model on ml-latest-small first ...", flush=True)
        train_cli.main(["--out", str(a.model), "--quiet"])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small_art = a.out / "artifact"
        export(a.model, small_art, log=lambda *_: None)
        print("measuring ml-latest-small ...", flush=True)
        results["ml-latest-small"] = measure(a.model, small_art, keras_reps=30, engine_reps=500, overlap_users=200)
        print(f"building and measuring a synthetic {a.items:,}-movie catalogue ...", flush=True)
        synth = synthetic_model_dir(tmp / "synthetic", a.items)
        synth_art = tmp / "synthetic-artifact"
        export(synth, synth_art, log=lambda *_: None)
        results[f"synthetic-{a.items}"] = measure(synth, synth_art, keras_reps=5, engine_reps=200, overlap_users=20)
        print("building the worker package ...", flush=True)
        results["worker_package"] = build(tmp / "worker", small_art, deps_cache=a.out / ".worker-deps")
    cols = [
        "movies",
        "keras_p50_ms",
        "keras_p99_ms",
        "engine_p50_ms",
        "engine_p99_ms",
        "speedup_p50",
        "top10_overlap_with_exact",
        "reasons_p50_ms",
        "reasons_added_p50_ms",
        "events50_p50_ms",
        "events50_added_p50_ms",
        "engine_cold_start_s",
        "engine_peak_rss_mb",
    ]
    lines = ["| catalogue | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        if name != "worker_package":
            lines.append(
                f"| {name} | " + " | ".join(f"{r[c]:,.2f}" if c != "movies" else f"{r[c]:,}" for c in cols) + " |"
            )
    pkg = results["worker_package"]
    lines.append(
        f"\nWorker package (unzipped): {pkg['total_mb']} MB = dependencies {pkg['dependencies_mb']} MB "
        f"(after trimming {pkg['trimmed_mb']} MB) + code {pkg['code_mb']} MB + artifact {pkg['artifact_mb']} MB; "
        f"Lambda limit {pkg['limit_mb']:.0f} MB."
    )
    table = "\n".join(lines)
    print(table)
    (a.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (a.out / "bench.md").write_text(f"Command: `make bench` (python -m bench.serving)\n\n{table}\n")
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
