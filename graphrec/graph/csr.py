"""Per-user adjacency as CSR: what top-k excludes and what random walks step along."""

from __future__ import annotations

import torch
from torch import Tensor


def to_csr(
    users: Tensor, items: Tensor, num_users: int, self_items: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(indptr [U+1], indices)`` of each user's items, from parallel id lists; with
    ``self_items`` (where users and items are one node type) row ``r`` also holds item
    ``self_items[r]``, the user itself, so nobody is recommended to themselves."""
    if self_items is not None:
        users = torch.cat([users, torch.arange(num_users)])
        items = torch.cat([items, self_items.to(items.dtype)])
    order = torch.argsort(users, stable=True)
    counts = torch.bincount(users, minlength=num_users)
    indptr = torch.zeros(num_users + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, items[order]
