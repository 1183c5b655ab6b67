"""Load MovieLens (every published format), Amazon review JSON lines and plain ratings CSVs.

Everything becomes one normalised ratings table ``(user_id, movie_id, rating, timestamp)`` in
file order, plus a movies table ``(movie_id, title, year, genres)``. Ids are opaque: they stay
integers when every id in the file is an integer and strings otherwise.

Bad data raises :class:`DataError` naming the file and line. Duplicate ``(user, movie)`` rows
follow one documented rule: the rating with the latest timestamp wins (the later row in the file
on a tie); the number dropped is reported in ``Dataset.duplicates_dropped``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from contract import sha256_file

log = logging.getLogger(__name__)

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/{name}.zip"

# name -> (folder inside the zip, format)
DATASETS: dict[str, tuple[str, str]] = {
    "ml-latest-small": ("ml-latest-small", "csv"),
    "ml-latest": ("ml-latest", "csv"),
    "ml-20m": ("ml-20m", "csv"),
    "ml-25m": ("ml-25m", "csv"),
    "ml-32m": ("ml-32m", "csv"),
    "ml-100k": ("ml-100k", "100k"),
    "ml-1m": ("ml-1m", "dat"),
    "ml-10m": ("ml-10M100K", "dat"),
}

# sha256 of files whose release is fixed; other files are checked against GroupLens's .md5 at download.
KNOWN_SHA256: dict[tuple[str, str], str] = {
    ("ml-latest-small", "ratings.csv"): "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    ("ml-latest-small", "movies.csv"): "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    ("ml-100k", "u.data"): "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    ("ml-100k", "u.item"): "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    ("ml-100k", "u1.base"): "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    ("ml-100k", "u1.test"): "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
}

ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]

RATINGS_COLUMNS = ("user_id", "movie_id", "rating", "timestamp")
_COLUMN_ALIASES = {
    "user_id": ("user_id", "userid", "user", "reviewerid", "uid"),
    "movie_id": ("movie_id", "movieid", "item_id", "itemid", "item", "movie", "asin", "iid"),
    "rating": ("rating", "overall", "score", "stars"),
    "timestamp": ("timestamp", "unixreviewtime", "time", "ts"),
    "title": ("title", "name"),
    "genres": ("genres", "genre", "categories"),
}
_YEAR_RE = re.compile(r"\((\d{4})\)\s*$")


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file (and line)."""


@dataclass
class Dataset:
    """A loaded data set: normalised ratings and movies, and where they came from."""

    name: str
    ratings: pd.DataFrame  # user_id, movie_id, rating (float32), timestamp (int64), in file order
    movies: pd.DataFrame  # movie_id, title, year (float, NaN if unknown), genres (list[str])
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    rating_scale: tuple[float, float] = (0.5, 5.0)
    duplicates_dropped: int = 0
    directory: Path | None = None
    # With training.train --events: the newest stored event's receivedAt (epoch ms) in the events file.
    events_through: int | None = None


