"""Ranking metrics and top-k by hand-checked examples."""

import math

import pytest
import torch

from graphrec.graph.csr import to_csr
from graphrec.ranking import topk_unseen
from graphrec.ranking.metrics import per_user_ndcg, popularity_vectors, ranking_metrics, rmse


def test_rmse():
    assert rmse(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])) == pytest.approx(1.0)


def test_recall_and_ndcg_by_hand():
    top = torch.tensor([[5, 1, 2], [0, 3, 4]])
    # user 0 positives {1, 9}: hit at rank 2; user 1 positives {0}: hit at rank 1
    pos_u = torch.tensor([0, 0, 1])
    pos_i = torch.tensor([1, 9, 0])
    m = ranking_metrics(top, pos_u, pos_i, num_items=10, k=3)
    assert m["recall@3"] == pytest.approx((0.5 + 1.0) / 2)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@3"] == pytest.approx((ndcg0 + 1.0) / 2)
    assert m["users"] == 2
    users, ndcg = per_user_ndcg(top, pos_u, pos_i, num_items=10, k=3)
    assert users.tolist() == [0, 1] and ndcg.tolist() == pytest.approx([ndcg0, 1.0])


def test_topk_excludes_seen_items_and_orders_by_score():
    users = torch.tensor([[1.0], [2.0], [1.0]])
    items = torch.tensor([[0.1], [0.9], [0.5], [0.7]])
    exclude = to_csr(torch.tensor([0, 0, 2]), torch.tensor([1, 3, 1]), 3)
    top, scores = topk_unseen(users, items, exclude, k=2, batch_users=2)
    assert top.tolist() == [[2, 0], [1, 3], [3, 2]]
    assert scores[1].tolist() == pytest.approx([1.8, 1.4])


def test_topk_marks_missing_when_too_few_unseen():
    exclude = to_csr(torch.tensor([0, 0]), torch.tensor([0, 1]), 1)
    top, scores = topk_unseen(torch.ones(1, 1), torch.ones(3, 1), exclude, k=2)
    assert top.tolist() == [[2, -1]] and scores[0, 1] == float("-inf")


def test_popularity_ranks_by_training_count():
    uv, iv = popularity_vectors(torch.tensor([2, 2, 0, 2, 0, 1]), num_users=2, num_items=4)
    top, _ = topk_unseen(uv, iv, to_csr(torch.tensor([1]), torch.tensor([2]), 2), k=3)
    assert top.tolist() == [[2, 0, 1], [0, 1, 3]]


def test_hit_rate_and_coverage_by_hand():
    top = torch.tensor([[5, 1, 2], [0, 3, 4], [7, 8, 9]])
    # users 0 and 1 have positives (user 2 has none and is not counted); user 0 hits
    m = ranking_metrics(top, torch.tensor([0, 1]), torch.tensor([1, 9]), num_items=10, k=3)
    assert m["hit@3"] == pytest.approx(0.5)
    assert m["coverage@3"] == pytest.approx(6 / 10)  # items {5,1,2,0,3,4}
    m2 = ranking_metrics(top, torch.tensor([0, 1]), torch.tensor([1, 9]), num_items=10, k=1)
    assert m2["hit@1"] == 0.0 and m2["coverage@1"] == pytest.approx(2 / 10)
