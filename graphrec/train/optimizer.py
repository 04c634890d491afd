"""Stage 3, train: the optimizer. Adam, or Adam + SparseAdam as one optimizer when the model
has sparse embedding tables (``model.sparse_embeddings``)."""

from __future__ import annotations

import torch
from torch import nn


class SplitOptimizer(torch.optim.Optimizer):
    """SparseAdam for the parameters with sparse gradients, Adam for the rest, as one
    optimizer (``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``)."""

    def __init__(self, model: nn.Module, lr: float, weight_decay: float = 0.0) -> None:
        sparse = [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]
        ids = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if id(p) not in ids]
        self.parts = [torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay)]
        if sparse:
            self.parts.append(torch.optim.SparseAdam(sparse, lr=lr))
        super().__init__([{"params": dense + sparse}], {"lr": lr})

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.parts:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        for opt in self.parts:
            opt.step()

    def state_dict(self) -> dict:
        return {"parts": [opt.state_dict() for opt in self.parts]}

    def load_state_dict(self, state: dict) -> None:
        for opt, s in zip(self.parts, state["parts"], strict=True):
            opt.load_state_dict(s)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0):
    """Adam, or Adam + SparseAdam when the model has sparse embedding tables."""
    if any(isinstance(m, nn.Embedding) and m.sparse for m in model.modules()):
        return SplitOptimizer(model, lr, weight_decay)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
