"""A trained ranker blended with a closed-form item-item model (``model.blend``).

``score(u, i) = (1 - a) s_b(u, i) / sigma_b(u) + a s_p(u, i) / sigma_p(u)``: the base
model's score (``s_b``: LightGCN, PinSage, GraphSAGE) and the partner's (``s_p``: EASE or
GF-CF), each divided by its spread over the catalogue for that user, so the weight ``a``
(chosen on validation, :mod:`graphrec.train.blend`) means the same on any data. A per-user
scale keeps each model's ranking of that user's items; only the mix changes. The two kinds
of model see different evidence: the trained one item content and multi-hop structure,
the item-item one exact co-occurrence, and each corrects the other's misses.

The blend is still an inner product, of concatenated vectors
``[(1 - a) u_b / sigma_b(u) | a u_p / sigma_p(u)]`` and ``[i_b | i_p]``, so top-k, the sinks
and evaluation take it unchanged. Scale: the sum of both models' costs, plus one scoring
pass of each over all items per call of :meth:`BlendedModel.vectors` (for the per-user
spreads, in batches of ``batch_users``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BlendedModel(nn.Module):
    """``base`` and ``partner`` (both :class:`~graphrec.models.registry.RecommenderModel`)
    mixed with weight ``weight`` on the partner."""

    def __init__(
        self, base: nn.Module, partner: nn.Module, weight: float, batch_users: int = 4096
    ) -> None:
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"blend weight {weight} is not in [0, 1]")
        self.base, self.partner = base, partner
        self.weight = float(weight)
        self.batch_users = batch_users

    @property
    def device(self) -> torch.device:
        return self.base.device

    def forward(self, data, pairs: Tensor, *args) -> Tensor:
        uv, iv = self.vectors(data)
        return (uv[pairs[0]] * iv[pairs[1]]).sum(-1)

    @torch.no_grad()
    def parts(self, data) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """Both models' vectors, each user row divided by its score spread."""
        return (
            standardized(*self.base.vectors(data), self.batch_users),
            standardized(*self.partner.vectors(data), self.batch_users),
        )

    @torch.no_grad()
    def vectors(self, data) -> tuple[Tensor, Tensor]:
        return mix(*self.parts(data), self.weight)

    @torch.no_grad()
    def vectors_for(self, data, users: Tensor) -> tuple[Tensor, Tensor]:
        """``vectors`` for the rows ``users`` only (the per-user spreads of those users
        alone: recommending for a few new users costs their scores, not everyone's)."""
        return mix(*self._parts_for(data, users), self.weight)

    @torch.no_grad()
    def scores_for(self, data, users: Tensor) -> Tensor:
        """``[len(users), I]`` blended scores of ``users``, without concatenating the two
        item matrices (a copy of both per call)."""
        (ub, ib), (up, ip) = self._parts_for(data, users)
        w = self.weight
        return (1 - w) * (ub @ ib.t()) + w * (up @ ip.t())

    def _parts_for(self, data, users: Tensor):
        parts = []
        for m in (self.base, self.partner):
            uv, iv = m.vectors(data)
            parts.append(standardized(uv[users.to(uv.device)], iv, self.batch_users))
        return parts


def user_spread(uv: Tensor, iv: Tensor, batch_users: int) -> Tensor:
    """Per user, the standard deviation of its scores over every item (``[U]``)."""
    out = torch.empty(len(uv), device=uv.device)
    for s in range(0, len(uv), batch_users):
        out[s : s + batch_users] = (uv[s : s + batch_users] @ iv.t()).std(dim=1)
    return out


def standardized(uv: Tensor, iv: Tensor, batch_users: int) -> tuple[Tensor, Tensor]:
    """``uv`` with each row divided by its user's score spread; a user whose scores are all
    equal (no history for an item-item model) gets a zero row: it adds nothing."""
    scale = spread_scale(user_spread(uv.float(), iv.float(), batch_users))
    return uv.float() * scale.unsqueeze(1), iv.float()


def spread_scale(spread: Tensor) -> Tensor:
    """``1 / spread`` where the spread is positive and finite, else 0 (see
    :func:`standardized`)."""
    ok = torch.isfinite(spread) & (spread > 0)
    return torch.where(ok, 1.0 / spread.clamp(min=1e-30), torch.zeros_like(spread))


def mix(base: tuple[Tensor, Tensor], partner: tuple[Tensor, Tensor], weight: float):
    """The blend's ``(user_vectors, item_vectors)`` from standardized parts."""
    (ub, ib), (up, ip) = base, partner
    if weight == 0.0:
        return ub, ib
    if weight == 1.0:
        return up, ip
    return mix_users(ub, up, weight), torch.cat([ib, ip], 1)


def mix_users(base: Tensor, partner: Tensor, weight: float) -> Tensor:
    """The user side of :func:`mix` alone (the item side, an item-item model's whole
    matrix, is not copied again for one user)."""
    if weight == 0.0:
        return base
    if weight == 1.0:
        return partner
    return torch.cat([(1 - weight) * base, weight * partner], 1)
