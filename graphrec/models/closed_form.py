"""What the closed-form models share: the interaction matrix of a message graph, their
memory check, and the base class the training stage fits instead of running epochs.

A closed-form model has no gradient steps: :meth:`ClosedFormModel.fit` computes it from the
training edges for one value of its one setting (EASE's L2, GF-CF's filter weight), and
the training stage picks that value on validation (:mod:`graphrec.train.closed_form`).
Scores are still inner products of ``vectors(data)``, where the user side is the user's
(weighted) history in ``data``: a user never seen in training is scored from the history
it has now, with no refit.
"""

from __future__ import annotations

import warnings

import psutil
import torch
from torch import Tensor, nn

from graphrec.config import JobConfig
from graphrec.errors import ConfigError
from graphrec.graph.hetero import label_weights
from graphrec.models.registry import ranks_items


class NotPositiveDefinite(ConfigError):
    """A closed-form fit whose matrix is not positive definite at this setting (too little
    regularisation for float32): a fixed setting is a config error; a search moves on."""


class ClosedFormModel(nn.Module):
    """Base of the closed-form models: sizes, edge weighting, the fitted state as buffers.

    Args: num_users, num_items; target: the edge type; low_label_weight: weight of an edge
    labelled below ``threshold`` (1.0: every edge 1).
    """

    setting: str = ""
    """The name of the one setting chosen on validation (a key of ``history`` rows)."""

    def __init__(
        self, num_users: int, num_items: int, target, low_label_weight: float, threshold: float
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.target = tuple(target)
        self.low_label_weight, self.threshold = low_label_weight, threshold
        self.register_buffer("_anchor", torch.zeros(0))  # carries the device

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def search(self) -> tuple[float | None, float, float]:
        """``(fixed value or None, start, step factor)`` of :attr:`setting`."""
        raise NotImplementedError

    def prepare(self, data) -> None:
        """What does not depend on the setting, computed once before the search."""

    def fit(self, data, value: float) -> None:
        raise NotImplementedError

    def forward(self, data, pairs: Tensor, *args) -> Tensor:
        uv, iv = self.vectors(data)
        return (uv[pairs[0]] * iv[pairs[1]]).sum(-1)

    def history(self, data) -> Tensor:
        """The sparse ``[num_users, num_items]`` interaction matrix of ``data``'s target edges
        (float32 CSR; an edge weighs 1, or ``low_label_weight`` where labelled low)."""
        store = data[self.target]
        ei = store.edge_index.to(self.device)
        w = self.edge_weights(getattr(store, "label", None), ei.shape[1])
        m = torch.sparse_coo_tensor(ei, w, (self.num_users, self.num_items), check_invariants=False)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            return m.coalesce().to_sparse_csr()

    def edge_weights(self, labels: Tensor | None, n: int) -> Tensor:
        """1 per edge, ``low_label_weight`` where labelled below the threshold."""
        if self.low_label_weight == 1.0 or labels is None:
            return torch.ones(n, device=self.device)
        return label_weights(labels.to(self.device), self.low_label_weight, self.threshold)

    def fold_in_state(self, data) -> None:
        return None  # a new user is its history row: nothing to keep

    @torch.no_grad()
    def history_row(self, items: Tensor, labels: Tensor | None = None) -> Tensor:
        """``[1, num_items]``: a new user's row of :meth:`history`, from its items."""
        row = torch.zeros(1, self.num_items, device=self.device)
        row[0, items.to(self.device)] = self.edge_weights(labels, len(items))
        return row


def low_weight(cfg: JobConfig, own: float | None) -> float:
    """A closed-form model's weight of low-rated edges: its own setting, else
    ``train.low_label_weight``."""
    return own if own is not None else cfg.train.low_label_weight


def check_closed_form(cfg: JobConfig) -> None:
    """The checks of every closed-form model: it ranks, it is fit in one process, and it
    keeps no checkpoints to resume from (a fit takes seconds to minutes, not epochs)."""
    ranks_items(cfg)
    if cfg.train.resume:
        raise ConfigError(
            f"model.name={cfg.model.name} is fit in closed form and keeps no checkpoints: "
            "nothing to resume (drop train.resume / --resume)"
        )
    if cfg.distributed.workers > 0:
        raise ConfigError(
            f"model.name={cfg.model.name} is fit in closed form in one process (no epochs to "
            "spread over workers): set distributed.workers=0"
        )


def dense_items_fit(
    num_items: int, copies: int, share: float, total: int | None = None
) -> tuple[bool, str]:
    """Whether ``copies`` dense float32 ``items x items`` matrices fit in ``share`` of this
    machine's memory (``total`` bytes: judge against that instead), and the sentence that
    says so."""
    total = total if total is not None else psutil.virtual_memory().total
    need = copies * 4 * num_items**2
    text = (
        f"{num_items:,} items need {copies} dense {num_items:,} x {num_items:,} matrices "
        f"({need / 2**30:.1f} GiB), more than {share:.0%} of this machine's "
        f"{total / 2**30:.1f} GiB"
    )
    return need <= share * total, text


def dense_users_fit(
    num_users: int, num_items: int, copies: int, share: float, total: int | None = None
) -> bool:
    """Whether ``copies`` dense float32 ``users x items`` matrices (the user side of an
    item-item model's vectors: each user's history row) fit in ``share`` of this machine's
    memory (``total`` bytes: judge against that instead)."""
    total = total if total is not None else psutil.virtual_memory().total
    return copies * 4 * num_users * num_items <= share * total
