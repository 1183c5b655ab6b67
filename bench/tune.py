"""Hyperparameter search with Optuna: ``python -m bench.tune --trials N --objective rmse|ndcg@10 ...``.

Each trial trains with :func:`training.train.fit` on the training part of the split and is scored on ``fit``'s
seeded validation part (never on the test set, which stays untouched for the final evaluation). The study is
seeded and stored in SQLite (``--storage``), so an interrupted search resumes where it stopped: ``--trials`` is
the number of completed or pruned trials wanted in the study, not the number to add (a trial that crashed or
was interrupted does not count, and a resumed study's sampler continues with a new seed instead of replaying
the first run's proposals). Trial 0 of a new study (tpe, random) is the configuration the fixed arguments give
(with none: the served defaults), so the best trial is never worse than the untuned model on validation. Unpromising
trials are pruned after each epoch (median rule). Outputs, in ``--out``:

* ``best_config.json``: the best trial's hyperparameters as a file ``python -m training.train --config`` takes;
* ``trials.csv`` and ``report.md``: every trial (state, value, epochs, seconds, parameters);
* ``optimization_history.png``, ``param_importances.png`` (fANOVA, from 2 finished trials on),
  ``learning_curves.png`` (the best trial's validation metric and losses per epoch).

Samplers: ``tpe`` (default), ``random`` or ``grid`` (a small fixed grid over the most influential settings).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from training.cli import add_data_args, add_train_args, config_from_args, load_data, parse_with_config
from training.config import search_space as config_search_space
from training.data import DataError
from training.fit import fit

OBJECTIVES = {"rmse": ("val_rmse", "minimize"), "ndcg@10": ("val_ndcg@10", "maximize")}
SAMPLERS = ("tpe", "random", "grid")


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: its ``training.train`` option, its range, and its values on the grid."""

    name: str
    kind: str  # "float", "log", "int", "choice"
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()
    grid: tuple = ()

    def suggest(self, trial, grid: bool):
        if grid:
            return trial.suggest_categorical(self.name, list(self.grid))
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")


# The searched hyperparameters and their ranges come from the configuration's fields (``tune=`` in
# training.config). Deep branch shapes are strings because Optuna's categorical values must be scalars
# ("400,100" -> --hidden 400 100).
SPACE = tuple(Param(name, **meta) for name, meta in config_search_space())


def search_space(movies, ratings) -> tuple[Param, ...]:
    """SPACE, without the movie features when the data set has no genres or years to give them, and without the
    time feature when its ratings have no timestamps."""
    from training.features import has_metadata as metadata_present

    has_metadata = metadata_present(movies)
    has_time = bool((ratings["timestamp"] > 0).any())
    drop = {name for name, ok in (("item_features", has_metadata), ("time_feature", has_time)) if not ok}
    return tuple(p for p in SPACE if p.name not in drop)


def make_sampler(name: str, seed: int, space: tuple[Param, ...] = SPACE):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler({p.name: list(p.grid) for p in space}, seed=seed)


def baseline_params(a: argparse.Namespace, space: tuple[Param, ...]) -> dict:
    """The searched parameters as the fixed arguments set them (with no options: the served defaults), for the
    first trial of a new study. A value outside its range is moved to the nearest end (L1 0 -> 1e-8); a choice
    the space does not offer is left to the sampler."""
    out: dict = {}
    for prm in space:
        value = getattr(a, prm.name, None)
        if prm.name == "hidden" and value is not None:
            value = ",".join(str(int(h)) for h in value)
        if prm.name == "item_features" and value is None:
            value = True  # in the space only when the movies have genres or years, where the default is on
        if prm.kind == "choice":
            if value in prm.choices:
                out[prm.name] = value
        elif value is not None:
            value = min(max(float(value), prm.low), prm.high)
            out[prm.name] = round(value) if prm.kind == "int" else value
    return out


def apply_params(a: argparse.Namespace, params: dict) -> argparse.Namespace:
    """A copy of the parsed arguments with a trial's parameters in place."""
    b = argparse.Namespace(**vars(a))
    for name, value in params.items():
        setattr(b, name, [int(x) for x in value.split(",")] if name == "hidden" else value)
    return b


