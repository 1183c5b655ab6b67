"""``make bench-learn``: how long the served configuration takes to learn at 1M, 10M and 25M ratings, and what.

``python -m bench.time_to_learn [--sizes 1M 10M 25M] [--epochs 40 [SIZE=N ...]] [--timeout S] [--out artifacts]``

Each size is :func:`training.synthetic.movielens_like` data of a MovieLens release's shape (``1M``: ml-1m's users,
movies and whole stars; ``10M``: ml-10m's, half stars; ``25M``: ml-25m's), so the best achievable NDCG@10 and RMSE
are known (:func:`training.ceiling.ceiling`). It is split 90/10 (seeded), and in one process per size (so its peak
memory is its own):

* **the served configuration** (``python -m training.train``'s defaults, without movie features: synthetic movies
  have none) trains with its own early stopping; after every epoch the wall time so far (training and validation)
  and the validation NDCG@10 are recorded. **Time to learn** is the wall time until the first epoch whose validation
  NDCG@10 is within 2% of the best the run reaches; the test figures are the final model's;
* **where an epoch's seconds go**, measured apart: building one epoch's batches (the input pipeline), one epoch of
  the same configuration without the interaction head (the rating head and the deep branch, with their tables'
  optimiser updates), the rest of a full epoch (the interaction head's catalogue softmax and its tables' updates),
  the dense Adam update of every embedding table, one step's worth times the steps of an epoch (Keras 3 updates
  each table whole every step: keras-team/keras#19992), with the fused Adam training uses and with Keras's own, and
  the validation after each epoch;
* **beside it**, ``implicit``'s ALS (15 iterations) and BPR (100 epochs), 64 factors, on the same training part,
  with their fit time and test figures; and the true model's (the ceiling).

``--device gpu`` lets TensorFlow use a GPU (the figures then say which); the default hides any GPU, as this
project's 2-core machine has none. Writes ``time_to_learn.md`` / ``time_to_learn.json`` to ``--out`` and the plot
``docs/time_to_learn.png`` (validation NDCG@10 against wall time, per size, with ALS, BPR and the ceiling).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench.train_scale import peak_gb
from training.synthetic import SHAPES, Shape, TasteParams

SIZES: dict[str, Shape] = {
    # ml-1m: 6,040 users, 3,706 movies, 1,000,209 whole-star ratings (2000-04 to 2003-02).
    "1M": Shape(
        6_040,
        3_706,
        1_000_209,
        scale=(1.0, 5.0),
        step=1.0,
        time_span=(956_703_932, 1_046_454_590),
        params=TasteParams(count_sigma=1.2, max_user_share=0.6),
    ),
    # ml-10m: 69,878 users, 10,677 movies, 10,000,054 half-star ratings (1995-01 to 2009-01).
    "10M": Shape(
        69_878,
        10_677,
        10_000_054,
        time_span=(789_652_009, 1_231_131_736),
        params=TasteParams(count_sigma=1.4, max_user_share=0.6),
    ),
    "25M": SHAPES["ml-25m"],
}
PLATEAU = 0.98  # "learned": validation NDCG@10 within 2% of the run's best
TIME_BAR_S = {"25M": 1800.0}  # issue 30: the 25M shape to its plateau in 30 minutes on this 2-core machine
MEMORY_BAR_GB = 16.0
VALIDATION_LABEL = (
    "served, validation NDCG@10 per epoch\n(5% of training: fewer held-out movies\na user, so below the test figure)"
)


def time_to_plateau(history: list[dict], share: float = PLATEAU) -> dict:
    """From a fit's per-epoch rows (``train_s``, ``val_s``, ``val_ndcg@10``): the first epoch whose validation
    NDCG@10 is within ``1 - share`` of the best, the wall time up to its end, and the curve (cumulative seconds,
    NDCG@10)."""
    seconds = np.cumsum([row["train_s"] + row["val_s"] for row in history])
    ndcg = np.array([row.get("val_ndcg@10", np.nan) for row in history])
    if not len(ndcg) or np.all(np.isnan(ndcg)):
        return {"epoch": None, "seconds": None, "best": None, "curve": []}
    best = float(np.nanmax(ndcg))
    first = int(np.flatnonzero(ndcg >= share * best)[0])
    return {
        "epoch": first + 1,
        "seconds": float(seconds[first]),
        "best": best,
        "best_epoch": int(np.nanargmax(ndcg)) + 1,
        "curve": [[float(s), float(v)] for s, v in zip(seconds, ndcg, strict=True)],
    }


def table_update_seconds(n_users: int, n_items: int, cfg, steps: int, sample: int = 30, fused: bool = True) -> float:
    """Seconds of ``steps`` dense Adam updates of the model's per-user and per-movie tables (zero gradients, in a
    compiled function, as a training step applies them): ``sample`` timed and scaled to ``steps``. ``fused``: the
    optimiser training uses (:class:`training.optim.FusedAdam`); else Keras's own Adam, for comparison."""
    import keras
    import tensorflow as tf

    from training.models import build_model
    from training.optim import FusedAdam

    model = build_model(n_users, n_items, cfg.model, None)
    tables = [v for v in model.trainable_weights if v.shape[0] in (n_users, n_items) and len(v.shape) == 2]
    optimizer = FusedAdam(cfg.lr) if fused else keras.optimizers.Adam(cfg.lr)
    optimizer.build(tables)
    zeros = [tf.zeros(v.shape, v.dtype) for v in tables]

    @tf.function
    def step():
        optimizer.apply(zeros, tables)

    step()
    t0 = time.perf_counter()
    for _ in range(sample):
        step()
    return (time.perf_counter() - t0) / sample * steps


