"""Per-user sampling for the full-graph models: BPR triplets (user, positive item, negative
items), or whole users with every training item (``users_only``, the multinomial loss).

As LightGCN and BPR do it (Rendle et al. 2009; He et al. 2020): each step draws users
uniformly from the users that have training edges, one of each user's training items
uniformly as the positive, and ``num_negatives`` items uniformly among the items the user
has no training edge to (rejection sampling against the sorted edge keys). An epoch is
``ceil(edges / batch_size)`` steps, so every user is weighted equally, not by activity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class UserBatch:
    """One mini-batch: ``users [B]``, ``pos [B]``, ``neg [B, N]`` (global ids) and the
    message-passing graph the scores are computed on."""

    users: Tensor
    pos: Tensor
    neg: Tensor
    data: object = None
    owner: Tensor | None = None
    """User batches (``multinomial`` loss): ``pos`` holds every training item of the
    batch's users and ``owner`` the row in ``users`` each belongs to; ``neg`` is empty."""
    weight: Tensor | None = None
    """User batches: a weight per entry of ``pos`` (None: all 1)."""

    def to(self, device) -> UserBatch:
        owner = None if self.owner is None else self.owner.to(device)
        weight = None if self.weight is None else self.weight.to(device)
        return UserBatch(
            self.users.to(device),
            self.pos.to(device),
            self.neg.to(device),
            self.data,
            owner,
            weight,
        )

    def pairs(self) -> Tensor:
        """``[2, B + B*N]``: the positive pairs, then every negative pair."""
        u_rep = self.users.unsqueeze(1).expand_as(self.neg).reshape(-1)
        return torch.cat(
            [torch.stack([self.users, self.pos]), torch.stack([u_rep, self.neg.reshape(-1)])], 1
        )


class UserSampler:
    """Iterates ``ceil(len(edges) / batch_size)`` triplet batches per pass, or (``users_only``)
    every active user once in batches of whole users.

    Args: users, items: the training edges (global ids); num_items: catalogue size;
    data: the message graph handed along with each batch; generator: seeds the draws.
    """

    def __init__(
        self,
        users: Tensor,
        items: Tensor,
        num_users: int,
        num_items: int,
        batch_size: int,
        num_negatives: int = 1,
        data: object = None,
        generator: torch.Generator | None = None,
        users_only: bool = False,
        hard_table: Tensor | None = None,
        hard_share: float = 0.0,
        weights: Tensor | None = None,
    ) -> None:
        order = torch.argsort(users * num_items + items)
        self.keys = (users * num_items + items)[order]
        self.items = items[order]  # grouped by user
        self.weights = None if weights is None else weights[order]
        """Per-edge weights (e.g. by rating), handed out with user batches."""
        counts = torch.bincount(users, minlength=num_users)
        self.indptr = torch.zeros(num_users + 1, dtype=torch.long)
        self.indptr[1:] = torch.cumsum(counts, 0)
        self.active = (counts > 0).nonzero().flatten()
        self.num_items, self.batch_size, self.num_negatives = num_items, batch_size, num_negatives
        self.num_edges = len(users)
        self.data = data
        self.generator = generator
        self.users_only = users_only
        """Batches of users with all their training items (an epoch visits every user
        once) instead of sampled triplets."""
        self.hard_table = hard_table
        """``[num_items, T]`` items close to each item (-1: none), e.g. PinSage's random-walk
        neighbourhoods: hard negatives are drawn from the positive item's row."""
        self.hard_share = hard_share
        """Share of each row's negatives replaced by hard ones (where one is available)."""

    def __len__(self) -> int:
        n = len(self.active) if self.users_only else self.num_edges
        return math.ceil(n / self.batch_size)

    def __iter__(self):
        if self.users_only:
            perm = self.active[torch.randperm(len(self.active), generator=self.generator)]
            for s in range(0, len(perm), self.batch_size):
                yield self.user_batch(perm[s : s + self.batch_size])
            return
        for _ in range(len(self)):
            yield self.sample(self.batch_size)

    def user_batch(self, users: Tensor) -> UserBatch:
        """``users`` with every one of their training items."""
        start, deg = self.indptr[users], self.indptr[users + 1] - self.indptr[users]
        owner = torch.repeat_interleave(torch.arange(len(users)), deg)
        first = torch.cumsum(deg, 0) - deg
        offset = torch.arange(int(deg.sum())) - torch.repeat_interleave(first, deg)
        at = start[owner] + offset
        empty = torch.empty(len(users), 0, dtype=torch.long)
        weight = None if self.weights is None else self.weights[at]
        return UserBatch(users, self.items[at], empty, self.data, owner, weight)

    def sample(self, n: int) -> UserBatch:
        g = self.generator
        users = self.active[torch.randint(len(self.active), (n,), generator=g)]
        start, deg = self.indptr[users], self.indptr[users + 1] - self.indptr[users]
        pick = (torch.rand(n, generator=g) * deg).long().clamp_(max=deg - 1)
        pos = self.items[start + pick]
        neg = torch.randint(self.num_items, (n, self.num_negatives), generator=g)
        for _ in range(10):  # reject items the user has; a few rounds leave ~none
            seen = self._seen(users.unsqueeze(1).expand_as(neg), neg)
            if not seen.any():
                break
            neg[seen] = torch.randint(self.num_items, (int(seen.sum()),), generator=g)
        if self.hard_table is not None and self.hard_share > 0:
            self._harden(users, pos, neg)
        return UserBatch(users, pos, neg, self.data)

    def _harden(self, users: Tensor, pos: Tensor, neg: Tensor) -> None:
        """PinSage's hard negatives: items near the positive that the user has no edge to."""
        n_hard = max(1, round(self.hard_share * neg.shape[1]))
        table = self.hard_table
        col = torch.randint(table.shape[1], (len(pos), n_hard), generator=self.generator)
        cand = table[pos.unsqueeze(1), col]
        u = users.unsqueeze(1).expand_as(cand)
        ok = (cand >= 0) & ~self._seen(u, cand.clamp(min=0))
        neg[:, :n_hard] = torch.where(ok, cand, neg[:, :n_hard])

    def _seen(self, users: Tensor, items: Tensor) -> Tensor:
        key = users * self.num_items + items
        at = torch.searchsorted(self.keys, key).clamp_(max=len(self.keys) - 1)
        return self.keys[at] == key
