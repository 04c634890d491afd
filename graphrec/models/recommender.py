"""Heterogeneous GraphSAGE as a recommender (``model.name: sage``): encoder + decoder as one
module, built from the graph and the config, and its registry entry."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphrec.config import JobConfig, ModelConfig
from graphrec.graph.hetero import Graph, message_graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.decoders import DotDecoder
from graphrec.models.inductive import NewNodes, reindex
from graphrec.models.registry import RATING_LOSSES, ModelSpec, num_layers, register
from graphrec.models.sage import HeteroSAGE


class Recommender(nn.Module):
    """Scores (user, item) pairs of the target edge type from a (sub)graph."""

    def __init__(self, encoder: nn.Module, decoder: DotDecoder, user: str, item: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.user, self.item = user, item

    @property
    def device(self) -> torch.device:
        return self.decoder.mean.device

    def encode(self, data: HeteroData) -> dict[str, Tensor]:
        """Embeddings of every node of ``data`` (the whole graph), or of a neighbour-sampled
        batch's seeds (its first ``num_sampled_nodes[0]`` nodes per type, the only ones a
        batch's pairs refer to) with ``aggr`` mean or sum."""
        device = self.device
        n_id = {
            t: data[t].n_id if "n_id" in data[t] else torch.arange(data[t].num_nodes, device=device)
            for t in data.node_types
        }
        x = {t: data[t].x for t in data.node_types if "x" in data[t]}
        if all("num_sampled_nodes" in data[t] for t in data.node_types) and all(
            "num_sampled_edges" in data[et] for et in data.edge_types
        ):  # a neighbour-sampled batch: each layer updates only what the next one reads
            return self.encoder(
                x,
                n_id,
                data.edge_index_dict,
                {t: data[t].num_sampled_nodes for t in data.node_types},
                {et: data[et].num_sampled_edges for et in data.edge_types},
            )
        return self.encoder(x, n_id, data.edge_index_dict)

    def score(self, data: HeteroData, z: dict[str, Tensor], pairs: Tensor) -> Tensor:
        """Scores of ``pairs`` (``[2, B]`` local ids into ``data``'s user and item nodes)."""
        u, i = pairs
        # index_select, not z[u]: its backward is an index_add, not a slower index_put
        u_id = data[self.user].n_id.index_select(0, u) if "n_id" in data[self.user] else u
        i_id = data[self.item].n_id.index_select(0, i) if "n_id" in data[self.item] else i
        z_u, z_i = z[self.user].index_select(0, u), z[self.item].index_select(0, i)
        return self.decoder(z_u, z_i, u_id, i_id)

    def forward(self, data: HeteroData, pairs: Tensor) -> Tensor:
        """``score(data, encode(data), pairs)`` in one call: under DDP the whole loss must
        come from ``forward`` so that every parameter's gradient is synchronized."""
        return self.score(data, self.encode(data), pairs)

    @torch.no_grad()
    def vectors(self, data: HeteroData) -> tuple[Tensor, Tensor]:
        """Full-graph ``(user_vectors [U, H+1], item_vectors [I, H+1])`` for ranking, by the
        encoder's layer-wise batched ``inference`` (memory bounded by a batch of
        ``INFERENCE_BATCH_NODES`` nodes' messages, not by the graph's edges)."""
        was = self.training
        self.eval()
        x = {t: data[t].x for t in data.node_types if "x" in data[t]}
        num_nodes = {t: data[t].num_nodes for t in data.node_types}
        z = self.encoder.inference(
            x, num_nodes, data.edge_index_dict, INFERENCE_BATCH_NODES, INFERENCE_BATCH_EDGES
        )
        self.train(was)
        return self.decoder.user_vectors(z[self.user]), self.decoder.item_vectors(z[self.item])


INFERENCE_BATCH_NODES = 65_536
"""Destination nodes per step of full-graph inference (``HeteroSAGE.inference``)."""
INFERENCE_BATCH_EDGES = 1 << 20
"""Incoming edges per step of full-graph inference: their messages, 256 MiB at width 64."""

AUTO_SPARSE_NODES = 100_000
"""``model.sparse_embeddings=auto`` turns sparse embedding gradients on from this many nodes."""


def use_sparse_embeddings(setting: bool | str, num_nodes: dict[str, int], nccl: bool) -> bool:
    """Resolve ``model.sparse_embeddings`` (``auto``: large graphs, not with NCCL)."""
    if setting == "auto":
        return not nccl and sum(num_nodes.values()) >= AUTO_SPARSE_NODES
    return bool(setting)


def build_model(
    cfg: ModelConfig,
    num_nodes: dict[str, int],
    feature_dims: dict[str, int],
    edge_types: list,
    target: tuple[str, str, str],
    num_layers: int,
    init_mean: float = 0.0,
    nccl: bool = False,
) -> Recommender:
    """The configured encoder + decoder; ``nccl``: trained by GPU workers (no sparse
    gradients)."""
    sparse = use_sparse_embeddings(cfg.sparse_embeddings, num_nodes, nccl)
    encoder = HeteroSAGE(
        num_nodes,
        feature_dims,
        edge_types,
        hidden=cfg.hidden,
        embedding_dim=cfg.embedding_dim,
        num_layers=num_layers,
        dropout=cfg.dropout,
        aggr=cfg.aggr,
        sparse=sparse,
    )
    user, _, item = target
    decoder = DotDecoder(num_nodes[user], num_nodes[item], init_mean, sparse)
    return Recommender(encoder, decoder, user, item)


def build_sage(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> Recommender:
    """Heterogeneous GraphSAGE over every edge type of the training message graph; for
    ratings the decoder's global bias starts at the mean training rating."""
    rating = cfg.train.objective == "rating"
    init_mean = float(graph.label[split.train].mean()) if rating else 0.0
    edge_types = message_graph(graph, split.train[:0], cfg.build.reverse_edges).edge_types
    return build_model(
        cfg.model,
        graph.num_nodes,
        {t: x.shape[1] for t, x in graph.x.items()},
        edge_types,
        graph.target,
        num_layers(cfg),
        init_mean,
        nccl=cfg.distributed.workers > 0 and cfg.distributed.use_gpu,
    )


def embed_new_sage(model: Recommender, state: dict, nodes: NewNodes, data) -> None:
    """GraphSAGE is inductive: a new node's id embedding and bias are the trained rows'
    means (the neutral default), and its vector comes from its features and its
    neighbours through the trained layers, as every node's does."""
    state = dict(state)
    for ntype, rows in nodes.rows.items():
        key = f"encoder.embedding.{ntype}.weight"
        if key in state:
            state[key] = reindex(state[key], rows)
    for key, ntype in (
        ("decoder.user_bias.weight", model.user),
        ("decoder.item_bias.weight", model.item),
    ):
        state[key] = reindex(state[key], nodes.rows[ntype])
    model.load_state_dict(state)


register(
    ModelSpec(
        "sage",
        build_sage,
        batches="neighbor",
        losses=(*RATING_LOSSES, "bce", "bpr"),
        options=("disjoint_ratio",),
        embed_new=embed_new_sage,
    )
)
