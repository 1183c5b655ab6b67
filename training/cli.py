"""The command lines' shared options: data and split arguments, the training hyperparameters (generated from
:mod:`training.config`), ``--config`` files, and loading the data and split they describe."""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from dataclasses import replace
from pathlib import Path

import pandas as pd

from contract import canonical_id, integer_id, sha256_file
from training.config import ModelConfig, TrainConfig, cli_fields
from training.data import DataError, Dataset, load_100k_split, load_dataset, load_ratings_file
from training.splits import SPLIT_KINDS, SplitSpec, train_mask


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=None, help="MovieLens data set name (default ml-latest-small)")
    g.add_argument("--ratings", type=Path, help="a ratings file (CSV, ml-100k TSV, .dat, Amazon JSON lines[.gz])")
    g.add_argument("--movies", type=Path, help="movie metadata for --ratings (movies.csv, movies.dat or u.item)")
    g.add_argument(
        "--events",
        type=Path,
        help="ratings since the served model (python -m infra.events_export), added to the training data; a user's "
        "later rating of a movie replaces the earlier one",
    )
    g.add_argument("--data-dir", type=Path, help="where data sets live (default: $RECSYS_DATA_DIR, else ./data)")
    g.add_argument(
        "--rating-scale", type=float, nargs=2, metavar=("MIN", "MAX"), help="valid rating range for --ratings"
    )
    s = p.add_argument_group("split")
    s.add_argument("--split", choices=SPLIT_KINDS, default=None, help="random (default), temporal, kfold, or files")
    s.add_argument("--test-fraction", type=float, default=0.1)
    s.add_argument("--leave-last", type=int, default=1, help="temporal: ratings held out per user")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--fold", type=int, default=0)
    s.add_argument("--test-file", help="files split: ml-100k fold name (u1..u5, ua, ub) or a ratings file")


def _option_kwargs(name: str, field) -> tuple[list[str], dict]:
    """argparse flags and keyword arguments of one configuration field (its type, default, choices and help)."""
    extra = field.json_schema_extra or {}
    flags = [extra.get("flag", "--" + name.replace("_", "-"))]
    kw: dict = {"dest": name, "default": field.default, "help": field.description}
    annotation = field.annotation
    args = [t for t in typing.get_args(annotation) if t is not type(None)]
    base = (
        args[0] if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1 else annotation
    )
    if base is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(base) is typing.Literal:
        kw["choices"] = list(typing.get_args(base))
    elif typing.get_origin(base) is tuple:
        kw.update(type=typing.get_args(base)[0], nargs="+", default=list(field.default))
    else:
        kw["type"] = base
    return flags, kw


def add_train_args(p: argparse.ArgumentParser) -> None:
    """One option per hyperparameter of :class:`training.config.ModelConfig` and :class:`TrainConfig`."""
    for title, config in (("model", ModelConfig), ("optimisation", TrainConfig)):
        group = p.add_argument_group(title)
        for name, field in cli_fields(config).items():
            flags, kw = _option_kwargs(name, field)
            group.add_argument(*flags, **kw)


# Options a --config file may not set: where data and outputs go are the command line's business.
NOT_IN_CONFIG = {"help", "config", "out", "quiet", "data_dir", "ratings", "movies", "dataset"}
CONFIG_ALIASES = {"variant": "kind"}


