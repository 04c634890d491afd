"""Heterogeneous GraphSAGE encoder with per-node-type input layers.

GraphSAGE (Hamilton et al., "Inductive Representation Learning on Large Graphs", 2017):
``h_v' = W_1 h_v + W_2 · mean_{u in N(v)} h_u`` per edge type, summed over the edge types
that end in ``v``'s type (``HeteroConv(aggr="sum")``).

Built as an explicit ``HeteroConv`` of one ``SAGEConv`` per edge type rather than
``to_hetero``: with torch 2.13+ and torch-geometric 2.8.1, ``to_hetero``'s generated module
routes ``edge_index`` by node type and SAGEConv rejects it at the first forward.

Input: every node type has a learnable embedding ``E_t[n_id]`` (``[N_t, embedding_dim]``);
types with features concatenate them, and a linear layer maps the result to ``hidden``.
So featureless types (users) need no one-hot identity matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import HeteroConv, SAGEConv

EdgeType = tuple[str, str, str]


class HeteroSAGE(nn.Module):
    """Args:
    num_nodes: node type -> number of nodes (rows of its embedding table).
    feature_dims: node type -> input feature width (types without features omitted).
    edge_types: message-passing edge types (include the reverse ones).
    hidden: width of every layer and of the output.
    embedding_dim: width of the learnable per-node embedding.
    num_layers: message-passing layers (match the sampler's hops).
    dropout, aggr: dropout between layers; SAGE neighbourhood aggregation.
    sparse: sparse gradients for the embedding tables (train them with SparseAdam).

    Shapes: ``forward(x_dict, n_id_dict, edge_index_dict)`` with ``x_dict[t]: [n_t, F_t]``,
    ``n_id_dict[t]: [n_t]`` global ids, ``edge_index_dict[e]: [2, E_e]`` local ids; returns
    ``{t: [n_t, hidden]}``.
    """

    def __init__(
        self,
        num_nodes: dict[str, int],
        feature_dims: dict[str, int],
        edge_types: list[EdgeType],
        hidden: int = 64,
        embedding_dim: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        aggr: str = "mean",
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.embedding = nn.ModuleDict(
            {t: nn.Embedding(n, embedding_dim, sparse=sparse) for t, n in num_nodes.items()}
        )
        for emb in self.embedding.values():
            nn.init.normal_(emb.weight, std=0.1)
        self.feature_dims = dict(feature_dims)
        self.inp = nn.ModuleDict(
            {t: nn.Linear(embedding_dim + feature_dims.get(t, 0), hidden) for t in num_nodes}
        )
        self.convs = nn.ModuleList(
            HeteroConv(
                {et: SAGEConv((hidden, hidden), hidden, aggr=aggr) for et in edge_types}, aggr="sum"
            )
            for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x_dict: dict[str, Tensor],
        n_id_dict: dict[str, Tensor],
        edge_index_dict: dict[EdgeType, Tensor],
    ) -> dict[str, Tensor]:
        h = {}
        for t, n_id in n_id_dict.items():
            parts = [self.embedding[t](n_id)]
            if t in self.feature_dims:
                parts.append(x_dict[t])
            h[t] = self.inp[t](torch.cat(parts, dim=-1))
        for i, conv in enumerate(self.convs):
            out = conv(h, edge_index_dict)
            # A type that receives no message this layer keeps its previous state.
            h = {t: out.get(t, h[t]) for t in h}
            if i < len(self.convs) - 1:
                h = {t: self.dropout(v.relu()) for t, v in h.items()}
        return h
