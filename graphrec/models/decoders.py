"""Edge decoders: score a (user, item) pair from their embeddings.

:class:`DotDecoder` scores ``<z_u, z_i> + b_u + b_i + mu`` with learnable per-node biases.
For ratings, ``mu`` starts at the mean training rating, so the model begins as the
user+item bias baseline and the GNN learns the residual. For ranking, ``b_u`` and ``mu`` are
constant per user, so top-k over all items is one matrix product
(:meth:`DotDecoder.item_vectors` / :meth:`user_vectors`), which MIPS indexes also accept.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DotDecoder(nn.Module):
    """Args: num_users, num_items: rows of the bias tables; init_mean: start of ``mu``;
    sparse: sparse gradients for the bias tables."""

    def __init__(
        self, num_users: int, num_items: int, init_mean: float = 0.0, sparse: bool = False
    ) -> None:
        super().__init__()
        self.user_bias = nn.Embedding(num_users, 1, sparse=sparse)
        self.item_bias = nn.Embedding(num_items, 1, sparse=sparse)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.mean = nn.Parameter(torch.tensor(float(init_mean)))

    def forward(self, z_u: Tensor, z_i: Tensor, u_id: Tensor, i_id: Tensor) -> Tensor:
        """``z_u, z_i: [B, H]`` paired rows; ``u_id, i_id: [B]`` global ids. Returns ``[B]``."""
        return (
            (z_u * z_i).sum(-1)
            + self.user_bias(u_id).squeeze(-1)
            + self.item_bias(i_id).squeeze(-1)
            + self.mean
        )

    def user_vectors(self, z_u: Tensor) -> Tensor:
        """``[U, H+1]``: ``[z_u, 1]``, so that ``user_vectors @ item_vectors.T`` ranks items."""
        return torch.cat([z_u, torch.ones(len(z_u), 1, dtype=z_u.dtype, device=z_u.device)], dim=1)

    def item_vectors(self, z_i: Tensor, i_id: Tensor | None = None) -> Tensor:
        """``[I, H+1]``: ``[z_i, b_i]``."""
        ids = torch.arange(len(z_i), device=z_i.device) if i_id is None else i_id
        return torch.cat([z_i, self.item_bias(ids)], dim=1)
