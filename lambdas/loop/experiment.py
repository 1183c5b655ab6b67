"""An experiment's online figures and its decision: what users did after seeing each variant's lists.

From one scan of the events table (the loop reads it anyway): the lists shown during the experiment
(``lambdas.service.lists``) and the ratings stored after them. The unit is the user, the unit the assignment
randomises: each user counts once, by the first list the experiment showed them, followed for ``horizon_days``
from when it was shown (a list whose horizon has not passed yet is not counted).

* **hit rate**: the share of users who rated at least one movie of that list within the horizon (Wilson interval);
* **mean rating** given to the list's movies within the horizon (normal interval over those ratings);
* **liked share**: the share of the list's movies the user rated 4 or more within the horizon (Wilson interval over
  listed movies; movies of one list are not independent, so this interval is narrower than the truth).

The decision (:func:`decide`) is a one-sided non-inferiority test on hit rate: promote when the lower bound of the
candidate's hit rate minus the served model's, at ``confidence`` (normal approximation of the difference of two
proportions), is above ``-margin``; roll back otherwise once the experiment is over (its window, then the horizon for
the last lists it showed). Before that, once both variants have ``min_users`` users counted, an early look promotes
on the same rule, rolls back only when the upper bound is below ``-margin`` (worse beyond the margin), and otherwise
waits; no hit in either variant decides nothing. Repeated early looks are not corrected for (each run of the loop is
one look), which makes an early promotion somewhat likelier than the nominal level.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from contract import MANIFEST
from contract.serving import CANDIDATE, SERVED, VARIANTS, Experiment, Serving, parse, render

DAY_MS = 86_400_000
PROMOTE, ROLL_BACK, WAIT = "promote", "roll_back", "wait"


@dataclass(frozen=True)
class Shown:
    """A list shown to a user (a ``l#`` item of the events table)."""

    user: str
    request_id: str
    variant: str
    experiment: str | None
    movies: tuple[str, ...]
    listed_at: int  # epoch ms


@dataclass(frozen=True)
class Rating:
    user: str
    movie: str
    rating: float
    at: int  # epoch ms, when stored


@dataclass
class Figures:
    """One variant's counts and the three metrics with their intervals."""

    users: int = 0
    hits: int = 0
    listed: int = 0
    liked: int = 0
    ratings: list[float] = field(default_factory=list)

    def summary(self, confidence: float) -> dict[str, Any]:
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        mean = sum(self.ratings) / len(self.ratings) if self.ratings else None
        spread = None
        if len(self.ratings) > 1 and mean is not None:
            sd = math.sqrt(sum((r - mean) ** 2 for r in self.ratings) / (len(self.ratings) - 1))
            spread = z * sd / math.sqrt(len(self.ratings))
        return {
            "users": self.users,
            "hit_rate": _rate(self.hits, self.users),
            "hit_rate_interval": wilson(self.hits, self.users, z),
            "mean_rating": mean,
            "mean_rating_interval": None if spread is None or mean is None else (mean - spread, mean + spread),
            "ratings": len(self.ratings),
            "liked_share": _rate(self.liked, self.listed),
            "liked_share_interval": wilson(self.liked, self.listed, z),
        }


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def wilson(k: int, n: int, z: float) -> tuple[float, float] | None:
    """The Wilson score interval of ``k`` successes in ``n`` at the normal quantile ``z``."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def shown_and_rated(items: Iterable[dict[str, Any]]) -> tuple[list[Shown], list[Rating]]:
    """The lists and ratings among a scan's items (plain values, as ``lambdas.loop.table.scan`` yields them)."""
    from lambdas.settings import EVENTS_PARTITION_KEY, EVENTS_SORT_KEY, EVENTS_TIME_KEY

    shown, rated = [], []
    for it in items:
        key = str(it.get(EVENTS_SORT_KEY, ""))
        user = str(it.get(EVENTS_PARTITION_KEY, ""))
        if key.startswith("l#"):
            shown.append(
                Shown(
                    user,
                    str(it.get("request_id", key[2:])),
                    str(it.get("variant", SERVED)),
                    it.get("experiment"),
                    tuple(str(m) for m in it.get("movies", [])),
                    int(it["listed_at"]),
                )
            )
        elif key.startswith("e#") and "rating" in it:
            rated.append(Rating(user, _plain(it["movie_id"]), float(it["rating"]), int(it[EVENTS_TIME_KEY])))
    return shown, rated


def _plain(value: Any) -> str:
    text = str(value)
    return text[:-2] if text.endswith(".0") and text[:-2].lstrip("-").isdigit() else text


def figures(
    shown: list[Shown], rated: list[Rating], experiment: str, horizon_days: float, now_ms: int
) -> dict[str, Figures]:
    """Each variant's figures: each user once, by the first list the experiment showed them whose horizon is over."""
    horizon = int(horizon_days * DAY_MS)
    first: dict[str, Shown] = {}
    for s in sorted(shown, key=lambda s: s.listed_at):
        if s.experiment == experiment and s.user not in first:
            first[s.user] = s
    by_user: dict[str, list[Rating]] = {}
    for r in rated:
        if r.user in first:
            by_user.setdefault(r.user, []).append(r)
    out = {v: Figures() for v in VARIANTS}
    for user, s in first.items():
        if s.listed_at + horizon > now_ms or s.variant not in out:
            continue  # still being followed
        listed = set(s.movies)
        after = [r for r in by_user.get(user, []) if s.listed_at <= r.at <= s.listed_at + horizon and r.movie in listed]
        last: dict[str, float] = {}
        for r in sorted(after, key=lambda r: r.at):
            last[r.movie] = r.rating  # a movie rated twice counts by its last rating
        f = out[s.variant]
        f.users += 1
        f.hits += bool(last)
        f.listed += len(listed)
        f.liked += sum(1 for v in last.values() if v >= 4)
        f.ratings += list(last.values())
    return out


@dataclass(frozen=True)
class Decision:
    action: str  # PROMOTE, ROLL_BACK or WAIT
    reason: str
    test: str
    difference: float | None
    lower_bound: float | None
    confidence: float
    margin: float
    figures: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    experiment: Experiment,
    counts: dict[str, Figures],
    now_s: float,
    confidence: float = 0.95,
    margin: float = 0.02,
    horizon_days: float = 7.0,
) -> Decision:
    """Promote, roll back or wait (see the module's doc). The experiment is over ``horizon_days`` after its window:
    the last lists it showed have been followed for as long as the first."""
    served, candidate = counts[SERVED], counts[CANDIDATE]
    test = (
        f"one-sided non-inferiority on hit rate, margin {margin:g}, confidence {confidence:g} (normal approximation "
        "of the difference of two proportions; one list per user)"
    )
    summary = {v: counts[v].summary(confidence) for v in VARIANTS}
    over = now_s >= experiment.started_at + (experiment.window_days + horizon_days) * 86_400
    enough = min(served.users, candidate.users) >= experiment.min_users
    if not (over or enough):
        reason = (
            f"open until {experiment.window_days + horizon_days:g} days after the start (window and horizon) and "
            f"{min(served.users, candidate.users)} of {experiment.min_users} users counted in the smaller variant"
        )
        return Decision(WAIT, reason, test, None, None, confidence, margin, summary)
    if served.users == 0 or candidate.users == 0 or served.hits + candidate.hits == 0:
        reason = "no user counted in a variant, or no hit in either: nothing shows the candidate is not worse"
        return Decision(ROLL_BACK if over else WAIT, reason, test, None, None, confidence, margin, summary)
    p_c, p_s = candidate.hits / candidate.users, served.hits / served.users
    se = math.sqrt(p_c * (1 - p_c) / candidate.users + p_s * (1 - p_s) / served.users)
    z = NormalDist().inv_cdf(confidence)
    difference = p_c - p_s
    lower, upper = difference - z * se, difference + z * se
    if lower > -margin:
        action = PROMOTE
    elif over or upper < -margin:
        action = ROLL_BACK  # at the end; or early, when the candidate is worse beyond the margin at the same level
    else:
        action = WAIT  # an early look that shows neither: the window goes on
    verdict = {PROMOTE: "above", ROLL_BACK: "at or below", WAIT: "not yet above"}[action]
    reason = (
        f"hit rate {p_c:.4f} (candidate, {candidate.users} users) against {p_s:.4f} (served, {served.users}): "
        f"difference {difference:+.4f}, lower bound {lower:+.4f} {verdict} -{margin:g}"
        + ("" if over else f" (an early look: upper bound {upper:+.4f})")
    )
    return Decision(action, reason, test, difference, lower, confidence, margin, summary)


