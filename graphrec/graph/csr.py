"""Per-user adjacency as CSR: what top-k excludes and what random walks step along."""

from __future__ import annotations

import torch
from torch import Tensor


def is_sorted(values: Tensor) -> bool:
    """Whether ``values`` never decreases (then no sort is needed)."""
    return len(values) < 2 or bool((values[1:] >= values[:-1]).all())


def pointer(rows: Tensor, num_rows: int) -> Tensor:
    """CSR row pointer ``[num_rows + 1]`` of entries sorted by ``rows``."""
    ptr = torch.zeros(num_rows + 1, dtype=torch.long, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=num_rows), 0, out=ptr[1:])
    return ptr


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
    return pointer(users, num_users), items[order]