# --------------------------------------------------------------------------- locating data


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``--data-dir``, else ``RECSYS_DATA_DIR``, else ``./data``."""
    return Path(data_dir or os.environ.get("RECSYS_DATA_DIR") or "data")


def dataset_dir(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Folder holding data set ``name``, downloading the official GroupLens zip if it is missing."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)} (or pass --ratings FILE)")
    root = data_root(data_dir)
    folder = root / DATASETS[name][0]
    marker = (
        "u.data" if DATASETS[name][1] == "100k" else ("ratings.dat" if DATASETS[name][1] == "dat" else "ratings.csv")
    )
    if (folder / marker).exists():
        return folder
    if not download:
        raise DataError(f"{folder / marker} not found")
    download_dataset(name, root)
    return folder


def download_dataset(name: str, root: Path, url: str | None = None) -> Path:
    """Download ``name``'s zip with a progress bar, verify GroupLens's published MD5, extract into ``root``."""
    from tqdm import tqdm

    url = url or GROUPLENS_URL.format(name=name)
    tried = f"looked in {root / DATASETS[name][0]} (from --data-dir, RECSYS_DATA_DIR or ./data) and tried {url}"
    root.mkdir(parents=True, exist_ok=True)
    part = root / f".{name}.zip.part"
    try:
        with urllib.request.urlopen(url + ".md5", timeout=30) as resp:
            expected_md5 = resp.read().decode().split()[0].lower()
        md5 = hashlib.md5()
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as tmp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    tmp.write(chunk)
                    md5.update(chunk)
                    bar.update(len(chunk))
        if md5.hexdigest() != expected_md5:
            raise DataError(f"checksum mismatch for {url}: md5 {md5.hexdigest()}, published {expected_md5}")
        with zipfile.ZipFile(part) as zf:
            zf.extractall(root)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(
            f"data set {name} is not available locally and could not be downloaded ({exc}); {tried}. "
            "Set RECSYS_DATA_DIR to a folder that holds it (or pass --data-dir)."
        ) from exc
    finally:
        part.unlink(missing_ok=True)
    return root / DATASETS[name][0]


# --------------------------------------------------------------------------- parsing helpers


def _lines_of(index: pd.Index, first_line: int) -> np.ndarray:
    return np.asarray(index, dtype=np.int64) + first_line


def _fail(path: Path, line: int, message: str) -> DataError:
    return DataError(f"{path}:{line}: {message}")


def _parse_ids(values: pd.Series, path: Path, lines: np.ndarray, what: str, integer: bool) -> pd.Series:
    """Ids as int64 when ``integer`` or when all are integers; else stripped strings. Empty ids fail."""
    s = values.astype("string").str.strip()
    bad = s.isna() | (s == "")
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(path, int(lines[k]), f"missing {what}")
    as_int = pd.to_numeric(s, errors="coerce")
    not_int = as_int.isna() | (as_int != np.floor(as_int))
    if not not_int.any():
        return as_int.astype(np.int64)
    if integer:
        k = int(np.flatnonzero(not_int.to_numpy())[0])
        raise _fail(path, int(lines[k]), f"{what} {s.iloc[k]!r} is not an integer id")
    return s.astype(object)


def _parse_ratings(values: pd.Series, path: Path, lines: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    r = pd.to_numeric(values, errors="coerce")
    bad = r.isna().to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise _fail(path, int(lines[k]), f"rating {values.iloc[k]!r} is not a number")
    r = r.to_numpy(dtype=np.float64)
    out = (r < scale[0]) | (r > scale[1])
    if out.any():
        k = int(np.flatnonzero(out)[0])
        raise _fail(path, int(lines[k]), f"rating {r[k]:g} is outside the scale {scale[0]:g}-{scale[1]:g}")
    return r.astype(np.float32)


def _parse_timestamps(values: pd.Series | None, n: int, path: Path, lines: np.ndarray) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=np.int64)
    t = pd.to_numeric(values, errors="coerce")
    bad = t.isna().to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise _fail(path, int(lines[k]), f"timestamp {values.iloc[k]!r} is not a number")
    return t.to_numpy(dtype=np.float64).astype(np.int64)


def _normalise(
    frame: pd.DataFrame, path: Path, first_line: int, scale: tuple[float, float], integer_ids: bool
) -> pd.DataFrame:
    """Validate raw string columns ``user_id, movie_id, rating[, timestamp]`` into the normalised table."""
    frame = frame.dropna(how="all")
    lines = _lines_of(frame.index, first_line)
    out = pd.DataFrame(
        {
            "user_id": _parse_ids(frame["user_id"], path, lines, "user id", integer_ids),
            "movie_id": _parse_ids(frame["movie_id"], path, lines, "movie id", integer_ids),
            "rating": _parse_ratings(frame["rating"], path, lines, scale),
            "timestamp": _parse_timestamps(frame.get("timestamp"), len(frame), path, lines),
        }
    )
    return out.reset_index(drop=True)


def _read_text_table(path: Path, sep: str, names: list[str], encoding: str = "utf-8") -> pd.DataFrame:
    """Headerless separated file as strings (``::`` is handled by the fast C parser via a rewrite)."""
    try:
        if len(sep) > 1:
            raw = path.read_bytes().replace(sep.encode(), b"\x1f")
            return pd.read_csv(
                io.BytesIO(raw),
                sep="\x1f",
                header=None,
                names=names,
                dtype=str,
                encoding=encoding,
                skip_blank_lines=False,
                keep_default_na=False,
                na_values=[""],
                quoting=3,
            )
        return pd.read_csv(
            path,
            sep=sep,
            header=None,
            names=names,
            dtype=str,
            encoding=encoding,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=[""],
            quoting=3,
        )
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: {exc}") from exc
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc


def _resolve_columns(header: list[str], path: Path, wanted: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    lower = {h.strip().lower(): h for h in header}
    found = {}
    for col in wanted + optional:
        hit = next((lower[a] for a in _COLUMN_ALIASES[col] if a in lower), None)
        if hit is None and col in wanted:
            raise DataError(
                f"{path}:1: missing column {col!r} (accepted names: {', '.join(_COLUMN_ALIASES[col])}); "
                f"header is {', '.join(header)}"
            )
        if hit is not None:
            found[hit] = col
    return found


# --------------------------------------------------------------------------- ratings readers


def read_ratings_csv(
    path: str | os.PathLike, scale: tuple[float, float] = (0.5, 5.0), integer_ids: bool = False
) -> pd.DataFrame:
    """A ratings CSV with a header naming user, movie, rating and (optionally) timestamp columns."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, skip_blank_lines=False, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse as CSV ({exc})") from exc
    cols = _resolve_columns(list(raw.columns), path, ("user_id", "movie_id", "rating"), ("timestamp",))
    return _normalise(raw[list(cols)].rename(columns=cols), path, 2, scale, integer_ids)


