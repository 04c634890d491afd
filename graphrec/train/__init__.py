"""Stage 3, train: mini-batch training and held-out evaluation.

``batches`` (what a worker trains on), ``losses``, ``evaluation`` (validation per epoch),
``optimizer``, ``checkpoint`` and ``stats`` serve ``loop`` (the epoch loop itself);
``context`` is where the loop runs (one process; Ray contexts subclass it in
:mod:`graphrec.distributed`). Metrics and the top-k kernel are :mod:`graphrec.ranking`'s.
"""

from graphrec.train.loop import TrainResult, train_loop

__all__ = ["TrainResult", "train_loop"]