def normaliser_step_seconds(train, cfg, samples: tuple[int, ...], steps: int = 12, rounds: int = 2) -> dict:
    """Median seconds of one whole training step (both heads, the tables' updates) with each softmax normaliser
    in ``samples`` (0: the whole catalogue; K: K movies a step), on the same data's batches, alternating
    ``rounds`` times ``steps`` steps each after two warm-up steps: the two side by side in one run."""
    import pandas as pd

    from training.batches import make_batches, softmax_plan
    from training.fit import compiled_models, effective_batch_size, reg_scale
    from training.interactions import IdMap, to_interactions

    inter = to_interactions(train, IdMap(pd.unique(train["user_id"])), IdMap(pd.unique(train["movie_id"])))
    cfg = cfg.model_copy(deep=True)
    cfg.batch_size = effective_batch_size(len(inter.users), cfg)
    cfg.model.reg_scale = reg_scale(len(inter.users), cfg)
    chunk, user_lr_scale = softmax_plan(inter, cfg)
    runs = {}
    for k in samples:
        one_cfg = cfg.model_copy(update={"softmax_sample": k}, deep=True)
        _, trainer = compiled_models(inter.n_users, inter.n_items, one_cfg, None, user_lr_scale)
        batches = make_batches(inter, one_cfg, True, chunk)
        for warm in (0, 1):
            trainer.train_on_batch(*batches[warm])
        runs[k] = (trainer, batches, [])
    at = 2
    for _ in range(rounds):
        for trainer, batches, times in runs.values():
            for j in range(steps):
                x, y = batches[(at + j) % len(batches)]
                t0 = time.perf_counter()
                trainer.train_on_batch(x, y)
                times.append(time.perf_counter() - t0)
        at += steps
    return {k: float(np.median(times)) for k, (_, _, times) in runs.items()}


