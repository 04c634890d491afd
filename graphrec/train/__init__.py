"""Stage 3, train: mini-batch training and held-out evaluation.

``batches`` (what a worker trains on), ``losses``, ``evaluation`` (validation per epoch),
``optimizer``, ``checkpoint`` and ``stats`` serve ``loop`` (the epoch loop itself);
``context`` is where the loop runs (one process; Ray contexts subclass it in
:mod:`graphrec.distributed`); ``metrics`` are the ranking and rating metrics.
"""

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
