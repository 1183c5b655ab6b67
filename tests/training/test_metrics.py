"""Metric functions against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import RankingTask, evaluate_ranking, mae, ranking_from_lists, rmse, top_k


def test_rmse_and_mae():
    assert rmse(np.array([1, 2, 3]), np.array([1, 2, 5])) == pytest.approx(math.sqrt(4 / 3))
    assert mae(np.array([1, 2, 3]), np.array([2, 2, 5])) == pytest.approx(1.0)


def test_top_k_is_ordered_and_uses_partial_selection():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [4, 3, 2, 1]], float)
    assert top_k(scores, 2).tolist() == [[1, 3], [0, 1]]
    assert top_k(scores, 10).shape == (2, 4)


def test_ranking_metrics_by_hand():
    # user A: hits at ranks 1 and 3 of 3 relevant; user B: one relevant, missed.
    recs = [np.array([5, 6, 7, 8]), np.array([1, 2, 3, 4])]
    rel = [{5, 7, 9}, {10}]
    m = ranking_from_lists(recs, rel, k=4)
    dcg_a = 1 / math.log2(2) + 1 / math.log2(4)
    idcg_a = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@4"] == pytest.approx((dcg_a / idcg_a + 0) / 2)
    assert m["recall@4"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["precision@4"] == pytest.approx((2 / 4 + 0) / 2)
    assert m["map@4"] == pytest.approx(((1 / 1 + 2 / 3) / 3 + 0) / 2)


def test_recall_denominator_is_capped_at_k():
    m = ranking_from_lists([np.array([0, 1])], [set(range(10))], k=2)
    assert m["recall@2"] == 1.0 and m["ndcg@2"] == pytest.approx(1.0)


def test_protocol_excludes_training_items_and_skips_users_without_relevant_items():
    # 3 users, 5 items. user 0 trained on item 0 (highest score) -> must not be recommended.
    task = RankingTask.build(
        train_users=np.array([0, 1, 2]),
        train_items=np.array([0, 1, 2]),
        test_users=np.array([0, 0, 1, 2, -1]),
        test_items=np.array([1, 3, 4, -1, 2]),
        test_ratings=np.array([5.0, 4.0, 3.0, 4.5, 5.0]),
        n_users=3,
        n_items=5,
    )
    assert task.users.tolist() == [0, 2]  # user 1's only held-out rating is 3 (< 4)
    scores = np.array([[9.0, 8.0, 1.0, 7.0, 0.0]] * 3)
    m = evaluate_ranking(lambda u: scores[u], task, k=2)
    # user 0: top-2 of {1,2,3,4} = [1, 3] -> both relevant; user 2: its item is unseen in training -> 0
    assert m["ndcg@2"] == pytest.approx(0.5) and m["recall@2"] == pytest.approx(0.5)
    assert m["users"] == 2 and m["coverage"] == pytest.approx(3 / 5)


def test_score_fn_shape_is_checked():
    task = RankingTask.build(np.array([0]), np.array([0]), np.array([0]), np.array([1]), np.array([5.0]), 1, 3)
    with pytest.raises(ValueError, match="shape"):
        evaluate_ranking(lambda u: np.zeros((len(u), 2)), task)