def read_config_file(path: Path, parser: argparse.ArgumentParser) -> dict:
    """Hyperparameters from a JSON object of option names (``"dim": 64``, ``"lr-schedule": "cosine"``).

    Keys starting with ``_`` are comments (``bench.tune`` records its study there). Values are converted
    with the option's own type; an unknown option or a bad value is a :class:`DataError` naming the file.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise DataError(f"{path}: cannot read the config file ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: a config file is a JSON object of option names and values")
    actions = {a.dest: a for a in parser._actions if a.dest not in NOT_IN_CONFIG}
    values: dict = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        dest = key.lstrip("-").replace("-", "_")
        dest = CONFIG_ALIASES.get(dest, dest)
        action = actions.get(dest)
        if action is None:
            known = ", ".join([*sorted(d for d in actions if d != "kind"), "variant"])
            raise DataError(f"{path}: unknown option {key!r}; known: {known}")
        try:
            if isinstance(action, argparse.BooleanOptionalAction) or (action.const is not None and action.nargs == 0):
                if not isinstance(value, bool):
                    raise ValueError(f"expected true or false, got {value!r}")
            elif value is None:
                if action.default is not None:
                    raise ValueError("null is not allowed here")
            elif action.type is not None:
                if action.nargs not in (None, "?"):
                    items = value if isinstance(value, list) else [value]
                    if isinstance(action.nargs, int) and len(items) != action.nargs:
                        raise ValueError(f"expected {action.nargs} values, got {len(items)}")
                    value = [_convert(action.type, v) for v in items]
                else:
                    value = _convert(action.type, value)
            if action.choices is not None and value not in action.choices:
                raise ValueError(f"{value!r} is not one of {', '.join(map(str, action.choices))}")
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: option {key!r}: {exc}") from exc
        values[dest] = value
    return values


def _convert(kind, value):
    """A JSON value as an option's type; booleans and fractional numbers are not integers."""
    if isinstance(value, (bool, list, dict)):
        raise ValueError(f"expected a single {kind.__name__}, got {value!r}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return kind(value)


def parse_with_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; a ``--config FILE`` supplies defaults that explicit flags still override."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        parser.set_defaults(**read_config_file(known.config, parser))
    return parser.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """The configuration the parsed options describe (options :func:`add_train_args` added)."""
    model = ModelConfig(**{n: getattr(a, n) for n in cli_fields(ModelConfig)})
    return TrainConfig(model=model, **{n: getattr(a, n) for n in cli_fields(TrainConfig)})


def with_events(ds: Dataset, path: Path | None) -> tuple[Dataset, pd.DataFrame | None]:
    """The events file's ratings in the data set's id types, and ``ds`` with the file's sha256 and
    ``events_through`` (its newest ``receivedAt``, the export's watermark) recorded; ``(ds, None)`` without one.

    Ids follow ``contract.canonical_id``: an event whose user or movie id the data set cannot hold (a visitor's
    text id, or ``"019"``, in an integer-id data set) is left out, and the count is printed.
    """
    if path is None:
        return ds, None
    from contract.events_file import HEADER, RECEIVED
    from training.data import read_ratings_file

    user_col, movie_col = HEADER[0], HEADER[1]

    events = read_ratings_file(path, ds.rating_scale)  # checks the file (ratings, timestamps) and names bad lines
    # The ids as written: the reader makes an all-numeric column int64, which would fold "019" and "19.0" into 19.
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    written = {"user_id": user_col, "movie_id": movie_col}
    keep = pd.Series(True, index=events.index)
    for col in ("user_id", "movie_id"):
        ids = raw[written[col]] if written[col] in raw and len(raw) == len(events) else events[col].astype(str)
        ids = ids.set_axis(events.index)
        if ds.ratings[col].dtype.kind in "iu":
            events[col] = ids.map(integer_id)
            keep &= events[col].notna()
        else:
            events[col] = ids.map(canonical_id)
    left_out = int((~keep).sum())
    if left_out:
        print(f"{path}: {left_out:,} events have ids this data set cannot hold; left out", file=sys.stderr)
    events = events[keep].astype({c: ds.ratings[c].dtype for c in ds.ratings.columns if c in events.columns})
    if RECEIVED in raw:
        stored = pd.to_numeric(raw[RECEIVED], errors="coerce").dropna()
        through = int(stored.max()) if len(stored) else None
    else:  # not written by python -m infra.events_export
        through = None
        print(f"{path}: no {RECEIVED} column; the served model will fold these events in again", file=sys.stderr)
    files = {**ds.files, path.name: sha256_file(path)}
    return replace(ds, files=files, events_through=through), events[ds.ratings.columns].reset_index(drop=True)


def add_events(
    train: pd.DataFrame, test: pd.DataFrame | None, events: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Every event into the training part (the split is drawn on the data set alone, so none lands in the test
    part): an event replaces the user's earlier rating of the movie, the later of two events wins, and a test
    rating an event re-rates leaves the test part (the event is the user's newer word on it)."""
    if events is None or not len(events):
        return train, test
    merged = pd.concat([train, events], ignore_index=True)
    merged = merged.drop_duplicates(["user_id", "movie_id"], keep="last").reset_index(drop=True)
    if test is not None and len(test):
        # compared as text: a test file read on its own may hold the ids as int64 where the data set has strings
        def pairs(df: pd.DataFrame) -> pd.MultiIndex:
            return pd.MultiIndex.from_arrays([df["user_id"].astype(str), df["movie_id"].astype(str)])

        test = test[~pairs(test).isin(pairs(events))].reset_index(drop=True)
    return merged, test


def load_data(a: argparse.Namespace) -> tuple[Dataset, SplitSpec, pd.DataFrame, pd.DataFrame | None]:
    """The data set, the split and the (train, test) ratings the arguments describe."""
    if a.ratings and a.dataset:
        raise DataError("give either --dataset or --ratings, not both")
    kind = a.split or ("files" if a.test_file else "random")
    if kind == "files":
        if not a.test_file:
            raise DataError("--split files needs --test-file (u1..u5/ua/ub, or a ratings file)")
        if a.test_file in {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}:
            ds, test = load_100k_split(a.test_file, a.data_dir)
        else:
            ds = (
                load_ratings_file(a.ratings, a.movies, a.rating_scale)
                if a.ratings
                else load_dataset(a.dataset or "ml-latest-small", a.data_dir)
            )
            from training.data import read_ratings_file

            test = read_ratings_file(a.test_file, ds.rating_scale)
        ds, events = with_events(ds, getattr(a, "events", None))
        spec = SplitSpec(kind="files", seed=a.seed, test_file=a.test_file)
        return ds, spec, *add_events(ds.ratings, test, events)
    ds = (
        load_ratings_file(a.ratings, a.movies, a.rating_scale)
        if a.ratings
        else load_dataset(a.dataset or "ml-latest-small", a.data_dir)
    )
    ds, events = with_events(ds, getattr(a, "events", None))
    spec = SplitSpec(
        kind=kind,
        seed=42 if kind == "random" and a.seed == TrainConfig().seed else a.seed,
        test_fraction=a.test_fraction,
        leave_last=a.leave_last,
        folds=a.folds,
        fold=a.fold,
    )
    mask = train_mask(ds.ratings, spec)
    train, test = ds.ratings[mask].reset_index(drop=True), ds.ratings[~mask].reset_index(drop=True)
    return ds, spec, *add_events(train, test, events)
