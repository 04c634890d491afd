"""EASE (``model.name: ease``): Steck's embarrassingly shallow autoencoder (WWW 2019), an
item-item model in closed form.

``B = argmin ||X - X B||^2 + lam ||B||^2`` with ``diag(B) = 0``:
``P = (X^T X + lam I)^-1``, ``B_ij = -P_ij / P_jj``, ``B_jj = 0``; ``score(u, i) = x_u B_:i``,
``X`` the user-item matrix of the training edges (low-rated edges weighted
``model.ease.low_label_weight``). ``lam`` is chosen on validation (``model.ease.lam: auto``).

Scale: one Cholesky inverse of an ``items x items`` matrix, ``O(I^3)`` time and about
``4 I^2`` floats of memory, independent of users and edges (10k items: ~15 s and 1.2 GB on
2 cores); scoring every user is ``O(U I^2)``. It refuses a catalogue whose matrices need
more than half of this machine's memory, naming the size. The user side of its vectors is
the dense ``U x I`` history. ``gfcf`` (its low-pass filter)
and ``lightgcn`` scale with edges instead.
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
    NotPositiveDefinite,
    check_closed_form,
    dense_items_fit,
    low_weight,
)
from graphrec.models.inductive import NewNodes, reindex_square
from graphrec.models.registry import ModelSpec, register


class EASE(ClosedFormModel):
    setting = "lam"

    def __init__(self, num_users, num_items, target, low_label_weight, threshold, lam) -> None:
        super().__init__(num_users, num_items, target, low_label_weight, threshold)
        self.lam = lam
        self.register_buffer("b", torch.zeros(0, 0))
        self.register_buffer("mean_degree", torch.tensor(1.0))

    def search(self) -> tuple[float | None, float, float]:
        fixed = None if self.lam == "auto" else float(self.lam)
        return fixed, lam_start(float(self.mean_degree)), LAM_FACTOR

    def prepare(self, data) -> None:
        """Statistics the search starts from (before any fit)."""
        x = self.history(data)
        self.mean_degree = torch.tensor(x.values().numel() / max(self.num_items, 1))

    def fit(self, data, value: float) -> None:
        self.b = torch.zeros(0, 0, device=self.device)  # the previous fit's B is freed first
        x = self.history(data).to_sparse_coo()
        gram = torch.sparse.mm(x.t().coalesce(), x).to_dense()  # X^T X without a dense X
        del x
        self.b = ease_weights(gram, value, "model.ease.lam")

    @torch.no_grad()
    def vectors(self, data) -> tuple[Tensor, Tensor]:
        """Users: their history rows ``[U, I]``; items: the columns of ``B`` (``B^T``)."""
        return self.history(data).to_dense(), self.b.t()

    def fold_in(self, state, items: Tensor, labels: Tensor | None = None) -> Tensor:
        """A new user's vector: its history row (what :meth:`vectors` would give)."""
        return self.history_row(items, labels)


LAM_FACTOR = 4.0
"""Step of the validation search over ``lam``."""


def lam_start(mean_item_degree: float) -> float:
    """Where the search over ``lam`` starts: 10x the mean item degree (``lam`` competes with
    the Gram matrix's diagonal, the item degrees). The model and ``graphrec compare``'s
    ``ease`` baselines both start here."""
    return 10.0 * max(mean_item_degree, 1.0)


def ease_weights(gram: Tensor, lam: float, name: str = "lam") -> Tensor:
    """EASE's ``B`` from the Gram matrix ``X^T X`` (taken over: changed in place):
    ``P = (X^T X + lam I)^-1``, ``B_ij = -P_ij / P_jj``, ``B_jj = 0``. The model and
    ``graphrec compare``'s ``ease`` baseline both fit with it. ``name``: the setting that
    :class:`NotPositiveDefinite` names when ``lam`` is too small for float32."""
    gram.diagonal().add_(lam)
    chol, info = torch.linalg.cholesky_ex(gram)
    del gram
    if int(info) != 0:
        raise NotPositiveDefinite(
            f"{name}={lam:g}: X^T X + lam I is not positive definite in float32; raise it "
            "(or leave it auto)"
        )
    p = torch.cholesky_inverse(chol)
    del chol
    b = p.div_(-p.diagonal().clone())  # column j divided by -P_jj
    b.fill_diagonal_(0.0)
    return b


def build_ease(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> EASE:
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    ok, text = dense_items_fit(n_items, copies=4, share=0.5)
    if not ok:
        raise ConfigError(f"model.name=ease: {text}; use model.name=gfcf or lightgcn")
    e = cfg.model.ease
    return EASE(
        n_users, n_items, graph.target, low_weight(cfg, e.low_label_weight),
        cfg.evaluate.positive_threshold, e.lam,
    )  # fmt: skip


def embed_new_ease(model: EASE, state: dict, nodes: NewNodes, data) -> None:
    """Users are their histories (nothing to embed); a new item has no row or column of
    ``B`` (zero weights) and is left out of the rankings."""
    model.b = reindex_square(state["b"], nodes.rows[model.target[2]])  # sized as fitted
    model.load_state_dict({**state, "b": model.b})


register(
    ModelSpec(
        "ease", build_ease, batches="closed_form", losses=(), check=check_closed_form,
        embed_new=embed_new_ease, new_items=False,
    )
)  # fmt: skip
