"""Publish or stop: the candidate against the served model, on the same held-out events (``model_export.holdout``
computes both sets of figures in the training job)."""

from __future__ import annotations

import math
from typing import Any

from lambdas.loop.settings import LoopSettings

NDCG, RECALL, RMSE = "ndcg@10", "recall@10", "rmse"


def decide(evaluation: dict[str, Any], settings: LoopSettings) -> dict[str, Any]:
    """The gate's decision and its record (stored with the version): ``publish``, ``reason``, both sets of figures
    and the margins.

    ``evaluation``: ``{"candidate": {...}, "served": {...} or None, "users": n, "pairs": n}``. With nothing served
    yet the candidate is published; with fewer than ``min_users`` judged users the gate stops (too few to tell);
    otherwise it publishes when NDCG@10 >= served - ``ndcg_margin`` and RMSE <= served + ``rmse_margin``.
    """
    candidate, served = evaluation.get("candidate") or {}, evaluation.get("served")
    users = int(evaluation.get("users", 0))
    record: dict[str, Any] = {
        "candidate": candidate,
        "served": served,
        "served_version": evaluation.get("served_version"),
        "users": users,
        "pairs": int(evaluation.get("pairs", 0)),
        "ndcg_margin": settings.ndcg_margin,
        "rmse_margin": settings.rmse_margin,
    }
    if served is None:
        return {**record, "publish": True, "reason": "no model is served yet"}
    if users < settings.min_users:
        reason = f"{users} held-out user(s) with a liked movie, fewer than {settings.min_users}: too few"
        return {**record, "publish": False, "reason": reason}
    c_ndcg, s_ndcg = float(candidate[NDCG]), float(served[NDCG])
    c_rmse, s_rmse = float(candidate[RMSE]), float(served[RMSE])
    if any(math.isnan(x) for x in (c_ndcg, s_ndcg, c_rmse, s_rmse)):
        return {**record, "publish": False, "reason": "a figure is missing (NaN): nothing to compare"}
    problems = []
    if c_ndcg < s_ndcg - settings.ndcg_margin:
        problems.append(f"NDCG@10 {c_ndcg:.4f} < served {s_ndcg:.4f} - {settings.ndcg_margin:g}")
    if c_rmse > s_rmse + settings.rmse_margin:
        problems.append(f"RMSE {c_rmse:.4f} > served {s_rmse:.4f} + {settings.rmse_margin:g}")
    if problems:
        return {**record, "publish": False, "reason": "; ".join(problems)}
    reason = f"NDCG@10 {c_ndcg:.4f} vs served {s_ndcg:.4f}, RMSE {c_rmse:.4f} vs {s_rmse:.4f}"
    return {**record, "publish": True, "reason": reason}