def config_file_values(params: dict) -> dict:
    """Trial parameters as ``training.train --config`` keys and values."""
    return {k: [int(x) for x in v.split(",")] if k == "hidden" else v for k, v in params.items()}


def run_study(a: argparse.Namespace, progress=print):
    """Create or resume the study and run trials until ``a.trials`` have finished (or ``a.timeout`` passes)."""
    import optuna

    metric, direction = OBJECTIVES[a.objective]
    a.out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{Path(a.storage).resolve()}" if a.storage else None
    ds, _, train_df, _ = load_data(a)  # the test part is never looked at here
    space = search_space(ds.movies, train_df)
    study = optuna.create_study(
        study_name=a.study_name,
        storage=storage,
        sampler=make_sampler(a.sampler, a.seed, space),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=a.prune_after_trials, n_warmup_steps=a.prune_warmup),
        direction=direction,
        load_if_exists=True,
    )
    if study.trials:
        # A resumed study must not replay the first run's proposals: the sampler's seed moves on with the study.
        study.sampler = make_sampler(a.sampler, a.seed + len(study.trials), space)
    elif a.sampler != "grid":
        # Trial 0 is the untuned configuration, so the best trial is never worse than it on the validation part.
        study.enqueue_trial(baseline_params(a, space))
    if study.user_attrs.get("objective", a.objective) != a.objective:
        raise DataError(f"study {a.study_name!r} in {a.storage} optimises {study.user_attrs['objective']}")
    study.set_user_attr("objective", a.objective)
    # Done = completed or pruned; a trial that crashed or was interrupted (FAIL, or RUNNING after a kill) is re-run.
    done_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    finished = lambda: sum(t.state in done_states for t in study.trials)  # noqa: E731
    if progress:
        progress(
            f"study {a.study_name!r}: {a.sampler} sampler, {a.objective} on the validation part of {ds.name} "
            f"({len(train_df):,} training ratings); {finished()} of {a.trials} trials already done"
        )

    def objective(trial) -> float:
        params = {p.name: p.suggest(trial, a.sampler == "grid") for p in space}
        cfg = config_from_args(apply_params(a, params))
        history: list[dict] = []

        def on_epoch(row: dict) -> None:
            history.append(row)
            trial.set_user_attr("history", history)
            value = row.get(metric)
            if value is not None and math.isfinite(value):
                trial.report(value, row["epoch"] - 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {row['epoch']}: {metric}={value:.4f}")

        _, summary = fit(train_df, cfg, progress=None, on_epoch=on_epoch, movies=ds.movies)
        value = summary[metric]
        if value is None:
            raise DataError("the validation part is empty: tuning needs --val-fraction > 0")
        trial.set_user_attr("epochs", summary["epochs_run"])
        trial.set_user_attr("fit_seconds", summary["fit_seconds"])
        return float(value)

    def report(study, trial) -> None:
        if not progress:
            return
        shown = trial.value if trial.value is not None else float("nan")
        try:
            best = f"best {study.best_value:.4f} (#{study.best_trial.number})"
        except ValueError:
            best = "no finished trial yet"
        params = " ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
        progress(
            f"trial {trial.number:3d} {trial.state.name.lower():8s} {a.objective}={shown:.4f}  "
            f"[{finished()}/{a.trials}]  {best}  {params}"
        )

    remaining = a.trials - finished()
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=a.timeout,
            callbacks=[report],
            catch=(),
            gc_after_trial=True,
        )
    return study


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def write_report(study, a: argparse.Namespace, argv: list[str]) -> dict[str, Path]:
    """best_config.json, trials.csv, report.md and the PNG plots; returns what was written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    # Optuna marks its matplotlib plots experimental; the report only saves them as PNGs.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    out: dict[str, Path] = {}
    trials = study.trials
    names = [p.name for p in SPACE]
    with open(a.out / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", a.objective, "epochs", "fit_seconds", *names])
        for t in trials:
            w.writerow(
                [t.number, t.state.name, t.value, t.user_attrs.get("epochs"), t.user_attrs.get("fit_seconds")]
                + [t.params.get(n) for n in names]
            )
    out["trials.csv"] = a.out / "trials.csv"
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return out
    best = study.best_trial
    config = {
        "_comment": f"best of {len(complete)} completed trials (pruned ones aside) of study {study.study_name!r} "
        f"({a.objective} on the validation part)",
        "_value": best.value,
        "_trial": best.number,
        **config_file_values(best.params),
    }
    (a.out / "best_config.json").write_text(json.dumps(config, indent=2) + "\n")
    out["best_config.json"] = a.out / "best_config.json"

    def save(ax_or_fig, name: str) -> None:
        fig = ax_or_fig.figure if hasattr(ax_or_fig, "figure") else ax_or_fig
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        fig.savefig(a.out / name, dpi=100)
        plt.close(fig)
        out[name] = a.out / name

    save(vis.plot_optimization_history(study), "optimization_history.png")
    varied = {n for n in names if len({t.params.get(n) for t in complete}) > 1}
    if len(complete) >= 2 and varied:
        save(vis.plot_param_importances(study, params=sorted(varied)), "param_importances.png")
    history = best.user_attrs.get("history", [])
    if history:
        fig, (ax1, ax2) = plt.subplots(1, 2)
        epochs = [r["epoch"] for r in history]
        metric = OBJECTIVES[a.objective][0]
        ax1.plot(epochs, [r.get(metric) for r in history], marker="o")
        ax1.set(xlabel="epoch", ylabel=metric, title=f"trial {best.number}: validation")
        for key in ("rating_loss", "interaction_loss"):
            if key in history[0]:
                ax2.plot(epochs, [r[key] for r in history], label=key)
        ax2.set(xlabel="epoch", ylabel="training loss", title="losses")
        ax2.legend()
        save(fig, "learning_curves.png")

    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    lines = [
        f"# Tuning report: {a.objective} (validation part), {a.sampler} sampler",
        "",
        f"Command: `python -m bench.tune {' '.join(argv)}`",
        "",
        f"{len(trials)} trials: {len(complete)} finished, {pruned} pruned. "
        f"Best: trial {best.number}, {a.objective} = {best.value:.4f}. "
        f"Train with it: `python -m training.train --config {a.out / 'best_config.json'} --out DIR`.",
        "",
        "| trial | state | " + a.objective + " | epochs | seconds | " + " | ".join(names) + " |",
        "|" + "---|" * (5 + len(names)),
    ]
    for t in trials:
        value = "" if t.value is None else f"{t.value:.4f}"
        cells = [_fmt(t.params.get(n, "")) for n in names]
        lines.append(
            f"| {t.number} | {t.state.name.lower()} | {value} | {t.user_attrs.get('epochs', '')} | "
            f"{t.user_attrs.get('fit_seconds', '')} | " + " | ".join(cells) + " |"
        )
    lines += ["", *[f"![{p.stem}]({p.name})" for p in out.values() if p.suffix == ".png"]]
    (a.out / "report.md").write_text("\n".join(lines) + "\n")
    out["report.md"] = a.out / "report.md"
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__.split("\n")[0])
    add_data_args(p)
    add_train_args(p)  # fixed settings for every trial (epochs, patience, variant...); the searched ones are replaced
    t = p.add_argument_group("search")
    t.add_argument("--trials", type=int, default=20, help="completed + pruned trials wanted in the study (resumes)")
    t.add_argument("--objective", choices=sorted(OBJECTIVES), default="rmse")
    t.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    t.add_argument("--storage", type=Path, default=Path("artifacts/tune/study.db"), help="SQLite file of the study")
    t.add_argument("--study-name", default="recsys")
    t.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    t.add_argument("--prune-after-trials", type=int, default=3, help="finished trials before pruning starts")
    t.add_argument("--prune-warmup", type=int, default=3, help="epochs a trial always runs before it can be pruned")
    t.add_argument("--out", type=Path, default=Path("artifacts/tune"), help="report directory")
    t.add_argument("--config", type=Path, help="JSON defaults for the fixed settings (training.train --config)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        a = parse_with_config(p, argv)
        if a.trials < 1:
            raise DataError("--trials must be at least 1")
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        a.storage.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        study = run_study(a, progress=lambda s: print(s, flush=True))
        written = write_report(study, a, argv)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - t0:.0f} s; wrote " + ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
