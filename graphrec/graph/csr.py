"""Per-user adjacency as CSR: what top-k excludes and what random walks step along."""

from __future__ import annotations

import torch
from torch import Tensor


def to_csr(users: Tensor, items: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
    """``(indptr [U+1], indices)`` of each user's items, from parallel id lists."""
    order = torch.argsort(users, stable=True)
    counts = torch.bincount(users, minlength=num_users)
    indptr = torch.zeros(num_users + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, items[order]
