"""Distributed training on Ray Train, and hyperparameter search on Ray Tune.

Ray is imported here and nowhere else: ``loaders/``, ``models/`` and ``train/`` stay plain
PyTorch/PyG and run without a cluster. Install with ``pip install -e '.[ray]'``.
"""

from graphrec.distributed.trainer import fit, init_ray

__all__ = ["fit", "init_ray"]
