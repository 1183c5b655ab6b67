"""The retraining loop's settings: one typed model, read from environment variables by the deployed functions
(the CDK stack sets them) and built by the local runner."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.settings import env_values

ENV_VARS = {
    "DATA_BUCKET": "data_bucket",
    "DATA_PREFIX": "data_prefix",
    "HOLDOUT_SHARE": "holdout_share",
    "GATE_MIN_USERS": "min_users",
    "GATE_NDCG_MARGIN": "ndcg_margin",
    "GATE_RMSE_MARGIN": "rmse_margin",
    "CANARY_SHARE": "canary_share",
    "EXPERIMENT_WINDOW_DAYS": "experiment_window_days",
    "EXPERIMENT_MIN_USERS": "experiment_min_users",
    "EXPERIMENT_HORIZON_DAYS": "experiment_horizon_days",
    "EXPERIMENT_CONFIDENCE": "experiment_confidence",
    "EXPERIMENT_MARGIN": "experiment_margin",
}


@dataclass(frozen=True)
class LoopSettings:
    """Where the training data live and how a candidate is judged."""

    # The bucket holding the base data and each run's files (the deployed stack's data bucket; locally the local
    # stack's bucket), under data_prefix.
    data_bucket: str = ""
    data_prefix: str = "data/"
    # The newest share of the events since the served model's, by storage time, held out of the candidate's training
    # to judge it and the served model on the same ratings.
    holdout_share: float = 0.2
    # Fewer held-out users with a liked movie than this: the gate cannot tell the two models apart and stops.
    min_users: int = 10
    # Publish only if the candidate's NDCG@10 is at least the served model's minus ndcg_margin and its RMSE at most
    # the served model's plus rmse_margin (0: not worse).
    ndcg_margin: float = 0.005
    rmse_margin: float = 0.0
    # A running experiment (contract.serving) is decided at the start of each run (lambdas.loop.experiment): a list's
    # ratings counted over experiment_horizon_days; one-sided non-inferiority on hit rate at experiment_confidence,
    # margin experiment_margin.
    # A candidate that passes the gate is served to canary_share of users as an experiment (0: to everyone at once),
    # decided after experiment_window_days (or once experiment_min_users are counted in each variant).
    canary_share: float = 0.0
    experiment_window_days: float = 7.0
    experiment_min_users: int = 200
    experiment_horizon_days: float = 7.0
    experiment_confidence: float = 0.95
    experiment_margin: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout_share < 1.0:
            raise ValueError(f"holdout_share {self.holdout_share} is not between 0 and 1")
        if not 0.0 <= self.canary_share < 1.0:
            raise ValueError(f"canary_share {self.canary_share} is not in [0, 1)")
        if self.ndcg_margin < 0 or self.rmse_margin < 0 or self.min_users < 1:
            raise ValueError("the gate's margins must be >= 0 and min_users >= 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoopSettings:
        """Settings from environment variables (``ENV_VARS``); unset or empty ones keep their default."""
        return cls(**env_values(cls, ENV_VARS, os.environ if env is None else env))
