"""Movie-side features for the deep branch: genres (multi-hot) and release year.

:func:`encode_items` turns the movies table into one float32 row per model item, in the model's item order:

* one column per genre of the vocabulary (by default every genre the training catalogue has, sorted; the
  MovieLens placeholder ``(no genres listed)`` is no genre). Genres outside the vocabulary are ignored, so a
  vocabulary fixed at training time encodes any later metadata;
* ``year``: ``(release year - 2000) / 20``; a movie without a known year gets the median year of the others
  and ``year_missing`` = 1 (a movie absent from the movies table counts as no genre and no year).

:func:`scale_time` puts rating times on the year column's scale, so the first deep layer can form the movie's
age at rating time (time - year) from the two; at serving the time is the last training rating's
(docs/training.md, "Time feature").

The table is a constant of the trained model (a frozen embedding), so the exported item part of the first deep
layer already contains it and serving needs no new input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

NO_GENRE = "(no genres listed)"
SECONDS_PER_YEAR = 365.25 * 86_400
YEAR_ORIGIN, YEAR_SCALE = 2000.0, 20.0


def has_metadata(movies: pd.DataFrame | None) -> bool:
    """Whether a movies table gives any movie a genre or a release year (what the features are made of)."""
    if movies is None or movies.empty:
        return False
    genres = movies["genres"].map(lambda gs: any(g and g != NO_GENRE for g in gs)).any()
    return bool(genres or movies["year"].fillna(0).gt(0).any())


def genre_vocabulary(movies: pd.DataFrame, item_ids: Iterable | None = None) -> list[str]:
    """Sorted genres of the given items (all movies when ``item_ids`` is None), the placeholder excluded."""
    rows = movies if item_ids is None else movies[movies["movie_id"].isin(pd.Index(list(item_ids)))]
    return sorted({g for gs in rows["genres"] for g in gs if g and g != NO_GENRE})


def encode_items(
    movies: pd.DataFrame, item_ids: Sequence, vocabulary: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """``([len(item_ids), F] float32, feature names)`` for the items in model order."""
    vocabulary = list(vocabulary) if vocabulary is not None else genre_vocabulary(movies, item_ids)
    column = {g: j for j, g in enumerate(vocabulary)}
    by_id = movies.drop_duplicates("movie_id").set_index("movie_id")
    n = len(item_ids)
    genres = np.zeros((n, len(vocabulary)), np.float32)
    years = np.full(n, np.nan)
    known = pd.Index(by_id.index)
    for row, mid in enumerate(item_ids):
        if mid not in known:
            continue
        meta = by_id.loc[mid]
        for g in meta["genres"]:
            j = column.get(g)
            if j is not None:
                genres[row, j] = 1.0
        year = meta.get("year")
        if year is not None and not pd.isna(year) and year > 0:
            years[row] = float(year)
    missing = np.isnan(years)
    fill = float(np.median(years[~missing])) if (~missing).any() else YEAR_ORIGIN
    years = np.where(missing, fill, years)
    year_col = ((years - YEAR_ORIGIN) / YEAR_SCALE).astype(np.float32)[:, None]
    matrix = np.hstack([genres, year_col, missing.astype(np.float32)[:, None]])
    return matrix, [f"genre:{g}" for g in vocabulary] + ["year", "year_missing"]


def scale_time(timestamps) -> np.ndarray:
    """Unix seconds as the deep branch's time input: (calendar year - 2000) / 20, on the release year's scale."""
    years = 1970.0 + np.asarray(timestamps, np.float64) / SECONDS_PER_YEAR
    return ((years - YEAR_ORIGIN) / YEAR_SCALE).astype(np.float32)
