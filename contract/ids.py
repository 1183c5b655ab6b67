"""User and movie ids: one canonical form for the API, the events table, the engine and training."""

from __future__ import annotations

import re

# An integer id written the one way str(int) writes it: "19" is the id 19; "019", "+19", "-0" and "19.0" are not.
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


def canonical_id(raw: object) -> str:
    """A user or movie id as one string, the same for the API, the events table and the engine: ``19`` and
    ``"19"`` are one id, surrounding spaces are not part of it (``" 19"`` is ``"19"``), and nothing else is folded
    (``"019"`` stays ``"019"``: a different id, as it is in a text-id data set)."""
    return str(raw).strip()


def integer_id(raw: object) -> int | None:
    """The integer an id names in an integer-id model (``"19"`` and ``19``: 19), or None (``"019"``, ``"abc"``)."""
    if type(raw) is int:  # the common case (JSON and DynamoDB numbers), and str(int) always matches _INTEGER
        return raw
    text = canonical_id(raw)
    return int(text) if _INTEGER.fullmatch(text) else None
