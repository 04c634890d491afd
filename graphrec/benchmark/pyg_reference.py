"""PyG's own recipe for link prediction on MovieLens, re-implemented for the benchmark.

As in PyG's heterogeneous link-prediction example (``LinkNeighborLoader`` + ``to_hetero``):
a homogeneous GraphSAGE (one ``SAGEConv(hidden, hidden)`` per layer, ReLU between) turned
heterogeneous by ``to_hetero(aggr="sum")``; every node type's input is a learnable
embedding plus, where the type has features, a linear map of them; the classifier is the
dot product of the two endpoint embeddings; BCE on the loader's positive and negative
edges; Adam. Fan-out, batch size and negatives are graphrec's, so only the implementation
differs. The loader uses the sampler graphrec's training uses (``sampler.backend``), so
the comparison is of the model and the training step. The model and every mini-batch go
to graphrec's training device (``train.device``), so on a GPU both run there.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.nn import SAGEConv, to_hetero

from graphrec.config import JobConfig
from graphrec.samplers import make_neighbor_sampler
from graphrec.train.batches import TrainInputs
from graphrec.train.context import resolve_device


class GNN(nn.Module):
    def __init__(self, hidden: int, layers: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(SAGEConv(hidden, hidden) for _ in range(layers))

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = x.relu()
        return x


class Model(nn.Module):
    def __init__(self, hidden: int, num_nodes: dict, feature_dims: dict, metadata, layers: int):
        super().__init__()
        self.emb = nn.ModuleDict({t: nn.Embedding(n, hidden) for t, n in num_nodes.items()})
        self.lin = nn.ModuleDict({t: nn.Linear(d, hidden) for t, d in feature_dims.items()})
        self.gnn = to_hetero(GNN(hidden, layers), metadata, aggr="sum")

    def forward(self, batch, user: str, item: str, label_index):
        x = {}
        for t in batch.node_types:
            h = self.emb[t](batch[t].n_id)
            if t in self.lin:
                h = h + self.lin[t](batch[t].x)
            x[t] = h
        z = self.gnn(x, batch.edge_index_dict)
        return (z[user][label_index[0]] * z[item][label_index[1]]).sum(-1)


def recipe(inputs: TrainInputs, cfg: JobConfig):
    """``(model, optimizer, loader, device)``: PyG's recipe for ``inputs`` and ``cfg``'s
    width, fan-out, batch, negatives and sampler, on ``train.device``."""
    g, data = inputs.graph, inputs.data
    torch.manual_seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    model = Model(
        cfg.model.hidden,
        g.num_nodes,
        {t: x.shape[1] for t, x in g.x.items()},
        data.metadata(),
        len(cfg.sampler.num_neighbors),
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    sampler = make_neighbor_sampler(data, cfg.sampler.num_neighbors, cfg.sampler.backend, True)
    loader = LinkNeighborLoader(
        data,
        num_neighbors=cfg.sampler.num_neighbors,
        edge_label_index=(g.target, g.target_index[:, inputs.split.train]),
        neg_sampling_ratio=float(cfg.train.num_negatives),
        batch_size=cfg.sampler.batch_size,
        shuffle=True,
        neighbor_sampler=sampler,
    )
    return model, opt, loader, device


def step(model: Model, opt, batch, target: tuple[str, str, str]) -> int:
    """One training step on ``batch`` (already on the model's device); its labelled
    (positive) edges."""
    store = batch[target]
    opt.zero_grad()
    pred = model(batch, target[0], target[2], store.edge_label_index)
    loss = F.binary_cross_entropy_with_logits(pred, store.edge_label)
    loss.backward()
    opt.step()
    return int(store.edge_label.sum())


def measure(inputs: TrainInputs, cfg: JobConfig, steps: int) -> dict:
    """Labelled (positive) edges per second over ``steps`` mini-batches."""
    model, opt, loader, device = recipe(inputs, cfg)
    n = max(1, min(steps, len(loader)))
    it = iter(loader)
    labelled, t0 = 0, time.perf_counter()  # timed like graphrec's loop: every step counts
    for _ in range(n):
        labelled += step(model, opt, next(it).to(device), inputs.graph.target)
    s = time.perf_counter() - t0
    return {
        "labelled_edges_per_s": labelled / s,
        "steps": n,
        "sampler": type(loader.link_sampler).__name__,
        "device": str(device),
    }
