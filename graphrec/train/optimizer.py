"""Stage 3, train: the optimizer. Adam, or Adam + SparseAdam as one optimizer when the model
has sparse embedding tables (``model.sparse_embeddings``).

Both are the same algorithms as ``torch.optim``'s, computed faster on a CPU: dense
parameters by Adam's fused kernel (``fused=True``), sparse embedding rows by
:class:`RowSparseAdam` (gather the touched rows' moments, update, write them back), where
``torch.optim.SparseAdam`` builds five sparse tensors per step: 75 ms of a 265 ms training
step at 1e7 edges on this project's 2-core machines.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def deterministic_algorithms(on: bool):
    """``torch.use_deterministic_algorithms(on)`` (ops without a deterministic version
    warn instead of failing) for the block; the previous setting afterwards.

    Without torch's NaN fill of every uninitialised tensor that the mode turns on
    (``torch.utils.deterministic.fill_uninitialized_memory``): graphrec's ops write every
    element they allocate, and the fill cost ~0.7 ms of a 19 ms training step at 1M edges
    on this project's 2-core machines."""
    fill = torch.utils.deterministic
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        fill.fill_uninitialized_memory,
    )
    torch.use_deterministic_algorithms(on, warn_only=True)
    fill.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        fill.fill_uninitialized_memory = before[2]


class RowSparseAdam(torch.optim.SparseAdam):
    """``torch.optim.SparseAdam`` (same state, same update, the touched rows only) with
    the touched rows' moments gathered into dense ``[rows, dim]`` blocks, updated in place
    and copied back, instead of sparse-tensor arithmetic."""

    @torch.no_grad()
    def step(self, closure=None):
        # each row once: index_copy_ is deterministic as it is, without the sorted
        # version that torch.use_deterministic_algorithms(True) would pick
        with deterministic_algorithms(False):
            self._step()

    def _step(self) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = float(group["lr"]), group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                rows, g = _unique_rows(p.grad, len(p))
                if group.get("maximize", False):
                    g = -g
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1  # counted even for an empty gradient, as torch does
                step = state["step"]
                if g.numel() == 0:
                    continue
                m = state["exp_avg"].index_select(0, rows).lerp_(g, 1 - beta1)
                v = state["exp_avg_sq"].index_select(0, rows)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, m)
                state["exp_avg_sq"].index_copy_(0, rows, v)
                size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                step_rows = p.index_select(0, rows).sub_(m.div_(v.sqrt_().add_(eps)), alpha=size)
                p.index_copy_(0, rows, step_rows)  # rows are unique: a copy, not an add


def _unique_rows(grad: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(row ids, [rows, dim] gradients)`` of a sparse row gradient, each row once (the
    update is not linear in the gradient). An embedding looked up at distinct ids (a
    sampled batch's nodes) is used as it is; a count over the table's rows, not a sort,
    tells, where the table is not much longer than the batch (else: coalesced)."""
    rows = grad._indices()[0]
    if grad.is_coalesced() or len(rows) == 0:
        return rows, grad._values()
    if n <= 64 * len(rows) and int(torch.bincount(rows, minlength=n).max()) <= 1:
        return rows, grad._values()  # the count's cost stays within the batch's update
    grad = grad.coalesce()
    return grad._indices()[0], grad._values()


def _adam(params: list, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with the fused kernel where every parameter allows it (floating point, on a
    CPU or a CUDA device, not sparse)."""
    fused = bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") and not p.is_sparse
        for p in params
    )
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


class SplitOptimizer(torch.optim.Optimizer):
    """SparseAdam for the parameters with sparse gradients, Adam for the rest, as one
    optimizer (``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``)."""

    def __init__(self, model: nn.Module, lr: float, weight_decay: float = 0.0) -> None:
        sparse = [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]
        ids = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if id(p) not in ids]
        self.parts = [_adam(dense, lr, weight_decay)]
        if sparse:
            self.parts.append(RowSparseAdam(sparse, lr=lr))
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
    return _adam(list(model.parameters()), lr, weight_decay)
