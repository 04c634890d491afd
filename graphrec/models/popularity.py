"""A learned popularity "model" (``model.name: popularity``): one score per item, the same
for every user, learned from per-user batches with the ranking losses.

It is the smallest model the registry can hold (the test that adding a model touches only
``graphrec/models/`` uses it), and a sanity floor: a graph model that cannot beat it has
learned nothing about users. Score: ``s(u, i) = b_i``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.config import JobConfig
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.inductive import NewNodes, reindex
from graphrec.models.registry import LINK_LOSSES, ModelSpec, ranks_items, register


class PopularityModel(nn.Module):
    """Args: num_users, num_items: sizes of the two node types; target: the edge type."""

    def __init__(self, num_users: int, num_items: int, target) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.user, self.item = target[0], target[2]
        self.bias = nn.Embedding(num_items, 1)
        nn.init.zeros_(self.bias.weight)

    @property
    def device(self) -> torch.device:
        return self.bias.weight.device

    def forward(self, data, pairs: Tensor, candidates: Tensor | None = None):
        """``b_i`` for every pair ``(u, i)``; with ``candidates`` also ``[B, C]`` rows."""
        scores = self.bias.weight[pairs[1], 0]
        if candidates is None:
            return scores
        return scores, self.bias.weight[candidates, 0].expand(len(pairs[0]), -1)

    def l2(self, pairs: Tensor) -> Tensor:
        return self.bias.weight[pairs[1]].pow(2).mean()

    @torch.no_grad()
    def vectors(self, data) -> tuple[Tensor, Tensor]:
        """Users ``[U, 1]`` of ones, items ``[I, 1]`` of their scores."""
        return torch.ones(self.num_users, 1, device=self.device), self.bias.weight.detach()


def build_popularity(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> PopularityModel:
    return PopularityModel(
        graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type], graph.target
    )


def embed_new_popularity(model: PopularityModel, state: dict, nodes: NewNodes, data) -> None:
    """Every user ranks alike; a new item has no learned popularity and is left out."""
    rows = nodes.rows[model.item]
    model.load_state_dict({**state, "bias.weight": reindex(state["bias.weight"], rows)})


register(
    ModelSpec(
        "popularity", build_popularity, batches="user", losses=LINK_LOSSES, check=ranks_items,
        embed_new=embed_new_popularity, new_items=False,
    )
)  # fmt: skip
