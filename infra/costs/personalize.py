"""The managed alternative: Amazon Personalize real-time recommendations for the same traffic."""

from __future__ import annotations

import math

from infra.costs.assumptions import HOURS_PER_MONTH, MILLION
from infra.costs.prices import PRICES, Prices, tiered


def personalize_cost(
    rps: float,
    hours: float = HOURS_PER_MONTH,
    min_tps: float = 1.0,
    training_hours: float = 4 * 2.2,
    ingest_gb: float = 0.1,
    prices: Prices = PRICES,
) -> dict[str, float]:
    """Amazon Personalize real-time recommendations for ``rps`` requests/s held for ``hours`` (a campaign bills
    max(minimum provisioned TPS, actual TPS) per 5 minutes, in TPS-hours, tiered by month), plus training and data
    ingestion. Defaults: one campaign at the minimum 1 TPS; four retrainings a month at 2.2 billed training hours each
    (AWS's Personalize FAQ for 100k MovieLens interactions: 2.135 hours); 0.1 GB of events ingested. One
    GetRecommendations call per recommendation request: no status polls, but no API in front either."""
    tps_hours = max(min_tps, rps) * hours
    inference = tiered(tps_hours, prices.personalize_tps_hour_tiers)
    training = training_hours * prices.personalize_training_hour
    ingest = ingest_gb * prices.personalize_ingest_per_gb
    requests = rps * hours * 3600
    return {
        "tps_hours": tps_hours,
        "inference": inference,
        "training": training,
        "ingestion": ingest,
        "total": inference + training + ingest,
        "per_million": (inference + training + ingest) / requests * MILLION if requests else math.inf,
    }
