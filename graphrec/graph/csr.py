"""Per-user adjacency as CSR: what top-k excludes and what random walks step along; and
the sorts of node ids that a mini-batch makes many small ones of.

Sorting ids on a CPU (2 cores, ``graphrec bench``-sized batches): torch sorts tensors
below 32,768 elements by comparison (~100 ns an element: 3 ms for 27k ids) and larger
integer tensors by radix, one pass per byte of the dtype. numpy's stable sort of 16-bit
keys is a radix sort (0.25 ms for 27k ids) and its default sort of int64 a vectorised
quicksort; :func:`argsort_ids` and :func:`sort_ids` take the fastest of these for the
size and range at hand, with torch's results.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

TORCH_RADIX_FROM = 1 << 15
"""Tensors at least this long torch sorts by radix (measured: below it, by comparison)."""


def is_sorted(values: Tensor) -> bool:
    """Whether ``values`` never decreases (then no sort is needed)."""
    return len(values) < 2 or bool((values[1:] >= values[:-1]).all())


def pointer(rows: Tensor, num_rows: int) -> Tensor:
    """CSR row pointer ``[num_rows + 1]`` of entries sorted by ``rows``."""
    ptr = torch.zeros(num_rows + 1, dtype=torch.long, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=num_rows), 0, out=ptr[1:])
    return ptr


def argsort_ids(ids: Tensor, bound: int) -> Tensor:
    """``torch.argsort(ids, stable=True)`` for node ids in ``[0, bound)``, faster on a CPU:
    torch's radix sort of 16-bit keys from ``TORCH_RADIX_FROM`` ids (twice numpy's speed
    for 57k ids below 5k on 2 cores); else 16-bit keys by numpy's radix sort where the ids
    fit; a small batch by numpy's quicksort of ``(id, position)`` keys (distinct, so the
    order is the stable one); else torch's radix sort of the narrowest dtype."""
    n = len(ids)
    if ids.is_cuda or n < 2:
        return torch.argsort(ids, stable=True)
    if n >= TORCH_RADIX_FROM and bound <= 1 << 15:
        return torch.argsort(ids.short(), stable=True)
    if bound <= 1 << 16:
        return torch.from_numpy(np.argsort(ids.numpy().astype(np.uint16), kind="stable"))
    if n < TORCH_RADIX_FROM and bound < 2**31:
        return torch.from_numpy(np.argsort(ids.numpy().astype(np.int64) * n + np.arange(n)))
    return torch.argsort(ids.int() if bound < 2**31 else ids, stable=True)


def sort_ids(ids: Tensor, bound: int) -> Tensor:
    """``torch.sort(ids).values`` (int64) for node ids in ``[0, bound)``, faster on a CPU
    (torch's radix sort of 16-bit keys from ``TORCH_RADIX_FROM`` ids; numpy's radix sort
    of 16-bit keys where the ids fit, else its vectorised sort)."""
    if ids.is_cuda or len(ids) < 2:
        return torch.sort(ids).values
    if len(ids) >= TORCH_RADIX_FROM and bound <= 1 << 15:
        return torch.sort(ids.short(), stable=True).values.long()
    if bound <= 1 << 16:
        return torch.from_numpy(np.sort(ids.numpy().astype(np.uint16), kind="stable")).long()
    return torch.from_numpy(np.sort(ids.numpy().astype(np.int64)))


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
