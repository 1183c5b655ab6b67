"""The events file: what ``python -m infra.events_export`` writes and ``python -m training.train --events`` reads.

A CSV with MovieLens's ratings header plus ``receivedAt`` (when the API stored the event, epoch ms), one row per
stored event, sorted by user and time.
"""

from __future__ import annotations

RECEIVED = "receivedAt"
HEADER = ("userId", "movieId", "rating", "timestamp", RECEIVED)
