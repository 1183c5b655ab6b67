"""Which stored events train a candidate and which judge it: pure functions of the events, the forgotten users and
the served model's ``events_through``.

Held out: the newest ``holdout_share`` of the events stored since the served model's ``events_through``, cut at one
storage time (``cutoff``, epoch ms) so that every held-out event is newer than every training event. The
candidate is trained on the base data plus every event stored up to the cutoff, so its ``events_through`` is at most
the cutoff and, once it is published, the engine folds the held-out events in at request time as it does every
event newer than the served model: holding out loses nothing. Both models are judged on the held-out events with
each user's other events folded in, as users get them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lambdas.loop.table import Row


@dataclass(frozen=True)
class Plan:
    """A run's split of the events, or why there is nothing to do (``reason``)."""

    train: list[Row] = field(default_factory=list)
    heldout: list[Row] = field(default_factory=list)
    new: int = 0  # events stored since the served model's events_through
    cutoff: int | None = None  # the newest training event's storage time (epoch ms)
    reason: str = ""

    @property
    def nothing_to_do(self) -> bool:
        return bool(self.reason)


def without_forgotten(events: list[Row], forgotten: dict[str, int]) -> list[Row]:
    """The events of everyone but the forgotten users (an event stored after the user was forgotten, by the same id
    coming back, is kept: it is a new word, not what was forgotten)."""
    return [r for r in events if r[0] not in forgotten or r[4] > forgotten[r[0]]]


def split(events: list[Row], served_through: int | None, holdout_share: float) -> Plan:
    """The candidate's training events and the held-out ones (see the module's docstring)."""
    new = sorted((r for r in events if served_through is None or r[4] > served_through), key=lambda r: r[4])
    if not new:
        return Plan(reason="no events stored since the served model was trained")
    n_held = max(1, math.ceil(len(new) * holdout_share))
    first_held = new[len(new) - n_held][4]  # events stored in the same millisecond go to one side: held out
    train = [r for r in events if r[4] < first_held]
    if not any(served_through is None or r[4] > served_through for r in train):
        return Plan(new=len(new), reason=f"{len(new)} new event(s): too few to hold any out and train on the rest")
    heldout = [r for r in new if r[4] >= first_held]
    return Plan(train=train, heldout=heldout, new=len(new), cutoff=max(r[4] for r in train))
