"""The events file: what ``python -m infra.events_export`` writes and ``python -m training.train --events`` reads.

A CSV with MovieLens's ratings header plus ``receivedAt`` (when the API stored the event, epoch ms), one row per
stored event, sorted by user and time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import IO

RECEIVED = "receivedAt"
HEADER = ("userId", "movieId", "rating", "timestamp", RECEIVED)

Row = tuple[str, str, float, int, int]  # user, movie, rating, timestamp (epoch s), receivedAt (epoch ms)


def write_rows(f: IO[str], rows: Iterable[Row]) -> None:
    """The header and ``rows`` to an open text file (``newline=""``)."""
    w = csv.writer(f, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows((u, m, f"{r:g}", t, at) for u, m, r, t, at in rows)


def read_rows(path: str | Path) -> list[Row]:
    """An events file's rows, as :func:`write_rows` wrote them."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        return [(u, m, float(r), int(t), int(at)) for u, m, r, t, at in reader]
