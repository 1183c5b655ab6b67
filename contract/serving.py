"""What is served: the model-version parameter's value, either one version or an experiment (two versions at once).

The SSM parameter every reader already polls (the worker, the API function, the retraining loop, the operator's
CLIs) holds either a bare version (``9c6a300be54b4be1``: everyone gets it) or, while a candidate is tried on a share
of users, a JSON document::

    {"served": "9c6a...", "candidate": "1e95...", "share": 0.1, "experiment": "exp-20261208-0042",
     "started_at": 1765154520, "window_days": 7, "min_users": 200}

Keeping both in one value makes every change atomic (promote: the value becomes the candidate's version; roll back:
the served one's) and lets each reader switch at the same cache time. Users are assigned by a stable hash of their
id salted with the experiment's id (:func:`assign`), so one user sees one variant for the whole experiment, whatever
else runs; callers without a user id (a visitor's ratings, similar movies) get the served model.

Standard library only: the worker, the API, the loop and the CLIs all read it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

SERVED = "served"
CANDIDATE = "candidate"
VARIANTS = (SERVED, CANDIDATE)
_SCALE = float(2**64)


@dataclass(frozen=True)
class Experiment:
    """A candidate version tried on ``share`` of users beside the served one."""

    served: str
    candidate: str
    share: float
    experiment: str
    started_at: int  # epoch seconds
    window_days: float = 7.0
    min_users: int = 200  # per variant, before a decision may be made early

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise ValueError(f"share must be between 0 and 1 (exclusive), not {self.share}")
        if not self.served or not self.candidate or self.served == self.candidate:
            raise ValueError("an experiment needs two different versions")

    def version_of(self, variant: str) -> str:
        return self.candidate if variant == CANDIDATE else self.served


@dataclass(frozen=True)
class Serving:
    """The parsed parameter: the served version, and the experiment if one runs."""

    served: str
    experiment: Experiment | None = None

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.served,) if self.experiment is None else (self.served, self.experiment.candidate)

    def version_of(self, variant: str) -> str:
        """The version a variant gets (without an experiment, everyone the served one)."""
        return self.served if self.experiment is None else self.experiment.version_of(variant)


def parse(value: str) -> Serving:
    """The parameter's value as :class:`Serving` (a bare version, or an experiment's JSON document)."""
    text = value.strip()
    if not text.startswith("{"):
        return Serving(text)
    try:
        doc = json.loads(text)
        known = {f.name for f in fields(Experiment)}
        experiment = Experiment(**{k: v for k, v in doc.items() if k in known})  # later fields: ignored here
    except (TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the served-version parameter is neither a version nor an experiment: {exc}") from exc
    return Serving(experiment.served, experiment)


def render(serving: Serving | Experiment | str) -> str:
    """The parameter's value for a version, an experiment, or a :class:`Serving`."""
    if isinstance(serving, str):
        return serving
    if isinstance(serving, Serving):
        return serving.served if serving.experiment is None else render(serving.experiment)
    return json.dumps(asdict(serving), sort_keys=True, separators=(",", ":"))


def bucket(experiment_id: str, user: str) -> float:
    """A user's place in [0, 1) for an experiment: uniform, stable, independent between experiments."""
    digest = hashlib.sha256(f"{experiment_id}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(serving: Serving, user: str | None) -> str:
    """The variant a user sees: the candidate for ``share`` of user ids, else (or without a user) the served one."""
    experiment = serving.experiment
    if experiment is None or user is None:
        return SERVED
    return CANDIDATE if bucket(experiment.experiment, user) < experiment.share else SERVED
