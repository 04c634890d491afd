"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020) over the user-item target edges, with PyG's ``LightGCN``.

The user-item edges of the message graph (both directions, symmetric normalization
``1 / sqrt(d_u d_i)``) propagate learnable embeddings ``layers`` times; a node's vector is
the mean of its layer outputs. No non-linearity: a strong collaborative
model. Trained on the full graph per step with per-user BPR triplets or user batches
(:mod:`graphrec.samplers.users`) and an L2 penalty on the batch's layer-0 embeddings
(``train.embedding_l2``).

Two additions to the paper's model, both off by default in the paper and measured on
MovieLens in ``bench/results/quality-movielens.md``:

- item features (``model.item_features``): an item's layer-0 vector is its learned
  embedding plus a learned linear map of its content features (title text, genres), so
  propagation spreads content as well as identity;
- edge weights by label (``train.low_label_weight``): an edge whose label is below
  ``evaluate.positive_threshold`` (a rating under 4) enters the normalized adjacency with
  that weight instead of 1 (degrees are the weighted degrees).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch_geometric.nn import LightGCN

from graphrec.config import JobConfig
from graphrec.graph.hetero import Graph, label_weights
from graphrec.graph.split import EdgeSplit
from graphrec.models.inductive import NewNodes, reindex
from graphrec.models.registry import LINK_LOSSES, ModelSpec, num_layers, ranks_items, register


class LightGCNRecommender(nn.Module):
    """Same interface as :class:`~graphrec.models.Recommender` (``encode``, ``score``,
    ``forward``, ``vectors``) on the full graph; ``pairs`` are global ids."""

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int,
        layers: int,
        target,
        item_features: int = 0,
        low_label_weight: float = 1.0,
        threshold: float = 4.0,
    ) -> None:
        super().__init__()
        self.net = LightGCN(num_users + num_items, dim, layers, normalize=False)
        nn.init.normal_(self.net.embedding.weight, std=0.1)
        self.inp = None
        if item_features:
            self.inp = nn.Linear(item_features, dim, bias=False)
            nn.init.normal_(self.inp.weight, std=0.01)
        self.low_label_weight, self.threshold = low_label_weight, threshold
        self.num_users, self.num_items = num_users, num_items
        self.target = target
        self.user, self.item = target[0], target[2]
        self._adj: tuple | None = None

    @property
    def device(self) -> torch.device:
        return self.net.embedding.weight.device

    def _graph(self, data) -> Tensor:
        """Symmetric, normalized user-item adjacency ``w_ui / sqrt(d_u d_i)`` of ``data``'s
        target edges (``w``: edge weights, ``d``: weighted degrees) as a sparse CSR matrix
        (cached): propagation is one sparse-dense product per layer, no per-edge messages."""
        ei = data[self.target].edge_index
        key = (ei.data_ptr(), ei.shape[1], int(ei[0].sum()), str(self.device))
        if self._adj is None or self._adj[0] != key:
            n = self.num_users + self.num_items
            u, i = ei[0], ei[1] + self.num_users
            both = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
            w = self._edge_weights(data[self.target], ei.shape[1], ei.device)
            w = torch.cat([w, w])
            deg = torch.zeros(n, device=ei.device).index_add_(0, both[0], w)
            inv = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
            values = inv[both[0]] * w * inv[both[1]]
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore")
                adj = torch.sparse_coo_tensor(both, values, (n, n), check_invariants=False)
                self._adj = (key, adj.coalesce().to_sparse_csr().to(self.device))
        return self._adj[1]

    def _edge_weights(self, store, n: int, device) -> Tensor:
        """1 per edge, ``low_label_weight`` where the edge's label is below the threshold."""
        return self.fold_weights(getattr(store, "label", None), n, device)

    def encode(self, data) -> dict[str, Tensor]:
        adj = self._graph(data)
        x = self.net.embedding.weight
        if self.inp is not None:
            feats = self.inp(data[self.item].x.to(x.device).float())
            x = torch.cat([x[: self.num_users], x[self.num_users :] + feats])
        alpha = self.net.alpha.to(x.device)
        out = x * alpha[0]
        for k, conv in enumerate(self.net.convs):  # one sparse-dense product per layer
            x = conv(x, adj)
            out = out + x * alpha[k + 1]
        return {self.user: out[: self.num_users], self.item: out[self.num_users :]}

    def score(self, data, z: dict[str, Tensor], pairs: Tensor) -> Tensor:
        return (z[self.user][pairs[0]] * z[self.item][pairs[1]]).sum(-1)

    def forward(self, data, pairs: Tensor, candidates: Tensor | None = None):
        """Scores of ``pairs``; with ``candidates`` (item ids) also ``[len(pairs), C]``
        scores of each pair's user against every candidate (for the softmax loss)."""
        z = self.encode(data)
        scores = self.score(data, z, pairs)
        if candidates is None:
            return scores
        return scores, z[self.user][pairs[0]] @ z[self.item][candidates].t()

    def l2(self, pairs: Tensor) -> Tensor:
        """Mean over ``pairs`` of the squared layer-0 norms of both endpoints."""
        w = self.net.embedding.weight
        return (w[pairs[0]].pow(2).sum(-1) + w[pairs[1] + self.num_users].pow(2).sum(-1)).mean()

    @torch.no_grad()
    def vectors(self, data) -> tuple[Tensor, Tensor]:
        z = self.encode(data)
        return z[self.user], z[self.item]

    @torch.no_grad()
    def fold_in_state(self, data) -> dict:
        """What folding in a user costs nothing to keep: every item's vector at every layer
        and its weighted degree in ``data`` (computed once, e.g. when a server loads)."""
        adj = self._graph(data)
        x = self.net.embedding.weight
        if self.inp is not None:
            feats = self.inp(data[self.item].x.to(x.device).float())
            x = torch.cat([x[: self.num_users], x[self.num_users :] + feats])
        layers = [x[self.num_users :]]
        for conv in self.net.convs:
            x = conv(x, adj)
            layers.append(x[self.num_users :])
        store = data[self.target]
        ei = store.edge_index.to(x.device)
        w = self._edge_weights(store, ei.shape[1], x.device)
        deg = torch.zeros(self.num_items, device=x.device).index_add_(0, ei[1], w)
        return {"layers": layers, "deg": deg, "alpha": self.net.alpha.to(x.device)}

    def fold_weights(self, labels: Tensor | None, n: int, device=None) -> Tensor:
        """Propagation weights of ``n`` edges by their labels (as in training)."""
        device = self.device if device is None else device
        if labels is None or self.low_label_weight == 1.0:
            return torch.ones(n, device=device)
        return label_weights(labels.to(device), self.low_label_weight, self.threshold)

    @torch.no_grad()
    def fold_in(self, state: dict, items: Tensor, labels: Tensor | None = None) -> Tensor:
        """The final vector of a new user with edges to ``items``, without a pass over the
        graph: the same fold-in as :func:`embed_new_lightgcn` (its layer-0 vector is one
        propagation step of its items'), with its items' layer vectors updated for the one
        new edge each (exact through two layers; deeper item layers ignore the new user's
        effect on their other neighbours)."""
        items = items.to(self.device)
        w = self.fold_weights(labels, len(items))
        d_u = w.sum().clamp(min=1e-12)
        d_old = state["deg"][items]
        d_new = d_old + w
        norm = (w / torch.sqrt(d_u * d_new)).unsqueeze(1)
        keep = torch.sqrt(d_old / d_new).unsqueeze(1)
        layers, alpha = state["layers"], state["alpha"]
        e_u = [(norm * layers[0][items]).sum(0)]  # layer 0: the folded vector
        e_u.append(e_u[0])  # layer 1: the same step over the same items
        for k in range(2, len(layers)):
            item_prev = keep * layers[k - 1][items] + norm * e_u[k - 2]
            e_u.append((norm * item_prev).sum(0))
        return sum(a * e for a, e in zip(alpha, e_u, strict=True)).unsqueeze(0)


