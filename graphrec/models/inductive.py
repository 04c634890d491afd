"""Embedding nodes a trained model never saw (``graphrec transform``), with no gradient step.

A later graph is built with the run's fitted encoders; each node type's nodes are then
matched to the trained rows by their original ids (:class:`NewNodes`). A model's registry
entry (``ModelSpec.embed_new``) loads the trained weights into a model sized for the new
graph: a known node keeps its trained row, wherever it now sits, and a new node's rows
of every per-node table (id embeddings, biases, item-item weights) are filled by the
model's own rule: its features and neighbours pass through the trained layers (SAGE,
PinSage's items), its neighbours' trained embeddings are folded in (LightGCN, PinSage's
users), or it has none (EASE, GF-CF and popularity cannot score a new item, which is then
left out of the ranking; their users are their histories, so a new user needs nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class NewNodes:
    """Where each node of the new graph was in the trained one."""

    rows: dict[str, Tensor]
    """Node type -> ``[N_new]`` trained row of each node, ``-1`` for a new node."""
    trained: dict[str, int]
    """Node type -> number of nodes when the model was trained."""

    def new(self, ntype: str) -> Tensor:
        """``[N_new]`` bool: the nodes of ``ntype`` the model never saw."""
        return self.rows[ntype] < 0

    def counts(self) -> dict[str, dict[str, int]]:
        """Per node type: known, new, and trained nodes no longer in the graph."""
        out = {}
        for t, r in self.rows.items():
            known = int((r >= 0).sum())
            out[t] = {"known": known, "new": len(r) - known, "gone": self.trained[t] - known}
        return out


def reindex(old: Tensor, rows: Tensor, fill: Tensor | float | None = None) -> Tensor:
    """``old``'s rows at their new positions (``rows``: trained row per new row, -1 new);
    new rows get ``fill`` (None: the mean of the trained rows, a neutral default)."""
    if _identity(rows, len(old)):
        return old
    known = rows >= 0
    out = old.new_empty((len(rows), *old.shape[1:]))
    out[known] = old[rows[known]]
    if fill is None:
        fill = old.mean(0) if len(old) else 0.0
    out[~known] = fill
    return out


def reindex_square(old: Tensor, rows: Tensor) -> Tensor:
    """An ``items x items`` matrix with rows and columns moved; new items' rows and columns
    zero (no weight to or from an item the model never saw)."""
    if old.numel() == 0 or _identity(rows, len(old)):
        return old
    out = old.new_zeros((len(rows), len(rows)))
    pos = torch.nonzero(rows >= 0).squeeze(1)
    src = rows[pos]
    out[pos.unsqueeze(1), pos.unsqueeze(0)] = old[src.unsqueeze(1), src.unsqueeze(0)]
    return out


def _identity(rows: Tensor, n: int) -> bool:
    """Every row where it was and none new (no copy needed)."""
    return len(rows) == n and bool((rows == torch.arange(n, device=rows.device)).all())


def mean_of_neighbours(
    vectors: Tensor, src: Tensor, dst: Tensor, num_src: int
) -> tuple[Tensor, Tensor]:
    """Per source node, the mean of ``vectors[dst]`` over its edges, and its edge count."""
    total = vectors.new_zeros((num_src, vectors.shape[1])).index_add_(0, src, vectors[dst])
    count = torch.bincount(src, minlength=num_src)
    return total / count.clamp(min=1).unsqueeze(1).to(vectors.dtype), count
