"""The movie index document (``movies.json.gz``): what ``model_export.export`` writes into every artifact and the API
function reads for ``GET /movies`` and the page's titles (search: ``lambdas.service.movie_index``).

Columns rather than records, so that it compresses and loads fast: ``format`` (:data:`FORMAT`), ``genres`` (names),
``example_users``, and per movie in catalogue order ``ids``, ``titles``, ``years`` (or null), ``genre_ids``
(indices into ``genres``), ``n_ratings``, ``mean_ratings``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from typing import Any

FILENAME = "movies.json.gz"
FORMAT = 1


class MovieIndexError(ValueError):
    """The index document is unreadable or of another format."""


def build_document(
    ids: Sequence[int | str],
    titles: Sequence[str],
    years: Sequence[int | None],
    genres: Sequence[Sequence[str]],
    n_ratings: Sequence[int],
    mean_ratings: Sequence[float],
    example_users: Sequence[int | str] = (),
) -> dict[str, Any]:
    """The index document ``movies.json.gz`` holds (columns, so that it compresses and loads fast)."""
    names = sorted({g for gs in genres for g in gs})
    col = {g: j for j, g in enumerate(names)}
    return {
        "format": FORMAT,
        "genres": names,
        "example_users": list(example_users),
        "ids": list(ids),
        "titles": [str(t) for t in titles],
        "years": [int(y) if y else None for y in years],
        "genre_ids": [[col[g] for g in gs] for gs in genres],
        "n_ratings": [int(n) for n in n_ratings],
        "mean_ratings": [round(float(m), 3) for m in mean_ratings],
    }


def dump(document: dict[str, Any]) -> bytes:
    """The document as gzipped JSON (deterministic bytes: the artifact's content hash depends on them)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def load(data: bytes) -> dict[str, Any]:
    """The document from the bytes of ``movies.json.gz`` (its format checked; the columns are the reader's to check)."""
    try:
        document = json.loads(gzip.decompress(data))
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MovieIndexError(f"movie index unreadable ({exc})") from exc
    if not isinstance(document, dict):
        raise MovieIndexError("movie index unreadable (not a JSON object)")
    check_format(document)
    return document


def check_format(document: dict[str, Any]) -> None:
    if document.get("format") != FORMAT:
        raise MovieIndexError(f"movie index format {document.get('format')!r}, expected {FORMAT}")