def one(size: str, epochs: int, seed: int) -> dict:
    """Everything for ``size`` in this process (see the module's description)."""
    from bench.peers import ImplicitPeer
    from bench.train_scale import _batches_seconds
    from training.ceiling import CEILING, ceiling
    from training.config import ModelConfig, TrainConfig
    from training.evaluate import HeldOut, compare, evaluate
    from training.fit import fit
    from training.splits import random_holdout
    from training.synthetic import movielens_like

    try:  # the peers run last: missing them must stop the run before an hour of training, not after
        import implicit  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"bench-learn needs requirements-bench.txt (make bench-learn installs it): {e}") from e
    shape = SIZES[size]
    t0 = time.perf_counter()
    data, truth = movielens_like(shape, seed)
    generate_s = time.perf_counter() - t0
    mask = random_holdout(len(data), 0.1, 42)
    train, test = data[mask].reset_index(drop=True), data[~mask].reset_index(drop=True)
    del data
    print(f"[{size}] {len(train):,} training ratings, generated in {generate_s:.0f} s", flush=True)

    cfg = TrainConfig(epochs=epochs, model=ModelConfig(item_features=False))
    t0 = time.perf_counter()
    rec, summary = fit(train, cfg, progress=print)
    fit_s = time.perf_counter() - t0
    served_peak = peak_gb()
    learned = time_to_plateau(summary["history"])
    served = evaluate(rec, test, shape.scale, baselines=False)["model"]
    used = rec.config  # the configuration as trained (batch size grown on large data, blend chosen)
    steps = summary["batch_size"]["steps_per_epoch"]
    epoch_s = float(np.median([row["train_s"] for row in summary["history"]]))
    val_s = float(np.median([row["val_s"] for row in summary["history"]]))
    n_users, n_items = rec.train.n_users, rec.train.n_items
    del rec

    print(f"[{size}] where an epoch goes: its batches, epochs without the interaction head, table updates", flush=True)
    batches_s = _batches_seconds(train, used)
    # Without the interaction head: the second of two epochs (the first also traces the step), one past 5M ratings.
    head_off = used.model_copy(update={"epochs": 2 if len(train) < 5e6 else 1, "val_fraction": 0.0}, deep=True)
    head_off.model.rank_dim = 0
    _, off = fit(train, head_off, progress=None)
    rating_epoch_s = float(off["history"][-1]["train_s"])
    sample = (summary["softmax"] or {}).get("sample") or 0
    print(f"[{size}] one step with the whole catalogue's softmax normaliser and with the sample", flush=True)
    step_s = normaliser_step_seconds(train, used, (0, sample)) if sample else {}
    updates_s = table_update_seconds(n_users, n_items, used, steps)
    keras_updates_s = table_update_seconds(n_users, n_items, used, steps, fused=False)

    print(f"[{size}] implicit ALS and BPR, and the true model", flush=True)
    split = HeldOut.of(train, test)
    peers = compare(
        [ImplicitPeer("als", random_state=0), ImplicitPeer("bpr", random_state=0)],
        split.train,
        split.test,
        split.task,
        shape.scale,
    )
    best = ceiling(truth, train, test, shape.scale)
    return {
        "size": size,
        "ratings": len(train) + len(test),
        "training_ratings": len(train),
        "users": n_users,  # in the training part (the shape's counts are targets: the draw comes close)
        "movies": n_items,
        "generate_s": generate_s,
        "served": {
            **{k: served.get(k) for k in ("ndcg@10", "recall@10", "rmse")},
            "fit_s": fit_s,
            "epochs_run": summary["epochs_run"],
            "max_epochs": epochs,
            "time_to_learn_s": learned["seconds"],
            "epochs_to_learn": learned["epoch"],
            "best_val_ndcg@10": learned["best"],
            "best_epoch": learned.get("best_epoch"),
            "curve": learned["curve"],
            "batch_size": summary["batch_size"],
            "reg_scale": summary["reg_scale"],
            "softmax": summary["softmax"],
            "peak_gb": served_peak,
        },
        "epoch": {
            "epoch_s": epoch_s,
            "batches_s": batches_s,
            "rating_head_and_deep_epoch_s": rating_epoch_s,
            "interaction_head_s": epoch_s - rating_epoch_s,
            "dense_table_updates_s": updates_s,
            "dense_table_updates_keras_adam_s": keras_updates_s,
            "validation_s": val_s,
            # one whole step's seconds with each normaliser, side by side ("0": the whole catalogue)
            "step_s_by_normaliser": {str(k): v for k, v in step_s.items()},
        },
        "peers": {name: {k: row.get(k) for k in ("ndcg@10", "recall@10", "fit_s")} for name, row in peers.items()},
        "ceiling": {k: best[CEILING].get(k) for k in ("ndcg@10", "recall@10", "rmse")},
        "peak_gb": peak_gb(),
        "device": os.environ.get("BENCH_DEVICE", "cpu"),
    }


def step_profile(size: str, seed: int) -> dict:
    """:func:`normaliser_step_seconds` alone at ``size`` (the served configuration, the default sample size)."""
    from training.batches import SAMPLE_SIZE
    from training.config import ModelConfig, TrainConfig
    from training.splits import random_holdout
    from training.synthetic import movielens_like

    data, _ = movielens_like(SIZES[size], seed)
    train = data[random_holdout(len(data), 0.1, 42)].reset_index(drop=True)
    del data
    cfg = TrainConfig(model=ModelConfig(item_features=False))
    by = normaliser_step_seconds(train, cfg, (0, SAMPLE_SIZE))
    return {"size": size, "step_s_by_normaliser": {str(k): v for k, v in by.items()}}