def read_ratings_tsv(path: str | os.PathLike, scale: tuple[float, float] = (1.0, 5.0)) -> pd.DataFrame:
    """ml-100k ``u.data`` / ``uN.base`` / ``uN.test``: tab-separated user, item, rating, timestamp."""
    path = Path(path)
    raw = _read_text_table(path, "\t", list(RATINGS_COLUMNS))
    return _normalise(raw, path, 1, scale, integer_ids=True)


def read_ratings_dat(path: str | os.PathLike, scale: tuple[float, float] = (0.5, 5.0)) -> pd.DataFrame:
    """ml-1m / ml-10m ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``."""
    path = Path(path)
    raw = _read_text_table(path, "::", list(RATINGS_COLUMNS), encoding="latin-1")
    return _normalise(raw, path, 1, scale, integer_ids=True)


def read_amazon_json(path: str | os.PathLike, scale: tuple[float, float] = (1.0, 5.0)) -> pd.DataFrame:
    """Amazon review JSON lines (optionally gzipped): reviewerID, asin, overall, unixReviewTime."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows: list[tuple] = []
    lines: list[int] = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _fail(path, n, f"invalid JSON ({exc.msg})") from exc
                if not isinstance(rec, dict):
                    raise _fail(path, n, "expected a JSON object")
                missing = [k for k in ("reviewerID", "asin", "overall") if k not in rec]
                if missing:
                    raise _fail(path, n, f"missing field(s) {', '.join(missing)}")
                rows.append((rec["reviewerID"], rec["asin"], rec["overall"], rec.get("unixReviewTime", 0)))
                lines.append(n)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    raw = pd.DataFrame(rows, columns=list(RATINGS_COLUMNS), index=np.asarray(lines, dtype=np.int64) - 1)
    return _normalise(raw.astype(str), path, 1, scale, integer_ids=False)


def read_ratings_file(path: str | os.PathLike, scale: tuple[float, float] | None = None) -> pd.DataFrame:
    """Any supported ratings file, by its name and first line."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
        return read_amazon_json(path, scale or (1.0, 5.0))
    if name.endswith(".dat"):
        return read_ratings_dat(path, scale or (0.5, 5.0))
    if re.fullmatch(r"(u\.data|u\d\.(base|test)|u[ab]\.(base|test))", name):
        return read_ratings_tsv(path, scale or (1.0, 5.0))
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    if "\t" in first and "," not in first:
        return read_ratings_tsv(path, scale or (0.5, 5.0))
    return read_ratings_csv(path, scale or (0.5, 5.0))


# --------------------------------------------------------------------------- movies readers


def _year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(_YEAR_RE, expand=False), errors="coerce").astype(float)


def _movies_frame(ids: pd.Series, titles: pd.Series, genres: list[list[str]], years: pd.Series | None = None):
    titles = titles.fillna("").astype(str).str.strip()
    return pd.DataFrame(
        {
            "movie_id": ids.to_numpy(),
            "title": titles.to_numpy(),
            "year": (years if years is not None else _year_from_title(titles)).to_numpy(dtype=float),
            "genres": genres,
        }
    )