class Collector:
    """Passes a scan's items through while keeping the lists and ratings among them (one scan serves the loop's
    events and an experiment's figures)."""

    def __init__(self, since_ms: int = 0) -> None:
        """``since_ms``: the experiment's start; older lists and ratings cannot count, so they are not kept."""
        self.items: list[dict[str, Any]] = []
        self.since_ms = since_ms

    def watch(self, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for it in items:
            stamp = {"l#": "listed_at", "e#": "received_at"}.get(str(it.get("item_key", ""))[:2])
            if stamp and int(it.get(stamp, 0)) >= self.since_ms:
                self.items.append(it)
            yield it


def current(ssm: Any, parameter: str) -> Serving:
    return parse(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])


class ExperimentChanged(ValueError):
    """The experiment running now is not the one a decision was made for."""


def end(
    ssm: Any,
    s3: Any,
    parameter: str,
    bucket: str,
    model_prefix: str,
    promote: bool,
    decision: dict | None = None,
    expected: str | None = None,
) -> str:
    """End the running experiment: promote the candidate (everyone gets it) or roll back (everyone gets the served
    one), recording the outcome (and the decision) in the candidate's manifest first. Returns the version served.
    ``expected``: the experiment the decision was made for; another one running now (an operator ended it and
    started the next meanwhile) raises :class:`ExperimentChanged` and nothing is written."""
    running = current(ssm, parameter).experiment
    if running is None:
        raise ExperimentChanged("no experiment runs")
    if expected is not None and running.experiment != expected:
        raise ExperimentChanged(f"experiment {running.experiment} runs now, not {expected}: nothing applied")
    winner = running.candidate if promote else running.served
    record = {
        "experiment": running.experiment,
        "outcome": "promoted" if promote else "rolled_back",
        "ended_at": int(time.time()),
        **({"decision": decision} if decision else {}),
    }
    key = f"{model_prefix}{running.candidate}/{MANIFEST}"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({**manifest, "experiment": record}, indent=1).encode())
    ssm.put_parameter(Name=parameter, Value=render(winner), Type="String", Overwrite=True)
    return winner


def judge(
    running: Experiment,
    items: list[dict[str, Any]],
    now_s: float,
    horizon_days: float,
    confidence: float,
    margin: float,
) -> Decision:
    """The decision the items of a scan make now for the running experiment."""
    shown, rated = shown_and_rated(items)
    counts = figures(shown, rated, running.experiment, horizon_days, int(now_s * 1000))
    return decide(running, counts, now_s, confidence, margin, horizon_days)