def run_child(size: str, epochs: int, seed: int, timeout_s: float, device: str) -> dict:
    """:func:`one` in a process of its own (its peak memory is its own), its progress shown as it comes."""
    env = dict(os.environ, BENCH_DEVICE=device)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, "-m", "bench.time_to_learn", "--child", size, str(epochs), str(seed)]
    print(f"== {size}", flush=True)
    last = ""
    timed_out = threading.Event()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True) as proc:

        def stop() -> None:  # the child and anything it started
            timed_out.set()
            os.killpg(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout_s, stop)
        watchdog.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if last:
                print(f"   {last}", flush=True)
            last = line.rstrip("\n")
        watchdog.cancel()
    if timed_out.is_set():
        return {"size": size, "error": f"stopped after {timeout_s:.0f} s"}
    if proc.returncode or not last.startswith("{"):
        return {"size": size, "error": f"exit {proc.returncode}"}
    return json.loads(last)


def _fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _cap(served: dict) -> str:
    """Said when the run ended at its most epochs, not by early stopping, with its best epoch the last."""
    if served.get("max_epochs") != served["epochs_run"]:
        return ""
    rising = served.get("best_epoch") == served["epochs_run"]
    return ", the cap" + (": still improving" if rising else "")


def _keras_adam(epoch: dict) -> str:
    keras_s = epoch.get("dense_table_updates_keras_adam_s")  # absent from runs before the fused Adam
    return "" if keras_s is None else f" ({keras_s:,.1f} s)"


def _normaliser(served: dict, movies: int) -> str:
    """How the softmax rows' normaliser was computed: over every movie, or from a draw a step."""
    k = (served.get("softmax") or {}).get("sample")  # absent from runs before the sampled normaliser
    return f"{k:,} of {movies:,} movies drawn a step" if k else f"all {movies:,} movies"