def _split_genres(values: pd.Series) -> list[list[str]]:
    return [
        [] if not isinstance(g, str) or g in ("", "(no genres listed)") else [x for x in g.split("|") if x]
        for g in values
    ]


def read_movies_csv(path: str | os.PathLike, integer_ids: bool = False) -> pd.DataFrame:
    """movies.csv: a movie id column, title (year in parentheses) and ``|``-separated genres."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse as CSV ({exc})") from exc
    cols = _resolve_columns(list(raw.columns), path, ("movie_id",), ("title", "genres"))
    raw = raw[list(cols)].rename(columns=cols)
    ids = _parse_ids(raw["movie_id"], path, _lines_of(raw.index, 2), "movie id", integer_ids)
    titles = raw["title"] if "title" in raw else ids.astype(str)
    genres = _split_genres(raw["genres"]) if "genres" in raw else [[] for _ in range(len(raw))]
    return _movies_frame(ids, titles, genres)


def read_movies_dat(path: str | os.PathLike) -> pd.DataFrame:
    """ml-1m / ml-10m ``movies.dat``: ``MovieID::Title::Genres``."""
    path = Path(path)
    raw = _read_text_table(path, "::", ["movie_id", "title", "genres"], encoding="latin-1").dropna(how="all")
    ids = _parse_ids(raw["movie_id"], path, _lines_of(raw.index, 1), "movie id", True)
    return _movies_frame(ids, raw["title"], _split_genres(raw["genres"]))


def read_movies_100k(path: str | os.PathLike) -> pd.DataFrame:
    """ml-100k ``u.item``: id|title|release date|video date|url|19 genre flags (latin-1)."""
    path = Path(path)
    names = ["movie_id", "title", "release", "video", "url", *ML100K_GENRES]
    raw = _read_text_table(path, "|", names, encoding="latin-1").dropna(how="all")
    ids = _parse_ids(raw["movie_id"], path, _lines_of(raw.index, 1), "movie id", True)
    flags = raw[ML100K_GENRES].fillna("0").to_numpy() == "1"
    genres = [[g for g, on in zip(ML100K_GENRES, row, strict=True) if on and g != "unknown"] for row in flags]
    years = _year_from_title(raw["title"].fillna(""))
    release_year = pd.to_numeric(raw["release"].str[-4:], errors="coerce")
    return _movies_frame(ids, raw["title"], genres, years.fillna(release_year))


def placeholder_movies(movie_ids: pd.Series) -> pd.DataFrame:
    """Metadata for items with none: the id as title, no year, no genres."""
    ids = pd.Series(pd.unique(movie_ids))
    return _movies_frame(ids, ids.astype(str), [[] for _ in range(len(ids))], pd.Series(np.nan, index=ids.index))


# --------------------------------------------------------------------------- assembling


def drop_duplicates(ratings: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep the latest-timestamp rating of each (user, movie), the later row on a tie; keeps file order."""
    order = np.lexsort((np.arange(len(ratings)), ratings["timestamp"].to_numpy()))
    keep = ~ratings.iloc[order].duplicated(subset=["user_id", "movie_id"], keep="last")
    kept_rows = np.sort(order[keep.to_numpy()])
    dropped = len(ratings) - len(kept_rows)
    if dropped:
        log.warning("dropped %d duplicate (user, movie) ratings, keeping the latest of each", dropped)
    return ratings.iloc[kept_rows].reset_index(drop=True), dropped


