"""PinSage-style recommender (Ying et al., KDD 2018), adapted to user-item recommendation.

Items: ``h0_i = E_i + W_x x_i`` (a learned item embedding added to the projected content
features), then ``layers`` convolutions over importance-based neighbourhoods
(:func:`graphrec.samplers.random_walk.item_neighbourhoods`: top-T items visited by
item -> user -> item random walks, visit shares as weights)::

    n_i = sum_j w_ij relu(Q h_j)          (weighted mean: the weights sum to 1)
    h_i = normalize(relu(W [h_i || n_i]))

and a final linear map ``G``. Users: a learned embedding. Score: ``<p_u, z_i> + b_i`` (the
item bias is a learned popularity prior: without it the model fell below popularity on the
near-random DVD-rental graph).
A mini-batch computes only the items its pairs need and their neighbourhoods, layer by
layer (PinSage's "minibatch computation graph"); ranking computes every item once.
Trained with the user batches of :mod:`graphrec.samplers.users` (BPR, BCE, sampled
softmax or user batches); ``train.hard_negatives`` draws that share of the negatives from
the positive item's random-walk neighbourhood (PinSage's hard negatives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.config import JobConfig
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.inductive import NewNodes, mean_of_neighbours, reindex
from graphrec.models.registry import LINK_LOSSES, ModelSpec, num_layers, ranks_items, register
from graphrec.samplers.random_walk import item_neighbourhoods


class PinSageRecommender(nn.Module):
    def __init__(
        self,
        num_users: int,
        num_items: int,
        feature_dim: int,
        dim: int,
        layers: int,
        target,
        walks: int = 50,
        walk_length: int = 2,
        top_t: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.target, self.user, self.item = target, target[0], target[2]
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.inp = nn.Linear(feature_dim, dim) if feature_dim else None
        self.q = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.w = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(layers))
        self.g = nn.Linear(dim, dim)
        self.item_bias = nn.Embedding(num_items, 1)  # a learned popularity prior
        nn.init.zeros_(self.item_bias.weight)
        self.walks, self.walk_length, self.top_t, self.seed = walks, walk_length, top_t, seed
        self._hood: tuple | None = None

    @property
    def device(self) -> torch.device:
        return self.user_emb.weight.device

    def neighbourhoods(self, data) -> tuple[Tensor, Tensor]:
        """Random-walk neighbourhoods over ``data``'s target edges (cached per graph)."""
        ei = data[self.target].edge_index
        key = (ei.data_ptr(), ei.shape[1], int(ei[0].sum()), int(ei[1].sum()))
        if self._hood is None or self._hood[0] != key:
            nbr, w = item_neighbourhoods(
                ei[0].cpu(), ei[1].cpu(), self.num_users, self.num_items,
                self.walks, self.walk_length, self.top_t, self.seed,
            )  # fmt: skip
            self._hood = (key, nbr.to(self.device), w.to(self.device))
        return self._hood[1], self._hood[2]

    def items(self, data, ids: Tensor) -> Tensor:
        """Final embeddings ``[len(ids), dim]`` of items ``ids``."""
        nbr, weight = self.neighbourhoods(data)
        sets = [ids]  # sets[l]: the items whose layer-(L-l) state is needed
        for _ in self.w:
            n = nbr[sets[-1]]
            sets.append(torch.unique(torch.cat([sets[-1], n[n >= 0]])))
        sets.reverse()  # sets[0]: inputs, sets[L]: ids
        pos = torch.full((self.num_items,), -1, dtype=torch.long, device=ids.device)
        base = sets[0]
        h = self.item_emb(base)
        if self.inp is not None:
            h = h + self.inp(data[self.item].x[base].to(h.device))
        for layer, (q, w) in enumerate(zip(self.q, self.w, strict=True)):
            prev, cur = sets[layer], sets[layer + 1]
            pos[prev] = torch.arange(len(prev), device=ids.device)
            n, wt = nbr[cur], weight[cur]
            msg = F.relu(q(h))[pos[n.clamp(min=0)]] * (wt * (n >= 0)).unsqueeze(-1)
            h = F.normalize(F.relu(w(torch.cat([h[pos[cur]], msg.sum(1)], -1))), dim=-1)
        return self.g(h)

    def encode(self, data) -> dict[str, Tensor]:
        all_items = torch.arange(self.num_items, device=self.device)
        return {self.user: self.user_emb.weight, self.item: self.items(data, all_items)}

    def score(self, data, z: dict[str, Tensor], pairs: Tensor) -> Tensor:
        dot = (z[self.user][pairs[0]] * z[self.item][pairs[1]]).sum(-1)
        return dot + self.item_bias(pairs[1]).squeeze(-1)

    def forward(self, data, pairs: Tensor, candidates: Tensor | None = None):
        """Scores of ``pairs`` (and of each pair's user against ``candidates``), computing
        only the items they need."""
        need = pairs[1] if candidates is None else torch.cat([pairs[1], candidates])
        uniq, inv = torch.unique(need, return_inverse=True)
        z = self.items(data, uniq)
        u = self.user_emb(pairs[0])
        scores = (u * z[inv[: pairs.shape[1]]]).sum(-1) + self.item_bias(pairs[1]).squeeze(-1)
        if candidates is None:
            return scores
        return scores, u @ z[inv[pairs.shape[1] :]].t() + self.item_bias(candidates).t()

    def l2(self, pairs: Tensor) -> Tensor:
        return (
            self.user_emb(pairs[0]).pow(2).sum(-1) + self.item_emb(pairs[1]).pow(2).sum(-1)
        ).mean()

    @torch.no_grad()
    def vectors(self, data) -> tuple[Tensor, Tensor]:
        was = self.training
        self.eval()
        z = self.encode(data)
        self.train(was)
        ones = torch.ones(self.num_users, 1, device=self.device)
        users = torch.cat([z[self.user].detach(), ones], 1)
        return users, torch.cat([z[self.item].detach(), self.item_bias.weight.detach()], 1)