def report(rows: list[dict]) -> str:
    """The markdown tables of ``rows`` (as ``time_to_learn.json`` holds them)."""
    done = [r for r in rows if "error" not in r]
    lines = [
        "| size | training ratings | served: time to learn (epochs) | fit with early stopping (epochs) | "
        "NDCG@10 served / ALS / BPR / ceiling | RMSE served / ceiling | ALS / BPR fit | peak memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in done:
        s, p, c = r["served"], r["peers"], r["ceiling"]
        als, bpr = p.get("implicit ALS", {}), p.get("implicit BPR", {})
        lines.append(
            f"| {r['size']} | {r['training_ratings']:,} | {_fmt(s['time_to_learn_s'], ',.0f')} s "
            f"({s['epochs_to_learn']}) | {s['fit_s']:,.0f} s ({s['epochs_run']}{_cap(s)}) | {_fmt(s['ndcg@10'])} / "
            f"{_fmt(als.get('ndcg@10'))} / {_fmt(bpr.get('ndcg@10'))} / {_fmt(c['ndcg@10'])} | "
            f"{_fmt(s['rmse'])} / {_fmt(c['rmse'])} | "
            f"{_fmt(als.get('fit_s'), '.1f')} / {_fmt(bpr.get('fit_s'), '.1f')} s | {r['peak_gb']:.1f} GB |"
        )
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['error']} | | | | | | |")
    lines += [
        "",
        "| size | one epoch | the batches (input pipeline) | an epoch without the interaction head | "
        "interaction head (rest of the epoch) | its softmax normaliser | dense Adam updates of the tables (fused; "
        "Keras's Adam) | validation after an epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in done:
        e = r["epoch"]
        lines.append(
            f"| {r['size']} | {e['epoch_s']:,.1f} s | {e['batches_s']:,.1f} s | "
            f"{e['rating_head_and_deep_epoch_s']:,.1f} s | {e['interaction_head_s']:,.1f} s | "
            f"{_normaliser(r['served'], r['movies'])} | {e['dense_table_updates_s']:,.1f} s{_keras_adam(e)} | "
            f"{e['validation_s']:,.1f} s |"
        )
    for r in done:
        by = r["epoch"].get("step_s_by_normaliser") or {}
        whole, drawn = by.get("0"), [(int(k), v) for k, v in by.items() if k != "0"]
        if whole and drawn:
            k, v = drawn[0]
            lines.append(
                f"\n{r['size']}: one training step (median, side by side) {whole:.2f} s with the whole catalogue's "
                f"softmax normaliser, {v:.2f} s with {k:,} movies drawn ({whole / v:.1f}x)"
            )
    for size, bar in TIME_BAR_S.items():
        got = [r for r in done if r["size"] == size]
        if got:
            s = got[0]["served"]["time_to_learn_s"]
            met = s is not None and s <= bar and got[0]["peak_gb"] <= MEMORY_BAR_GB
            verdict = "met" if met else "NOT met"
            lines.append(f"\nBar at {size}: to the plateau in {bar:.0f} s and {MEMORY_BAR_GB:.0f} GB: {verdict}")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Validation NDCG@10 against wall time, one panel per size, with ALS, BPR (test) and the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if "error" not in r]
    if not done:
        return
    fig, axes = plt.subplots(1, len(done), figsize=(6.0 * len(done), 6.2), squeeze=False)
    for ax, r in zip(axes[0], done, strict=True):
        s = r["served"]
        curve = np.array(s["curve"])
        if len(curve):
            ax.plot(curve[:, 0], curve[:, 1], "o-", ms=3, label=VALIDATION_LABEL)
        if s["time_to_learn_s"] is not None:
            ax.axvline(
                s["time_to_learn_s"], color="g", ls=":", label=f"within 2% of its best: {s['time_to_learn_s']:,.0f} s"
            )
        ax.plot([s["fit_s"]], [s["ndcg@10"]], "k*", ms=10, label=f"served, test: {s['ndcg@10']:.3f}")
        for name, marker in (("implicit ALS", "s"), ("implicit BPR", "^")):
            row = r["peers"].get(name)
            if row and row.get("ndcg@10") is not None:
                ax.plot([row["fit_s"]], [row["ndcg@10"]], marker, ms=7, label=f"{name}, test: {row['ndcg@10']:.3f}")
        if r["ceiling"].get("ndcg@10") is not None:
            ax.axhline(
                r["ceiling"]["ndcg@10"], color="k", ls="--", lw=1, label=f"ceiling: {r['ceiling']['ndcg@10']:.3f}"
            )
        if r["size"] in TIME_BAR_S:
            ax.axvline(TIME_BAR_S[r["size"]], color="r", lw=1, label="bar: 30 min")
        ax.set_xscale("log")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("NDCG@10")
        ax.set_title(f"{r['size']}: {r['training_ratings']:,} training ratings ({r['device']})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: clear of the points
    fig.suptitle("make bench-learn: time to learn, synthetic MovieLens shapes", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def epochs_per_size(spec: list[str], sizes: list[str]) -> dict[str, int]:
    """``--epochs``' values (``N`` for every size, ``SIZE=N`` for one) as each size's most epochs."""
    default, own = 40, {}
    for item in spec:
        size, _, n = item.rpartition("=")
        if size and size not in SIZES:
            raise SystemExit(f"--epochs {item}: no size {size!r} (one of {', '.join(SIZES)})")
        if not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--epochs {item}: the number of epochs must be a positive integer")
        if size:
            own[size] = int(n)
        else:
            default = int(n)
    return {size: own.get(size, default) for size in sizes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.time_to_learn", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    p.add_argument(
        "--epochs",
        nargs="+",
        default=["40"],
        help="most epochs of the served configuration (its default: 40), and SIZE=N for one size (10M=3)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds allowed to one size")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="gpu: let TensorFlow use a GPU")
    p.add_argument("--out", type=Path, default=Path("artifacts"))
    p.add_argument("--plot", type=Path, default=Path("docs/time_to_learn.png"))
    p.add_argument("--replot", action="store_true", help="rewrite the tables and plot from --out's json")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    p.add_argument(
        "--step-profile",
        choices=list(SIZES),
        help="only time one training step with the whole catalogue's softmax normaliser against the sampled one",
    )
    a = p.parse_args(argv)
    if a.step_profile:
        print(json.dumps(step_profile(a.step_profile, a.seed)))
        return 0
    if a.child:
        size, epochs, seed = a.child
        print(json.dumps(one(size, int(epochs), int(seed))))
        return 0
    path = a.out / "time_to_learn.json"
    if a.replot:
        run = json.loads(path.read_text())
    else:
        command = "python -m bench.time_to_learn " + " ".join(argv if argv is not None else sys.argv[1:])
        epochs = epochs_per_size(a.epochs, a.sizes)
        rows = [run_child(size, epochs[size], a.seed, a.timeout, a.device) for size in a.sizes]
        run = {"command": command.strip(), "date": time.strftime("%Y-%m-%d"), "rows": rows}
        a.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run, indent=2) + "\n")
    rows = run["rows"]
    md = report(rows)
    (a.out / "time_to_learn.md").write_text(f"Command: `{run['command']}` ({run['date']})\n\n{md}\n")
    plot(rows, a.plot)
    print(md)
    print(f"wrote {a.out / 'time_to_learn.md'} and {a.plot}")
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