def _complete_movies(movies: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    """Movies table covering every rated movie (placeholders for unknown ones), ids of the ratings' type."""
    if ratings["movie_id"].dtype != object and movies["movie_id"].dtype == object:
        movies = movies.assign(movie_id=pd.to_numeric(movies["movie_id"], errors="coerce")).dropna(subset=["movie_id"])
        movies["movie_id"] = movies["movie_id"].astype(np.int64)
    elif ratings["movie_id"].dtype == object and movies["movie_id"].dtype != object:
        movies = movies.assign(movie_id=movies["movie_id"].astype(str))
    movies = movies.drop_duplicates("movie_id", keep="first")
    missing = ~pd.Series(pd.unique(ratings["movie_id"])).isin(movies["movie_id"])
    if missing.any():
        extra = placeholder_movies(pd.Series(pd.unique(ratings["movie_id"]))[missing.to_numpy()])
        movies = pd.concat([movies, extra], ignore_index=True)
    return movies.reset_index(drop=True)


def _assemble(name, ratings, movies, files, scale, directory=None) -> Dataset:
    if ratings.empty:
        raise DataError(f"{name}: no ratings found")
    ratings, dropped = drop_duplicates(ratings)
    movies = _complete_movies(movies, ratings)
    hashes = {Path(f).name: sha256_file(Path(f)) for f in files}
    if directory is not None:
        for fname, digest in hashes.items():
            known = KNOWN_SHA256.get((name, fname))
            if known and known != digest:
                log.warning("%s/%s differs from the published release (sha256 %s)", name, fname, digest[:12])
    return Dataset(name, ratings, movies, hashes, scale, dropped, directory)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load a MovieLens data set by name (``ml-latest-small``, ``ml-100k``, ``ml-1m``, ...)."""
    folder = dataset_dir(name, data_dir, download)
    fmt = DATASETS[name][1]
    if fmt == "csv":
        ratings_f, movies_f = folder / "ratings.csv", folder / "movies.csv"
        ratings = read_ratings_csv(ratings_f, (0.5, 5.0), integer_ids=True)
        movies = (
            read_movies_csv(movies_f, integer_ids=True)
            if movies_f.exists()
            else placeholder_movies(ratings["movie_id"])
        )
        scale = (0.5, 5.0)
    elif fmt == "100k":
        ratings_f, movies_f = folder / "u.data", folder / "u.item"
        ratings = read_ratings_tsv(ratings_f)
        movies = read_movies_100k(movies_f) if movies_f.exists() else placeholder_movies(ratings["movie_id"])
        scale = (1.0, 5.0)
    else:
        ratings_f, movies_f = folder / "ratings.dat", folder / "movies.dat"
        scale = (1.0, 5.0) if name == "ml-1m" else (0.5, 5.0)
        ratings = read_ratings_dat(ratings_f, scale)
        movies = read_movies_dat(movies_f) if movies_f.exists() else placeholder_movies(ratings["movie_id"])
    files = [f for f in (ratings_f, movies_f) if f.exists()]
    return _assemble(name, ratings, movies, files, scale, folder)


def load_ratings_file(
    ratings: str | os.PathLike, movies: str | os.PathLike | None = None, scale: tuple[float, float] | None = None
) -> Dataset:
    """Load any ratings file given by path (CSV, ml-100k TSV, ``.dat``, Amazon JSON lines) plus optional movies."""
    ratings = Path(ratings)
    table = read_ratings_file(ratings, scale)
    if movies is None:
        movie_table = placeholder_movies(table["movie_id"])
    else:
        movies = Path(movies)
        if movies.name == "u.item":
            movie_table = read_movies_100k(movies)
        elif movies.suffix == ".dat":
            movie_table = read_movies_dat(movies)
        else:
            movie_table = read_movies_csv(movies)
    used_scale = scale or (
        (1.0, 5.0) if ratings.name.lower().endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")) else (0.5, 5.0)
    )
    files = [ratings] + ([movies] if movies is not None else [])
    return _assemble(ratings.name, table, movie_table, files, used_scale)


def load_100k_split(fold: str = "u1", data_dir: str | os.PathLike | None = None) -> tuple[Dataset, pd.DataFrame]:
    """The canonical ml-100k split files (``u1``..``u5``, ``ua``, ``ub``): (training data set, test ratings)."""
    if not re.fullmatch(r"u[1-5ab]", fold):
        raise DataError(f"unknown ml-100k split {fold!r}; use u1..u5, ua or ub")
    folder = dataset_dir("ml-100k", data_dir)
    base, test = folder / f"{fold}.base", folder / f"{fold}.test"
    movies = read_movies_100k(folder / "u.item")
    ds = _assemble(f"ml-100k/{fold}", read_ratings_tsv(base), movies, [base, test, folder / "u.item"], (1.0, 5.0))
    return ds, read_ratings_tsv(test)


def copy_dataset_files(ds: Dataset, dest: Path) -> None:  # pragma: no cover - convenience for reproducibility
    """Copy the source files of ``ds`` into ``dest`` (not used by the product; handy for archiving runs)."""
    if ds.directory:
        for fname in ds.files:
            shutil.copy2(ds.directory / fname, dest / fname)
