"""Ranking kernels and metrics shared by validation (train), recommendation, test
evaluation and ``graphrec compare``: top-k unseen items by inner product or by any scorer,
Recall/NDCG/HitRate/coverage, RMSE, and the popularity reference."""

from graphrec.ranking.metrics import (
    evaluate_ranking,
    per_user_ndcg,
    popularity_vectors,
    positives,
    ranking_metrics,
    ranking_report,
    rmse,
)
from graphrec.ranking.topk import topk_by, topk_unseen

__all__ = [
    "evaluate_ranking",
    "per_user_ndcg",
    "popularity_vectors",
    "positives",
    "ranking_metrics",
    "ranking_report",
    "rmse",
    "topk_by",
    "topk_unseen",
]
