"""Exact top-k unseen items for every user, in batches of users: the kernel behind
validation (train), recommendation and ``graphrec compare``.

Scores are one matrix product per batch (``user_vectors @ item_vectors.T``); items the user
already has an edge to are masked with ``-inf`` from a CSR list before ``torch.topk``. No
Python loop runs per user. The score block is allocated once and reused by every batch:
a fresh 400 MB block per batch spent more time in page faults than in the product (the
product ran 2.5x faster into a reused buffer on a 2-core machine, 2,048 x 50,000 x 65).
A MIPS index can replace the product for huge catalogues; the vectors are already in
inner-product form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm


def topk_unseen(
    user_vectors: Tensor,
    item_vectors: Tensor,
    exclude: tuple[Tensor, Tensor],
    k: int,
    batch_users: int = 2048,
    progress: bool = False,
    desc: str = "top-k",
) -> tuple[Tensor, Tensor]:
    """Top-``k`` items per user by inner product, skipping ``exclude`` (CSR per user).

    Returns ``(items [U, k], scores [U, k])``, best first. Where a user has fewer than ``k``
    unseen items the tail is ``-1`` with score ``-inf``.
    """
    device = user_vectors.device  # scores are computed where the vectors live (CPU or GPU)
    user_vectors, item_vectors = user_vectors.detach(), item_vectors.detach()
    num_users, num_items = len(user_vectors), len(item_vectors)
    dtype = torch.promote_types(user_vectors.dtype, item_vectors.dtype)
    item_t = item_vectors.to(device, dtype).t().contiguous()
    block = torch.empty(min(batch_users, num_users), num_items, dtype=dtype, device=device)

    def scores(start: int, stop: int) -> Tensor:
        s = block[: stop - start]
        torch.matmul(user_vectors[start:stop].to(dtype), item_t, out=s)
        return s

    return topk_by(scores, num_users, num_items, exclude, k, batch_users, progress, desc, device)


def topk_by(
    scores: Callable[[int, int], Tensor],
    num_users: int,
    num_items: int,
    exclude: tuple[Tensor, Tensor],
    k: int,
    batch_users: int = 2048,
    progress: bool = False,
    desc: str = "top-k",
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Top-``k`` unseen items per user from any scorer: ``scores(start, stop)`` gives the
    ``[stop - start, num_items]`` scores of users ``start..stop-1`` (it may return a reused
    buffer: it is masked in place). Same output as :func:`topk_unseen`."""
    indptr, indices = exclude[0].to(device), exclude[1].to(device)
    k_eff = min(k, num_items)
    items = torch.full((num_users, k), -1, dtype=torch.long)
    top_scores = torch.full((num_users, k), float("-inf"))
    for start in tqdm(range(0, num_users, batch_users), desc=desc, disable=not progress):
        stop = min(start + batch_users, num_users)
        s = scores(start, stop)
        lo, hi = indptr[start], indptr[stop]
        rows = torch.repeat_interleave(
            torch.arange(stop - start, device=device),
            indptr[start + 1 : stop + 1] - indptr[start:stop],
        )
        s[rows, indices[lo:hi]] = float("-inf")
        val, idx = torch.topk(s, k_eff, dim=1)
        idx[val == float("-inf")] = -1
        items[start:stop, :k_eff] = idx.cpu()
        top_scores[start:stop, :k_eff] = val.float().cpu()
    return items, top_scores
