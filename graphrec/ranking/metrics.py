"""Evaluation: RMSE for ratings, Recall@k and NDCG@k by full ranking, and the popularity
baseline on the same split.

Ranking protocol: for each user with at least one positive held-out edge (label >=
``positive_threshold``), rank every item the user has no known edge to (train edges, and
for the test split also validation edges), take the top k, and compare with the positives.
Recall@k = hits / |positives|; NDCG@k is binary (gain 1 per hit, ideal = min(|P|, k) hits).
Metrics are averaged over those users.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.graph.hetero import Graph
from graphrec.ranking.topk import topk_unseen


def rmse(pred: Tensor, target: Tensor) -> float:
    return float(torch.sqrt(torch.mean((pred.float() - target.float()) ** 2)))


def ranking_metrics(
    top_items: Tensor, pos_users: Tensor, pos_items: Tensor, num_items: int, k: int
) -> dict[str, float]:
    """Recall@k, NDCG@k, HitRate@k and catalog coverage@k of ``top_items [U, >=k]`` against
    positive (user, item) pairs, over the users with at least one positive.

    HitRate@k: share of those users with a positive in their top k. Coverage@k: share of
    the ``num_items`` catalogue recommended to at least one of those users."""
    if len(pos_users) == 0:
        nan = float("nan")
        return {
            f"recall@{k}": nan,
            f"ndcg@{k}": nan,
            f"hit@{k}": nan,
            f"coverage@{k}": nan,
            "users": 0,
        }
    users, n_pos, hit, dcg, idcg = _hits(top_items, pos_users, pos_items, num_items, k)
    recall = hit.sum(1).double() / n_pos.double()
    shown = top_items[users, :k]
    return {
        f"recall@{k}": float(recall.mean()),
        f"ndcg@{k}": float((dcg / idcg).mean()),
        f"hit@{k}": float(hit.any(1).double().mean()),
        f"coverage@{k}": len(torch.unique(shown[shown >= 0])) / num_items,
        "users": int(len(users)),
    }


def _hits(top_items: Tensor, pos_users: Tensor, pos_items: Tensor, num_items: int, k: int):
    """Users with a positive; their positive counts, top-k hit mask, DCG@k and ideal DCG@k."""
    top = top_items[:, :k]
    users = torch.unique(pos_users)
    n_pos = torch.bincount(pos_users, minlength=len(top))[users]
    pos_key = torch.unique(pos_users * num_items + pos_items)
    rank_key = users.unsqueeze(1) * num_items + top[users]
    hit = torch.isin(rank_key, pos_key) & (top[users] >= 0)
    discount = 1.0 / torch.log2(torch.arange(k, dtype=torch.float64) + 2)
    dcg = (hit.double() * discount).sum(1)
    idcg = torch.cumsum(discount, 0)[(n_pos.clamp(max=k) - 1)]
    return users, n_pos, hit, dcg, idcg


def per_user_ndcg(
    top_items: Tensor, pos_users: Tensor, pos_items: Tensor, num_items: int, k: int
) -> tuple[Tensor, Tensor]:
    """The users with at least one positive (ascending) and each one's NDCG@k: the values
    :func:`ranking_metrics` averages, kept apart for paired significance estimates."""
    users, _, _, dcg, idcg = _hits(top_items, pos_users, pos_items, num_items, k)
    return users, dcg / idcg


def ranking_report(
    top_items: Tensor, pos_users: Tensor, pos_items: Tensor, num_items: int, ks=(10, 20)
) -> dict[str, float]:
    """:func:`ranking_metrics` at every cut-off in ``ks`` (``top_items`` holds ``max(ks)``)."""
    out: dict[str, float] = {}
    for k in ks:
        out.update(ranking_metrics(top_items, pos_users, pos_items, num_items, k))
    return out


def evaluate_ranking(
    user_vectors: Tensor,
    item_vectors: Tensor,
    exclude: tuple[Tensor, Tensor],
    pos_users: Tensor,
    pos_items: Tensor,
    k: int,
    batch_users: int,
) -> dict[str, float]:
    """Full ranking of every item not in ``exclude`` for every user; metrics at ``k``."""
    top, _ = topk_unseen(user_vectors, item_vectors, exclude, k, batch_users)
    return ranking_metrics(top, pos_users, pos_items, len(item_vectors), k)


def popularity_vectors(
    train_items: Tensor, num_users: int, num_items: int
) -> tuple[Tensor, Tensor]:
    """Vectors whose inner products rank items by training popularity for every user."""
    pop = torch.bincount(train_items, minlength=num_items).double()
    # a tiny id-based tie-break keeps the ranking deterministic
    pop = pop + torch.arange(num_items, 0, -1, dtype=torch.float64) / (10 * num_items)
    return torch.ones(num_users, 1, dtype=torch.float64), pop.unsqueeze(1)


def positives(graph: Graph, edges: Tensor, threshold: float) -> Tensor:
    """The held-out edges that count as positives (label >= threshold, or all)."""
    if graph.label is None:
        return edges
    return edges[graph.label[edges] >= threshold]
