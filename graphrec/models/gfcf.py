"""GF-CF (``model.name: gfcf``): graph-filter collaborative filtering (Shen et al., "How
Powerful is Graph Convolution for Recommendation?", CIKM 2021), in closed form.

With ``R`` the user-item matrix of the training edges (low-rated edges weighted
``train.low_label_weight``) and ``R~ = D_U^-1/2 R D_I^-1/2`` its symmetric normalisation,
a user's scores are two filters of its history row ``r_u``:

- the linear low-pass filter ``r_u R~^T R~`` (the normalised item-item co-occurrence, what
  LightGCN's propagation converges towards), and
- the ideal low-pass filter ``r_u D_I^-1/2 V V^T D_I^1/2`` with ``V`` the top
  ``model.gfcf.rank`` right singular vectors of ``R~`` (randomised SVD),

``score = linear + alpha * ideal``; ``alpha`` is chosen on validation. Nothing is trained.

Scale: the SVD is ``O(E k + (U + I) k^2)`` per power iteration; the linear filter is a dense
``items x items`` matrix (``O(E d_avg)`` to build, ``I^2`` floats), included where it fits in a
quarter of this machine's memory, with the users' dense history rows (``model.gfcf.linear:
auto``); without it the model is the
ideal filter alone, ``k``-dimensional vectors, and scales with edges. Scoring every user is
``O(U (I + k) I)`` with the linear filter, ``O(U k I)`` without.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.config import JobConfig
from graphrec.errors import ConfigError
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.closed_form import (
    ClosedFormModel,
    check_closed_form,
    dense_items_fit,
    dense_users_fit,
    low_weight,
)
from graphrec.models.inductive import NewNodes, reindex, reindex_square
from graphrec.models.registry import ModelSpec, register


class GFCF(ClosedFormModel):
    setting = "alpha"

    def __init__(
        self, num_users, num_items, target, low_label_weight, threshold, rank, alpha, linear
    ) -> None:
        super().__init__(num_users, num_items, target, low_label_weight, threshold)
        self.rank, self.alpha_setting, self.linear = rank, alpha, linear
        self.register_buffer("item_item", torch.zeros(0, 0))
        self.register_buffer("v_in", torch.zeros(num_items, 0))  # D_I^-1/2 V
        self.register_buffer("v_out", torch.zeros(num_items, 0))  # D_I^1/2 V
        self.register_buffer("alpha", torch.tensor(1.0))

    def search(self) -> tuple[float | None, float, float]:
        if not self.linear:
            return 1.0, 1.0, 3.0  # the ideal filter alone: its scale does not change a ranking
        fixed = None if self.alpha_setting == "auto" else float(self.alpha_setting)
        return fixed, 0.3, 3.0

    def prepare(self, data) -> None:
        coo = self.history(data).to_sparse_coo().coalesce()
        (u, i), w = coo.indices(), coo.values()
        d_u = torch.zeros(self.num_users, device=w.device).index_add_(0, u, w)
        d_i = torch.zeros(self.num_items, device=w.device).index_add_(0, i, w)
        inv_u, inv_i = _inv_sqrt(d_u), _inv_sqrt(d_i)
        norm = torch.sparse_coo_tensor(
            coo.indices(),
            w * inv_u[u] * inv_i[i],
            (self.num_users, self.num_items),
            check_invariants=False,
        ).coalesce()
        if self.linear:
            self.item_item = (norm.t() @ norm.to_dense()).contiguous()  # R~^T R~, [I, I]
        k = min(self.rank, min(self.num_users, self.num_items) - 1)
        if k >= 1:
            devices = [norm.device] if norm.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # the caller's RNG streams untouched
                torch.manual_seed(0)  # the randomised SVD is part of the model: reproducible
                q = min(k + 10, min(self.num_users, self.num_items))
                _, _, v = torch.svd_lowrank(norm, q=q)
            v = v[:, :k]
            self.v_in = v * inv_i.unsqueeze(1)
            self.v_out = v * d_i.sqrt().unsqueeze(1)

    def fit(self, data, value: float) -> None:
        self.alpha = torch.tensor(float(value), device=self.device)

    @torch.no_grad()
    def vectors(self, data) -> tuple[Tensor, Tensor]:
        """Users ``[r_u | alpha r_u D^-1/2 V]``, items ``[R~^T R~_:i | (D^1/2 V)_i]``."""
        r = self.history(data)
        ideal_u = self.alpha * (r @ self.v_in)
        if not self.linear:
            return ideal_u, self.v_out
        return torch.cat([r.to_dense(), ideal_u], 1), torch.cat([self.item_item, self.v_out], 1)

    @torch.no_grad()
    def fold_in(self, state, items: Tensor, labels: Tensor | None = None) -> Tensor:
        """A new user's vector from its history row (what :meth:`vectors` would give)."""
        row = self.history_row(items, labels)
        ideal = self.alpha * (row @ self.v_in)
        return torch.cat([row, ideal], 1) if self.linear else ideal


def _inv_sqrt(d: Tensor) -> Tensor:
    return torch.where(d > 0, d.clamp(min=1e-12).rsqrt(), torch.zeros_like(d))


def build_gfcf(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> GFCF:
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    g = cfg.model.gfcf
    fits, text = dense_items_fit(n_items, copies=3, share=0.25)
    if g.linear is True and not fits:
        raise ConfigError(f"model.gfcf.linear=true: {text}; set it to auto or false")
    users_fit = dense_users_fit(n_users, n_items, copies=3, share=0.25)
    linear = fits and users_fit if g.linear == "auto" else bool(g.linear)
    return GFCF(
        n_users, n_items, graph.target, low_weight(cfg, None),
        cfg.evaluate.positive_threshold, g.rank, g.alpha, linear,
    )  # fmt: skip


def embed_new_gfcf(model: GFCF, state: dict, nodes: NewNodes, data) -> None:
    """Users are their histories; a new item has zero rows in the filters and is left out
    of the rankings. The trained filter's form (linear part or not) is kept."""
    rows = nodes.rows[model.target[2]]
    state = dict(state)
    state["item_item"] = reindex_square(state["item_item"], rows)
    for key in ("v_in", "v_out"):
        state[key] = reindex(state[key], rows, 0.0)
    model.linear = state["item_item"].numel() > 0
    for key in ("item_item", "v_in", "v_out"):  # buffers sized as fitted
        setattr(model, key, state[key])
    model.load_state_dict(state)


register(
    ModelSpec(
        "gfcf", build_gfcf, batches="closed_form", losses=(), check=check_closed_form,
        embed_new=embed_new_gfcf, new_items=False,
    )
)  # fmt: skip
