"""What the retraining loop costs a week (docs/retraining.md), at two data shapes, beside Amazon Personalize's
training charges for the same data.

The training time is measured here (``make bench-replay`` for ml-latest-small's shape; the 25M shape from the
measured epoch time of docs/results.md, "Time to learn", times the epochs the served configuration runs) and taken
as the time on the documented instance: ``ml.m5.xlarge`` has 4 vCPUs, that is 2 physical cores, as this machine has
(no speed-up assumed; a GPU type was not measured, there is no GPU here).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.costs.bill import Line
from infra.costs.prices import PRICES, Prices

WEEKS_PER_MONTH = 52 / 12
EVENT_KB = 0.35  # an event item and its index entry (infra/costs/bill.py, table (a3))
TRANSITIONS_PER_RUN = 9  # Gather, the choice, Train, Judge, the choice, the end state, plus the start and retries
JOB_OVERHEAD_H = 0.1  # SageMaker's instance start, image pull and channel download before the program runs


@dataclass(frozen=True)
class Shape:
    """A deployment's data: base ratings, events stored a week, and what training them takes here."""

    name: str
    base_ratings: int
    base_gb: float  # the base data's CSV files in S3
    events_per_week: int
    train_hours: float  # training, export and the held-out judging, measured here (see the module's docstring)
    source: str
    personalize_training_hours: float  # Personalize's billed training hours for one training of the same data
    instance: str = "ml.m5.xlarge"
    artifact_gb: float = 0.05


SHAPES = (
    Shape(
        "ml-latest-small (100,836 ratings, 9,742 movies)",
        base_ratings=100_836,
        base_gb=0.0033,
        events_per_week=10_000,
        # make bench-replay (2026-12-07): each retraining (gather, training, export, judging, publish) took 219-295 s
        # on ml-latest-small's shape, the local stack running beside it; the slowest is counted
        train_hours=295 / 3600,
        source="measured: make bench-replay, 2026-12-07",
        # AWS's Personalize FAQ: 2.135 training hours for MovieLens's 100k interactions
        personalize_training_hours=2.135,
    ),
    Shape(
        "ml-25m shape (25 M ratings, 62,000 movies)",
        base_ratings=25_000_000,
        base_gb=0.68,
        events_per_week=500_000,
        # about 2,000 s an epoch here (docs/results.md, "Time to learn": estimated from 651 s and 698 s runs) x 10
        # epochs; not run end to end (issue 30)
        train_hours=10 * 2000 / 3600,
        source="estimated: 10 epochs x about 2,000 s (docs/results.md)",
        # linear in interactions from the FAQ's 100k (an assumption: AWS publishes no figure for 25 M)
        personalize_training_hours=2.135 * 250,
        artifact_gb=0.4,
    ),
)


def week(shape: Shape, prices: Prices = PRICES, events_kept_weeks: float = 52.0) -> list[Line]:
    """One weekly run and a week of storage, the events table holding ``events_kept_weeks`` weeks of events; the
    last line is the total."""
    stored_events = shape.events_per_week * events_kept_weeks
    events_gb = stored_events * EVENT_KB / 1024 / 1024
    scan_rru = stored_events * EVENT_KB / 4  # a strongly consistent Scan: 1 RRU per 4 KB
    job_h = shape.train_hours + JOB_OVERHEAD_H
    lines = [
        Line(
            f"SageMaker training ({shape.instance})",
            f"{job_h:.2f} h ({shape.source}; +{JOB_OVERHEAD_H:g} h start)",
            job_h * dict(prices.sagemaker_training_hour)[shape.instance],
        ),
        Line(
            "Step Functions (standard)",
            f"{TRANSITIONS_PER_RUN} state transitions",
            TRANSITIONS_PER_RUN / 1000 * prices.sfn_per_1000_transitions,
        ),
        Line("EventBridge Scheduler", "1 invocation", prices.scheduler_per_million / 1_000_000),
        Line(
            "Gather: the events table's Scan",
            f"{stored_events / 1e6:.2f} M events, {scan_rru / 1e6:.2f} M RRU",
            scan_rru / 1_000_000 * prices.ddb_per_million_rru,
        ),
        Line(
            "Events in DynamoDB (storage + PITR, a week)",
            f"{events_gb:.2f} GB ({events_kept_weeks:g} weeks of events)",
            events_gb * (prices.ddb_storage_gb_month + prices.ddb_pitr_gb_month) / WEEKS_PER_MONTH,
        ),
        Line(
            "S3: base data, a month of runs, the model versions (a week)",
            f"{shape.base_gb + 4 * (shape.artifact_gb * 2):.2f} GB",
            (shape.base_gb + 4 * shape.artifact_gb * 2) * prices.s3_storage_gb_month / WEEKS_PER_MONTH,
        ),
    ]
    lines.append(Line("Total", "", sum(line.usd for line in lines)))
    return lines


def personalize_week(shape: Shape, prices: Prices = PRICES) -> float:
    """Personalize's training charge for one weekly retraining of the same data (its default cadence)."""
    return shape.personalize_training_hours * prices.personalize_training_hour
