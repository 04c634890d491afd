"""PinSage's importance-based neighbourhoods (Ying et al., "Graph Convolutional Neural
Networks for Web-Scale Recommender Systems", KDD 2018), on a user-item graph.

From every item, ``walks`` short random walks of ``length`` item -> user -> item steps run
over the training edges; the items visited most often (the item itself excluded) are its
``top_t`` neighbours, and their visit counts, normalized per item, are the aggregation
weights. All walks of all items advance together as tensor ops (one CSR gather per
half-step), so the cost is ``items x walks x length`` gathers with no Python loop per walk.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.graph.csr import to_csr


def _step(indptr: Tensor, nbrs: Tensor, at: Tensor, gen: torch.Generator) -> Tensor:
    """One uniform random step from each of ``at`` (-1 stays -1, as does a dead end)."""
    ok = at >= 0
    safe = at.clamp(min=0)
    start, deg = indptr[safe], indptr[safe + 1] - indptr[safe]
    ok &= deg > 0
    pick = (torch.rand(len(at), generator=gen) * deg).long().clamp(max=(deg - 1).clamp(min=0))
    out = torch.full_like(at, -1)
    out[ok] = nbrs[(start + pick)[ok]]
    return out


def item_neighbourhoods(
    users: Tensor,
    items: Tensor,
    num_users: int,
    num_items: int,
    walks: int = 50,
    length: int = 2,
    top_t: int = 10,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """``(neighbours [I, T], weights [I, T])`` of every item: the ``top_t`` items most
    visited by its random walks (ties: lower id), weights = visit share (rows sum to 1);
    ``-1`` / 0 where an item has fewer than ``top_t`` distinct visited items."""
    gen = torch.Generator().manual_seed(seed)
    item_ptr, item_users = to_csr(items, users, num_items)
    user_ptr, user_items = to_csr(users, items, num_users)
    start = torch.arange(num_items).repeat_interleave(walks)
    at = start
    visits = []
    for _ in range(length):
        at = _step(user_ptr, user_items, _step(item_ptr, item_users, at, gen), gen)
        visits.append(at)
    visited = torch.cat(visits)
    origin = start.repeat(length)
    keep = (visited >= 0) & (visited != origin)
    key, count = torch.unique(origin[keep] * num_items + visited[keep], return_counts=True)
    src, dst = key // num_items, key % num_items
    order = torch.argsort(src * (walks * length + 1) + (walks * length - count), stable=True)
    src, dst, count = src[order], dst[order], count[order]
    first = torch.zeros(num_items + 1, dtype=torch.long)
    first[1:] = torch.cumsum(torch.bincount(src, minlength=num_items), 0)
    rank = torch.arange(len(src)) - first[src]
    top = rank < top_t
    nbr = torch.full((num_items, top_t), -1, dtype=torch.long)
    weight = torch.zeros(num_items, top_t)
    nbr[src[top], rank[top]] = dst[top]
    weight[src[top], rank[top]] = count[top].float()
    weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-12)
    return nbr, weight