def build_pinsage(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> PinSageRecommender:
    """PinSage-style items over random-walk neighbourhoods (``model.pinsage``)."""
    x = graph.x.get(graph.item_type)
    p = cfg.model.pinsage
    return PinSageRecommender(
        graph.num_nodes[graph.user_type],
        graph.num_nodes[graph.item_type],
        0 if x is None else x.shape[1],
        cfg.model.embedding_dim,
        num_layers(cfg),
        graph.target,
        walks=p.walks,
        walk_length=p.walk_length,
        top_t=p.top_t,
        seed=cfg.train.seed,
    )


@torch.no_grad()
def embed_new_pinsage(model: PinSageRecommender, state: dict, nodes: NewNodes, data) -> None:
    """A new item: the trained items' mean id embedding and bias, its content features and
    its random-walk neighbourhood over the later graph through the trained layers. A new
    user: the mean of its items' final vectors, scaled to the trained users' median norm
    (a user without items scores by the item bias alone: popularity)."""
    user, item = model.user, model.item
    state = dict(state)
    trained_users = state["user_emb.weight"]
    state["user_emb.weight"] = reindex(trained_users, nodes.rows[user], 0.0)
    state["item_emb.weight"] = reindex(state["item_emb.weight"], nodes.rows[item])
    state["item_bias.weight"] = reindex(state["item_bias.weight"], nodes.rows[item])
    model.load_state_dict(state)
    new = nodes.new(user).to(model.device)
    if not new.any():
        return
    was = model.training
    model.eval()
    z = model.items(data, torch.arange(model.num_items, device=model.device))
    model.train(was)
    ei = data[model.target].edge_index.to(model.device)
    mean, count = mean_of_neighbours(z, ei[0], ei[1], model.num_users)
    norm = trained_users.norm(dim=1).median().to(mean.device) if len(trained_users) else 1.0
    folded = torch.nn.functional.normalize(mean, dim=1) * norm
    model.user_emb.weight[new] = torch.where((count > 0)[new].unsqueeze(1), folded[new], 0.0)


register(
    ModelSpec(
        "pinsage",
        build_pinsage,
        batches="user",
        losses=LINK_LOSSES,
        options=("hard_negatives",),
        check=ranks_items,
        embed_new=embed_new_pinsage,
    )
)