def build_lightgcn(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> LightGCNRecommender:
    """LightGCN over the target edges, with the item features where the build made any
    (``model.item_features``)."""
    x = graph.x.get(graph.item_type) if cfg.model.item_features else None
    return LightGCNRecommender(
        graph.num_nodes[graph.user_type],
        graph.num_nodes[graph.item_type],
        cfg.model.embedding_dim,
        num_layers(cfg),
        graph.target,
        item_features=0 if x is None else x.shape[1],
        low_label_weight=cfg.train.low_label_weight,
        threshold=cfg.evaluate.positive_threshold,
    )


@torch.no_grad()
def embed_new_lightgcn(model: LightGCNRecommender, state: dict, nodes: NewNodes, data) -> None:
    """Fold-in: a new node's layer-0 embedding is one propagation step of the trained
    layer-0 vectors over the later graph (the normalized sum of its neighbours' embeddings,
    an item's content features included), then it propagates like every node. A new item
    with no edges is its content features alone."""
    user, item = model.user, model.item
    w = state["net.embedding.weight"]
    n_users = nodes.trained[user]
    emb = torch.cat([
        reindex(w[:n_users], nodes.rows[user], 0.0), reindex(w[n_users:], nodes.rows[item], 0.0)
    ])  # fmt: skip
    model.load_state_dict({**state, "net.embedding.weight": emb})
    new = torch.cat([nodes.new(user), nodes.new(item)]).to(model.device)
    if not new.any():
        return
    x = model.net.embedding.weight
    if model.inp is not None:
        feats = model.inp(data[item].x.to(x.device).float())
        x = torch.cat([x[: model.num_users], x[model.num_users :] + feats])
    folded = model._graph(data) @ x
    model.net.embedding.weight[new] = folded[new]


register(
    ModelSpec(
        "lightgcn",
        build_lightgcn,
        batches="user",
        losses=LINK_LOSSES,
        options=("low_label_weight",),
        check=ranks_items,
        embed_new=embed_new_lightgcn,
    )
)
