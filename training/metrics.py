"""Rating and ranking metrics, with the exact definitions docs/results.md quotes ("Evaluation protocol").

Ranking protocol (shared by our models, the baselines and the peers, so numbers compare):

* candidates: every item in the training data that the user did not rate in training;
* relevant: the user's held-out items rated >= ``threshold`` (4 by default); an item that
  never appears in training stays relevant but can never be recommended;
* users with no relevant item, or unknown to training, are skipped;
* NDCG@k = DCG@k / IDCG over min(|relevant|, k) hits, binary gains, log2 discount;
* Recall@k = hits / min(|relevant|, k); Precision@k = hits / k;
* MAP@k = sum of precision@i at each hit position i / min(|relevant|, k);
* coverage = distinct items recommended to the evaluated users / items in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Maps an array of user indices to a (len(users), n_items) float score matrix."""


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(d)))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores of each row, best first (partial selection)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def ranking_from_lists(recommended: list[np.ndarray], relevant: list[set[int]], k: int) -> dict[str, float]:
    """Mean NDCG/Recall/Precision/MAP@k over users, given each user's ranked list and relevant set."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall, precision, ap = [], [], [], []
    for recs, rel in zip(recommended, relevant, strict=True):
        hits = np.fromiter((int(i) in rel for i in recs[:k]), dtype=bool, count=min(k, len(recs)))
        n_ideal = min(len(rel), k)
        dcg = float(discounts[: len(hits)][hits].sum())
        idcg = float(discounts[:n_ideal].sum())
        n_hits = int(hits.sum())
        ndcg.append(dcg / idcg)
        recall.append(n_hits / n_ideal)
        precision.append(n_hits / k)
        ranks = np.flatnonzero(hits) + 1
        ap.append(float((np.arange(1, n_hits + 1) / ranks).sum()) / n_ideal)
    return {
        f"ndcg@{k}": float(np.mean(ndcg)),
        f"recall@{k}": float(np.mean(recall)),
        f"precision@{k}": float(np.mean(precision)),
        f"map@{k}": float(np.mean(ap)),
    }


@dataclass(frozen=True)
class RankingTask:
    """Held-out ranking task in index space: who is evaluated, what is seen, what is relevant."""

    users: np.ndarray  # user indices evaluated (known to training, >= 1 relevant item)
    relevant: list[set[int]]  # per evaluated user: relevant item indices (-1 for items unseen in training)
    seen_indptr: np.ndarray  # CSR over all users of their training items
    seen_items: np.ndarray
    n_items: int

    @classmethod
    def build(
        cls,
        train_users: np.ndarray,
        train_items: np.ndarray,
        test_users: np.ndarray,
        test_items: np.ndarray,
        test_ratings: np.ndarray,
        n_users: int,
        n_items: int,
        threshold: float = 4.0,
    ) -> RankingTask:
        """Build the task; test users < 0 (unknown to training) are skipped, test items < 0 never hit."""
        order = np.argsort(train_users, kind="stable")
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.add.at(indptr, train_users + 1, 1)
        indptr = np.cumsum(indptr)
        mask = (np.asarray(test_ratings) >= threshold) & (np.asarray(test_users) >= 0)
        rel: dict[int, set[int]] = {}
        unseen = -1
        for u, i in zip(np.asarray(test_users)[mask], np.asarray(test_items)[mask], strict=True):
            # Distinct negative ids keep several unseen relevant items counted separately.
            if i < 0:
                i, unseen = unseen, unseen - 1
            rel.setdefault(int(u), set()).add(int(i))
        users = np.array(sorted(rel), dtype=np.int64)
        return cls(users, [rel[int(u)] for u in users], indptr, np.asarray(train_items)[order], n_items)

    def sample(self, n: int, seed: int) -> RankingTask:
        """The task on a seeded random ``n`` of its users (itself when it has no more than ``n``)."""
        if len(self.users) <= n:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.users), n, replace=False))
        return RankingTask(
            self.users[keep], [self.relevant[k] for k in keep], self.seen_indptr, self.seen_items, self.n_items
        )

    def seen(self, user: int) -> np.ndarray:
        """Training items of ``user``."""
        return self.seen_items[self.seen_indptr[user] : self.seen_indptr[user + 1]]


def evaluate_ranking(
    score_fn: ScoreFn, task: RankingTask, k: int = 10, batch_size: int = 512, progress: bool = False
) -> dict[str, float]:
    """Rank every candidate for each evaluated user with ``score_fn`` and report the @k metrics.

    ``progress`` draws a bar (users/s, ETA) on stderr when the task has more than one batch.
    """
    from training.console import bar

    recommended: list[np.ndarray] = []
    starts = range(0, len(task.users), batch_size)
    for start in bar(starts, enabled=progress and len(starts) > 1, desc="ranking", unit=" batches"):
        batch = task.users[start : start + batch_size]
        scores = np.array(score_fn(batch), dtype=np.float64, copy=True)
        if scores.shape != (len(batch), task.n_items):
            raise ValueError(f"score_fn returned shape {scores.shape}, expected {(len(batch), task.n_items)}")
        for row, u in enumerate(batch):
            scores[row, task.seen(int(u))] = -np.inf
        recommended.extend(top_k(scores, k))
    out = ranking_from_lists(recommended, task.relevant, k)
    out["coverage"] = float(len(np.unique(np.concatenate(recommended)))) / task.n_items if recommended else 0.0
    out["users"] = float(len(task.users))
    return out
