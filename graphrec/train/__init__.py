"""Stage 3, train: mini-batch training and held-out evaluation."""

from graphrec.train.loop import TrainResult, train_loop
from graphrec.train.metrics import evaluate_ranking, popularity_vectors, ranking_metrics, rmse

__all__ = [
    "TrainResult",
    "evaluate_ranking",
    "popularity_vectors",
    "ranking_metrics",
    "rmse",
    "train_loop",
]
